package extender

import (
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// BenchmarkFilterPrioritize measures one filter call plus one prioritize call through the
// HTTP handler, as kube-scheduler makes them for a pod, over n Jetson nodes each running a
// few pods: with node names only (nodeCacheCapable: true) and with full NodeLists.
func BenchmarkFilterPrioritize(b *testing.B) {
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
			b.Run(fmt.Sprintf("nodes=%d/%s", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(2 * len(body)))
				calls := 0
				for b.Loop() {
					for _, verb := range []string{"filter", "prioritize"} {
						if rec := fx.post(b, verb, body); rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", verb, rec.Code, rec.Body)
						}
						calls++
					}
				}
				// ns/op is the pair, as the scheduler makes it per pod; ns/call is one verb.
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls), "ns/call")
			})
		}
	}
}
