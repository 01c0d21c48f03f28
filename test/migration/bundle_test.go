package migration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
)

// bundleMarker is in the ConfigMap's content: it travels in the bundle, never on the ledger.
const bundleMarker = "e2e-bundle-only-marker"

// TestE2EBundle: on real API servers, a Deployment with a Service, a ConfigMap volume, an
// HPA and a Secret moves whole to the one cluster that has the Secret (the other's bid says
// why), and comes back with the ConfigMap as it was changed there; the ledger holds no
// manifest.
func TestE2EBundle(t *testing.T) {
	s := newScenario(t)
	a, b := s.edge("edge-a"), s.edge("edge-b")
	// The Secret never travels: edge-a and edge-b have it, edge-c does not.
	for _, e := range []string{"edge-a", "edge-b"} {
		if e != "edge-a" {
			if _, err := s.edge(e).Client.CoreV1().Namespaces().Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "svc-key", Namespace: s.ns}, StringData: map[string]string{"key": "k"}}
		if _, err := s.edge(e).Client.CoreV1().Secrets(s.ns).Create(s.ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "svc-config", Namespace: s.ns}, Data: map[string]string{"model.yaml": "threshold: 0.75 # " + bundleMarker}}
	if _, err := a.Client.CoreV1().ConfigMaps(s.ns).Create(s.ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := s.service("svc", "", 1, "1Gi")
	spec := &d.Spec.Template.Spec
	spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "svc-config"}}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/model"}}
	spec.Containers[0].Env = []corev1.EnvVar{{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "svc-key"}, Key: "key"}}}}
	s.create("edge-a", d)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: s.ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "svc"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := a.Client.CoreV1().Services(s.ns).Create(s.ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: s.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "svc"},
			MinReplicas: ptr.To[int32](1), MaxReplicas: 2}}
	if _, err := a.Client.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Create(s.ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.runsOnlyIn("edge-a", "svc", 1)
	original := s.deployment("edge-a", "svc")
	originalCM, err := a.Client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, "svc-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	move := func(from, name string) *v1alpha1.Migration {
		t.Helper()
		m := &v1alpha1.Migration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
			Spec: v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: v1alpha1.KindDeployment, Name: "svc"}, Reason: v1alpha1.ReasonManual}}
		if _, err := s.migs[s.index(from)].Migrations(s.ns).Create(s.ctx, m, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var done *v1alpha1.Migration
		s.waitFor(name+" completed", func() (bool, error) {
			got, err := s.migs[s.index(from)].Migrations(s.ns).Get(s.ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			done = got
			return got.Status.Phase == v1alpha1.PhaseCompleted, nil
		})
		return done
	}
	l, err := s.f.Ledger(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	out := move("edge-a", "move-svc")
	if out.Status.Destination != "edge-b" {
		t.Fatalf("moved to %s, want edge-b, the only other cluster with the Secret", out.Status.Destination)
	}
	s.runsOnlyIn("edge-b", "svc", 1)
	lm, err := l.GetMigration(s.ctx, out.Status.LedgerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, bid := range lm.Bids {
		if bid.ClusterID == "edge-c" && (bid.CanHost || !strings.Contains(bid.Reason, "Secret "+s.ns+"/svc-key does not exist here")) {
			t.Errorf("edge-c's bid %+v; want canHost false naming the missing Secret", bid)
		}
	}
	// kubectl get mig -o yaml tells the same story.
	if i := slices.IndexFunc(out.Status.Bids, func(b v1alpha1.Bid) bool { return b.Cluster == "edge-c" }); i < 0 ||
		out.Status.Bids[i].CanHost || !strings.Contains(out.Status.Bids[i].Reason, "Secret "+s.ns+"/svc-key does not exist here") {
		t.Errorf("the source Migration's bids %+v; want edge-c's with canHost false naming the missing Secret", out.Status.Bids)
	}
	id := out.Status.LedgerID
	gotSvc, err := b.Client.CoreV1().Services(s.ns).Get(s.ctx, "svc", metav1.GetOptions{})
	if err != nil || gotSvc.Labels[api.LabelMigrationID] != id {
		t.Errorf("Service at edge-b: %v, %v; want labelled %s", gotSvc, err, id)
	}
	gotHPA, err := b.Client.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Get(s.ctx, "svc", metav1.GetOptions{})
	if err != nil || gotHPA.Labels[api.LabelMigrationID] != id {
		t.Errorf("HPA at edge-b: %v, %v", gotHPA, err)
	}
	gotCM, err := b.Client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, "svc-config", metav1.GetOptions{})
	if err != nil || gotCM.Data["model.yaml"] != cm.Data["model.yaml"] || gotCM.Labels[api.LabelMigrationID] != id {
		t.Fatalf("ConfigMap at edge-b: %v, %v", gotCM, err)
	}
	if _, err := b.Client.CoreV1().Secrets(s.ns).Get(s.ctx, "svc-key", metav1.GetOptions{}); err != nil {
		t.Errorf("edge-b's own Secret: %v", err)
	}
	s.scaledAway("edge-a", "svc", "edge-b")

	// Changed where it runs now; the next migration takes the change home.
	gotCM.Data["model.yaml"] = "threshold: 0.9"
	if _, err := b.Client.CoreV1().ConfigMaps(s.ns).Update(s.ctx, gotCM, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	home := move("edge-b", "back-svc")
	if home.Status.Destination != "edge-a" {
		t.Fatalf("came back to %s, want edge-a", home.Status.Destination)
	}
	s.runsOnlyIn("edge-a", "svc", 1)
	if d := s.deployment("edge-a", "svc"); d.UID != original.UID {
		t.Errorf("edge-a runs a new Deployment %s, want its own %s scaled back up", d.UID, original.UID)
	}
	backCM, err := a.Client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, "svc-config", metav1.GetOptions{})
	if err != nil || backCM.Data["model.yaml"] != "threshold: 0.9" || backCM.UID != originalCM.UID {
		t.Errorf("edge-a's ConfigMap: %v, %v; want edge-b's change in the same object", backCM, err)
	}

	// The ledger: metadata and digests, no manifest content.
	for _, mid := range []string{out.Status.LedgerID, home.Status.LedgerID} {
		lm, err := l.GetMigration(s.ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(lm)
		for _, leak := range []string{bundleMarker, "threshold", "/etc/model", "targetPort", "volumeMounts"} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("ledger migration %s holds %q: %s", mid, leak, raw)
			}
		}
		if !strings.HasPrefix(lm.BundleDigest, "sha256:") || lm.Metadata.Requires.Secrets[0] != "svc-key" {
			t.Errorf("ledger migration %s: digest %q requires %+v", mid, lm.BundleDigest, lm.Metadata.Requires)
		}
	}
}

// TestE2EMaliciousPeer: a test holding edge-a's own ledger identity proposes what a
// malicious source would, and serves the bundle it likes from edge-a's public endpoint.
// Each time the other clusters create nothing, say why (in the bid, or in the failure
// they report), and their own Deployments of the same name stay as they were.
func TestE2EMaliciousPeer(t *testing.T) {
	s := newScenario(t)
	a := s.edge("edge-a")
	own := s.service("web", "", 1, "1Gi")
	for _, e := range []string{"edge-b", "edge-c"} {
		if _, err := s.edge(e).Client.CoreV1().Namespaces().Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		s.create(e, own.DeepCopy())
	}
	attacker, err := s.f.LedgerAs(s.ctx, a.Identity)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()

	for i, tc := range []struct {
		name     string
		workload string
		mutate   func(*appsv1.Deployment, *chaincode.WorkloadMetadata, *string)
		why      string // in a bid's reason or a destination's failure
	}{
		{"name clash with an existing Deployment", "web", nil, "a Deployment " + s.ns + "/web that edgemigrate did not create exists here"},
		{"digest does not match", "evil", func(_ *appsv1.Deployment, _ *chaincode.WorkloadMetadata, digest *string) {
			*digest = "sha256:" + strings.Repeat("0", 64)
		}, "is not the sha256:" + strings.Repeat("0", 64)},
		{"demand beyond declared", "evil", func(_ *appsv1.Deployment, m *chaincode.WorkloadMetadata, _ *string) { m.CPUMilli, m.MemoryBytes = 1, 1 },
			"more than the declared cpu=1m"},
		{"more replicas than declared", "evil", func(d *appsv1.Deployment, _ *chaincode.WorkloadMetadata, _ *string) {
			d.Spec.Replicas = ptr.To[int32](20)
		},
			"asks for 20 replicas, the proposal declared 1"},
		{"privileged", "evil", func(d *appsv1.Deployment, _ *chaincode.WorkloadMetadata, _ *string) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
		}, "privileged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("edge-a-%012d", 900+i)
			d := s.service(tc.workload, "", 1, "1Gi")
			d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
			pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
			demand, err := jetson.PodDemand(pod)
			if err != nil {
				t.Fatal(err)
			}
			meta := chaincode.WorkloadMetadata{Image: pod.Spec.Containers[0].Image, Images: []chaincode.Image{{Name: pod.Spec.Containers[0].Image}},
				CPUMilli: demand.CPUMilli, MemoryBytes: demand.Memory, GPUSlots: demand.GPUSlots, GPUMemoryBytes: demand.GPUMemory, Replicas: 1,
				Origin: "edge-a/" + s.ns + "/uid-" + tc.workload}
			var digest string
			if tc.mutate != nil {
				tc.mutate(d, &meta, &digest)
			}
			data, err := json.Marshal(map[string]any{"version": "v1", "origin": meta.Origin, "workload": map[string]any{"kind": "Deployment", "deployment": d}})
			if err != nil {
				t.Fatal(err)
			}
			if digest == "" {
				sum := sha256.Sum256(data)
				digest = "sha256:" + hex.EncodeToString(sum[:])
			}
			// Served by edge-a's descheduler, as it serves the bundles it stored.
			stored := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "edgemigrate-bundle-" + id, Namespace: api.SystemNamespace},
				BinaryData: map[string][]byte{"bundle.json": data}}
			if _, err := a.Client.CoreV1().ConfigMaps(api.SystemNamespace).Create(s.ctx, stored, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := attacker.ProposeMigration(s.ctx, chaincode.Proposal{ID: id, Source: "edge-a", Workload: "Deployment/" + s.ns + "/" + tc.workload,
				Metadata: meta, BundleDigest: digest, Reason: chaincode.ReasonManual, BidTimeoutMillis: 60_000}); err != nil {
				t.Fatal(err)
			}
			var lm *chaincode.Migration
			s.waitFor(id+" final", func() (bool, error) {
				if _, err := attacker.Decide(s.ctx, id); err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict && chaincode.CodeOf(err) != chaincode.CodeNotYet {
					return false, err
				}
				lm, err = attacker.GetMigration(s.ctx, id)
				return err == nil && lm.Final(), err
			})
			said := lm.StateReason
			for _, bid := range lm.Bids {
				said += "\n" + bid.ClusterID + " bid: " + bid.Reason
			}
			for _, h := range lm.History {
				said += "\n" + h.Event + ": " + h.Note
			}
			if lm.State != chaincode.StateRejected || !strings.Contains(said, tc.why) {
				t.Errorf("%s: %s; want Rejected, and a reason saying %q:%s", id, lm.State, tc.why, said)
			}
			for _, e := range []string{"edge-b", "edge-c"} {
				deps, err := s.edge(e).Client.AppsV1().Deployments(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: api.LabelMigrationID + "=" + id})
				if err == nil && len(deps.Items) > 0 {
					t.Errorf("%s created %d Deployments for %s", e, len(deps.Items), id)
				}
			}
			for _, e := range []string{"edge-b", "edge-c"} {
				got := s.deployment(e, "web")
				if got.Annotations[api.AnnotationMigrationID] != "" || ptr.Deref(got.Spec.Replicas, 0) != 1 || got.Spec.Template.Spec.Containers[0].Image != own.Spec.Template.Spec.Containers[0].Image {
					t.Errorf("%s's own Deployment changed: %+v", e, got)
				}
			}
		})
	}
}
