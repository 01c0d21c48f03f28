package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/edgemigrate/edgemigrate/internal/chaos"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

// recoverTimeout bounds a restart and the wait for the cluster to answer again after it.
const recoverTimeout = 2 * time.Minute

// faults strikes a plan's faults at their moments: each a SIGKILL, then a restart after
// its Down, then a wait until the cluster's public endpoint answers /readyz again. It
// records the kills and each cluster's outage, from the kill to that answer.
type faults struct {
	t     testing.TB
	f     *localfleet.Fleet
	inj   fleetInjector
	plan  chaos.Plan
	start time.Time
	// stop ends the plan early: no new fault strikes and a fault down is restarted now.
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	kills    []chaos.Target
	outages  []chaos.Outage
	problems []string
	// busy is held while a process is down or restarting.
	busy map[chaos.Target]*sync.Mutex
}

func startFaults(ctx context.Context, t testing.TB, f *localfleet.Fleet, plan chaos.Plan) *faults {
	x := &faults{t: t, f: f, inj: fleetInjector{f: f}, plan: plan, start: time.Now(), stop: make(chan struct{}),
		busy: map[chaos.Target]*sync.Mutex{}}
	x.wg.Go(func() { x.run(ctx) })
	return x
}

func (x *faults) run(ctx context.Context) {
	for _, fault := range x.plan.Faults {
		select {
		case <-time.After(time.Until(x.start.Add(fault.At))):
		case <-x.stop:
			return
		case <-ctx.Done():
			return
		}
		x.wg.Go(func() { x.strike(ctx, fault) })
	}
}

// finish strikes no more faults, restarts whatever is down and waits for it.
func (x *faults) finish() {
	x.stopOnce.Do(func() { close(x.stop) })
	x.wg.Wait()
}

func (x *faults) lock(t chaos.Target) *sync.Mutex {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t.Kind == chaos.DeschedulerStandby {
		t.Kind = chaos.DeschedulerLeader
	}
	m := x.busy[t]
	if m == nil {
		m = &sync.Mutex{}
		x.busy[t] = m
	}
	return m
}

func (x *faults) strike(ctx context.Context, fault chaos.Fault) {
	// A process still down, or still coming back, from an earlier fault (the plan keeps
	// them apart by its times; a slow restart may not) is not struck again.
	l := x.lock(fault.Target)
	if !l.TryLock() {
		x.t.Logf("chaos: skipped %s: still down or restarting from an earlier fault", fault)
		return
	}
	defer l.Unlock()
	select {
	case <-x.stop:
		return
	default:
	}
	killed := time.Now()
	restart, what, err := x.inj.kill(ctx, fault.Target)
	switch {
	case errors.Is(err, errUnsupported):
		x.t.Logf("chaos: skipped %s: %v", fault, err)
		return
	case err != nil:
		x.problem("killing %s: %v", fault.Target, err)
		return
	}
	x.mu.Lock()
	x.kills = append(x.kills, fault.Target)
	i := len(x.outages)
	x.outages = append(x.outages, chaos.Outage{Target: fault.Target, From: killed})
	x.mu.Unlock()
	x.t.Logf("chaos: +%s killed %s (%s), down for %s", killed.Sub(x.start).Round(time.Millisecond), fault.Target, what, fault.Down)

	select {
	case <-time.After(fault.Down):
	case <-x.stop:
	case <-ctx.Done():
	}
	// A restart must happen whatever the run's state: retry until it does.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recoverTimeout)
	defer cancel()
	var last error
	err = wait.PollUntilContextCancel(rctx, time.Second, true, func(ctx context.Context) (bool, error) {
		// A start that failed its wait leaves the process to the fleet's supervisor.
		if last = restart(ctx); last != nil && !strings.Contains(last.Error(), "already run") {
			x.t.Logf("chaos: restarting %s: %v (again in 1s)", fault.Target, last)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		x.problem("%s never restarted: %v (last: %v)", fault.Target, err, last)
		return
	}
	restarted := time.Now()
	if fault.Target.Cluster != "" {
		if err := x.answers(rctx, fault.Target.Cluster); err != nil {
			x.problem("%s: restarted at +%s, its cluster never answered again: %v", fault.Target, restarted.Sub(x.start).Round(time.Millisecond), err)
			return
		}
	}
	back := time.Now()
	x.mu.Lock()
	x.outages[i].To = back
	x.mu.Unlock()
	x.t.Logf("chaos: +%s %s restarted, its cluster answering after %s down", back.Sub(x.start).Round(time.Millisecond), fault.Target,
		back.Sub(killed).Round(time.Millisecond))
}

// answers waits until the cluster's public endpoint answers /readyz with 200.
func (x *faults) answers(ctx context.Context, cluster string) error {
	e, err := x.inj.edge(cluster)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		last = answering(ctx, x.f, e)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return nil
}

// answering is whether e's public endpoint answers /readyz with 200: a descheduler
// replica leads the edge and its front forwards to it.
func answering(ctx context.Context, f *localfleet.Fleet, e *localfleet.Edge) error {
	client := f.CarClient(2*time.Second, true)
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.LocatorURL+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /readyz: %s", e.ID, resp.Status)
	}
	return nil
}

func (x *faults) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	x.t.Logf("chaos: %s", msg)
	x.mu.Lock()
	x.problems = append(x.problems, msg)
	x.mu.Unlock()
}

// results returns the kills, the outages and the problems met.
func (x *faults) results() ([]chaos.Target, []chaos.Outage, []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]chaos.Target(nil), x.kills...), append([]chaos.Outage(nil), x.outages...), append([]string(nil), x.problems...)
}
