package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/inference"
)

// compliant is a restricted-level pod spec the default policy hosts.
func compliant() *corev1.PodSpec {
	spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "registry.example.com/edge/detector:1.0"}}}
	inference.Restrict(spec)
	return spec
}

func TestHostNamespace(t *testing.T) {
	prefix := &Config{Namespaces: Namespaces{Mapping: MappingSourcePrefix, Allow: []string{"cars", "edge-*"}}}
	for _, tc := range []struct {
		name          string
		c             *Config
		source, ns    string
		want, wantErr string
	}{
		{"default hosts under the same name", Default(), "edge-a", "cars", "cars", ""},
		{"kube-system never", Default(), "edge-a", "kube-system", "", "system namespace"},
		{"any kube- namespace never", Default(), "edge-a", "kube-anything", "", "system namespace"},
		{"edgemigrate's namespace never", Default(), "edge-a", "edgemigrate-system", "", "system namespace"},
		{"the descheduler's own namespace never", &Config{Namespaces: Namespaces{Allow: []string{"*"}}, OwnNamespace: "ops"}, "edge-a", "ops", "", "system namespace"},
		{"not a namespace name", Default(), "edge-a", "../x", "", "not a valid namespace name"},
		{"zero value hosts nothing", &Config{}, "edge-a", "cars", "", "not among the namespaces this cluster hosts peers' services in (none)"},
		{"glob", prefix, "edge-a", "edge-7", "edge-a-edge-7", ""},
		{"not allowed", prefix, "edge-a", "trucks", "", "(cars, edge-*)"},
		{"per-source prefix", prefix, "edge-b", "cars", "edge-b-cars", ""},
		{"prefix too long", prefix, strings.Repeat("a", 40), "edge-" + strings.Repeat("b", 20), "", "longer than 63"},
		{"prefix making a system namespace", &Config{Namespaces: Namespaces{Mapping: MappingSourcePrefix, Allow: []string{"*"}}}, "kube", "system", "", "system namespace kube-system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.HostNamespace(tc.source, tc.ns)
			checkErr(t, err, tc.wantErr)
			if got != tc.want {
				t.Errorf("HostNamespace(%s, %s) = %q, want %q", tc.source, tc.ns, got, tc.want)
			}
		})
	}
}

func TestCheckPodSpec(t *testing.T) {
	registries := &Config{Images: Images{Registries: []string{"registry.example.com", "docker.io/library/"}, RequireDigest: true}, ServiceAccounts: []string{"reader"}}
	tokens := &Config{AllowServiceAccountToken: true}
	for _, tc := range []struct {
		name    string
		c       *Config
		mutate  func(*corev1.PodSpec)
		ns      string
		wantErr []string
	}{
		{name: "compliant", c: Default(), mutate: func(*corev1.PodSpec) {}},
		{name: "privileged", c: Default(), mutate: func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Privileged = ptr.To(true) },
			wantErr: []string{"forbids privileged (container \"model\" must not set securityContext.privileged=true)"}},
		{name: "host namespaces", c: Default(), mutate: func(s *corev1.PodSpec) { s.HostPID, s.HostNetwork = true, true },
			wantErr: []string{"forbids host namespaces (hostNetwork=true, hostPID=true)"}},
		{name: "hostPath", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, wantErr: []string{`forbids restricted volume types (volume "root" uses restricted volume type "hostPath")`}},
		{name: "host port", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, wantErr: []string{"forbids hostPort"}},
		{name: "added capability", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		}, wantErr: []string{"SYS_ADMIN"}},
		{name: "NET_BIND_SERVICE may be added", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
		}},
		{name: "root", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot, s.SecurityContext.RunAsUser = nil, ptr.To[int64](0)
		},
			wantErr: []string{"runAsNonRoot != true", "runAsUser=0"}},
		{name: "no seccomp", c: Default(), mutate: func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil }, wantErr: []string{"seccompProfile"}},
		{name: "privilege escalation", c: Default(), mutate: func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil },
			wantErr: []string{"allowPrivilegeEscalation != false"}},
		{name: "capabilities not dropped", c: Default(), mutate: func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil },
			wantErr: []string{"unrestricted capabilities"}},
		{name: "nodeName", c: Default(), mutate: func(s *corev1.PodSpec) { s.NodeName = "control-plane" }, wantErr: []string{"names node control-plane"}},
		{name: "foreign service account", c: Default(), mutate: func(s *corev1.PodSpec) { s.ServiceAccountName = "cluster-admin" },
			wantErr: []string{"service account cluster-admin is not one hosted services may run as here (default)"}},
		{name: "listed service account", c: registries, mutate: func(s *corev1.PodSpec) {
			s.ServiceAccountName = "reader"
			s.Containers[0].Image = "registry.example.com/edge/detector@sha256:" + strings.Repeat("a", 64)
		}},
		{name: "token automount", c: Default(), mutate: func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil },
			wantErr: []string{"automountServiceAccountToken: false"}},
		{name: "projected token", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}}}}}}}
		}, wantErr: []string{"volume tok projects a service account token"}},
		{name: "token allowed", c: tokens, mutate: func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }},
		{name: "persistent volume claim", c: Default(), mutate: func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "d"}}}}
		}, wantErr: []string{"uses PersistentVolumeClaim d"}},
		{name: "registry not allowed", c: registries, mutate: func(s *corev1.PodSpec) {
			s.Containers[0].Image = "registry.example.com.evil.io/x@sha256:" + strings.Repeat("a", 64)
		},
			wantErr: []string{"container model: image registry.example.com.evil.io/x@sha256:aaaa"}},
		{name: "short docker hub name normalized", c: registries, mutate: func(s *corev1.PodSpec) { s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}} },
			wantErr: []string{"container init: image busybox is not pinned by digest"}},
		{name: "not an image", c: Default(), mutate: func(s *corev1.PodSpec) { s.Containers[0].Image = "UPPER CASE" }, wantErr: []string{"not a valid image reference"}},
		{name: "system namespace", c: Default(), ns: "kube-system", mutate: func(*corev1.PodSpec) {}, wantErr: []string{"namespace kube-system is a system namespace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := compliant()
			tc.mutate(spec)
			ns := tc.ns
			if ns == "" {
				ns = "cars"
			}
			err := tc.c.CheckPodSpec(spec, ns)
			checkErrs(t, err, tc.wantErr)
		})
	}
	if err := Default().CheckPodSpec(nil, "cars"); err == nil {
		t.Error("CheckPodSpec(nil) = nil, want an error")
	}
}

func TestCheckMetadata(t *testing.T) {
	limited := &Config{Namespaces: Namespaces{Allow: []string{"*"}}, Limits: Limits{MaxReplicas: 4, MaxDemand: Demand{
		CPU: ptr.To(resource.MustParse("4")), Memory: ptr.To(resource.MustParse("8Gi")), GPU: ptr.To[int64](2)}},
		Images: Images{Registries: []string{"registry.example.com/"}}}
	meta := chaincode.WorkloadMetadata{Image: "registry.example.com/a:1", Images: []chaincode.Image{{Name: "registry.example.com/a:1"}},
		CPUMilli: 1000, MemoryBytes: 1 << 30, GPUSlots: 1, Replicas: 1}
	for _, tc := range []struct {
		name           string
		mutate         func(*chaincode.WorkloadMetadata)
		ns             string
		hosted         chaincode.Resources
		hostedReplicas int32
		wantErr        string
	}{
		{name: "fits", mutate: func(*chaincode.WorkloadMetadata) {}},
		{name: "2^31-1 replicas", mutate: func(m *chaincode.WorkloadMetadata) { m.Replicas = 1<<31 - 1 }, wantErr: "2147483647 more replicas would bring cluster edge-a's replicas hosted here to 2147483647, beyond this cluster's limit of 4"},
		{name: "replicas with what is hosted", mutate: func(m *chaincode.WorkloadMetadata) { m.Replicas = 2 }, hostedReplicas: 3, wantErr: "beyond this cluster's limit of 4"},
		{name: "negative replicas", mutate: func(m *chaincode.WorkloadMetadata) { m.Replicas = -1 }, wantErr: "replicas -1 is negative"},
		{name: "CPU with what is hosted", mutate: func(*chaincode.WorkloadMetadata) {}, hosted: chaincode.Resources{CPUMilli: 3500}, wantErr: "1 replicas of 1000m CPU each would bring cluster edge-a's CPU hosted here beyond this cluster's limit of 4000m (it has 3500m)"},
		{name: "GPU", mutate: func(m *chaincode.WorkloadMetadata) { m.GPUSlots, m.Replicas = 1, 3 }, wantErr: "GPU hosted here beyond this cluster's limit of 2"},
		{name: "demand overflowing int64", mutate: func(m *chaincode.WorkloadMetadata) { m.MemoryBytes, m.Replicas = 1<<62, 4 }, wantErr: "memory hosted here beyond"},
		{name: "negative demand", mutate: func(m *chaincode.WorkloadMetadata) { m.CPUMilli = -5 }, wantErr: "CPU demand -5 is negative"},
		{name: "image registry", mutate: func(m *chaincode.WorkloadMetadata) { m.Images = append(m.Images, chaincode.Image{Name: "evil.io/x"}) }, wantErr: "image evil.io/x is not from a registry this cluster allows"},
		{name: "seed's single image", mutate: func(m *chaincode.WorkloadMetadata) { m.Images, m.Image = nil, "nginx" }, wantErr: "image nginx is not from a registry"},
		{name: "service account", mutate: func(m *chaincode.WorkloadMetadata) { m.Requires.ServiceAccount = "admin" }, wantErr: "service account admin"},
		{name: "namespace", mutate: func(*chaincode.WorkloadMetadata) {}, ns: "kube-system", wantErr: "system namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meta
			m.Images = append([]chaincode.Image(nil), meta.Images...)
			tc.mutate(&m)
			ns := tc.ns
			if ns == "" {
				ns = "cars"
			}
			checkErr(t, limited.CheckMetadata("edge-a", ns, m, tc.hosted, tc.hostedReplicas), tc.wantErr)
		})
	}
	if err := Default().CheckMetadata("edge-a", "cars", chaincode.WorkloadMetadata{Image: "nginx", MemoryBytes: 1 << 62, Replicas: 32}, chaincode.Resources{}, 0); err != nil {
		t.Errorf("Default limits no demand: %v", err)
	}
}

func TestCheckBundle(t *testing.T) {
	deployment := func() *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "detector", Namespace: "cars"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: corev1.PodTemplateSpec{Spec: *compliant()}}}
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "detector"}, Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "detector", APIVersion: "apps/v1"}, MaxReplicas: 4}}
	open := Default()
	open.Services = Services{AllowNodePort: true, AllowLoadBalancer: true, AllowExternalIPs: true}
	for _, tc := range []struct {
		name    string
		c       *Config
		o       func() Objects
		wantErr []string
	}{
		{"whole service", Default(), func() Objects {
			return Objects{Deployment: deployment(), HorizontalPodAutoscaler: hpa, Services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "detector"}}},
				ConfigMaps: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "labels", Namespace: "cars"}}}}
		}, nil},
		{"no workload", Default(), func() Objects { return Objects{} }, []string{"holds no workload"}},
		{"two workloads", Default(), func() Objects { return Objects{Deployment: deployment(), Pod: &corev1.Pod{Spec: *compliant()}} }, []string{"both a Deployment and a Pod"}},
		{"privileged pod in its template", Default(), func() Objects {
			d := deployment()
			d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
			return Objects{Deployment: d}
		}, []string{"Deployment detector: Pod Security restricted forbids privileged"}},
		{"AppArmor unconfined by annotation", Default(), func() Objects {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"container.apparmor.security.beta.kubernetes.io/model": "unconfined"}}, Spec: *compliant()}
			return Objects{Pod: p}
		}, []string{"Pod p: Pod Security restricted forbids forbidden AppArmor profile"}},
		{"replicas", Default(), func() Objects {
			d := deployment()
			d.Spec.Replicas = ptr.To[int32](1<<31 - 1)
			return Objects{Deployment: d}
		}, []string{"asks for 2147483647 replicas, beyond this cluster's limit of 32"}},
		{"object elsewhere", Default(), func() Objects {
			return Objects{Deployment: deployment(), ConfigMaps: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"}}}}
		}, []string{"ConfigMap kubeadm-config is in namespace kube-system, not cars"}},
		{"node port, load balancer, external IPs, external name", Default(), func() Objects {
			return Objects{Deployment: deployment(), Services: []corev1.Service{
				{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}},
				{ObjectMeta: metav1.ObjectMeta{Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}},
				{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{ExternalIPs: []string{"10.0.0.1"}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "name"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "kubernetes.default"}},
			}}
		}, []string{"Service np is of type NodePort", "Service lb is of type LoadBalancer", "Service ext claims external IPs 10.0.0.1", "Service name is of type ExternalName"}},
		{"node port allowed", open, func() Objects {
			return Objects{Deployment: deployment(), Services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ExternalIPs: []string{"10.0.0.1"}}}}}
		}, nil},
		{"autoscaler of another workload", Default(), func() Objects {
			h := hpa.DeepCopy()
			h.Spec.ScaleTargetRef.Name, h.Spec.MaxReplicas = "coredns", 1000
			return Objects{Deployment: deployment(), HorizontalPodAutoscaler: h}
		}, []string{"scales Deployment coredns, not the bundle's Deployment", "may scale to 1000 replicas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.CheckBundle("cars", tc.o())
			checkErrs(t, err, tc.wantErr)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		f := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	c, err := Load(write(`
namespaces: {mapping: SourcePrefix, allow: [cars], create: false}
images: {registries: [registry.example.com/], requireDigest: true}
limits: {maxReplicas: 8, maxDemand: {cpu: "4", memory: 8Gi, gpu: 2, gpuMemory: 4Gi}}
services: {allowNodePort: true}
serviceAccounts: [reader]
allowServiceAccountToken: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespaces.Mapping != MappingSourcePrefix || c.Limits.MaxDemand.Memory.Value() != 8<<30 || *c.Limits.MaxDemand.GPU != 2 ||
		!c.Images.RequireDigest || !c.Services.AllowNodePort || !c.AllowServiceAccountToken || c.ServiceAccounts[0] != "reader" {
		t.Errorf("Load = %+v", c)
	}
	if c, err := Load(""); err != nil || c.Namespaces.Allow[0] != "*" || c.Limits.MaxReplicas != DefaultMaxReplicas {
		t.Errorf("Load(\"\") = %+v, %v; want Default", c, err)
	}
	if c, err := Load(write("")); err != nil || len(c.Namespaces.Allow) != 0 {
		t.Errorf("an empty file = %+v, %v; want a policy that hosts nothing", c, err)
	}
	for _, tc := range []struct{ body, wantErr string }{
		{"namespace: {allow: ['*']}", `unknown field "namespace"`},
		{"namespaces: {mapping: Liqo}", `namespaces.mapping "Liqo"`},
		{"namespaces: {allow: ['[']}", "not a glob"},
		{"images: {registries: ['']}", "empty prefix"},
		{"limits: {maxReplicas: -1}", "limits.maxReplicas -1"},
		{"limits: {maxDemand: {cpu: '-1'}}", "limits.maxDemand.cpu -1 is negative"},
		{"serviceAccounts: [edgemigrate-host]", "that is the identity edgemigrate creates"},
		{"serviceAccounts: [Admin]", `serviceAccounts "Admin"`},
		{"[", "decoding"},
	} {
		if _, err := Load(write(tc.body)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Load(%q) = %v, want an error containing %q", tc.body, err, tc.wantErr)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "reading policy") {
		t.Errorf("Load(absent) = %v", err)
	}
}

// checkErrs: no error when wants is empty, else one holding every want.
func checkErrs(t *testing.T, err error, wants []string) {
	t.Helper()
	if len(wants) == 0 {
		checkErr(t, err, "")
	}
	for _, w := range wants {
		checkErr(t, err, w)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}
