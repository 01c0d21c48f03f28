package extender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
)

// fixture is an extender over a fake clientset whose cache is fed directly, and its
// handler.
type fixture struct {
	ext     *Extender
	client  *fake.Clientset
	handler http.Handler
}

func newFixture(t testing.TB, opts Options, objects ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objects...)
	reg := serve.NewRegistry()
	ext, err := New(client, opts, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		switch o := o.(type) {
		case *corev1.Node:
			ext.cache.SetNode(o)
		case *corev1.Pod:
			ext.cache.SetPod(o)
		}
	}
	return &fixture{ext: ext, client: client, handler: ext.Handler(reg)}
}

func (f *fixture) post(t testing.TB, verb string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+verb, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func namesArgs(pod *corev1.Pod, names ...string) extenderv1.ExtenderArgs {
	return extenderv1.ExtenderArgs{Pod: pod, NodeNames: &names}
}

func listArgs(pod *corev1.Pod, nodes ...*corev1.Node) extenderv1.ExtenderArgs {
	list := &corev1.NodeList{}
	for _, n := range nodes {
		list.Items = append(list.Items, *n)
	}
	return extenderv1.ExtenderArgs{Pod: pod, Nodes: list}
}

// cluster: "big" has 28Gi free, "small" 2Gi, "x86" is not a Jetson.
func clusterObjects() []runtime.Object {
	return []runtime.Object{
		jetsontest.JetsonNode("big", "32Gi"), jetsontest.JetsonNode("small", "16Gi"), jetsontest.PlainNode("x86"),
		jetsontest.Pod("on-big", "big", "4Gi", ""), jetsontest.Pod("on-small", "small", "2Gi", "12Gi"),
	}
}

func TestFilter(t *testing.T) {
	f := newFixture(t, Options{}, clusterObjects()...)
	nodes := map[string]*corev1.Node{"big": jetsontest.JetsonNode("big", "32Gi"), "small": jetsontest.JetsonNode("small", "16Gi"), "x86": jetsontest.PlainNode("x86")}
	tests := []struct {
		name             string
		pod              *corev1.Pod
		nodes            []string
		wantNodes        []string
		wantFailed       map[string]string
		wantUnresolvable map[string]string
	}{
		{
			name: "GPU memory counts: only the big node fits", pod: jetsontest.Pod("p", "", "1Gi", "6Gi"),
			nodes: []string{"big", "small", "x86"}, wantNodes: []string{"big", "x86"},
			wantFailed: map[string]string{"small": "unified memory: need 7.0Gi, free 2.0Gi of 16.0Gi on NVIDIA-Jetson-AGX-Xavier"},
		},
		{
			name: "small pod fits both", pod: jetsontest.Pod("p", "", "1Gi", "1Gi"),
			nodes: []string{"big", "small"}, wantNodes: []string{"big", "small"},
		},
		{
			name: "malformed annotation rejects every Jetson, naming annotation and value", pod: jetsontest.Pod("p", "", "", "6 GB"),
			nodes: []string{"big", "small", "x86"}, wantNodes: []string{"x86"},
			wantUnresolvable: map[string]string{
				"big":   `annotation edgemigrate.io/gpu-memory: "6 GB" is not a quantity (write it like 4Gi or 512Mi)`,
				"small": `annotation edgemigrate.io/gpu-memory: "6 GB" is not a quantity (write it like 4Gi or 512Mi)`,
			},
		},
		{
			name: "unknown node", pod: jetsontest.Pod("p", "", "", ""),
			nodes: []string{"ghost"}, wantNodes: []string{},
			wantUnresolvable: map[string]string{"ghost": "node ghost is unknown to the edgemigrate extender"},
		},
		{name: "no nodes", pod: jetsontest.Pod("p", "", "", ""), nodes: []string{}, wantNodes: []string{}},
	}
	for _, tt := range tests {
		for _, byName := range []bool{true, false} {
			mode := "names"
			if !byName {
				mode = "nodelist"
			}
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var args extenderv1.ExtenderArgs
				if byName {
					args = namesArgs(tt.pod, tt.nodes...)
				} else {
					var list []*corev1.Node
					for _, n := range tt.nodes {
						if nodes[n] == nil {
							t.Skip("an unknown node in a NodeList is judged from the list")
						}
						list = append(list, nodes[n])
					}
					args = listArgs(tt.pod, list...)
				}
				rec := f.post(t, "filter", mustJSON(t, args))
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				var res extenderv1.ExtenderFilterResult
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
					t.Fatalf("answer is not an ExtenderFilterResult: %v\n%s", err, rec.Body)
				}
				var got []string
				if byName {
					if res.NodeNames == nil || res.Nodes != nil {
						t.Fatalf("names asked, answer %s", rec.Body)
					}
					got = *res.NodeNames
				} else {
					if res.Nodes == nil || res.NodeNames != nil {
						t.Fatalf("NodeList asked, answer %s", rec.Body)
					}
					for _, n := range res.Nodes.Items {
						got = append(got, n.Name)
						if n.Labels[corev1.LabelArchStable] == "" || n.Status.Allocatable.Memory().IsZero() {
							t.Errorf("node %s not returned whole: %+v", n.Name, n)
						}
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.wantNodes, ",") {
					t.Errorf("accepted %v, want %v", got, tt.wantNodes)
				}
				assertMap(t, "FailedNodes", res.FailedNodes, tt.wantFailed)
				assertMap(t, "FailedAndUnresolvableNodes", res.FailedAndUnresolvableNodes, tt.wantUnresolvable)
				if res.Error != "" {
					t.Errorf("Error = %q", res.Error)
				}
			})
		}
	}
}

func assertMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%s] = %q, want %q", what, k, got[k], v)
		}
	}
}

func TestFilterNodeListJudgesNodesTheInformerHasNotSeen(t *testing.T) {
	f := newFixture(t, Options{})
	args := listArgs(jetsontest.Pod("p", "", "", "20Gi"), jetsontest.JetsonNode("new-big", "32Gi"), jetsontest.JetsonNode("new-small", "16Gi"), jetsontest.PlainNode("new-x86"))
	rec := f.post(t, "filter", mustJSON(t, args))
	var res extenderv1.ExtenderFilterResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Nodes == nil {
		t.Fatalf("status %d, %v: %s", rec.Code, err, rec.Body)
	}
	if len(res.Nodes.Items) != 2 || res.Nodes.Items[0].Name != "new-big" || res.Nodes.Items[1].Name != "new-x86" {
		t.Errorf("accepted %v, want new-big and new-x86", res.Nodes.Items)
	}
	if !strings.HasPrefix(res.FailedNodes["new-small"], "unified memory: need 20.0Gi, free 16.0Gi") {
		t.Errorf("FailedNodes = %v", res.FailedNodes)
	}
}

func TestFilterNodeListMalformedNewNode(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.post(t, "filter", []byte(`{"Pod":{},"Nodes":{"items":[{"metadata":{"name":"n"},"status":{"allocatable":{"cpu":"1e-99999999"}}}]}}`))
	var res extenderv1.ExtenderFilterResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d, %v: %s", rec.Code, err, rec.Body)
	}
	if want := `node n: decoding node: quantity "1e-99999999" is not a quantity`; res.FailedAndUnresolvableNodes["n"] != want {
		t.Errorf("FailedAndUnresolvableNodes = %v, want n: %q", res.FailedAndUnresolvableNodes, want)
	}
}

func TestPrioritize(t *testing.T) {
	for _, tt := range []struct {
		policy jetson.Policy
		want   map[string]int64 // 0–10, as the scheduler takes extender scores
	}{
		// The pod claims 2Gi. big: (4+2)/32 = 19% → 2; small: (14+2)/16 = 100% → 10; x86: no opinion.
		{policy: jetson.Binpack, want: map[string]int64{"big": 2, "small": 10, "x86": 0}},
		{policy: jetson.Spread, want: map[string]int64{"big": 8, "small": 0, "x86": 0}},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			f := newFixture(t, Options{Policy: tt.policy}, clusterObjects()...)
			for _, byName := range []bool{true, false} {
				args := namesArgs(jetsontest.Pod("p", "", "1Gi", "1Gi"), "big", "small", "x86")
				if !byName {
					args = listArgs(jetsontest.Pod("p", "", "1Gi", "1Gi"), jetsontest.JetsonNode("big", "32Gi"), jetsontest.JetsonNode("small", "16Gi"), jetsontest.PlainNode("x86"))
				}
				rec := f.post(t, "prioritize", mustJSON(t, args))
				var got extenderv1.HostPriorityList
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
					t.Fatalf("status %d, %v: %s", rec.Code, err, rec.Body)
				}
				if len(got) != 3 {
					t.Fatalf("got %v, want 3 hosts", got)
				}
				for _, h := range got {
					if h.Score != tt.want[h.Host] {
						t.Errorf("byName=%v: %s scored %d, want %d", byName, h.Host, h.Score, tt.want[h.Host])
					}
				}
			}
		})
	}
}

func TestPrioritizeMalformedAnnotationScoresZero(t *testing.T) {
	f := newFixture(t, Options{}, clusterObjects()...)
	rec := f.post(t, "prioritize", mustJSON(t, namesArgs(jetsontest.Pod("p", "", "", "-1Gi"), "big", "small")))
	var got extenderv1.HostPriorityList
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, h := range got {
		if h.Score != 0 {
			t.Errorf("%s scored %d for a pod with a malformed annotation", h.Host, h.Score)
		}
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, Options{MaxBodyBytes: 4096}, clusterObjects()...)
	pod := jetsontest.Pod("p", "", "", "")
	tests := []struct {
		name, verb string
		body       []byte
		wantStatus int
		wantError  string
	}{
		{"not JSON", "filter", []byte("{"), http.StatusBadRequest, "decoding extender arguments"},
		{"wrong type", "prioritize", []byte(`{"Pod":{},"NodeNames":"a"}`), http.StatusBadRequest, "decoding extender arguments"},
		{"no pod", "filter", []byte(`{"NodeNames":["a"]}`), http.StatusBadRequest, "no Pod"},
		{"no nodes", "filter", mustJSON(t, extenderv1.ExtenderArgs{Pod: pod}), http.StatusBadRequest, "neither NodeNames nor Nodes"},
		{"bad node in list", "filter", []byte(`{"Pod":{},"Nodes":{"items":[{"metadata":7}]}}`), http.StatusBadRequest, "Nodes: node 0: malformed JSON"},
		{"quantity that takes resource.ParseQuantity minutes", "filter",
			[]byte(`{"Pod":{"spec":{"containers":[{"resources":{"requests":{"memory":"1e-99999999"}}}]}},"NodeNames":["big"]}`),
			http.StatusBadRequest, `quantity "1e-99999999" is not a quantity`},
		{"too large", "filter", bytes.Repeat([]byte(" "), 5000), http.StatusRequestEntityTooLarge, "exceeds the limit"},
		{"bind not JSON", "bind", []byte("nope"), http.StatusBadRequest, "decoding binding arguments"},
		{"bind without node", "bind", []byte(`{"PodName":"p","PodNamespace":"ns"}`), http.StatusBadRequest, "need PodName, PodNamespace and Node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.post(t, tt.verb, tt.body)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			var res struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || !strings.Contains(res.Error, tt.wantError) {
				t.Errorf("body %s, want an Error containing %q", rec.Body, tt.wantError)
			}
		})
	}
}

func TestBind(t *testing.T) {
	objects := append(clusterObjects(), jetsontest.Pod("a", "", "", "20Gi"), jetsontest.Pod("b", "", "", "20Gi"), jetsontest.Pod("c", "", "", "1Gi"), jetsontest.Pod("d", "", "", "1Gi"))
	f := newFixture(t, Options{}, objects...)
	var bound []string
	f.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		switch b.Name {
		case "c":
			return true, nil, apierrors.NewConflict(corev1.Resource("pods"), "c", errors.New("API server says no"))
		case "d":
			return true, nil, errors.New("connection reset: the binding may or may not exist")
		}
		bound = append(bound, b.Name+"->"+b.Target.Name)
		return true, nil, nil
	})
	bind := func(pod, node string) string {
		rec := f.post(t, "bind", mustJSON(t, extenderv1.ExtenderBindingArgs{PodName: pod, PodNamespace: "ns", PodUID: types.UID("uid-" + pod), Node: node}))
		var res extenderv1.ExtenderBindingResult
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("bind %s: status %d, %v: %s", pod, rec.Code, err, rec.Body)
		}
		return res.Error
	}
	// a and b were both filtered onto big's 28Gi free; only the first bind may claim it.
	if e := bind("a", "big"); e != "" {
		t.Fatalf("bind a: %s", e)
	}
	if e := bind("b", "big"); !strings.Contains(e, "unified memory: need 20.0Gi, free 8.0Gi") {
		t.Errorf("bind b onto the memory a claimed: %q, want a refusal with quantities", e)
	}
	if e := bind("c", "big"); !strings.Contains(e, "API server says no") {
		t.Errorf("bind c: %q, want the API error", e)
	}
	if e := bind("d", "big"); !strings.Contains(e, "connection reset") {
		t.Errorf("bind d: %q, want the transport error", e)
	}
	if e := bind("ghost", "big"); !strings.Contains(e, "pod not found") {
		t.Errorf("bind of a missing pod: %q", e)
	}
	if e := f.post(t, "bind", mustJSON(t, extenderv1.ExtenderBindingArgs{PodName: "a", PodNamespace: "ns", PodUID: "other", Node: "big"})); !strings.Contains(e.Body.String(), "UID") {
		t.Errorf("bind with a stale UID: %s", e.Body)
	}
	if strings.Join(bound, ",") != "a->big" {
		t.Errorf("bindings created: %v, want a->big", bound)
	}
	// a is assumed; c's refused binding is forgotten; d's binding may exist, so it stays
	// assumed until the informer shows it or the assumption expires.
	if n := f.ext.cache.Assumed(); n != 2 {
		t.Errorf("assumed %d pods, want 2 (a and d)", n)
	}
	if got := testutil.ToFloat64(f.ext.metrics.assumed); got != 2 {
		t.Errorf("assumed-pods gauge = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.ext.metrics.binds.WithLabelValues("no_fit")); got != 1 {
		t.Errorf("no_fit binds = %v, want 1", got)
	}
}

// TestReadyAfterSync runs the informers against a fake clientset: /readyz turns ready once
// they have synced, and the cache then holds the listed nodes and pods.
func TestReadyAfterSync(t *testing.T) {
	client := fake.NewClientset(clusterObjects()...)
	reg := serve.NewRegistry()
	ext, err := New(client, Options{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	h := ext.Handler(reg)
	readyz := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before start: %d, want 503", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ext.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return readyz() == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("/readyz never ready: %v", err)
	}
	if got := ext.Usage().Used()["small"].Unified(); got != 14*jetsontest.Gi {
		t.Errorf("small's use after sync = %s, want 14Gi", jetson.FormatBytes(got))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, name := range []string{"edgemigrate_extender_assumed_pods", "edgemigrate_extender_nodes_rejected_total"} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestNewRefusesUnknownPolicy(t *testing.T) {
	if _, err := New(fake.NewClientset(), Options{Policy: "random"}, serve.NewRegistry()); err == nil {
		t.Fatal("accepted policy random")
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "node-1", `a"b\c`, "tab\there\nnl\r\x01\x1f", "héllo", "bad\xffutf8", "<&>"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Errorf("appendString(%q) is not JSON: %v", s, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if got != want {
			t.Errorf("appendString(%q) decodes to %q, want %q", s, got, want)
		}
	}
}

func TestParseNames(t *testing.T) {
	for _, names := range [][]string{{}, {"a"}, {"node-1", "node-2"}, {`q"uote`, `back\slash`, "uni\u00e9", "\u2028"}} {
		raw := mustJSON(t, names)
		spaced := bytes.ReplaceAll(raw, []byte(","), []byte(" ,\n\t"))
		for _, in := range [][]byte{raw, spaced, append([]byte(" "), raw...)} {
			got, err := parseNames(in, nil)
			if err != nil {
				t.Fatalf("parseNames(%s): %v", in, err)
			}
			if len(got) != len(names) {
				t.Fatalf("parseNames(%s) = %v", in, got)
			}
			for i := range got {
				if got[i].name != names[i] {
					t.Errorf("parseNames(%s)[%d] = %q, want %q", in, i, got[i].name, names[i])
				}
			}
		}
	}
	for _, in := range []string{`"a"`, `{}`, `[1]`, `["a",null]`, `[["a"]]`, `["a"`, `["a",]`, `["a"] x`, "[\"a\x01\"]", `["\x"]`, ``} {
		if _, err := parseNames([]byte(in), nil); err == nil {
			t.Errorf("parseNames(%s) accepted", in)
		}
	}
}

func TestDecodeArgs(t *testing.T) {
	tests := []struct {
		name, body string
		wantNames  string // comma-joined candidate names
		wantByName bool
		wantErr    string
	}{
		{name: "names", body: `{"Pod":{"metadata":{"name":"p"}},"NodeNames":["a","b"]}`, wantNames: "a,b", wantByName: true},
		{name: "keys match case-insensitively, as encoding/json", body: ` { "pod" : {} , "nodenames" : [ "a" ] } `, wantNames: "a", wantByName: true},
		{name: "null names fall back to the NodeList", body: `{"Pod":{},"NodeNames":null,"Nodes":{"metadata":{},"items":[{"metadata":{"name":"x","labels":{"a":"}"}},"status":{}}]}}`, wantNames: "x"},
		{name: "escaped node name in a NodeList", body: `{"Pod":{},"Nodes":{"items":[{"metadata":{"name":"a\"b"}}]}}`, wantNames: `a"b`},
		{name: "unknown keys are skipped", body: `{"Pod":{},"Extra":[1,{"x":"]"}],"NodeNames":[]}`, wantByName: true},
		{name: "null pod", body: `{"Pod":null,"NodeNames":[]}`, wantErr: "no Pod"},
		{name: "pod of the wrong type", body: `{"Pod":[],"NodeNames":[]}`, wantErr: "Pod:"},
		{name: "trailing data", body: `{"Pod":{},"NodeNames":[]} {}`, wantErr: "after the value"},
		{name: "unterminated", body: `{"Pod":{},"NodeNames":["a"`, wantErr: "malformed JSON"},
		{name: "bad literal", body: `{"Pod":{},"X":nul,"NodeNames":[]}`, wantErr: "bad literal"},
		{name: "items not an array", body: `{"Pod":{},"Nodes":{"items":{}}}`, wantErr: "array expected"},
		{name: "node name not a string", body: `{"Pod":{},"Nodes":{"items":[{"metadata":{"name":7}}]}}`, wantErr: "metadata.name is not a string"},
		{name: "empty", body: ``, wantErr: "object expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a args
			got, err := decodeArgs([]byte(tt.body), &a, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range got {
				names = append(names, c.name)
			}
			if strings.Join(names, ",") != tt.wantNames || a.byName != tt.wantByName {
				t.Errorf("names %q byName %v, want %q %v", names, a.byName, tt.wantNames, tt.wantByName)
			}
		})
	}
}
