#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s). `go test` alone runs
# only the committed seed corpora; this searches for new failing inputs, which `go test`
# writes under the package's testdata/fuzz/ to be committed with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
# Minimising each new interesting input may take a minute by default, during which nothing
# else is tried: with short runs that would be most of the time.
minimize=${FUZZMINIMIZETIME:-5s}
for pkg in $(go list ./...); do
	# -short: a package's TestMain may start clusters, which fuzzing does not need.
	for target in $(go test -short -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "==> $pkg $target ($fuzztime)"
		go test -short "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize"
	done
done
