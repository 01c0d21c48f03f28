package chaos

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgemigrate/edgemigrate/internal/chaos"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
)

// fleetOptions adds what the chaos run needs of the fleet's fault injection.
func fleetOptions(o localfleet.Options) localfleet.Options {
	return o
}

// errUnsupported: the fleet cannot kill this kind of process (yet); the plan's fault is
// skipped and not counted.
var errUnsupported = errors.New("not supported by this fleet")

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
	if t.Kind == chaos.Ledger {
		return nil, "", errUnsupported
	}
	e, err := x.edge(t.Cluster)
	if err != nil {
		return nil, "", err
	}
	switch t.Kind {
	case chaos.DeschedulerLeader:
		pid := e.DeschedulerPID()
		if pid == 0 {
			return nil, "", errors.New("no descheduler running")
		}
		e.KillDescheduler()
		return e.StartDescheduler, fmt.Sprintf("descheduler pid %d", pid), nil
	}
	return nil, "", errUnsupported
}
