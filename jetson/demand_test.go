package jetson

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
)

func container(cpu, mem string, gpu string) corev1.Container {
	c := corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}}
	if cpu != "" {
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	if gpu != "" {
		c.Resources.Limits[api.ResourceGPU] = resource.MustParse(gpu)
	}
	return c
}

func TestPodDemand(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := container("100m", "1Gi", "")
	sidecar.RestartPolicy = &always
	tests := []struct {
		name        string
		annotations map[string]string
		spec        corev1.PodSpec
		want        Demand
		wantErr     string
	}{
		{
			name: "no requests",
			spec: corev1.PodSpec{Containers: []corev1.Container{container("", "", "")}},
		},
		{
			name:        "containers add up, gpu memory declared",
			annotations: map[string]string{api.AnnotationGPUMemory: "6Gi"},
			spec:        corev1.PodSpec{Containers: []corev1.Container{container("1", "2Gi", "1"), container("500m", "1Gi", "")}},
			want:        Demand{CPUMilli: 1500, Memory: 3 * jetsontest.Gi, GPUMemory: 6 * jetsontest.Gi, GPUSlots: 1},
		},
		{
			name: "init container larger than the app counts",
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{container("4", "8Gi", "")},
				Containers:     []corev1.Container{container("1", "2Gi", "")},
			},
			want: Demand{CPUMilli: 4000, Memory: 8 * jetsontest.Gi},
		},
		{
			name: "sidecar runs alongside",
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{sidecar},
				Containers:     []corev1.Container{container("1", "2Gi", "")},
			},
			want: Demand{CPUMilli: 1100, Memory: 3 * jetsontest.Gi},
		},
		{
			name: "overhead counts",
			spec: corev1.PodSpec{
				Containers: []corev1.Container{container("1", "1Gi", "")},
				Overhead:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
			want: Demand{CPUMilli: 1000, Memory: jetsontest.Gi + 128<<20},
		},
		{
			name:        "decimal gpu memory",
			annotations: map[string]string{api.AnnotationGPUMemory: " 1.5G "},
			spec:        corev1.PodSpec{Containers: []corev1.Container{container("", "", "2")}},
			want:        Demand{GPUMemory: 1_500_000_000, GPUSlots: 2},
		},
		{
			name:        "malformed gpu memory",
			annotations: map[string]string{api.AnnotationGPUMemory: "lots"},
			wantErr:     `annotation edgemigrate.io/gpu-memory: "lots" is not a quantity`,
		},
		{
			name:        "negative gpu memory",
			annotations: map[string]string{api.AnnotationGPUMemory: "-1Gi"},
			wantErr:     `annotation edgemigrate.io/gpu-memory: "-1Gi" is negative`,
		},
		{
			name:        "gpu memory exponent that would take minutes to parse",
			annotations: map[string]string{api.AnnotationGPUMemory: "1e-99999999"},
			wantErr:     `"1e-99999999" is not a quantity`,
		},
		{
			name:        "gpu memory that overflows",
			annotations: map[string]string{api.AnnotationGPUMemory: "1e99"},
			wantErr:     `"1e99" is larger than 1Pi`,
		},
		{
			name:        "empty gpu memory",
			annotations: map[string]string{api.AnnotationGPUMemory: ""},
			wantErr:     `"" is not a quantity`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}, Spec: tt.spec}
			got, err := PodDemand(pod)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PodDemand = %+v, want %+v", got, tt.want)
			}
			if got.Unified() != tt.want.Memory+tt.want.GPUMemory {
				t.Errorf("Unified = %d", got.Unified())
			}
		})
	}
}

func TestDemandString(t *testing.T) {
	d := Demand{CPUMilli: 1500, Memory: 4 * jetsontest.Gi, GPUSlots: 1, GPUMemory: 6 * jetsontest.Gi}
	if got, want := d.String(), "cpu=1500m,memory=4Gi,gpu=1,gpu-memory=6Gi"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	back, err := ParseDemand(d.String())
	if err != nil || back != d {
		t.Errorf("ParseDemand(String()) = %+v, %v; want %+v", back, err, d)
	}
}

func TestParseDemandErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "is not key=value"},
		{"cpu=1,memory=1Gi,gpu=0", "gpu-memory missing"},
		{"cpu=1,memory=1Gi,gpu=0,gpu-memory=0,cpu=2", "cpu given twice"},
		{"cpu=1,memory=1Gi,gpu=0,gpu-memroy=0", `unknown key "gpu-memroy"`},
		{"cpu=x,memory=1Gi,gpu=0,gpu-memory=0", `cpu="x" is not a quantity`},
		{"cpu=1,memory=-1Gi,gpu=0,gpu-memory=0", `memory="-1Gi" is negative`},
		{"cpu=1,memory=1e-99999999,gpu=0,gpu-memory=0", `memory="1e-99999999" is not a quantity`},
		{"cpu=9999999999999999999Ei,memory=1,gpu=0,gpu-memory=0", "is larger than 1Pi"},
		{"cpu=1,memory=1e999,gpu=0,gpu-memory=0", "is not a quantity"},
		{"cpu=1,memory=2Pi,gpu=0,gpu-memory=0", "is larger than 1Pi"},
	}
	for _, tt := range tests {
		if _, err := ParseDemand(tt.in); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseDemand(%q) error %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

// FuzzParseDemand: the annotation can be edited by anyone who can edit the pod, so no
// input may panic, and whatever parses must survive a round trip.
func FuzzParseDemand(f *testing.F) {
	for _, seed := range []string{
		"cpu=1500m,memory=4Gi,gpu=1,gpu-memory=6Gi", "cpu=0,memory=0,gpu=0,gpu-memory=0",
		"cpu=1e3,memory=1E,gpu=1k,gpu-memory=1.5G", "gpu=1", "=,=", "cpu=9223372036854775807",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDemand(s)
		if err != nil {
			return
		}
		if d.CPUMilli < 0 || d.Memory < 0 || d.GPUMemory < 0 || d.GPUSlots < 0 {
			t.Fatalf("ParseDemand(%q) = %+v: negative field", s, d)
		}
		again, err := ParseDemand(d.String())
		if err != nil {
			t.Fatalf("ParseDemand(%q) = %+v, whose String %q does not parse: %v", s, d, d.String(), err)
		}
		if again != d {
			t.Fatalf("round trip of %q: %+v then %+v", s, d, again)
		}
	})
}
