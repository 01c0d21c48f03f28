package main

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// demoOnly are the packages (and everything under them) that serve the demo and the tests:
// cluster launchers, a fleet of them, the dashboard. The binary the chart runs must not link
// them.
var demoOnly = []string{"internal/demo", "internal/dashboard", "localcluster", "internal/localfleet"}

// TestProductLinksNoDemo lists what `go build ./cmd/edgemigrate` links and fails on any
// package of the demo's.
func TestProductLinksNoDemo(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("SKIP: the go command is not on PATH, so the dependencies of cmd/edgemigrate cannot be listed")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list -deps: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/edgemigrate/edgemigrate/"
	var own, found []string
	for _, pkg := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(pkg, module)
		if !ok {
			continue
		}
		own = append(own, rest)
		for _, d := range demoOnly {
			if rest == d || strings.HasPrefix(rest, d+"/") {
				found = append(found, pkg)
			}
		}
	}
	// The listing itself is checked, so that a broken one cannot pass for a clean one.
	if !slices.Contains(own, "cmd/edgemigrate/app") || !slices.Contains(own, "extender") {
		t.Fatalf("go list -deps did not list the binary's own packages; got %v", own)
	}
	if len(found) > 0 {
		t.Fatalf("cmd/edgemigrate links the demo's packages %v; they belong in cmd/edgemigrate-demo", found)
	}
}
