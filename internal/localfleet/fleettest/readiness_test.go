package fleettest

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func pod(phase corev1.PodPhase, ready, deleting bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Status: corev1.PodStatus{Phase: phase}}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	}
	return p
}

func TestReadinessIntervals(t *testing.T) {
	for _, tc := range []struct {
		name string
		// events are observed in order; each is a pod state, or nil for a delete of the last one.
		events []*corev1.Pod
		want   int  // closed or open intervals recorded
		open   bool // the last one still lasts
	}{
		{"pending, then ready", []*corev1.Pod{pod(corev1.PodPending, false, false), pod(corev1.PodRunning, true, false)}, 1, true},
		{"running but not ready", []*corev1.Pod{pod(corev1.PodRunning, false, false)}, 0, false},
		{"ready, then deleting though still ready", []*corev1.Pod{pod(corev1.PodRunning, true, false), pod(corev1.PodRunning, true, true)}, 1, false},
		{"ready, deleted in one event", []*corev1.Pod{pod(corev1.PodRunning, true, false), nil}, 1, false},
		{"ready, unready, ready again", []*corev1.Pod{pod(corev1.PodRunning, true, false), pod(corev1.PodRunning, false, false), pod(corev1.PodRunning, true, false)}, 2, true},
		{"repeated ready updates", []*corev1.Pod{pod(corev1.PodRunning, true, false), pod(corev1.PodRunning, true, false)}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Readiness{serving: map[string]map[string][]Interval{"edge-a": {}}}
			var last *corev1.Pod
			for _, p := range tc.events {
				if p == nil {
					r.observe("edge-a", cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: last}, true)
					continue
				}
				r.observe("edge-a", p, false)
				last = p
			}
			got := r.Serving("edge-a", "ns/p")
			if len(got) != tc.want || (len(got) > 0 && got[len(got)-1].To.IsZero() != tc.open) {
				t.Errorf("intervals %v; want %d, the last open: %v", got, tc.want, tc.open)
			}
		})
	}
}

func TestServedBetween(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := &Readiness{serving: map[string]map[string][]Interval{
		"edge-a": {"ns/closed": {{From: at(10), To: at(20)}}, "ns/open": {{From: at(30)}}},
	}}
	for _, tc := range []struct {
		cluster, pod string
		from, to     int
		want         bool
	}{
		{"edge-a", "ns/closed", 12, 13, true},
		{"edge-a", "ns/closed", 5, 10, true}, // ends as it starts
		{"edge-a", "ns/closed", 20, 25, true},
		{"edge-a", "ns/closed", 5, 9, false},
		{"edge-a", "ns/closed", 21, 25, false},
		{"edge-a", "ns/open", 100, 101, true},
		{"edge-a", "ns/open", 25, 29, false},
		{"edge-b", "ns/closed", 12, 13, false}, // another cluster's pod of the same name
		{"edge-a", "ns/other", 12, 13, false},
	} {
		if got := r.ServedBetween(tc.cluster, tc.pod, at(tc.from), at(tc.to)); got != tc.want {
			t.Errorf("ServedBetween(%s, %s, %d, %d) = %v, want %v", tc.cluster, tc.pod, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestServingNow(t *testing.T) {
	r := &Readiness{serving: map[string]map[string][]Interval{
		"edge-a": {"ns/gone": {{From: time.Unix(1, 0), To: time.Unix(2, 0)}}, "ns/up": {{From: time.Unix(3, 0)}}},
		"edge-b": {"ns/gone": {{From: time.Unix(1, 0), To: time.Unix(2, 0)}}},
		"edge-c": {},
	}}
	if got := r.ServingNow(); len(got) != 1 || !got["edge-a"] {
		t.Errorf("ServingNow() = %v, want only edge-a", got)
	}
}
