package realmigration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
	"github.com/edgemigrate/edgemigrate/internal/inference/profile"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/internal/localfleet/fleettest"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// The inference images' binaries, as the real nodes' process table names them.
const (
	classifierCommand = images.Classifier
	profilerCommand   = images.Profiler
)

// minAccuracy is the sanity floor of the classifier's answers on the held-out digits the
// car sends: far below what its README states, far above chance (0.1).
const minAccuracy = 0.8

// digits returns the car's classifier requests, each a held-out MNIST digit, and the
// digit each request number shows.
func (s *scenario) digits() (func(seq int) car.Request, func(seq int) int) {
	s.t.Helper()
	set, err := mnist.TestSplit(s.ctx, ".")
	if err != nil {
		s.t.Fatal(err)
	}
	bodies := make([][]byte, 500)
	for i := range bodies {
		if bodies[i], err = json.Marshal(mnist.NewRequest(set.Images[i])); err != nil {
			s.t.Fatal(err)
		}
	}
	return func(seq int) car.Request {
			return car.Request{Method: http.MethodPost, Path: "/infer", ContentType: "application/json", Body: bodies[seq%len(bodies)]}
		}, func(seq int) int {
			return int(set.Labels[seq%len(bodies)])
		}
}

// checkDigits checks the classifier's answers against the digits sent: each names the pod
// the gateway said answered, and together they reach minAccuracy.
func (s *scenario) checkDigits(results []car.Result, label func(seq int) int) {
	s.t.Helper()
	right, answered := 0, 0
	for _, r := range results {
		if !r.OK() {
			continue
		}
		var a mnist.Answer
		if err := json.Unmarshal(r.Body, &a); err != nil {
			s.t.Errorf("request %d: answer %q: %v", r.Seq, r.Body, err)
			continue
		}
		answered++
		if a.Cluster+"/"+s.ns+"/"+a.Pod != r.Cluster+"/"+r.Pod {
			s.t.Errorf("request %d: the classifier says it ran in %s pod %s; the gateway said %s pod %s", r.Seq, a.Cluster, a.Pod, r.Cluster, r.Pod)
		}
		if a.Digit == label(r.Seq) {
			right++
		}
	}
	if answered == 0 {
		s.t.Fatal("no classifier answer")
	}
	accuracy := float64(right) / float64(answered)
	s.t.Logf("classifier: %d of %d digits right (%.3f)", right, answered, accuracy)
	if accuracy < minAccuracy {
		s.t.Errorf("the classifier got %.3f of the held-out digits right; want at least %.2f", accuracy, minAccuracy)
	}
}

// TestE2ERealNodeMobility: the car drives from edge-a's coverage into edge-b's and back,
// sending a held-out MNIST digit every 75 ms through the gateway of the cluster covering
// it. Its classifier, a real container on edge-a's real node, follows it: at edge-b a
// container is really started (pulled from edge-b's registry), then edge-a's is really
// stopped; back at edge-a the kept Deployment runs again from the image its node holds.
// No request fails, each is answered by a pod that was serving in the cluster whose
// gateway answered, and the digits are right well above chance.
func TestE2ERealNodeMobility(t *testing.T) {
	s := newScenario(t)
	a, b := s.f.Edges[0], s.f.Edges[1]
	const name = "detector"
	newRequest, label := s.digits()
	d := s.startCar(carMobility, a, 75*time.Millisecond, newRequest)
	// What the classifier needs beside itself travels with it: a real kubelet starts no
	// copy without its ConfigMap volume.
	svc := s.service(images.Classifier, name, carMobility)
	s.withBundle(a, svc)
	s.create(a, svc)
	atA := s.runningOnRealNode(a, name, classifierCommand)
	pullsB := b.Cluster.Registry().BlobPulls(images.Classifier)
	d.run()
	d.answeredBy(a.ID, 10)

	trigger := time.Now()
	d.moveTo(b)
	m := s.completed(a, name, trigger)
	if m.Spec.Reason != v1alpha1.ReasonClientMobility || m.Status.Destination != b.ID {
		t.Errorf("migration %s: reason %s destination %s; want ClientMobility to %s", m.Name, m.Spec.Reason, m.Status.Destination, b.ID)
	}
	report(t, m, trigger)
	atB := s.runningOnRealNode(b, name, classifierCommand)
	s.stopped(a, name, classifierCommand, atA)
	if got := b.Cluster.Registry().BlobPulls(images.Classifier); got <= pullsB {
		t.Errorf("%s's registry served %d blobs of %s, %d before the migration: the destination's node pulled nothing", b.ID, got, images.Classifier, pullsB)
	}
	d.answeredBy(b.ID, 10)
	s.hasBundle(b, name, m.Status.LedgerID, bundleConfig)

	// Changed where it runs now, the ConfigMap goes home with the service.
	s.setConfig(b, name, "threshold: 0.9")
	pullsA := a.Cluster.Registry().BlobPulls(images.Classifier)
	trigger = time.Now()
	d.moveTo(a)
	back := s.completed(b, name, trigger)
	if back.Status.Destination != a.ID {
		t.Errorf("return migration went to %s, want %s", back.Status.Destination, a.ID)
	}
	report(t, back, trigger)
	s.runningOnRealNode(a, name, classifierCommand)
	s.stopped(b, name, classifierCommand, atB)
	if dep, err := a.Client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{}); err != nil || ptr.Deref(dep.Spec.Replicas, 0) != 1 {
		t.Errorf("%s's kept Deployment was not scaled back to 1: %v", a.ID, err)
	}
	// The image is still on edge-a's node (a tag other than latest: pulled if not present).
	if got := a.Cluster.Registry().BlobPulls(images.Classifier); got != pullsA {
		t.Errorf("%s's registry served %d blobs of %s, %d before the return: the node's image was not reused", a.ID, got, images.Classifier, pullsA)
	}
	d.answeredBy(a.ID, 10)
	s.hasBundle(a, name, back.Status.LedgerID, "threshold: 0.9")

	results := d.stop()
	by := s.checkServed(results)
	if by[a.ID] == 0 || by[b.ID] == 0 {
		t.Errorf("answers by cluster %v; want edge-a's and edge-b's", by)
	}
	s.checkDigits(results, label)
}

// bundleConfig is the content of the service's ConfigMap.
const bundleConfig = "threshold: 0.75"

// withBundle gives d a ConfigMap volume, a Service selecting its pods and an HPA, at e.
func (s *scenario) withBundle(e *localfleet.Edge, d *appsv1.Deployment) {
	s.t.Helper()
	name := d.Name
	spec := &d.Spec.Template.Spec
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}})
	spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: "/etc/" + name, ReadOnly: true})
	objs := e.Client
	if _, err := objs.CoreV1().ConfigMaps(s.ns).Create(s.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-config", Namespace: s.ns},
		Data: map[string]string{"config.yaml": bundleConfig}}, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	if _, err := objs.CoreV1().Services(s.ns).Create(s.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: corev1.ServiceSpec{Selector: d.Spec.Selector.MatchLabels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	if _, err := objs.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Create(s.ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas: ptr.To[int32](1), MaxReplicas: 1}}, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// hasBundle checks that e holds the service's Service, HPA and ConfigMap (with content),
// the ones created there by migration id labelled with it.
func (s *scenario) hasBundle(e *localfleet.Edge, name, id, content string) {
	s.t.Helper()
	cm, err := e.Client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, name+"-config", metav1.GetOptions{})
	if err != nil || cm.Data["config.yaml"] != content || cm.Labels[api.LabelMigrationID] != id {
		s.t.Errorf("%s: ConfigMap %s-config %v (%v); want %q labelled %s", e.ID, name, cm, err, content, id)
	}
	if svc, err := e.Client.CoreV1().Services(s.ns).Get(s.ctx, name, metav1.GetOptions{}); err != nil || svc.Labels[api.LabelMigrationID] != id {
		s.t.Errorf("%s: Service %s %v (%v); want labelled %s", e.ID, name, svc, err, id)
	}
	if h, err := e.Client.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Get(s.ctx, name, metav1.GetOptions{}); err != nil || h.Labels[api.LabelMigrationID] != id {
		s.t.Errorf("%s: HPA %s %v (%v); want labelled %s", e.ID, name, h, err, id)
	}
}

func (s *scenario) setConfig(e *localfleet.Edge, name, content string) {
	s.t.Helper()
	cm, err := e.Client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, name+"-config", metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	cm.Data["config.yaml"] = content
	if _, err := e.Client.CoreV1().ConfigMaps(s.ns).Update(s.ctx, cm, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// TestE2ERealNodeOffload: a pod holds edge-a's real node's only GPU, so the car's profiler,
// which needs one (nvidia.com/gpu: 1), cannot be scheduled there; after --offload-after it
// runs on edge-b's real node instead. The car, at edge-a, sends its telemetry to edge-a's
// gateway; each request is redirected (307) to edge-b's gateway and answered by edge-b's
// pod, with the profile of the driving style the window was generated for.
func TestE2ERealNodeOffload(t *testing.T) {
	s := newScenario(t)
	a, b := s.f.Edges[0], s.f.Edges[1]
	const name = "profiler"
	gpu := corev1.ResourceList{corev1.ResourceName(api.ResourceGPU): resource.MustParse("1")}

	filler := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-filler", Namespace: s.ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hold", Image: fleettest.Image(t, images.Pause),
			Resources: corev1.ResourceRequirements{Requests: gpu, Limits: gpu}}}},
	}
	filler.Spec.NodeSelector, filler.Spec.Tolerations = localcluster.RealNodePlacement()
	if _, err := a.Client.CoreV1().Pods(s.ns).Create(s.ctx, filler, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the GPU filler running on edge-a's real node", func() (bool, error) {
		p, err := a.Client.CoreV1().Pods(s.ns).Get(s.ctx, filler.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})

	dep := s.service(images.Profiler, name, carOffload)
	res := &dep.Spec.Template.Spec.Containers[0].Resources
	res.Requests, res.Limits = withGPU(res.Requests), withGPU(res.Limits)
	trigger := time.Now()
	s.create(a, dep)
	m := s.completed(a, name, trigger)
	if m.Spec.Reason != v1alpha1.ReasonInsufficientResources || m.Status.Destination != b.ID {
		t.Errorf("migration %s: reason %s destination %s; want InsufficientResources to %s", m.Name, m.Spec.Reason, m.Status.Destination, b.ID)
	}
	report(t, m, trigger)
	s.runningOnRealNode(b, name, profilerCommand)
	if pods := s.pods(a, name); len(pods) != 0 {
		t.Errorf("edge-a still has %d pods of %s", len(pods), name)
	}

	windows := make([][]byte, 30)
	for i := range windows {
		body, err := json.Marshal(profile.Request{Samples: profile.Window(int64(i), profile.Styles[i%len(profile.Styles)])})
		if err != nil {
			t.Fatal(err)
		}
		windows[i] = body
	}
	telemetry := func(seq int) car.Request {
		return car.Request{Method: http.MethodPost, Path: "/infer", ContentType: "application/json", Body: windows[seq%len(windows)]}
	}
	// The car stands at edge-a's site and sends to edge-a's gateway, which sends it on.
	d := s.startCar(carOffload, a, 75*time.Millisecond, telemetry)
	s.offloadedRoute(a, b, carOffload)
	d.run()
	d.answeredBy(b.ID, 2*len(windows))
	results := d.stop()
	if by := s.checkServed(results); by[a.ID] != 0 {
		t.Errorf("%d requests answered by edge-a, which runs no copy", by[a.ID])
	}
	right := 0
	for _, r := range results {
		if !r.OK() {
			continue
		}
		if r.Seq > 0 && (len(r.Via) != 2 || r.Via[0] != a.ID || r.Via[1] != b.ID) {
			t.Errorf("request %d went via %v; want edge-a's gateway, then edge-b's", r.Seq, r.Via)
		}
		var answer profile.Answer
		if err := json.Unmarshal(r.Body, &answer); err != nil {
			t.Errorf("request %d: answer %q: %v", r.Seq, r.Body, err)
			continue
		}
		if answer.Profile == profile.Styles[r.Seq%len(windows)%len(profile.Styles)] {
			right++
		}
	}
	t.Logf("profiler: %d of %d telemetry windows profiled as the style they were generated for", right, len(results))
	// The generator and the rules are the same package's: most windows get their style.
	if right*3 < len(results)*2 {
		t.Errorf("%d of %d telemetry windows were profiled as the style they were generated for; want at least two thirds", right, len(results))
	}
	if p, err := a.Client.CoreV1().Pods(s.ns).Get(s.ctx, filler.Name, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodRunning {
		t.Errorf("the GPU filler at edge-a is no longer running: %v", err)
	}
}

// withGPU adds one nvidia.com/gpu to a resource list.
func withGPU(l corev1.ResourceList) corev1.ResourceList {
	out := l.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	out[corev1.ResourceName(api.ResourceGPU)] = resource.MustParse("1")
	return out
}

// offloadedRoute asks source's gateway for client's service as the car would, without
// following: it must redirect (307) to dest's gateway, the offload's Migration naming the
// service's client.
func (s *scenario) offloadedRoute(source, dest *localfleet.Edge, client string) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, source.LocatorURL+"/v1/clients/"+client+"/service/readyz", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokens[client])
	noFollow := s.f.CarClient(10*time.Second, true)
	resp, err := noFollow.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	switch loc := resp.Header.Get("Location"); {
	case resp.StatusCode == http.StatusTemporaryRedirect && strings.HasPrefix(loc, dest.LocatorURL+"/v1/clients/"+client+"/service/"):
		s.t.Logf("%s's gateway redirects %s's requests to %s", source.ID, client, dest.ID)
	default:
		s.t.Errorf("%s's gateway answered %s's request %s (Location %q); want a 307 to %s's gateway", source.ID, client, resp.Status, loc, dest.ID)
	}
}
