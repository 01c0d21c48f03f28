package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
)

var clusters = []string{"edge-a", "edge-b", "edge-c"}

func TestPlanIsSeeded(t *testing.T) {
	o := PlanOptions{Seed: 17, Clusters: clusters, Span: 10 * time.Minute}
	a, err := NewPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewPlan(o)
	if !slices.Equal(a.Faults, b.Faults) || a.APIServerCluster != b.APIServerCluster {
		t.Errorf("the same seed gave two plans:\n%v\n%v", a.Faults, b.Faults)
	}
	o.Seed = 18
	c, _ := NewPlan(o)
	if slices.Equal(a.Faults, c.Faults) {
		t.Errorf("seeds 17 and 18 gave the same plan %v", a.Faults)
	}
}

func TestPlanBounds(t *testing.T) {
	for seed := range uint64(50) {
		o := PlanOptions{Seed: seed, Clusters: clusters, Span: 5 * time.Minute, MaxConcurrent: 2}
		p, err := NewPlan(o)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Faults) == 0 {
			t.Fatalf("seed %d: no fault in %s", seed, o.Span)
		}
		for i, f := range p.Faults {
			if f.At < DefaultWarmup || f.At >= o.Span {
				t.Errorf("seed %d: %s outside [%s, %s)", seed, f, DefaultWarmup, o.Span)
			}
			if f.Down < DefaultDown.Min || f.Down > DefaultDown.Max {
				t.Errorf("seed %d: %s down outside %v", seed, f, DefaultDown)
			}
			if i > 0 && f.At-p.Faults[i-1].At < DefaultGap.Min {
				t.Errorf("seed %d: %s only %s after the one before", seed, f, f.At-p.Faults[i-1].At)
			}
			switch f.Target.Kind {
			case Ledger:
				if f.Target.Cluster != "" {
					t.Errorf("seed %d: %s: the ledger is no cluster's", seed, f)
				}
			case APIServer:
				if f.Target.Cluster != p.APIServerCluster {
					t.Errorf("seed %d: %s: only %s's kube-apiserver is killed", seed, f, p.APIServerCluster)
				}
			default:
				if !slices.Contains(clusters, f.Target.Cluster) {
					t.Errorf("seed %d: %s: no such cluster", seed, f)
				}
			}
			down := 0
			for _, g := range p.Faults[:i] {
				if g.At+g.Down > f.At {
					down++
					if g.Target.process() == f.Target.process() {
						t.Errorf("seed %d: %s strikes while %s is still down", seed, f, g)
					}
				}
			}
			if down >= o.MaxConcurrent {
				t.Errorf("seed %d: %s strikes with %d faults down", seed, f, down)
			}
		}
	}
}

func TestPlanCoversEveryKind(t *testing.T) {
	p, err := NewPlan(PlanOptions{Seed: 1, Clusters: clusters, Span: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	n := p.Counts()
	for _, k := range Kinds {
		if n[k] == 0 {
			t.Errorf("no %s fault in 30 minutes of faults: %v", k, n)
		}
	}
}

func TestPlanEveryKindFirst(t *testing.T) {
	for seed := range uint64(20) {
		p, err := NewPlan(PlanOptions{Seed: seed, Clusters: clusters, Span: 10 * time.Minute, EveryKindFirst: true})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []Kind
		for _, f := range p.Faults[:len(Kinds)] {
			kinds = append(kinds, f.Target.Kind)
		}
		if got := slices.Sorted(slices.Values(kinds)); !slices.Equal(got, slices.Sorted(slices.Values(Kinds))) {
			t.Errorf("seed %d: the first %d faults are %v, want one of each kind", seed, len(Kinds), kinds)
		}
		var end time.Duration
		for _, f := range p.Faults[:len(Kinds)] {
			end = max(end, f.At+f.Down)
		}
		if got := p.Covered(); got != end {
			t.Errorf("seed %d: covered at %s, want %s, the end of its first %d faults", seed, got, end, len(Kinds))
		}
	}
}

func TestPlanCoveredNever(t *testing.T) {
	p := Plan{Faults: []Fault{{Target: Target{Kind: Ledger}, At: time.Second, Down: time.Second}}}
	if got := p.Covered(); got != 0 {
		t.Errorf("a plan of one ledger fault is covered at %s, want 0 (never)", got)
	}
}

func TestPlanRejectsBadOptions(t *testing.T) {
	for _, o := range []PlanOptions{
		{Span: time.Minute},
		{Clusters: clusters},
		{Clusters: clusters, Span: time.Minute, Gap: Range{Min: 2 * time.Second, Max: time.Second}},
		{Clusters: clusters, Span: time.Minute, Down: Range{Min: -time.Second, Max: time.Second}},
	} {
		if _, err := NewPlan(o); err == nil {
			t.Errorf("NewPlan(%+v) accepted", o)
		}
	}
}

func TestSplitFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	outages := []Outage{
		{Target: Target{Kind: DeschedulerLeader, Cluster: "edge-b"}, From: at(10), To: at(20)},
		{Target: Target{Kind: Ledger}, From: at(30), To: at(40)},
		{Target: Target{Kind: APIServer, Cluster: "edge-c"}, From: at(50)}, // still down
		{Target: Target{Kind: Extender, Cluster: "edge-a"}, From: at(58), To: at(62)},
	}
	fail := func(seq int, start, took float64, via ...string) car.Result {
		return car.Result{Seq: seq, Start: at(start), Latency: time.Duration(took * float64(time.Second)), Via: via, Reason: car.ReasonTransport}
	}
	results := []car.Result{
		{Seq: 0, Start: at(12), Via: []string{"edge-b"}}, // answered
		fail(1, 12, 0.1, "edge-b"),                       // in edge-b's outage
		fail(2, 12, 0.1, "edge-a"),                       // edge-a was up
		fail(3, 9, 2, "edge-a", "edge-b"),                // redirected into edge-b's outage
		fail(4, 21, 0.5, "edge-b"),                       // within the grace after edge-b's recovery
		fail(5, 23, 0.5, "edge-b"),                       // after it
		fail(6, 35, 0.1, "edge-a"),                       // the ledger's outage is no cluster's
		fail(7, 90, 0.1, "edge-c"),                       // edge-c still down
		fail(8, 12, 0),                                   // never sent
		fail(9, 60, 0.1, "edge-a", "edge-c"),             // the last cluster reached failed it
	}
	in, out := SplitFailures(results, outages, 2*time.Second)
	seqs := func(rs []car.Result) []int {
		var s []int
		for _, r := range rs {
			s = append(s, r.Seq)
		}
		return s
	}
	if got, want := seqs(in[DeschedulerLeader]), []int{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("in edge-b's descheduler outage: %v, want %v", got, want)
	}
	if got, want := seqs(in[APIServer]), []int{7, 9}; !slices.Equal(got, want) {
		t.Errorf("in edge-c's kube-apiserver outage: %v, want %v", got, want)
	}
	if len(in) != 2 {
		t.Errorf("outages of kinds %v, want two", in)
	}
	if got, want := seqs(out), []int{2, 5, 6, 8}; !slices.Equal(got, want) {
		t.Errorf("outside: %v, want %v", got, want)
	}
}

func TestCopies(t *testing.T) {
	lost, dup := Copies(map[string]map[string]int{
		"ns/one":  {"edge-a": 0, "edge-b": 1},
		"ns/none": {"edge-a": 0},
		"ns/two":  {"edge-a": 1, "edge-c": 1},
		"ns/pair": {"edge-b": 2},
		"ns/gone": {},
	})
	if want := []string{"ns/gone", "ns/none"}; !slices.Equal(lost, want) {
		t.Errorf("lost %v, want %v", lost, want)
	}
	if want := []string{"ns/pair (edge-b×2)", "ns/two (edge-a×1 edge-c×1)"}; !slices.Equal(dup, want) {
		t.Errorf("duplicated %v, want %v", dup, want)
	}
}

func TestUnfinished(t *testing.T) {
	for _, tt := range []struct {
		phase v1alpha1.MigrationPhase
		why   string
		want  string
	}{
		{v1alpha1.PhaseCompleted, "", ""},
		{v1alpha1.PhaseAborted, "DeadlineExceeded: no bid", ""},
		{v1alpha1.PhaseFailed, "NoDestination: no cluster can host it", ""},
		{v1alpha1.PhaseFailed, " ", "ended Failed without a reason"},
		{v1alpha1.PhaseReady, "", "stuck in Ready"},
		{v1alpha1.PhaseProposed, "x", "stuck in Proposed"},
		{"", "", "stuck in "},
	} {
		if got := (Migration{Phase: tt.phase, Why: tt.why}).Unfinished(); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.phase, tt.why, got, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	r := Report{
		Seed: 17, Clusters: 3, Took: 150 * time.Second, Services: 4, Grace: 2 * time.Second,
		Migrations: []Migration{
			{Cluster: "edge-a", Name: "m1", Role: v1alpha1.RoleSource, Phase: v1alpha1.PhaseCompleted},
			{Cluster: "edge-b", Name: "m2", Role: v1alpha1.RoleSource, Phase: v1alpha1.PhaseAborted, Why: "deadline"},
			{Cluster: "edge-b", Name: "m3", Role: v1alpha1.RoleSource, Phase: v1alpha1.PhaseDecided},
			{Cluster: "edge-c", Name: "d1", Role: v1alpha1.RoleDestination, Phase: v1alpha1.PhaseCreating},
		},
		Kills:      []Target{{Kind: Ledger}, {Kind: Webhook, Cluster: "edge-a"}, {Kind: Webhook, Cluster: "edge-c"}},
		Duplicated: []string{"ns/two (edge-a×1 edge-c×1)"},
		Sent:       1000, Failed: 3, InOutage: map[Kind]int{DeschedulerLeader: 2},
		Outside: []Failure{{Car: "car-1", Result: car.Result{Seq: 7, Via: []string{"edge-a"}, Reason: car.ReasonTransport, Err: "refused"}}},
	}
	block := strings.Join(r.Lines(), "\n")
	for _, want := range []string{
		"seed 17", "migrations: 3 (1 completed, 1 aborted, 0 failed, 1 still Decided)",
		"kills: 3 (descheduler-leader 0, descheduler-standby 0, extender 0, webhook 2 [edge-a 1, edge-c 1], ledger 1, kube-apiserver 0)",
		"services lost: 0 of 4", "services duplicated: 1 of 4",
		"1000 sent, 3 failed (0.30%): 2 during the killed cluster's own outage (+2s: descheduler-leader 2), 1 outside (goal 0)",
	} {
		if !strings.Contains(block, want) {
			t.Errorf("figures lack %q:\n%s", want, block)
		}
	}
	problems := strings.Join(r.Problems(), "\n")
	for _, want := range []string{"service duplicated: ns/two", "car-1's request 7", "migration edge-b/m3", "stuck in Decided", "edge-c/d1 (Destination", "stuck in Creating"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	if p := (Report{Sent: 10, Migrations: []Migration{{Phase: v1alpha1.PhaseCompleted}}}).Problems(); len(p) != 0 {
		t.Errorf("a clean run has problems: %v", p)
	}
}
