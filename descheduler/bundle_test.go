package descheduler

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// configValue is the ConfigMap's content: it travels in the bundle, never on the ledger.
const configValue = "threshold: 0.75 # bundle-only-marker"

// service is a Deployment with what it needs to serve: a Service selecting its pods, a
// ConfigMap mounted as a volume, an autoscaler and a disruption budget.
func service(name string) []runtime.Object {
	d := deployment(name, 1, "2Gi")
	d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}}}
	d.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/model"}}
	labels := d.Spec.Template.Labels
	return []runtime.Object{d,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-config", Namespace: testNamespace, UID: "uid-cm"}, Data: map[string]string{"model.yaml": configValue}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: "uid-svc"},
			Spec: corev1.ServiceSpec{Selector: labels, ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
		// Selects other pods: stays.
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: testNamespace}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "other"}}},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				MinReplicas: ptr.To[int32](1), MaxReplicas: 3}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}}},
	}
}

func migrationOf(name string, uid types.UID) *v1alpha1.Migration {
	m := manual(v1alpha1.KindDeployment, "svc")
	m.Name, m.UID = name, uid
	return m
}

// TestServiceTravels: a Deployment with a Service, a ConfigMap volume, an HPA and a PDB moves
// whole, labelled with the migration, and comes back; the ConfigMap changed where the service
// ran travels with the next migration; nothing of the manifests reaches the ledger.
func TestServiceTravels(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, append(service("svc"), migrationOf("move-svc", "11111111-1111-1111-1111-111111111111"))...)
	b := w.addCluster("edge-b", nil)
	w.until("the service runs in edge-b", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
	id := a.only(v1alpha1.RoleSource).Status.LedgerID
	ctx := w.ctx

	// Everything arrived, labelled, the Deployment carrying the origin.
	svc, err := b.kube.CoreV1().Services(testNamespace).Get(ctx, "svc", metav1.GetOptions{})
	if err != nil || svc.Labels[api.LabelMigrationID] != id || svc.Spec.ClusterIP != "" {
		t.Fatalf("Service at edge-b: %+v, %v; want labelled %s, no cluster IP of edge-a", svc, err, id)
	}
	if _, err := b.kube.CoreV1().Services(testNamespace).Get(ctx, "other", metav1.GetOptions{}); err == nil {
		t.Error("a Service selecting other pods travelled")
	}
	cm, err := b.kube.CoreV1().ConfigMaps(testNamespace).Get(ctx, "svc-config", metav1.GetOptions{})
	if err != nil || cm.Data["model.yaml"] != configValue || cm.Labels[api.LabelMigrationID] != id {
		t.Fatalf("ConfigMap at edge-b: %+v, %v", cm, err)
	}
	if h, err := b.kube.AutoscalingV2().HorizontalPodAutoscalers(testNamespace).Get(ctx, "svc", metav1.GetOptions{}); err != nil || h.Labels[api.LabelMigrationID] != id {
		t.Errorf("HPA at edge-b: %v, %v", h, err)
	}
	if p, err := b.kube.PolicyV1().PodDisruptionBudgets(testNamespace).Get(ctx, "svc", metav1.GetOptions{}); err != nil || p.Labels[api.LabelMigrationID] != id {
		t.Errorf("PDB at edge-b: %v, %v", p, err)
	}
	const origin = "edge-a/" + testNamespace + "/uid-svc"
	dep, err := b.kube.AppsV1().Deployments(testNamespace).Get(ctx, "svc", metav1.GetOptions{})
	if err != nil || dep.Annotations[api.AnnotationOrigin] != origin || dep.Labels[api.LabelMigrationID] != id {
		t.Fatalf("Deployment at edge-b: %+v, %v; want origin %s", dep, err, origin)
	}
	parked, _ := a.kube.AppsV1().Deployments(testNamespace).Get(ctx, "svc", metav1.GetOptions{})
	if parked.Annotations[api.AnnotationOrigin] != origin || ptr.Deref(parked.Spec.Replicas, 1) != 0 {
		t.Errorf("the parked source: replicas %d, origin %q", ptr.Deref(parked.Spec.Replicas, 1), parked.Annotations[api.AnnotationOrigin])
	}
	if _, err := a.kube.CoreV1().ConfigMaps(a.cfg.Namespace).Get(ctx, bundleConfigMapName(id), metav1.GetOptions{}); err == nil {
		t.Error("the source kept the stored bundle of a completed migration")
	}

	// The ConfigMap changes where the service runs now, and the service comes back.
	cm.Data["model.yaml"] = "threshold: 0.9"
	if _, err := b.kube.CoreV1().ConfigMaps(testNamespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	back := migrationOf("back-svc", "22222222-2222-2222-2222-222222222222")
	if _, err := b.migs.EdgemigrateV1alpha1().Migrations(testNamespace).Create(ctx, back, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until("the service is back in edge-a", func() bool {
		for _, m := range b.migrations(v1alpha1.RoleSource) {
			if m.Name == "back-svc" {
				return m.Status.Phase == v1alpha1.PhaseCompleted
			}
		}
		return false
	})
	home, _ := a.kube.AppsV1().Deployments(testNamespace).Get(ctx, "svc", metav1.GetOptions{})
	if ptr.Deref(home.Spec.Replicas, 1) != 1 || home.UID != "uid-svc" {
		t.Errorf("edge-a's own Deployment: replicas %d uid %s; want scaled back up, the same object", ptr.Deref(home.Spec.Replicas, 1), home.UID)
	}
	cmHome, _ := a.kube.CoreV1().ConfigMaps(testNamespace).Get(ctx, "svc-config", metav1.GetOptions{})
	if cmHome.Data["model.yaml"] != "threshold: 0.9" || cmHome.UID != "uid-cm" {
		t.Errorf("edge-a's ConfigMap: %q (uid %s); want the content changed in edge-b, the same object", cmHome.Data["model.yaml"], cmHome.UID)
	}

	// The ledger holds metadata and digests: no manifest, no ConfigMap content.
	raw, err := os.ReadFile(w.ledgerFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"bundle-only-marker", "threshold", "model.yaml", "/etc/model", "targetPort", "minAvailable", "\"spec\""} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("the ledger's database holds %q", leak)
		}
	}
	lm := w.ledgerMigration(id)
	if !strings.HasPrefix(lm.BundleDigest, "sha256:") || len(lm.BundleDigest) != len("sha256:")+64 || lm.Metadata.Origin != origin || lm.Metadata.Replicas != 1 {
		t.Errorf("ledger record: digest %q origin %q replicas %d", lm.BundleDigest, lm.Metadata.Origin, lm.Metadata.Replicas)
	}
}

// TestMissingSecret: Secrets never travel; a cluster without the Secret the workload reads
// says so in its bid, and the one that has it wins; with no such cluster the service stays.
func TestMissingSecret(t *testing.T) {
	withSecret := func() []runtime.Object {
		d := deployment("svc", 1, "2Gi")
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "KEY", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "model-key"}, Key: "key"}}}}
		return []runtime.Object{d, manual(v1alpha1.KindDeployment, "svc")}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "model-key", Namespace: testNamespace}, Data: map[string][]byte{"key": []byte("s3cr3t")}}
	const why = "Secret apps/model-key does not exist here"

	t.Run("another cluster has it", func(t *testing.T) {
		w := newWorld(t)
		a := w.addCluster("edge-a", nil, withSecret()...)
		w.addCluster("edge-b", nil)
		w.addCluster("edge-c", nil, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, secret)
		w.until("completed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted })
		src := a.only(v1alpha1.RoleSource)
		lm := w.ledgerMigration(src.Status.LedgerID)
		if src.Status.Destination != "edge-c" {
			t.Errorf("destination %s, want edge-c, the cluster with the Secret", src.Status.Destination)
		}
		if got := bidOf(lm, "edge-b"); got == nil || got.CanHost || !strings.Contains(got.Reason, why) {
			t.Errorf("edge-b's bid %+v; want canHost false saying %q", got, why)
		}
		if lm.Metadata.Requires.Secrets[0] != "model-key" || bytes.Contains(mustJSON(t, lm), []byte("s3cr3t")) {
			t.Errorf("requirements %+v", lm.Metadata.Requires)
		}
	})
	t.Run("nobody has it", func(t *testing.T) {
		w := newWorld(t)
		a := w.addCluster("edge-a", nil, withSecret()...)
		w.addCluster("edge-b", nil)
		w.until("failed", func() bool { return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseFailed })
		if a.copies(v1alpha1.KindDeployment, "svc") != 1 {
			t.Error("the service did not stay where it was")
		}
		if got := bidOf(w.ledgerMigration(a.only(v1alpha1.RoleSource).Status.LedgerID), "edge-b"); got == nil || !strings.Contains(got.Reason, why) {
			t.Errorf("edge-b's bid %+v; want it to say %q", got, why)
		}
	})
}

func bidOf(lm *chaincode.Migration, cluster string) *chaincode.Bid {
	for i := range lm.Bids {
		if lm.Bids[i].ClusterID == cluster {
			return &lm.Bids[i]
		}
	}
	return nil
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attack is what a malicious source (a test holding edge-a's own ledger identity) proposes:
// metadata on the ledger, and the bytes it serves as the bundle.
type attack struct {
	name string
	// bundle and meta derive the served bundle and the proposal's metadata from honest ones.
	bundle func(*serviceBundle)
	raw    func(string) string
	meta   func(*chaincode.WorkloadMetadata)
	// digestOf, when set, are other bytes whose digest the proposal carries.
	digestOf []byte
	// bidWhy is edge-b's bid's reason; failWhy the reason it gives the migration back with.
	bidWhy, failWhy string
}

// TestMaliciousPeer: whatever a peer declares or serves, the destination creates nothing
// it did not bid for, says why, and leaves its own workloads alone.
func TestMaliciousPeer(t *testing.T) {
	attacks := []attack{
		{name: "name clash with an existing Deployment", bundle: func(b *serviceBundle) { b.Workload.Deployment.Name = "web" },
			bidWhy: "a Deployment apps/web that edgemigrate did not create exists here"},
		{name: "digest does not match", digestOf: []byte(`{"version":"v1"}`), failWhy: "is not the sha256:"},
		{name: "2^31 replicas in the bundle", raw: func(s string) string { return strings.Replace(s, `"replicas":1`, `"replicas":2147483648`, 1) },
			failWhy: "cannot unmarshal number 2147483648"},
		{name: "2^31-1 replicas declared", meta: func(m *chaincode.WorkloadMetadata) { m.Replicas = math.MaxInt32 },
			bidWhy: "2147483647 more replicas"},
		{name: "more replicas than declared", bundle: func(b *serviceBundle) { b.Workload.Deployment.Spec.Replicas = ptr.To[int32](20) },
			failWhy: "asks for 20 replicas, the proposal declared 1"},
		{name: "demand beyond declared", meta: func(m *chaincode.WorkloadMetadata) { m.CPUMilli, m.MemoryBytes = 1, 1 },
			failWhy: "more than the declared cpu=1m"},
		{name: "a ConfigMap of the same name that is not the service's", bundle: func(b *serviceBundle) {
			b.ConfigMaps = []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: testNamespace}, Data: map[string]string{"k": "evil"}}}
		}, failWhy: "ConfigMap apps/settings already exists here and is not this service's"},
		{name: "pods that would join another workload's Service", bundle: func(b *serviceBundle) {
			b.Workload.Deployment.Spec.Template.Labels = map[string]string{"app": "web"}
			b.Workload.Deployment.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}, failWhy: "would join Service apps/web of another workload"},
		{name: "an image not declared", bundle: func(b *serviceBundle) {
			b.Workload.Deployment.Spec.Template.Spec.Containers[0].Image = "evil.example/miner:1"
		},
			failWhy: "runs image evil.example/miner:1, which the proposal did not declare"},
		{name: "a Secret not declared", bundle: func(b *serviceBundle) {
			b.Workload.Deployment.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "admin-token"}}}}
		}, failWhy: "needs Secret admin-token, which the proposal did not declare"},
	}
	for i, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			w := newWorld(t)
			web := deployment("web", 2, "1Gi")
			a := w.addCluster("edge-a", nil)
			settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: testNamespace}, Data: map[string]string{"k": "mine"}}
			webService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: testNamespace}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
			b := w.addCluster("edge-b", nil, web, settings, webService)
			id := fmt.Sprintf("edge-a-%012d", i)
			honest := &serviceBundle{Version: bundleVersion, Origin: "edge-a/apps/uid-evil", Workload: workloadManifest{Kind: v1alpha1.KindDeployment, Deployment: &appsv1.Deployment{
				TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: "evil", Namespace: testNamespace},
				Spec: *deployment("evil", 1, "1Gi").Spec.DeepCopy()}}}
			meta := metadataOf(t, honest)
			if at.bundle != nil {
				at.bundle(honest)
			}
			data, err := json.Marshal(honest)
			if err != nil {
				t.Fatal(err)
			}
			if at.raw != nil {
				data = []byte(at.raw(string(data)))
			}
			if at.meta != nil {
				at.meta(&meta)
			}
			digest := digestOf(data)
			if at.digestOf != nil {
				digest = digestOf(at.digestOf)
			}
			if _, err := a.c.storeBundle(w.ctx, id, data); err != nil {
				t.Fatal(err)
			}
			name := "evil"
			if honest.Workload.Deployment != nil {
				name = honest.Workload.Deployment.Name
			}
			_, err = a.ledger.ProposeMigration(w.ctx, chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/apps/" + name, Metadata: meta,
				BundleDigest: digest, Reason: chaincode.ReasonManual, BidTimeoutMillis: 60_000})
			if err != nil {
				t.Fatal(err)
			}
			w.until("a decision", func() bool {
				if _, err := a.ledger.Decide(w.ctx, id); err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
					return false
				}
				return w.ledgerMigration(id).Final()
			})
			lm := w.ledgerMigration(id)
			bid := bidOf(lm, "edge-b")
			switch {
			case at.bidWhy != "":
				if bid == nil || bid.CanHost || !strings.Contains(bid.Reason, at.bidWhy) {
					t.Errorf("edge-b's bid %+v; want canHost false saying %q", bid, at.bidWhy)
				}
			default:
				dst := b.only(v1alpha1.RoleDestination)
				if dst.Status.Phase != v1alpha1.PhaseFailed || !strings.Contains(dst.Status.Message, at.failWhy) {
					t.Errorf("edge-b's Migration %s: %s; want Failed saying %q", dst.Status.Phase, dst.Status.Message, at.failWhy)
				}
				if lm.State != chaincode.StateRejected || len(lm.Excluded) != 1 {
					t.Errorf("ledger: %s, excluded %v; want Rejected with edge-b excluded", lm.State, lm.Excluded)
				}
			}
			// Nothing created; edge-b's own Deployment untouched.
			if list, _ := b.kube.AppsV1().Deployments("").List(w.ctx, metav1.ListOptions{}); len(list.Items) != 1 {
				t.Errorf("edge-b has %d Deployments, want only its own", len(list.Items))
			}
			if cm, _ := b.kube.CoreV1().ConfigMaps(testNamespace).Get(w.ctx, "settings", metav1.GetOptions{}); cm.Data["k"] != "mine" {
				t.Errorf("edge-b's own ConfigMap changed: %v", cm.Data)
			}
			have, err := b.kube.AppsV1().Deployments(testNamespace).Get(w.ctx, "web", metav1.GetOptions{})
			if err != nil || ptr.Deref(have.Spec.Replicas, 0) != 2 || len(have.Annotations) != 0 || have.Spec.Template.Spec.Containers[0].Image != web.Spec.Template.Spec.Containers[0].Image {
				t.Errorf("edge-b's own Deployment changed: %+v, %v", have, err)
			}
		})
	}
}

// metadataOf is the metadata an honest source declares for a bundle.
func metadataOf(t *testing.T, b *serviceBundle) chaincode.WorkloadMetadata {
	t.Helper()
	d, replicas, err := demandOf(b)
	if err != nil {
		t.Fatal(err)
	}
	pod := b.Workload.template()
	m := chaincode.WorkloadMetadata{Image: pod.Spec.Containers[0].Image, CPUMilli: d.CPUMilli, MemoryBytes: d.Memory, GPUSlots: d.GPUSlots,
		GPUMemoryBytes: d.GPUMemory, Replicas: replicas, Requires: requirementsOf(&pod.Spec), Origin: b.Origin}
	for _, im := range imagesOf(&pod.Spec) {
		m.Images = append(m.Images, chaincode.Image{Name: im})
	}
	return m
}

// TestBundleOnlyToChosenDestination: over mutual TLS, the source serves a bundle to the
// cluster the ledger chose, under the MSP it registered with, and to no one else.
func TestBundleOnlyToChosenDestination(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
	w.addCluster("edge-b", nil)
	w.addCluster("edge-c", nil)

	ca, err := mtls.NewCA("operators")
	if err != nil {
		t.Fatal(err)
	}
	identity := func(cluster, msp string) *mtls.Identity {
		id, err := ca.NewIdentity(t.TempDir(), cluster, msp, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a.c.identity = identity("edge-a", "MSP-edge-a")
	srv := httptest.NewUnstartedServer(bundleServer(func() *Controller { return a.c }))
	srv.TLS = a.c.identity.ServerConfig(tls.VerifyClientCertIfGiven)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// edge-b cannot fetch over the plain harness endpoint now: the migration stays Decided.
	w.until("decided", func() bool {
		src := a.only(v1alpha1.RoleSource)
		return src.Status.LedgerID != "" && w.ledgerMigration(src.Status.LedgerID).State == chaincode.StateDecided
	})
	id := a.only(v1alpha1.RoleSource).Status.LedgerID
	lm := w.ledgerMigration(id)
	if lm.Decision.Destination != "edge-b" {
		t.Fatalf("decided for %s, want edge-b", lm.Decision.Destination)
	}
	path := srv.URL + strings.Replace(api.BundlePath, "{id}", id, 1)
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		status int
		why    string
	}{
		{"no client certificate", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.c.identity.ClientConfig().RootCAs}}}, path,
			http.StatusForbidden, "only over mutual TLS"},
		{"a cluster not chosen", identity("edge-c", "MSP-edge-c").HTTPClient(5 * time.Second), path,
			http.StatusForbidden, "cluster edge-c is not the destination the ledger chose"},
		{"the chosen cluster's name under another MSP", identity("edge-b", "MSP-edge-c").HTTPClient(5 * time.Second), path,
			http.StatusForbidden, "organization MSP-edge-c is not the MSP MSP-edge-b"},
		{"an unknown migration", identity("edge-b", "MSP-edge-b").HTTPClient(5 * time.Second), srv.URL + strings.Replace(api.BundlePath, "{id}", "edge-a-000000000000", 1),
			http.StatusNotFound, "no migration"},
		{"the chosen destination", identity("edge-b", "MSP-edge-b").HTTPClient(5 * time.Second), path, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.why) {
				t.Fatalf("%d %q; want %d saying %q", resp.StatusCode, body, tc.status, tc.why)
			}
			if tc.status == http.StatusOK && digestOf(body) != lm.BundleDigest {
				t.Errorf("served bytes of digest %s, the ledger has %s", digestOf(body), lm.BundleDigest)
			}
		})
	}
}

// TestImageLocality: a node holding the service's images raises the score, weighted by size.
func TestImageLocality(t *testing.T) {
	node := func(images ...string) *corev1.Node {
		n := jetsonNode("n")
		for _, im := range images {
			n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{im}, SizeBytes: 1})
		}
		return n
	}
	sized := chaincode.WorkloadMetadata{Images: []chaincode.Image{{Name: "registry.example/model:1", SizeBytes: 900}, {Name: "registry.example/init:1", SizeBytes: 100}}}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		meta  chaincode.WorkloadMetadata
		want  float64
	}{
		{"cold", []*corev1.Node{node()}, sized, 0},
		{"the large image warm", []*corev1.Node{node("registry.example/model:1")}, sized, 0.9},
		{"the best node counts", []*corev1.Node{node("registry.example/init:1"), node("registry.example/model:1", "registry.example/init:1")}, sized, 1},
		{"sizes unknown: by count", []*corev1.Node{node("registry.example/init:1")},
			chaincode.WorkloadMetadata{Images: []chaincode.Image{{Name: "registry.example/model:1"}, {Name: "registry.example/init:1", SizeBytes: 100}}}, 0.5},
		{"short names", []*corev1.Node{node("docker.io/library/nginx:latest")}, chaincode.WorkloadMetadata{Image: "nginx"}, 1},
		{"no images", []*corev1.Node{node("nginx")}, chaincode.WorkloadMetadata{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := imageLocality(tc.nodes, tc.meta); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("locality %v, want %v", got, tc.want)
			}
		})
	}

	// In a bid: the warm cluster scores higher, never above 100.
	w := newWorld(t)
	cold := w.addCluster("edge-b", nil)
	warmNode := jetsonNode("edge-c-xavier-0")
	warmNode.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/model:1"}, SizeBytes: 1 << 30}}
	warm := w.addCluster("edge-c", nil, warmNode)
	lm := &chaincode.Migration{ID: "edge-a-000000000001", Source: "edge-a", Workload: "Deployment/apps/svc",
		Metadata: chaincode.WorkloadMetadata{Image: "registry.example/model:1", Images: []chaincode.Image{{Name: "registry.example/model:1", SizeBytes: 1 << 30}},
			CPUMilli: 500, MemoryBytes: 1 << 30, Replicas: 1}}
	d := jetson.Demand{CPUMilli: lm.Metadata.CPUMilli, Memory: lm.Metadata.MemoryBytes}
	evCold, evWarm := cold.c.evaluateProposal(w.ctx, lm, d, 1), warm.c.evaluateProposal(w.ctx, lm, d, 1)
	if !evCold.canHost || !evWarm.canHost || evWarm.score != min(100, evCold.score+localityPoints) {
		t.Errorf("cold %+v, warm %+v; want the warm one %d points higher", evCold, evWarm, localityPoints)
	}
}

// TestStoredBundle: the digest on the ledger covers the bytes stored when the proposal was
// first built: a crash, and a ConfigMap changed since, do not change what is served.
func TestStoredBundle(t *testing.T) {
	w := newWorld(t)
	a := w.addCluster("edge-a", nil, service("svc")...)
	m := migrationOf("move-svc", "33333333-3333-3333-3333-333333333333")
	const id = "edge-a-333333333333"
	first, _, err := a.c.proposal(w.ctx, m, id)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := a.kube.CoreV1().ConfigMaps(testNamespace).Get(w.ctx, "svc-config", metav1.GetOptions{})
	cm.Data["model.yaml"] = "changed"
	if _, err := a.kube.CoreV1().ConfigMaps(testNamespace).Update(w.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.restart()
	again, _, err := a.c.proposal(w.ctx, m, id)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := a.c.storedBundle(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if again.BundleDigest != first.BundleDigest || digestOf(stored) != first.BundleDigest || !bytes.Contains(stored, []byte("bundle-only-marker")) {
		t.Errorf("digest %s then %s (stored %s); want the first bundle's", first.BundleDigest, again.BundleDigest, digestOf(stored))
	}
	if first.Metadata.Origin != "edge-a/apps/uid-svc" || first.Metadata.Replicas != 1 || len(first.Metadata.Images) != 1 {
		t.Errorf("metadata %+v", first.Metadata)
	}
	// A new migration takes the ConfigMap as it is now.
	next, _, err := a.c.proposal(w.ctx, m, "edge-a-444444444444")
	if err != nil {
		t.Fatal(err)
	}
	if next.BundleDigest == first.BundleDigest {
		t.Error("the next migration's bundle has the old ConfigMap")
	}
	// Oversized ConfigMaps are refused with what is large.
	cm.Data["model.yaml"] = strings.Repeat("x", maxBundleBytes)
	if _, err := a.kube.CoreV1().ConfigMaps(testNamespace).Update(w.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle()
	if _, _, err := a.c.proposal(w.ctx, m, "edge-a-555555555555"); err == nil || !strings.Contains(err.Error(), "ConfigMap svc-config: 512Ki") {
		t.Errorf("an oversized bundle: %v", err)
	}
}

// TestRequirements: every place a pod spec names a Secret or a ConfigMap is found; a
// Secret is required unless every reference to it is optional.
func TestRequirements(t *testing.T) {
	opt := ptr.To(true)
	spec := &corev1.PodSpec{
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pull"}},
		ServiceAccountName: "reader", PriorityClassName: "high", RuntimeClassName: ptr.To("nvidia"),
		Volumes: []corev1.Volume{
			{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol"}}},
			{Name: "o", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "maybe", Optional: opt}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-vol"}}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-proj"}, Optional: opt}}}}}},
			{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi"}}}},
		},
		InitContainers: []corev1.Container{{Name: "i", Image: "init:1", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom"}}}}}},
		Containers: []corev1.Container{{Name: "m", Image: "model:1",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-envfrom"}}}},
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}, Key: "k"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "maybe"}, Key: "k", Optional: opt}}},
				{Name: "C", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-env"}, Key: "k"}}},
			}}},
	}
	req := requirementsOf(spec)
	want := chaincode.Requirements{Secrets: []string{"csi", "env", "envfrom", "proj", "pull", "vol"}, ServiceAccount: "reader", PriorityClass: "high", RuntimeClass: "nvidia"}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("requirements %+v, want %+v", req, want)
	}
	cms := podReferences(spec).configMaps
	if !reflect.DeepEqual(cms, map[string]bool{"cm-vol": false, "cm-proj": true, "cm-envfrom": false, "cm-env": false}) {
		t.Errorf("ConfigMaps %v", cms)
	}
	if got := imagesOf(spec); !reflect.DeepEqual(got, []string{"init:1", "model:1"}) {
		t.Errorf("images %v", got)
	}
	spec.ServiceAccountName = "default"
	if requirementsOf(spec).ServiceAccount != "" {
		t.Error("the default ServiceAccount is required")
	}
}
