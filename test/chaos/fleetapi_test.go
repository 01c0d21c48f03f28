package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/chaos"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

// fleetOptions adds what the chaos run needs of the fleet's fault injection: two
// descheduler replicas per edge behind its public endpoint, and the fleet restarting a
// process that exits by itself or fails its liveness probe, as a kubelet would (one the
// run kills stays down until the run starts it again).
func fleetOptions(o localfleet.Options) localfleet.Options {
	o.DeschedulerReplicas = 2
	o.Supervise = true
	return o
}

// errUnsupported: the fleet cannot kill this kind of process; the plan's fault is skipped
// and not counted.
var errUnsupported = errors.New("not supported by this fleet")

// leaderWait bounds the wait for a ready replica when a fault resolves the leader: during
// another fault there may be none.
const leaderWait = 3 * time.Second

// fleetInjector kills and restarts the fleet's processes.
type fleetInjector struct{ f *localfleet.Fleet }

func (x fleetInjector) edge(id string) (*localfleet.Edge, error) {
	for _, e := range x.f.Edges {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no edge %q", id)
}

// kill SIGKILLs t's process and returns how to start it again and which process it was.
func (x fleetInjector) kill(ctx context.Context, t chaos.Target) (restart func(context.Context) error, what string, err error) {
	var target localfleet.Target
	switch t.Kind {
	case chaos.Ledger:
		target = localfleet.Target{Name: localfleet.LedgerTarget}
		what = fmt.Sprintf("pid %d", x.f.LedgerPID())
	case chaos.DeschedulerLeader, chaos.DeschedulerStandby:
		e, err := x.edge(t.Cluster)
		if err != nil {
			return nil, "", err
		}
		i, role := x.replica(ctx, e, t.Kind == chaos.DeschedulerLeader)
		if i < 0 {
			return nil, "", errors.New("no descheduler replica running")
		}
		target = localfleet.Target{Edge: e.ID, Name: localfleet.ReplicaName(i)}
		what = fmt.Sprintf("%s, %s, pid %d", target.Name, role, e.ReplicaPID(i))
	case chaos.Extender, chaos.Webhook, chaos.APIServer:
		e, err := x.edge(t.Cluster)
		if err != nil {
			return nil, "", err
		}
		name := map[chaos.Kind]string{chaos.Extender: localfleet.ProcessExtender, chaos.Webhook: localfleet.ProcessWebhook,
			chaos.APIServer: localfleet.ProcessAPIServer}[t.Kind]
		target = localfleet.Target{Edge: e.ID, Name: name}
		what = fmt.Sprintf("pid %d", e.PID(name))
		if t.Kind == chaos.APIServer {
			what = "its only instance" // the cluster keeps its components' pids to itself
		}
	default:
		return nil, "", errUnsupported
	}
	if err := x.f.Kill(target); err != nil {
		return nil, "", fmt.Errorf("killing %s: %w", target, err)
	}
	return func(ctx context.Context) error { return x.f.Start(ctx, target) }, what, nil
}

// replica resolves a descheduler fault: the ready replica (the leader) or another running
// one (a standby). Without a ready one, the first running replica is the leader's stand-in.
func (x fleetInjector) replica(ctx context.Context, e *localfleet.Edge, leader bool) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	ready, err := e.LeaderReplica(ctx)
	var running []int
	for i := range e.Replicas() {
		if e.ReplicaPID(i) != 0 {
			running = append(running, i)
		}
	}
	if err != nil || ready < 0 {
		if len(running) == 0 {
			return -1, ""
		}
		if leader || len(running) == 1 {
			return running[0], "none ready"
		}
		return running[1], "none ready"
	}
	if leader {
		return ready, "the leader"
	}
	for _, i := range running {
		if i != ready {
			return i, "a standby"
		}
	}
	return ready, "the leader, no standby running"
}
