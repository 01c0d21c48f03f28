// Package clustertest runs tests against real local clusters: one set shared by a
// package's tests (started in TestMain) or a set per test.
package clustertest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/localcluster"
)

// RequireToolsEnv, when set to 1 (as `make test` and `make e2e` do), turns missing
// binaries into a failure instead of a skip.
const RequireToolsEnv = "EDGEMIGRATE_REQUIRE_TOOLS"

// RequireRealNodesEnv, when set to 1 (as .ci/run does), turns a machine that cannot run
// real nodes (not root, no containerd, no images) into a failure instead of a skip.
const RequireRealNodesEnv = "EDGEMIGRATE_REQUIRE_REAL_NODES"

// startTimeout bounds starting a set of clusters, binaries' cold start included.
const startTimeout = 3 * time.Minute

// Start starts n clusters for one test and stops them when it ends, printing the tail of
// every component's log if it failed. Without the binaries it skips, loudly, unless
// EDGEMIGRATE_REQUIRE_TOOLS=1. Under -short it skips: clusters are not unit tests.
func Start(t testing.TB, n int, opts localcluster.Options) []*localcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: starts real Kubernetes clusters; not run with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	clusters, err := localcluster.StartN(ctx, n, opts)
	if err != nil {
		if skip, reason := skipReason(err); skip {
			t.Skip(reason)
		}
		t.Fatalf("starting %d clusters: %v", n, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range clusters {
				t.Log(c.LogTails(30))
			}
		}
		localcluster.StopAll(clusters)
	})
	return clusters
}

// Shared holds clusters started once for a whole test package by Main.
type Shared struct {
	Clusters []*localcluster.Cluster
	// Err is why the clusters could not be started; the package's tests report it.
	Err error
}

// Main starts n clusters for the package (unless -short), runs its tests, stops the
// clusters and exits. Tests reach the clusters through shared.Require.
//
//	var shared clustertest.Shared
//	func TestMain(m *testing.M) { clustertest.Main(m, 2, localcluster.Options{}, &shared) }
func Main(m *testing.M, n int, opts localcluster.Options, shared *Shared) {
	os.Exit(run(m, n, opts, shared))
}

func run(m *testing.M, n int, opts localcluster.Options, shared *Shared) int {
	// testing.Short needs parsed flags; m.Run would parse them too late.
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		shared.Err = errShort
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	shared.Clusters, shared.Err = localcluster.StartN(ctx, n, opts)
	cancel()
	code := m.Run()
	if code != 0 {
		for _, c := range shared.Clusters {
			fmt.Fprintln(os.Stderr, c.LogTails(30))
		}
	}
	localcluster.StopAll(shared.Clusters)
	return code
}

var errShort = errors.New("SKIP: starts real Kubernetes clusters; not run with -short")

// Require returns the shared clusters, or skips or fails the test as Start would.
func (s *Shared) Require(t testing.TB) []*localcluster.Cluster {
	t.Helper()
	if s.Err != nil {
		if skip, reason := skipReason(s.Err); skip {
			t.Skip(reason)
		}
		t.Fatalf("shared clusters did not start: %v", s.Err)
	}
	return s.Clusters
}

// Namespace creates a namespace named after the test in c, deleted when the test ends, so
// tests sharing a cluster stay independent.
func Namespace(t testing.TB, c *localcluster.Cluster, labels map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := c.Namespace(ctx, namespacePrefix(t.Name()), labels)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting namespace %s: %v", ns, err)
		}
	})
	return ns
}

// namespacePrefix turns a test name into a DNS label prefix.
func namespacePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "test"
	}
	return s
}

func skipReason(err error) (bool, string) {
	if errors.Is(err, errShort) {
		return true, err.Error()
	}
	return SkipReason(err)
}

// SkipReason says whether a failure to start clusters means the test should skip, and
// why: missing binaries, or a machine that cannot run real nodes, unless the environment
// (RequireToolsEnv, RequireRealNodesEnv) requires them.
func SkipReason(err error) (bool, string) {
	if errors.Is(err, localcluster.ErrToolsMissing) && os.Getenv(RequireToolsEnv) != "1" {
		return true, "SKIP: real-cluster test needs the pinned binaries: " + err.Error()
	}
	if (errors.Is(err, localcluster.ErrRealNodesUnavailable) || errors.Is(err, localcluster.ErrImagesMissing)) &&
		os.Getenv(RequireRealNodesEnv) != "1" {
		return true, "SKIP: real-node test (" + RequireRealNodesEnv + "=1 makes this a failure): " + err.Error()
	}
	return false, ""
}
