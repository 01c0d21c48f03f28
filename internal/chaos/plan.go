// Package chaos holds the pure parts of the chaos run (test/chaos): the seeded plan of
// SIGKILLs, the tallies of what the run saw, and its figure block. Nothing here starts or
// kills a process; the same seed gives the same plan.
package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is what a fault kills.
type Kind string

// The kinds of fault: every edgemigrate process of an edge, the shared ledger server and
// one cluster's kube-apiserver.
const (
	// DeschedulerLeader and DeschedulerStandby are a descheduler replica, resolved when the
	// fault strikes: the one holding the Lease (the ready one), or another.
	DeschedulerLeader  Kind = "descheduler-leader"
	DeschedulerStandby Kind = "descheduler-standby"
	Extender           Kind = "extender"
	Webhook            Kind = "webhook"
	Ledger             Kind = "ledger"
	APIServer          Kind = "kube-apiserver"
)

// Kinds are every kind, in the order the figures list them.
var Kinds = []Kind{DeschedulerLeader, DeschedulerStandby, Extender, Webhook, Ledger, APIServer}

// Target is one process to kill: a kind, and the cluster it belongs to (none for Ledger).
type Target struct {
	Kind    Kind
	Cluster string
}

func (t Target) String() string {
	if t.Cluster == "" {
		return string(t.Kind)
	}
	return t.Cluster + "/" + string(t.Kind)
}

// process is the process a target names, for overlap checks: both descheduler kinds of a
// cluster may strike the same replica once the standby has become the leader.
func (t Target) process() Target {
	if t.Kind == DeschedulerStandby {
		t.Kind = DeschedulerLeader
	}
	return t
}

// Fault is one SIGKILL At after the run's start, restarted Down later.
type Fault struct {
	Target Target
	At     time.Duration
	Down   time.Duration
}

func (f Fault) String() string {
	return fmt.Sprintf("%s at +%s for %s", f.Target, f.At.Round(time.Millisecond), f.Down.Round(time.Millisecond))
}

// Range is a closed interval of durations.
type Range struct{ Min, Max time.Duration }

func (r Range) draw(rng *rand.Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rng.Int64N(int64(r.Max-r.Min)+1))
}

// PlanOptions configure NewPlan. Clusters and Span are required.
type PlanOptions struct {
	Seed uint64
	// Clusters are the edge clusters' ids.
	Clusters []string
	// Span bounds the faults: each strikes before Span after the start.
	Span time.Duration
	// Warmup is when the first fault may strike; default DefaultWarmup.
	Warmup time.Duration
	// Gap separates one fault's moment from the next; default DefaultGap.
	Gap Range
	// Down is how long a killed process stays down; default DefaultDown.
	Down Range
	// MaxConcurrent bounds the faults down at once (by the plan's times); default 2.
	MaxConcurrent int
	// EveryKindFirst draws the first faults' kinds as a shuffle of every kind, so that a
	// short run meets each.
	EveryKindFirst bool
}

// Defaults of PlanOptions.
var (
	DefaultWarmup = 5 * time.Second
	DefaultGap    = Range{Min: 2 * time.Second, Max: 8 * time.Second}
	DefaultDown   = Range{Min: 1 * time.Second, Max: 8 * time.Second}
)

// Plan is the seeded schedule of faults of one run.
type Plan struct {
	Seed uint64
	// APIServerCluster is the one cluster whose kube-apiserver the plan kills.
	APIServerCluster string
	// Faults are sorted by At.
	Faults []Fault
}

// redraws bounds the draws of a target that does not clash with the faults still down.
const redraws = 8

// NewPlan draws the faults of a run from o.Seed: moments Gap apart from Warmup until Span,
// each a kind drawn uniformly (or every kind first, EveryKindFirst), the cluster too (but
// one cluster's kube-apiserver only),
// down for a Down drawn each time. A process is never killed again while the plan has it
// down, and no more than MaxConcurrent faults are down at once: such a moment is skipped.
func NewPlan(o PlanOptions) (Plan, error) {
	if len(o.Clusters) == 0 {
		return Plan{}, errors.New("chaos plan: no clusters")
	}
	if o.Span <= 0 {
		return Plan{}, errors.New("chaos plan: the span must be positive")
	}
	if o.Warmup <= 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Gap == (Range{}) {
		o.Gap = DefaultGap
	}
	if o.Down == (Range{}) {
		o.Down = DefaultDown
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 2
	}
	if o.Gap.Min <= 0 || o.Gap.Max < o.Gap.Min || o.Down.Min <= 0 || o.Down.Max < o.Down.Min {
		return Plan{}, fmt.Errorf("chaos plan: gap %v and down %v must be positive, min ≤ max", o.Gap, o.Down)
	}
	// Two streams from the seed; the constant only keeps them apart.
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	p := Plan{Seed: o.Seed, APIServerCluster: o.Clusters[rng.IntN(len(o.Clusters))]}
	// first are the kinds still to come first (EveryKindFirst), in a seeded order.
	var first []Kind
	if o.EveryKindFirst {
		for _, i := range rng.Perm(len(Kinds)) {
			first = append(first, Kinds[i])
		}
	}
	for at := o.Warmup; at < o.Span; at += o.Gap.draw(rng) {
		var down []Fault
		for _, f := range p.Faults {
			if f.At+f.Down > at {
				down = append(down, f)
			}
		}
		if len(down) >= o.MaxConcurrent {
			continue
		}
		for try := range redraws {
			t := Target{Kind: Kinds[rng.IntN(len(Kinds))]}
			if len(first) > 0 {
				// Until each has struck, the next in the order that does not clash.
				if try >= len(first) {
					break
				}
				t.Kind = first[try]
			}
			switch t.Kind {
			case Ledger:
			case APIServer:
				t.Cluster = p.APIServerCluster
			default:
				t.Cluster = o.Clusters[rng.IntN(len(o.Clusters))]
			}
			if clashes(t, down) {
				continue
			}
			p.Faults = append(p.Faults, Fault{Target: t, At: at, Down: o.Down.draw(rng)})
			if i := slices.Index(first, t.Kind); i >= 0 {
				first = slices.Delete(first, i, i+1)
			}
			break
		}
	}
	return p, nil
}

func clashes(t Target, down []Fault) bool {
	for _, f := range down {
		if f.Target.process() == t.process() {
			return true
		}
	}
	return false
}

// Covered is when every kind of fault has struck and been restarted, by the plan's times:
// the end of its first faults, one of each kind, with EveryKindFirst. Zero when some kind
// never strikes.
func (p Plan) Covered() time.Duration {
	seen := map[Kind]bool{}
	var end time.Duration
	for _, f := range p.Faults {
		if !seen[f.Target.Kind] {
			seen[f.Target.Kind] = true
			end = max(end, f.At+f.Down)
		}
		if len(seen) == len(Kinds) {
			return end
		}
	}
	return 0
}

// Counts are the plan's faults by kind.
func (p Plan) Counts() map[Kind]int {
	n := map[Kind]int{}
	for _, f := range p.Faults {
		n[f.Target.Kind]++
	}
	return n
}
