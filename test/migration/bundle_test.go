package migration

import (
	"encoding/json"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
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
