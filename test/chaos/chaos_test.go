package chaos

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/chaos"
)

// Defaults of the short run inside `make test`; `make chaos` sets CHAOS_MIGRATIONS=50 and
// CHAOS_SEED=random.
const (
	defaultSeed       = 17
	defaultMigrations = 10
	// defaultSettle bounds the wait, once the faults stop, for every migration to end and
	// every service to have one copy: more than --migration-timeout.
	defaultSettle = 2 * time.Minute
	// grace is how long after a cluster answers again a failed request still counts as in
	// its outage: the gateways and the cars hear of the recovery through their own
	// connections and watches.
	grace = 3 * time.Second
)

// config is the run's size, from the environment.
type config struct {
	seed       uint64
	migrations int
	// duration bounds the driving (and the plan's faults); settle the wait after it.
	duration, settle time.Duration
	// mobilityCars and offloads are how many services of each kind the run moves.
	mobilityCars, offloads int
}

func readConfig(t testing.TB) config {
	t.Helper()
	c := config{seed: defaultSeed, migrations: defaultMigrations, settle: defaultSettle}
	switch s := os.Getenv("CHAOS_SEED"); s {
	case "":
	case "random":
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.seed = binary.LittleEndian.Uint64(b[:]) >> 1 // printable as a positive int64 too
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: a number or random", s)
		}
		c.seed = n
	}
	if s := os.Getenv("CHAOS_MIGRATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CHAOS_MIGRATIONS=%q: a positive number", s)
		}
		c.migrations = n
	}
	// About 10 s a migration with three cars moving at once on a loaded machine; two
	// minutes at least, so that every kind of fault has its chance.
	c.duration = max(2*time.Minute, time.Duration(c.migrations)*8*time.Second)
	for env, d := range map[string]*time.Duration{"CHAOS_DURATION": &c.duration, "CHAOS_SETTLE": &c.settle} {
		if s := os.Getenv(env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				t.Fatalf("%s=%q: a positive duration", env, s)
			}
			*d = v
		}
	}
	c.mobilityCars, c.offloads = 3, 1
	if c.migrations >= 30 {
		c.mobilityCars, c.offloads = maxMobilityCars, maxOffloads
	}
	c.offloads = min(c.offloads, c.migrations-1)
	return c
}

// TestE2EChaos is the chaos run (see the package's documentation). It prints its figure
// block; it fails when a service is lost or duplicated, a car's request failed outside the
// own outage of a cluster it went through, or a migration did not end.
func TestE2EChaos(t *testing.T) {
	cfg := readConfig(t)
	f := shared.Require(t)
	var ids []string
	for _, e := range f.Edges {
		ids = append(ids, e.ID)
	}
	plan, err := chaos.NewPlan(chaos.PlanOptions{Seed: cfg.seed, Clusters: ids, Span: cfg.duration, EveryKindFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos run: seed %d (CHAOS_SEED=%d replays it), %d migrations, %d mobility cars, %d offloads, driving for at most %s",
		cfg.seed, cfg.seed, cfg.migrations, cfg.mobilityCars, cfg.offloads, cfg.duration)
	var planned []string
	for _, fault := range plan.Faults {
		planned = append(planned, fault.String())
	}
	t.Logf("chaos plan: %d faults, kube-apiserver of %s only: %s", len(plan.Faults), plan.APIServerCluster, strings.Join(planned, "; "))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+cfg.duration+cfg.settle)
	defer cancel()
	r := newRun(ctx, t, f, cfg)
	r.setup()

	began := time.Now()
	x := startFaults(ctx, t, f, plan)
	r.drive(plan.Covered() + 5*time.Second)
	x.finish()
	settled := r.settle()
	results := r.stopCars()
	kills, outages, faultProblems := x.results()

	rep := chaos.Report{Seed: cfg.seed, Clusters: len(f.Edges), Took: time.Since(began), Migrations: r.w.all(),
		Kills: kills, Grace: grace, InOutage: map[chaos.Kind]int{}}
	serving, unmarked, err := r.census()
	if err != nil {
		t.Fatalf("counting the services' copies: %v", err)
	}
	rep.Services = len(serving)
	rep.Lost, rep.Duplicated = chaos.Copies(serving)
	for _, id := range slices.Sorted(maps.Keys(results)) {
		res := results[id]
		in, out := chaos.SplitFailures(res, outages, grace)
		rep.Sent += len(res)
		rep.Failed += len(out)
		for kind, rs := range in {
			rep.InOutage[kind] += len(rs)
			rep.Failed += len(rs)
		}
		for _, o := range out {
			rep.Outside = append(rep.Outside, chaos.Failure{Car: id, Result: o})
		}
	}
	lines := rep.Lines()
	lines = append(lines, r.movesLine(), outageLine(outages, began), settled,
		fmt.Sprintf("copies serving without the webhook's marks (admitted while it was down; no trigger moves them): %d %v", len(unmarked), unmarked))
	t.Logf("chaos figures:\n%s", strings.Join(lines, "\n"))

	problems := append(rep.Problems(), faultProblems...)
	problems = append(problems, r.problems()...)
	if len(problems) > 0 {
		t.Errorf("the chaos run (seed %d) failed:\n%s\n%s", cfg.seed, strings.Join(problems, "\n"), r.state())
	}
}

// outageLine sums each cluster's outages and the ledger's.
func outageLine(outages []chaos.Outage, began time.Time) string {
	sum := map[string]time.Duration{}
	var order []string
	for _, o := range outages {
		key := o.Target.Cluster
		if key == "" {
			key = "ledger"
		}
		to := o.To
		if to.IsZero() {
			to = time.Now()
		}
		if _, ok := sum[key]; !ok {
			order = append(order, key)
		}
		sum[key] += to.Sub(o.From)
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %s", k, sum[k].Round(100*time.Millisecond)))
	}
	return fmt.Sprintf("outages (kill → answering again, summed, overlaps counted twice) over %s: %s",
		time.Since(began).Round(time.Second), strings.Join(parts, ", "))
}
