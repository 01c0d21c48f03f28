package extender

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// BenchmarkFilterPrioritize measures one filter call plus one prioritize call through the
// HTTP handler, as kube-scheduler makes them for a pod, over n Jetson nodes each running a
// few pods: with node names only (nodeCacheCapable: true) and with full NodeLists. Each case
// also reports x-do-nothing: its time over that of the do-nothing extender (as
// BenchmarkFilterPrioritizeDoNothing measures it) on the same bodies, right after, so that
// the figure travels between machines where absolute times do not.
func BenchmarkFilterPrioritize(b *testing.B) {
	benchmarkFilterPrioritize(b, false)
}

// BenchmarkFilterPrioritizeDoNothing is the baseline of BenchmarkFilterPrioritize: an
// extender that decodes the same request bodies with encoding/json and accepts every node
// with score 0, through the same HTTP engine.
func BenchmarkFilterPrioritizeDoNothing(b *testing.B) {
	benchmarkFilterPrioritize(b, true)
}

func benchmarkFilterPrioritize(b *testing.B, doNothing bool) {
	baseline := doNothingHandler()
	models := []localcluster.JetsonModel{localcluster.AGXXavier, localcluster.AGXOrin, localcluster.OrinNX}
	for _, n := range []int{100, 1000, 5000} {
		fx := newFixture(b, Options{})
		nodes := make([]*corev1.Node, n)
		names := make([]string, n)
		for i := range nodes {
			nodes[i] = localcluster.JetsonNode(fmt.Sprintf("jetson-%05d", i), models[i%len(models)], localcluster.NodeOptions{GPUReplicas: 1 + i%4})
			names[i] = nodes[i].Name
			fx.ext.cache.SetNode(nodes[i])
			for j := range 3 {
				p := jetsontest.Pod(fmt.Sprintf("p-%d-%d", i, j), nodes[i].Name, "1Gi", fmt.Sprintf("%dGi", 1+(i+j)%4))
				p.UID = types.UID(p.Name)
				fx.ext.cache.SetPod(p)
			}
		}
		pod := jetsontest.Pod("new", "", "2Gi", "6Gi")
		for _, mode := range []string{"names", "nodelist"} {
			args := namesArgs(pod, names...)
			if mode == "nodelist" {
				args = listArgs(pod, nodes...)
			}
			body := mustJSON(b, args)
			handler := fx.handler
			if doNothing {
				handler = baseline
			}
			b.Run(fmt.Sprintf("nodes=%d/%s", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(2 * len(body)))
				for b.Loop() {
					pair(b, handler, body)
				}
				// ns/op is the pair, as the scheduler makes it per pod; ns/call is one verb.
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/call")
				if doNothing {
					return
				}
				ours, start := b.Elapsed(), time.Now()
				for range b.N {
					pair(b, baseline, body)
				}
				b.ReportMetric(float64(ours)/float64(time.Since(start)), "x-do-nothing")
			})
		}
	}
}

// pair makes the calls kube-scheduler makes for one pod.
func pair(b *testing.B, h http.Handler, body []byte) {
	for _, verb := range []string{"filter", "prioritize"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+verb, bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", verb, rec.Code, rec.Body)
		}
	}
}

// doNothingHandler decodes extender requests with encoding/json and answers that every
// node fits and scores 0: what any extender costs before it decides anything.
func doNothingHandler() http.Handler {
	engine := serve.NewEngine(serve.NewRegistry(), func() error { return nil })
	decode := func(c *gin.Context) (*extenderv1.ExtenderArgs, []string, bool) {
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(c.Request.Body).Decode(&args); err != nil {
			c.AbortWithStatus(http.StatusBadRequest)
			return nil, nil, false
		}
		var names []string
		if args.NodeNames != nil {
			names = *args.NodeNames
		} else if args.Nodes != nil {
			for i := range args.Nodes.Items {
				names = append(names, args.Nodes.Items[i].Name)
			}
		}
		return &args, names, true
	}
	engine.POST("/filter", func(c *gin.Context) {
		if args, names, ok := decode(c); ok {
			c.JSON(http.StatusOK, extenderv1.ExtenderFilterResult{Nodes: args.Nodes, NodeNames: &names})
		}
	})
	engine.POST("/prioritize", func(c *gin.Context) {
		if _, names, ok := decode(c); ok {
			list := make(extenderv1.HostPriorityList, len(names))
			for i, name := range names {
				list[i] = extenderv1.HostPriority{Host: name}
			}
			c.JSON(http.StatusOK, list)
		}
	})
	return engine
}
