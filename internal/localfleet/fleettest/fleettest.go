// Package fleettest runs tests against a local fleet of edge clusters with edgemigrate
// running: one fleet shared by a package's tests (started in TestMain), or one per test.
package fleettest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// RequireToolsEnv, when set to 1, turns missing binaries into a failure instead of a skip.
const RequireToolsEnv = clustertest.RequireToolsEnv

// startTimeout bounds building the binary and starting a fleet, cold starts included.
const startTimeout = 5 * time.Minute

// built is the binary BuildOnce or Main built for the package, if any.
var built string

var errShort = errors.New("SKIP: starts a fleet of real Kubernetes clusters; not run with -short")

// Shared holds the fleet started once for a whole test package by Main, when its first
// test asks for it.
type Shared struct {
	Fleet *localfleet.Fleet
	// Err is why the fleet could not be started; the package's tests report it.
	Err error

	opts    localfleet.Options
	lazy    bool // Main set opts: the first Require starts the fleet
	once    sync.Once
	cleanup func()
}

// Main builds the edgemigrate binary (unless opts.Binary is set), runs the package's tests,
// stops the shared fleet and exits. The fleet starts when a test first asks for it through
// shared.Require, so that tests starting fleets of their own (Start, which uses the same
// binary) may run alone without it.
//
//	var shared fleettest.Shared
//	func TestMain(m *testing.M) { fleettest.Main(m, localfleet.Options{Clusters: 2}, &shared) }
func Main(m *testing.M, opts localfleet.Options, shared *Shared) {
	os.Exit(run(m, opts, shared))
}

func run(m *testing.M, opts localfleet.Options, shared *Shared) int {
	// testing.Short needs parsed flags; m.Run would parse them too late.
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		shared.Err = errShort
		return m.Run()
	}
	if opts.Binary == "" {
		defer buildBinary()()
	}
	shared.opts, shared.lazy = opts, true
	code := m.Run()
	if shared.Fleet != nil {
		if code != 0 {
			fmt.Fprintln(os.Stderr, shared.Fleet.LogTails(30))
		}
		shared.Fleet.Stop()
	}
	if shared.cleanup != nil {
		shared.cleanup()
	}
	return code
}

// BuildOnce builds the edgemigrate binary once for a package whose tests start fleets of
// their own (with Start), runs the tests and removes the binary. Under -short it builds
// nothing. Start and Binary use the binary when opts.Binary is empty.
//
//	func TestMain(m *testing.M) { fleettest.BuildOnce(m) }
func BuildOnce(m *testing.M) {
	os.Exit(runBuildOnce(m))
}

func runBuildOnce(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		return m.Run()
	}
	defer buildBinary()()
	return m.Run()
}

// buildBinary builds the package's edgemigrate binary into built and returns what removes
// it. A failed build is not fatal here: Start and Binary build again and report it in the
// tests that need the binary.
func buildBinary() (remove func()) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "edgemigrate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return func() {}
	}
	if built, err = localfleet.BuildBinary(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return func() { os.RemoveAll(dir) }
}

// Require returns the shared fleet, or skips or fails the test as Start would.
func (s *Shared) Require(t testing.TB) *localfleet.Fleet {
	t.Helper()
	if s.lazy {
		s.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			s.Fleet, s.cleanup, s.Err = start(ctx, s.opts)
		})
	}
	if s.Err != nil {
		if skip, reason := skipReason(s.Err); skip {
			t.Skip(reason)
		}
		t.Fatalf("shared fleet did not start: %v", s.Err)
	}
	return s.Fleet
}

// Start starts a fleet for one test (building the binary first unless opts.Binary is set)
// and stops it when the test ends, printing every log's tail if the test failed. It skips
// under -short, and without the Kubernetes binaries unless EDGEMIGRATE_REQUIRE_TOOLS=1.
func Start(t testing.TB, opts localfleet.Options) *localfleet.Fleet {
	t.Helper()
	if testing.Short() {
		t.Skip(errShort.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	f, cleanup, err := start(ctx, opts)
	if err != nil {
		cleanup()
		if skip, reason := skipReason(err); skip {
			t.Skip(reason)
		}
		t.Fatalf("starting fleet: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(f.LogTails(30))
		}
		f.Stop()
		cleanup()
	})
	return f
}

// Binary returns the binary BuildOnce built, or builds one into a directory removed when
// the test ends.
func Binary(t testing.TB) string {
	t.Helper()
	if built != "" {
		return built
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	bin, err := localfleet.BuildBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// start checks for the Kubernetes binaries before spending a build on the edgemigrate one.
// cleanup removes the built binary; it is never nil.
func start(ctx context.Context, opts localfleet.Options) (*localfleet.Fleet, func(), error) {
	cleanup := func() {}
	if opts.BinDir == "" {
		dir, err := localcluster.FindBinDir()
		if err != nil {
			return nil, cleanup, err
		}
		opts.BinDir = dir
	}
	if opts.Binary == "" {
		opts.Binary = built
	}
	if opts.Binary == "" {
		dir, err := os.MkdirTemp("", "edgemigrate-bin-")
		if err != nil {
			return nil, cleanup, fmt.Errorf("creating a directory for the binary: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		if opts.Binary, err = localfleet.BuildBinary(ctx, dir); err != nil {
			return nil, cleanup, err
		}
	}
	f, err := localfleet.Start(ctx, opts)
	return f, cleanup, err
}

func skipReason(err error) (bool, string) {
	if errors.Is(err, errShort) {
		return true, err.Error()
	}
	return clustertest.SkipReason(err)
}
