package profile

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/edgemigrate/edgemigrate/internal/inference/service"
)

// TestGeneratedStyles: every generated window is classified as the style it was generated
// for, over many seeds.
func TestGeneratedStyles(t *testing.T) {
	for _, style := range Styles {
		t.Run(string(style), func(t *testing.T) {
			for seed := range int64(200) {
				w := Window(seed, style)
				if len(w) != WindowSeconds*SampleRate {
					t.Fatalf("seed %d: %d samples", seed, len(w))
				}
				r, err := Analyze(w)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if r.Profile != style {
					t.Fatalf("seed %d: classified %s (%+v)", seed, r.Profile, r)
				}
			}
		})
	}
}

func TestWindowIsDeterministic(t *testing.T) {
	if !reflect.DeepEqual(Window(7, Moderate), Window(7, Moderate)) {
		t.Fatal("the same seed gave different windows")
	}
	if reflect.DeepEqual(Window(7, Moderate), Window(8, Moderate)) {
		t.Fatal("two seeds gave the same window")
	}
}

// cruise is n samples at 10 Hz and a steady speed, to which cases add events.
func cruise(n int, speed float64) []Sample {
	s := make([]Sample, n)
	for i := range s {
		s[i] = Sample{T: float64(i) / 10, Speed: speed}
	}
	return s
}

func TestRules(t *testing.T) {
	set := func(s []Sample, from, to int, f func(*Sample)) []Sample {
		for i := from; i < to; i++ {
			f(&s[i])
		}
		return s
	}
	tests := []struct {
		name    string
		samples []Sample
		want    Events
		profile Style
	}{
		{"steady", cruise(600, 15), Events{}, Calm},
		{"one sample", cruise(1, 15), Events{}, Calm},
		{"one long braking is one event", set(cruise(600, 15), 100, 130, func(s *Sample) { s.Accel = -4 }),
			Events{HarshBraking: 1, Jerk: 2}, Calm},
		{"braking just under the threshold", set(cruise(600, 15), 100, 130, func(s *Sample) { s.Accel = -2.9 }),
			Events{Jerk: 2}, Calm},
		{"harsh acceleration", set(cruise(600, 15), 100, 130, func(s *Sample) { s.Accel = 2.5 }),
			Events{HarshAcceleration: 1, Jerk: 2}, Calm},
		{"sharp turn at speed", set(cruise(600, 15), 100, 130, func(s *Sample) { s.YawRate = 0.25 }),
			Events{SharpTurns: 1}, Calm},
		{"tight turn at walking pace is no sharp turn", set(cruise(600, 3), 100, 130, func(s *Sample) { s.YawRate = 1.5 }),
			Events{}, Calm},
		{"speeding all along", cruise(600, 30), Events{Speeding: 1}, Moderate},
		{"three brakings a minute", set(set(set(cruise(600, 15), 100, 110, func(s *Sample) { s.Accel = -4 }),
			300, 310, func(s *Sample) { s.Accel = -4 }), 500, 510, func(s *Sample) { s.Accel = -4 }),
			Events{HarshBraking: 3, Jerk: 6}, Aggressive},
	}
	for _, tt := range tests {
		r, err := Analyze(tt.samples)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if r.Events != tt.want || r.Profile != tt.profile {
			t.Errorf("%s: events %+v, profile %s (score %d); want %+v, %s", tt.name, r.Events, r.Profile, r.Score, tt.want, tt.profile)
		}
		if r.Score < 0 || r.Score > 100 {
			t.Errorf("%s: score %d", tt.name, r.Score)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
		err     string
	}{
		{"none", nil, "none"},
		{"too many", cruise(MaxSamples+1, 10), "at most 4096"},
		{"NaN speed", []Sample{{T: 0, Speed: math.NaN()}}, "samples[0].speed is not a finite number"},
		{"infinite accel", []Sample{{T: 0}, {T: 1, Accel: math.Inf(-1)}}, "samples[1].accel is not a finite number"},
		{"negative speed", []Sample{{T: 0, Speed: -1}}, "samples[0].speed is -1"},
		{"absurd yaw", []Sample{{T: 0, YawRate: 11}}, "samples[0].yawRate is 11"},
		{"time standing still", []Sample{{T: 1}, {T: 1}}, "samples[1].t is 1, not after"},
		{"time going back", []Sample{{T: 1}, {T: 2}, {T: 1.5}}, "samples[2].t is 1.5"},
	}
	for _, tt := range tests {
		err := Validate(tt.samples)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.err)
		}
		if _, err := Analyze(tt.samples); err == nil {
			t.Errorf("%s: analysed", tt.name)
		}
	}
	if err := Validate(cruise(MaxSamples, 10)); err != nil {
		t.Errorf("%d samples: %v", MaxSamples, err)
	}
}

func TestInfer(t *testing.T) {
	body, err := json.Marshal(Request{Samples: Window(3, Aggressive)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Infer(context.Background(), body, service.Identity{Cluster: "edge-a", Pod: "p"})
	if err != nil {
		t.Fatal(err)
	}
	a := out.(Answer)
	if a.Profile != Aggressive || a.Cluster != "edge-a" || a.Samples != 600 {
		t.Errorf("answer %+v", a)
	}
	raw, _ := json.Marshal(a)
	for _, field := range []string{`"profile":"aggressive"`, `"score":`, `"events":{"harshBraking":`, `"cluster":"edge-a"`, `"pod":"p"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("answer %s lacks %s", raw, field)
		}
	}
	for _, bad := range []string{`{}`, `{"samples":[]}`, `{"samples":[{"t":0,"speed":"fast"}]}`, `{"samples":[{"t":0,"spede":1}]}`, `[1]`, ``} {
		_, err := Infer(context.Background(), []byte(bad), service.Identity{})
		if err == nil || !service.IsBadInput(err) {
			t.Errorf("%q: %v, want a bad-input error", bad, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	good, _ := json.Marshal(Request{Samples: Window(1, Calm)[:20]})
	f.Add(good)
	f.Add([]byte(`{"samples":[{"t":0,"speed":1e308,"accel":-1e308,"yawRate":0}]}`))
	f.Add([]byte(`{"samples":[{"t":1},{"t":0}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		samples, err := ParseRequest(data)
		if err != nil {
			if !service.IsBadInput(err) {
				t.Fatalf("error %v is not a bad-input error", err)
			}
			return
		}
		r, err := Analyze(samples)
		if err != nil {
			t.Fatalf("validated samples failed analysis: %v", err)
		}
		if r.Score < 0 || r.Score > 100 || r.Profile == "" {
			t.Fatalf("result %+v", r)
		}
	})
}
