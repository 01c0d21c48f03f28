package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/car"
)

// Outage is the span in which a killed process's cluster may fail a car: from the kill
// until the cluster answers again after the restart. A ledger outage is no cluster's: the
// gateways must keep routing without the ledger. To is zero while it lasts.
type Outage struct {
	Target   Target
	From, To time.Time
}

// covers is whether the outage, widened by grace after its end, overlaps [from, to].
func (o Outage) covers(cluster string, from, to time.Time, grace time.Duration) bool {
	if o.Target.Cluster == "" || o.Target.Cluster != cluster {
		return false
	}
	return !o.From.After(to) && (o.To.IsZero() || !o.To.Add(grace).Before(from))
}

// SplitFailures returns the failed requests in the own outage of a cluster they went
// through (Via: the gateway asked first, then each one redirected to), by the kind of the
// fault that made the outage, and the others. A request that reached no gateway (Via
// empty: the car's own limit) is never in an outage.
func SplitFailures(results []car.Result, outages []Outage, grace time.Duration) (inOutage map[Kind][]car.Result, outside []car.Result) {
	inOutage = map[Kind][]car.Result{}
	for _, r := range results {
		if r.OK() {
			continue
		}
		if o, ok := outageOf(r, outages, grace); ok {
			inOutage[o.Target.Kind] = append(inOutage[o.Target.Kind], r)
		} else {
			outside = append(outside, r)
		}
	}
	return inOutage, outside
}

// outageOf is the outage a failed request falls in, of the last cluster it reached first:
// the one that failed it.
func outageOf(r car.Result, outages []Outage, grace time.Duration) (Outage, bool) {
	end := r.Start.Add(r.Latency)
	for _, cluster := range slices.Backward(r.Via) {
		for _, o := range outages {
			if o.covers(cluster, r.Start, end, grace) {
				return o, true
			}
		}
	}
	return Outage{}, false
}

// Copies checks the services' serving copies (service → cluster → pods Running, Ready and
// not being deleted): lost are those with none, duplicated those with more than one.
func Copies(serving map[string]map[string]int) (lost, duplicated []string) {
	for _, svc := range slices.Sorted(maps.Keys(serving)) {
		n := 0
		var where []string
		for _, cluster := range slices.Sorted(maps.Keys(serving[svc])) {
			if c := serving[svc][cluster]; c > 0 {
				n += c
				where = append(where, fmt.Sprintf("%s×%d", cluster, c))
			}
		}
		switch {
		case n == 0:
			lost = append(lost, svc)
		case n > 1:
			duplicated = append(duplicated, svc+" ("+strings.Join(where, " ")+")")
		}
	}
	return lost, duplicated
}

// Failure is one car's failed request.
type Failure struct {
	Car string
	car.Result
}

// Migration is the last state a watch saw of a Migration.
type Migration struct {
	Cluster, Name, Workload string
	Role                    v1alpha1.MigrationRole
	Reason                  v1alpha1.MigrationReason
	Phase                   v1alpha1.MigrationPhase
	// Why is Status.Reason and Status.Message.
	Why string
}

func (m Migration) String() string {
	return fmt.Sprintf("%s/%s (%s %s of %s) %s %q", m.Cluster, m.Name, m.Role, m.Reason, m.Workload, m.Phase, m.Why)
}

// Unfinished is why m did not end as the run demands ("" when it did): Completed, or
// Aborted or Failed with a reason.
func (m Migration) Unfinished() string {
	switch m.Phase {
	case v1alpha1.PhaseCompleted:
		return ""
	case v1alpha1.PhaseAborted, v1alpha1.PhaseFailed:
		if strings.TrimSpace(m.Why) == "" {
			return "ended " + string(m.Phase) + " without a reason"
		}
		return ""
	}
	return "stuck in " + string(m.Phase)
}

// Report is what a chaos run measured.
type Report struct {
	Seed     uint64
	Clusters int
	// Took is the run from the first car move to the end of the settling wait.
	Took time.Duration
	// Migrations are every Migration the run's watches saw, of both roles; the figures
	// count the source ones.
	Migrations []Migration
	// Kills are the faults struck, by target.
	Kills []Target
	// Services are how many the run checked; Lost and Duplicated which ended with no
	// serving copy or more than one.
	Services         int
	Lost, Duplicated []string
	// Sent and Failed are the cars' requests; InOutage those in the own outage of a
	// cluster they went through, by the kind of fault; Outside the others.
	Sent, Failed int
	InOutage     map[Kind]int
	Outside      []Failure
	// Grace is how long after a cluster's recovery its outage still counts.
	Grace time.Duration
}

// Outcomes counts the source migrations by phase.
func (r Report) Outcomes() map[v1alpha1.MigrationPhase]int {
	n := map[v1alpha1.MigrationPhase]int{}
	for _, m := range r.Migrations {
		if m.Role == v1alpha1.RoleSource {
			n[m.Phase]++
		}
	}
	return n
}

// Sources counts the source migrations.
func (r Report) Sources() int {
	n := 0
	for _, m := range r.Migrations {
		if m.Role == v1alpha1.RoleSource {
			n++
		}
	}
	return n
}

// Unfinished lists the migrations that did not end as the run demands.
func (r Report) Unfinished() []string {
	var out []string
	for _, m := range r.Migrations {
		if why := m.Unfinished(); why != "" {
			out = append(out, m.String()+": "+why)
		}
	}
	return out
}

// KillCounts counts the kills by kind.
func (r Report) KillCounts() map[Kind]int {
	n := map[Kind]int{}
	for _, t := range r.Kills {
		n[t.Kind]++
	}
	return n
}

// Lines is the run's figure block.
func (r Report) Lines() []string {
	outcomes := r.Outcomes()
	var phases []string
	for _, p := range []v1alpha1.MigrationPhase{v1alpha1.PhaseCompleted, v1alpha1.PhaseAborted, v1alpha1.PhaseFailed} {
		phases = append(phases, fmt.Sprintf("%d %s", outcomes[p], strings.ToLower(string(p))))
		delete(outcomes, p)
	}
	for _, p := range slices.Sorted(maps.Keys(outcomes)) {
		phases = append(phases, fmt.Sprintf("%d still %s", outcomes[p], p))
	}
	kills := r.KillCounts()
	var byKind []string
	for _, k := range Kinds {
		where := map[string]int{}
		for _, t := range r.Kills {
			if t.Kind == k && t.Cluster != "" {
				where[t.Cluster]++
			}
		}
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(where)) {
			parts = append(parts, fmt.Sprintf("%s %d", c, where[c]))
		}
		detail := ""
		if len(parts) > 0 {
			detail = " [" + strings.Join(parts, ", ") + "]"
		}
		byKind = append(byKind, fmt.Sprintf("%s %d%s", k, kills[k], detail))
	}
	in := 0
	var inBy []string
	for _, k := range Kinds {
		if n := r.InOutage[k]; n > 0 {
			in += n
			inBy = append(inBy, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(inBy) == 0 {
		inBy = []string{"none"}
	}
	pct := func(n int) string {
		if r.Sent == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(r.Sent))
	}
	return []string{
		fmt.Sprintf("chaos run: seed %d, %d clusters, %s", r.Seed, r.Clusters, r.Took.Round(time.Second)),
		fmt.Sprintf("migrations: %d (%s)", r.Sources(), strings.Join(phases, ", ")),
		fmt.Sprintf("kills: %d (%s)", len(r.Kills), strings.Join(byKind, ", ")),
		fmt.Sprintf("services lost: %d of %d (goal 0)", len(r.Lost), r.Services),
		fmt.Sprintf("services duplicated: %d of %d (goal 0)", len(r.Duplicated), r.Services),
		fmt.Sprintf("car requests: %d sent, %d failed (%s): %d during the killed cluster's own outage (+%s: %s), %d outside (goal 0)",
			r.Sent, r.Failed, pct(r.Failed), in, r.Grace, strings.Join(inBy, ", "), len(r.Outside)),
	}
}

// Problems are why the run fails: services lost or duplicated, requests failed outside
// their cluster's outage, migrations that did not end.
func (r Report) Problems() []string {
	var out []string
	for _, s := range r.Lost {
		out = append(out, "service lost: "+s)
	}
	for _, s := range r.Duplicated {
		out = append(out, "service duplicated: "+s)
	}
	const show = 20
	for i, res := range r.Outside {
		if i == show {
			out = append(out, fmt.Sprintf("… and %d more requests failed outside an outage", len(r.Outside)-show))
			break
		}
		out = append(out, fmt.Sprintf("%s's request %d at %s failed outside an outage after %s via %v: %s",
			res.Car, res.Seq, res.Start.Format("15:04:05.000"), res.Latency.Round(time.Millisecond), res.Via, res.Err))
	}
	for _, m := range r.Unfinished() {
		out = append(out, "migration "+m)
	}
	return out
}
