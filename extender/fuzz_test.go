package extender

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

var fuzzVerbs = []string{"filter", "prioritize", "bind"}

// FuzzRequest sends arbitrary bodies to every verb: the extender must answer 200, 400 or 413
// with JSON, never panic (gin's recovery would turn a panic into a 500), and a filter answer
// must account for every node it was asked about, echoing accepted nodes unchanged. The seed corpus is in
// testdata/fuzz/FuzzRequest; run with: go test -short -run '^$' -fuzz FuzzRequest ./extender/
func FuzzRequest(f *testing.F) {
	fx := newFixture(f, Options{MaxBodyBytes: 1 << 20}, clusterObjects()...)
	f.Fuzz(func(t *testing.T, verb byte, body []byte) {
		name := fuzzVerbs[int(verb)%len(fuzzVerbs)]
		rec := fx.post(t, name, body)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s answered %d: %s", name, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s answered invalid JSON: %q", name, rec.Body)
		}
		if name != "filter" || rec.Code != http.StatusOK {
			return
		}
		var in args
		candidates, err := decodeArgs(body, &in, nil)
		if err != nil {
			t.Fatalf("filter accepted a body decodeArgs refuses: %v", err)
		}
		// Accepted nodes are echoed verbatim, whatever the parts the extender does not read
		// hold, so the answer's nodes are kept raw here.
		var res struct {
			extenderv1.ExtenderFilterResult
			Nodes *struct{ Items []json.RawMessage }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatalf("filter answer is not an ExtenderFilterResult: %v", err)
		}
		accepted := 0
		if res.NodeNames != nil {
			accepted = len(*res.NodeNames)
		} else if res.Nodes != nil {
			accepted = len(res.Nodes.Items)
		}
		unique := map[string]bool{}
		for _, c := range candidates {
			unique[c.name] = true
		}
		if res.Nodes != nil {
			for i, raw := range res.Nodes.Items {
				if !slices.ContainsFunc(candidates, func(c candidate) bool { return bytes.Equal(c.raw, raw) }) {
					t.Fatalf("accepted node %d is not one of the request's: %s", i, raw)
				}
			}
		}
		// Rejections are keyed by name, so duplicates collapse there.
		if rejected := len(res.FailedNodes) + len(res.FailedAndUnresolvableNodes); accepted+rejected < len(unique) || accepted > len(candidates) {
			t.Fatalf("asked about %d nodes (%d distinct), answered %d accepted and %d rejected", len(candidates), len(unique), accepted, rejected)
		}
	})
}
