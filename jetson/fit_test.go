package jetson

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/jetson/jetsontest"
)

func node(labels map[string]string, alloc corev1.ResourceList) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: labels}, Status: corev1.NodeStatus{Allocatable: alloc}}
}

func jetsonLabels(product string) map[string]string {
	return map[string]string{api.LabelGPUProduct: product, corev1.LabelArchStable: "arm64"}
}

func alloc(cpu, mem, gpu string) corev1.ResourceList {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	if gpu != "" {
		l[api.ResourceGPU] = resource.MustParse(gpu)
	}
	return l
}

func TestNodeCapacity(t *testing.T) {
	custom, err := ParseSelector("edgemigrate.io/jetson=true")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		node *corev1.Node
		cfg  Config
		want Capacity
	}{
		{
			name: "xavier, no reserve",
			node: node(jetsonLabels("NVIDIA-Jetson-AGX-Xavier"), alloc("8", "32Gi", "1")),
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Xavier", CPUMilli: 8000, Memory: 32 * jetsontest.Gi, GPUSlots: 1},
		},
		{
			name: "reserve is taken off allocatable memory",
			node: node(jetsonLabels("NVIDIA-Jetson-AGX-Xavier"), alloc("8", "32Gi", "1")),
			cfg:  Config{MemoryReserve: 2 * jetsontest.Gi},
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Xavier", CPUMilli: 8000, Memory: 30 * jetsontest.Gi, GPUSlots: 1},
		},
		{
			name: "reserve larger than the node leaves zero, not a negative capacity",
			node: node(jetsonLabels("NVIDIA-Jetson-Orin-NX"), alloc("8", "16Gi", "1")),
			cfg:  Config{MemoryReserve: 20 * jetsontest.Gi},
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-Orin-NX", CPUMilli: 8000, Memory: 0, GPUSlots: 1},
		},
		{
			name: "negative reserve is ignored",
			node: node(jetsonLabels("NVIDIA-Jetson-Orin-NX"), alloc("8", "16Gi", "1")),
			cfg:  Config{MemoryReserve: -jetsontest.Gi},
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-Orin-NX", CPUMilli: 8000, Memory: 16 * jetsontest.Gi, GPUSlots: 1},
		},
		{
			name: "time-sliced: slots from allocatable, model without the -SHARED suffix",
			node: node(jetsonLabels("NVIDIA-Jetson-AGX-Orin-SHARED"), alloc("12", "64Gi", "4")),
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Orin", CPUMilli: 12000, Memory: 64 * jetsontest.Gi, GPUSlots: 4},
		},
		{
			name: "jetson without the device plugin has no slots",
			node: node(jetsonLabels("NVIDIA-Jetson-AGX-Xavier"), alloc("8", "32Gi", "")),
			want: Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Xavier", CPUMilli: 8000, Memory: 32 * jetsontest.Gi},
		},
		{
			name: "x86 GPU node passes through",
			node: node(map[string]string{api.LabelGPUProduct: "NVIDIA-A100", corev1.LabelArchStable: "amd64"}, alloc("64", "512Gi", "8")),
		},
		{
			name: "arm64 without a GPU product passes through",
			node: node(map[string]string{corev1.LabelArchStable: "arm64"}, alloc("4", "8Gi", "")),
		},
		{
			name: "no labels at all",
			node: node(nil, alloc("4", "8Gi", "")),
		},
		{
			name: "nil node",
		},
		{
			name: "custom selector matches",
			node: node(map[string]string{"edgemigrate.io/jetson": "true"}, alloc("8", "32Gi", "1")),
			cfg:  Config{Selector: custom},
			want: Capacity{Jetson: true, CPUMilli: 8000, Memory: 32 * jetsontest.Gi, GPUSlots: 1},
		},
		{
			name: "custom selector replaces the default",
			node: node(jetsonLabels("NVIDIA-Jetson-AGX-Xavier"), alloc("8", "32Gi", "1")),
			cfg:  Config{Selector: custom},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NodeCapacity(tt.node, tt.cfg); got != tt.want {
				t.Errorf("NodeCapacity = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSelector(t *testing.T) {
	for _, s := range []string{"", "  ", "a=(", "!!"} {
		if _, err := ParseSelector(s); err == nil {
			t.Errorf("ParseSelector(%q) accepted", s)
		}
	}
	sel, err := ParseSelector(DefaultSelectorString)
	if err != nil {
		t.Fatal(err)
	}
	if sel.String() != DefaultSelector().String() {
		t.Errorf("DefaultSelectorString parses to %q, DefaultSelector is %q", sel, DefaultSelector())
	}
}

func TestFit(t *testing.T) {
	xavier := Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Xavier", CPUMilli: 8000, Memory: 32 * jetsontest.Gi, GPUSlots: 1}
	sliced := Capacity{Jetson: true, Model: "NVIDIA-Jetson-AGX-Orin", CPUMilli: 12000, Memory: 64 * jetsontest.Gi, GPUSlots: 4}
	tests := []struct {
		name       string
		c          Capacity
		used, pod  Demand
		wantReason string // "" means fits
	}{
		{name: "empty pod on empty node", c: xavier},
		{name: "fits exactly", c: xavier, used: Demand{Memory: 20 * jetsontest.Gi, GPUMemory: 6 * jetsontest.Gi}, pod: Demand{Memory: 2 * jetsontest.Gi, GPUMemory: 4 * jetsontest.Gi}},
		{
			name: "GPU memory counts against the same memory as requests",
			c:    xavier, used: Demand{Memory: 26 * jetsontest.Gi}, pod: Demand{Memory: jetsontest.Gi, GPUMemory: 6 * jetsontest.Gi},
			wantReason: "unified memory: need 7.0Gi, free 6.0Gi of 32.0Gi on NVIDIA-Jetson-AGX-Xavier",
		},
		{
			name: "one byte over",
			c:    xavier, used: Demand{GPUMemory: 32*jetsontest.Gi - 1}, pod: Demand{Memory: 2},
			wantReason: "unified memory: need 2B, free 1B of 32.0Gi on NVIDIA-Jetson-AGX-Xavier",
		},
		{
			name: "the issue's example",
			c:    Capacity{Jetson: true, Memory: 16 * jetsontest.Gi}, used: Demand{Memory: 16*jetsontest.Gi - 3436*(1<<20)}, pod: Demand{GPUMemory: 6 * jetsontest.Gi},
			wantReason: "unified memory: need 6.0Gi, free 3.4Gi of 16.0Gi on Jetson",
		},
		{
			name: "overcommitted node shows no negative free memory",
			c:    xavier, used: Demand{Memory: 40 * jetsontest.Gi}, pod: Demand{Memory: 512 << 20},
			wantReason: "unified memory: need 512.0Mi, free 0B of 32.0Gi on NVIDIA-Jetson-AGX-Xavier",
		},
		{
			name: "node with no memory for pods refuses any memory",
			c:    Capacity{Jetson: true, Model: "X"}, pod: Demand{Memory: 1},
			wantReason: "unified memory: need 1B, free 0B of 0B on X",
		},
		{
			name: "GPU slot taken",
			c:    xavier, used: Demand{GPUSlots: 1}, pod: Demand{GPUSlots: 1},
			wantReason: "GPU slots: need 1, free 0 of 1",
		},
		{name: "time-sliced slots share", c: sliced, used: Demand{GPUSlots: 3}, pod: Demand{GPUSlots: 1}},
		{
			name: "node without slots",
			c:    Capacity{Jetson: true, CPUMilli: 8000, Memory: 32 * jetsontest.Gi}, pod: Demand{GPUSlots: 1},
			wantReason: "GPU slots: need 1, free 0 of 0",
		},
		{
			name: "CPU",
			c:    xavier, used: Demand{CPUMilli: 7500}, pod: Demand{CPUMilli: 1000},
			wantReason: "CPU: need 1, free 500m",
		},
		{
			name: "every exhausted resource is named",
			c:    xavier, used: Demand{CPUMilli: 8000, Memory: 32 * jetsontest.Gi, GPUSlots: 1}, pod: Demand{CPUMilli: 250, GPUMemory: jetsontest.Gi, GPUSlots: 1},
			wantReason: "unified memory: need 1.0Gi, free 0B of 32.0Gi on NVIDIA-Jetson-AGX-Xavier; GPU slots: need 1, free 0 of 1; CPU: need 250m, free 0",
		},
		{name: "non-Jetson nodes pass through whatever the demand", c: Capacity{}, used: Demand{Memory: 100 * jetsontest.Gi}, pod: Demand{GPUMemory: 100 * jetsontest.Gi, GPUSlots: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reasons := Fit(tt.c, tt.used, tt.pod)
			if got := Reason(reasons); got != tt.wantReason {
				t.Errorf("Fit reason = %q, want %q", got, tt.wantReason)
			}
			if (reasons == nil) != (tt.wantReason == "") {
				t.Errorf("Fit = %#v: fits %v, want %v", reasons, reasons == nil, tt.wantReason == "")
			}
			buf, fits := AppendFit([]byte("before|"), tt.c, tt.used, tt.pod)
			if string(buf) != "before|"+tt.wantReason || fits != (tt.wantReason == "") {
				t.Errorf("AppendFit = %q, %v; want %q, %v", buf, fits, "before|"+tt.wantReason, tt.wantReason == "")
			}
		})
	}
}

func TestScore(t *testing.T) {
	c := Capacity{Jetson: true, Memory: 32 * jetsontest.Gi, GPUSlots: 1}
	tests := []struct {
		name      string
		p         Policy
		c         Capacity
		used, pod Demand
		want      int64
	}{
		{name: "binpack: empty node, empty pod", p: Binpack, c: c, want: 0},
		{name: "binpack: half full after placement", p: Binpack, c: c, used: Demand{Memory: 8 * jetsontest.Gi}, pod: Demand{GPUMemory: 8 * jetsontest.Gi}, want: 50},
		{name: "binpack: full after placement", p: Binpack, c: c, used: Demand{Memory: 24 * jetsontest.Gi}, pod: Demand{GPUMemory: 8 * jetsontest.Gi}, want: 100},
		{name: "binpack: rounds", p: Binpack, c: c, pod: Demand{Memory: 10 * jetsontest.Gi}, want: 31},
		{name: "spread: empty node is best", p: Spread, c: c, want: 100},
		{name: "spread: half full", p: Spread, c: c, used: Demand{Memory: 8 * jetsontest.Gi}, pod: Demand{GPUMemory: 8 * jetsontest.Gi}, want: 50},
		{name: "overcommitted clamps to the range", p: Binpack, c: c, used: Demand{Memory: 64 * jetsontest.Gi}, want: 100},
		{name: "overcommitted clamps to the range, spread", p: Spread, c: c, used: Demand{Memory: 64 * jetsontest.Gi}, want: 0},
		{name: "huge sums do not overflow", p: Binpack, c: c, used: Demand{Memory: 1 << 61}, pod: Demand{GPUMemory: 1 << 61}, want: 100},
		{name: "non-Jetson: no opinion", p: Spread, c: Capacity{Memory: 32 * jetsontest.Gi}, want: 0},
		{name: "no memory for pods", p: Spread, c: Capacity{Jetson: true}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.p, tt.c, tt.used, tt.pod); got != tt.want {
				t.Errorf("Score = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBinpackPrefersFullerNodeSpreadTheEmptier(t *testing.T) {
	c := Capacity{Jetson: true, Memory: 32 * jetsontest.Gi}
	pod := Demand{GPUMemory: 4 * jetsontest.Gi}
	full, empty := Demand{Memory: 20 * jetsontest.Gi}, Demand{Memory: 2 * jetsontest.Gi}
	if Score(Binpack, c, full, pod) <= Score(Binpack, c, empty, pod) {
		t.Error("binpack does not prefer the fuller node")
	}
	if Score(Spread, c, full, pod) >= Score(Spread, c, empty, pod) {
		t.Error("spread does not prefer the emptier node")
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": Binpack, "binpack": Binpack, "spread": Spread} {
		got, err := ParsePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Binpack", "most-allocated", " "} {
		if _, err := ParsePolicy(in); err == nil || !strings.Contains(err.Error(), "binpack") {
			t.Errorf("ParsePolicy(%q) error %v, want one naming the choices", in, err)
		}
	}
}

func TestAddSub(t *testing.T) {
	a := Demand{CPUMilli: 1, Memory: 2, GPUMemory: 3, GPUSlots: 4}
	b := Demand{CPUMilli: 10, Memory: 20, GPUMemory: 30, GPUSlots: 40}
	if got := a.Add(b); !reflect.DeepEqual(got, Demand{11, 22, 33, 44}) {
		t.Errorf("Add = %+v", got)
	}
	if got := a.Add(b).Sub(b); got != a {
		t.Errorf("Add then Sub = %+v, want %+v", got, a)
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{
		-5: "0B", 0: "0B", 1023: "1023B", 1024: "1.0Ki", 1536 << 10: "1.5Mi",
		6 * jetsontest.Gi: "6.0Gi", 3*jetsontest.Gi + jetsontest.Gi/5: "3.2Gi", 2 << 40: "2.0Ti",
	} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512Mi": 512 << 20, "1e3": 1000, "100m": 1, "1Pi": 1 << 50} {
		q, err := ParseQuantity(in)
		if err != nil || q.Value() != want {
			t.Errorf("ParseQuantity(%q) = %v, %v; want %d", in, q.Value(), err, want)
		}
	}
	for _, in := range []string{"", "-1", "1e-99999999", "1e999", "2Pi", "1 Gi", "abc"} {
		if _, err := ParseQuantity(in); err == nil {
			t.Errorf("ParseQuantity(%q) accepted", in)
		}
	}
}
