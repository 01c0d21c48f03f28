package realmigration

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
)

// testServiceAnswer is what the test service answers on GET /, /slow and /infer.
type testServiceAnswer struct {
	Pod     string `json:"pod"`
	Cluster string `json:"cluster"`
	// Served counts the non-probe requests the process has answered, this one included.
	Served int `json:"served"`
}

// getRoot is the car's request to the test service.
func getRoot(int) car.Request { return car.Request{Method: http.MethodGet, Path: "/"} }

// served asks pod directly, at its IP, how many requests it has answered (this one included).
func (s *scenario) served(pod corev1.Pod) int {
	s.t.Helper()
	body, err := get(pod.Status.PodIP, "/")
	if err != nil {
		s.t.Fatalf("asking pod %s directly: %v", pod.Name, err)
	}
	var a testServiceAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Pod != pod.Name {
		s.t.Fatalf("pod %s answered %q (%v); want its own name and count", pod.Name, body, err)
	}
	return a.Served
}

// slowFor is how long the drain test's slow request takes: far more than a real pod needs
// to be Ready (about a second), far less than the drain timeout.
const slowFor = 10 * time.Second

// TestE2ERealNodeDrain: the car moves from edge-a to edge-b and sends a slow request
// (/slow, slowFor) just after edge-b created its copy, before that copy can be Ready. The
// request is answered, 200, by edge-a's pod, and edge-a scales its Deployment to zero only
// after it ended, though edge-b's copy was Ready while it was under way; the car's steady
// requests meanwhile all succeed, each from a serving pod.
func TestE2ERealNodeDrain(t *testing.T) {
	s := newScenario(t)
	a, b := s.f.Edges[0], s.f.Edges[1]
	const name = "tracker"
	d := s.startCar(carDrain, a, 75*time.Millisecond, getRoot)
	s.create(a, s.service(images.TestService, name, carDrain))
	atA := s.runningOnRealNode(a, name, images.TestService)
	d.run()
	d.answeredBy(a.ID, 5)

	created, scaled := s.podCreated(b, name), s.scaledToZero(a, name)
	trigger := time.Now()
	d.moveTo(b)
	s.when("edge-b's copy of "+name, created)
	slowStart := time.Now()
	slow := d.Do(s.ctx, car.Request{Method: http.MethodGet, Path: "/slow?d=" + slowFor.String()})
	slowEnd := slow.Start.Add(slow.Latency)

	m := s.completed(a, name, trigger)
	report(t, m, trigger)
	atB := s.runningOnRealNode(b, name, images.TestService)
	scaledAt := s.when(name+" scaled to zero at edge-a", scaled)
	var readyB time.Time
	if spans := s.ready.Serving(b.ID, s.ns+"/"+atB.Name); len(spans) > 0 {
		readyB = spans[0].From
	}
	t.Logf("slow request %s → %s (%d, from %s); edge-b's copy serving from %s; edge-a scaled to zero at %s",
		slowStart.Format(fleettest.TimeFormat), slowEnd.Format(fleettest.TimeFormat), slow.Status, slow.Pod, readyB.Format(fleettest.TimeFormat), scaledAt.Format(fleettest.TimeFormat))

	if !slow.OK() || slow.Cluster != a.ID || slow.Pod != s.ns+"/"+atA.Name {
		t.Errorf("slow request: status %d from %s pod %q (%s); want 200 from edge-a's %s", slow.Status, slow.Cluster, slow.Pod, slow.Err, atA.Name)
	}
	var answer testServiceAnswer
	if err := json.Unmarshal(slow.Body, &answer); err != nil || answer.Pod != atA.Name || answer.Cluster != a.ID {
		t.Errorf("slow request's answer %q (%v); want edge-a's pod %s naming its cluster", slow.Body, err, atA.Name)
	}
	// What makes this a test of the drain: edge-b was Ready while the request was under way.
	if readyB.IsZero() || !readyB.After(slowStart) || !readyB.Before(slowStart.Add(slowFor)) {
		t.Fatalf("edge-b's copy was serving from %s, not during the slow request (%s + %s): nothing to drain\n%s",
			readyB.Format(fleettest.TimeFormat), slowStart.Format(fleettest.TimeFormat), slowFor, s.state())
	}
	// The service answered the slow request no sooner than slowFor after it was sent.
	if scaledAt.Before(slowStart.Add(slowFor)) {
		t.Errorf("edge-a scaled %s to zero at %s, before its in-flight slow request could end (%s + %s)", name,
			scaledAt.Format(fleettest.TimeFormat), slowStart.Format(fleettest.TimeFormat), slowFor)
	}
	s.stopped(a, name, images.TestService, atA)
	d.answeredBy(b.ID, 5)
	by := s.checkServed(d.stop())
	if by[a.ID] == 0 || by[b.ID] == 0 {
		t.Errorf("answers by cluster %v; want both edge-a (before) and edge-b (after)", by)
	}
}

// requiredFile is what the crash test's service needs, from a Secret only edge-a has.
const requiredFile = "/etc/mapper/present"

// TestE2ERealNodeDestinationCrash: the car's service needs a file from a Secret that exists
// only at edge-a (Secrets never travel; mounted as optional, edge-b may bid without it). The car moves to edge-b; edge-b's copy
// crashes at start, edge-b gives the migration back, the migration ends Failed with no
// destination, and the car is served by edge-a's pod throughout, every request succeeding.
func TestE2ERealNodeDestinationCrash(t *testing.T) {
	s := newScenario(t)
	a, b := s.f.Edges[0], s.f.Edges[1]
	const name = "mapper"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns}, StringData: map[string]string{"present": "yes"}}
	if _, err := a.Client.CoreV1().Secrets(s.ns).Create(s.ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep := s.service(images.TestService, name, carCrash, "--require-file", requiredFile)
	spec := &dep.Spec.Template.Spec
	spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: name, Optional: ptr.To(true)}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/mapper", ReadOnly: true}}
	s.create(a, dep)
	atA := s.runningOnRealNode(a, name, images.TestService)

	d := s.startCar(carCrash, a, 75*time.Millisecond, getRoot)
	d.run()
	d.answeredBy(a.ID, 5)
	// edge-b's container really runs and exits: its kubelet says so (watched: the copy may
	// be gone by the time a list would look).
	crashed := watchFirst(s, b, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Pods().Informer()
	},
		func(p *corev1.Pod) bool {
			for _, cs := range p.Status.ContainerStatuses {
				if p.Labels["app"] == name && (cs.RestartCount > 0 || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil) {
					return true
				}
			}
			return false
		})
	trigger := time.Now()
	d.moveTo(b)
	s.when("edge-b's copy of "+name+" crashing", crashed)
	failed := s.migration(a, name, v1alpha1.RoleSource, v1alpha1.PhaseFailed, trigger)
	t.Logf("source migration %s: %s: %s (excluded %v)", failed.Name, failed.Status.Reason, failed.Status.Message, failed.Status.Excluded)
	if failed.Status.Reason != "NoDestination" || !slices.Contains(failed.Status.Excluded, b.ID) {
		t.Errorf("source migration %s: reason %s, excluded %v; want NoDestination with edge-b excluded", failed.Name, failed.Status.Reason, failed.Status.Excluded)
	}
	s.migration(b, name, v1alpha1.RoleDestination, v1alpha1.PhaseFailed, trigger)
	s.waitFor("edge-b without a copy of "+name, func() (bool, error) {
		_, err := b.Client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) && len(s.pods(b, name)) == 0, nil
	})
	// Still served by edge-a, from outside its coverage.
	d.answeredBy(a.ID, 10)
	results := d.stop()
	by := s.checkServed(results)
	if by[b.ID] != 0 {
		t.Errorf("%d requests answered by edge-b, whose copy never started", by[b.ID])
	}
	for _, r := range results {
		if r.OK() && r.Pod != s.ns+"/"+atA.Name {
			t.Errorf("request %d answered by %s, not edge-a's only pod %s", r.Seq, r.Pod, atA.Name)
			break
		}
	}
	if pods := s.pods(a, name); len(pods) != 1 || pods[0].Name != atA.Name || pods[0].DeletionTimestamp != nil {
		t.Errorf("edge-a's pods of %s: %d, want its one pod %s still running\n%s", name, len(pods), atA.Name, s.state())
	}
}

// TestE2ERealNodeWrongToken: requests with a wrong token, another client's or none are
// refused with 401 at the gateway and never reach the service: its own count, read at the
// pod's IP before and after, rises only by the direct requests. The right token is served.
func TestE2ERealNodeWrongToken(t *testing.T) {
	s := newScenario(t)
	a := s.f.Edges[0]
	const name = "counter"
	s.create(a, s.service(images.TestService, name, carToken))
	pod := s.runningOnRealNode(a, name, images.TestService)
	good := s.startCar(carToken, a, time.Second, getRoot)

	before := s.served(pod)
	wrong := s.carWithToken(carToken, "not-the-token-of-"+carToken, time.Second, getRoot)
	if err := wrong.MoveTo(s.ctx, a.Point()); err == nil {
		t.Errorf("edge-a took a location report with a wrong token")
	}
	other := s.carWithToken(carToken, tokens[carMobility], time.Second, getRoot) // a real token, of another client
	_ = other.MoveTo(s.ctx, a.Point())
	for _, c := range []*driver{wrong, other} {
		for range 2 {
			if r := c.Do(s.ctx, getRoot(0)); r.Status != http.StatusUnauthorized || r.Pod != "" {
				t.Errorf("request with a wrong token: %d from pod %q (%s); want 401 and no pod", r.Status, r.Pod, r.Err)
			}
		}
	}
	resp, err := s.f.CarClient(10*time.Second, false).Get(a.LocatorURL + "/v1/clients/" + carToken + "/service/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(api.HeaderPod) != "" {
		t.Errorf("request without a token: %s; want 401", resp.Status)
	}
	if after := s.served(pod); after != before+1 {
		t.Errorf("the service answered %d requests between two direct ones; want none: the gateway proxied a refused request", after-before-1)
	}

	// The right token is served, by that very pod, and counted.
	r := good.Do(s.ctx, getRoot(0))
	var answer testServiceAnswer
	if err := json.Unmarshal(r.Body, &answer); !r.OK() || err != nil || r.Pod != s.ns+"/"+pod.Name || answer.Served != before+2 {
		t.Errorf("request with the right token: %d from %q, answer %q (%v); want 200 from %s counting %d", r.Status, r.Pod, r.Body, err, pod.Name, before+2)
	}
	if last := s.served(pod); last != before+3 {
		t.Errorf("the service counted %d, want %d", last, before+3)
	}
}
