#!/usr/bin/env bash
# Builds bin/edgemigrate-scheduler: kube-scheduler with the Jetson unified-memory plugin
# (scheduler/), from the Go module proxy's k8s.io/kubernetes and this checkout. Its version
# says both: v1.37.2+edgemigrate.<commit>, the tree state dirty when the checkout has changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/bin}
mkdir -p "$bin"

# The version of k8s.io/kubernetes that scheduler/go.mod requires.
k8s_version=$(cd "$root/scheduler" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_minor=${k8s_version#v1.}; k8s_minor=${k8s_minor%%.*}
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
tree=clean
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then tree=dirty; fi
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s_version+edgemigrate.$commit -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
	ldflags+=" -X $pkg.gitTreeState=$tree -X $pkg.gitCommit=$commit"
done

# `build-scheduler.sh static`: linked statically, for its image (`make images`). It is
# linked the way hack/build-tools.sh links the static kube-scheduler, not built without cgo:
# the compiled packages are then the very ones of that kube-scheduler and of the dynamic
# build below, so a cold `make test` compiles Kubernetes' scheduler once rather than twice.
if [ "${1:-}" = static ]; then
	printf '==> edgemigrate-scheduler (kube-scheduler %s with the Jetson plugin, edgemigrate %s, %s), static linux/amd64, for its image\n' "$k8s_version" "$commit" "$tree"
	mkdir -p "$bin/static"
	(cd "$root/scheduler" && go build -trimpath -ldflags "-s -w$ldflags -linkmode external -extldflags -static" \
		-o "$bin/static/edgemigrate-scheduler" ./cmd/edgemigrate-scheduler) 2>&1 |
		{ grep -v -e 'statically linked applications requires at runtime' -e 'in function `' -e '^# ' || true; }
	exit 0
fi

printf '==> edgemigrate-scheduler (kube-scheduler %s with the Jetson plugin, edgemigrate %s, %s)\n' "$k8s_version" "$commit" "$tree"
(cd "$root/scheduler" && go build -trimpath -ldflags "-s -w$ldflags" -o "$bin/edgemigrate-scheduler" ./cmd/edgemigrate-scheduler)
