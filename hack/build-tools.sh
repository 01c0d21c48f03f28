#!/usr/bin/env bash
# Builds the pinned binaries the tests and the demo run into bin/, from the Go module proxy.
# Idempotent: Go's build cache makes a second run take seconds. Real nodes also need Debian's
# containerd, runc, CNI plugins and iptables: installed here when missing and running as root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/bin}
mkdir -p "$bin"

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0

say() { printf '==> %s\n' "$*"; }

if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/etcd" ]; then
	say "first build of the Kubernetes tools: this takes about 10 minutes on 2 cores, seconds afterwards"
fi

k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
	k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=module-proxy"
done

# `build-tools.sh static-kube-scheduler`: the pinned kube-scheduler linked statically, for
# its image (`make images`): the same packages as bin/kube-scheduler, from the build cache.
if [ "${1:-}" = static-kube-scheduler ]; then
	say "kube-scheduler $K8S_VERSION, statically linked, for its image"
	mkdir -p "$bin/static"
	(cd "$root/hack/tools" && go build -trimpath \
		-ldflags "-s -w$k8s_ldflags -linkmode external -extldflags -static" \
		-o "$bin/static/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler) 2>&1 |
		{ grep -v -e 'statically linked applications requires at runtime' -e 'in function `' || true; }
	exit "${PIPESTATUS[0]}"
fi

say "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy $K8S_VERSION"
(cd "$root/hack/tools" && go build -trimpath -ldflags "-s -w$k8s_ldflags" -o "$bin/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler \
	k8s.io/kubernetes/cmd/kubectl \
	k8s.io/kubernetes/cmd/kubelet \
	k8s.io/kubernetes/cmd/kube-proxy)

say "etcd $ETCD_VERSION"
(cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .)

say "kwok $KWOK_VERSION"
GOBIN=$bin go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
	"sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

say "kwok stages from sigs.k8s.io/kwok@$KWOK_VERSION"
# The kwok binary has no built-in stages; take the ones its module ships, so they match it.
kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
stages="$kwok_dir/kustomize/stage"
{
	for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
		pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
		printf -- '---\n'
		cat "$stages/$f.yaml"
	done
} >"$bin/kwok-stages.yaml.tmp"
mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"

say "helm $HELM_VERSION"
GOBIN=$bin go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
	"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

# The container runtime of real nodes comes from the distribution, as on a Jetson (L4T ships
# containerd): Debian 12 has containerd 1.6.20, runc 1.1.5, CNI plugins 1.1.1 in /usr/lib/cni.
runtime_packages="containerd runc containernetworking-plugins iptables iproute2"
runtime_missing() {
	local missing=""
	command -v containerd >/dev/null || missing+=" containerd"
	command -v runc >/dev/null || missing+=" runc"
	[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || missing+=" containernetworking-plugins"
	command -v iptables >/dev/null || missing+=" iptables"
	command -v ip >/dev/null || missing+=" iproute2"
	echo "$missing"
}
missing=$(runtime_missing)
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing the real nodes' runtime from Debian:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086 # a list of package names
		apt-get install -y -qq --no-install-recommends $runtime_packages >/dev/null
	else
		say "real nodes need$missing (Debian: apt-get install $runtime_packages, as root);"
		say "without them the TestE2ERealNode tests skip, saying so"
	fi
fi
missing=$(runtime_missing)
if [ -z "$missing" ]; then
	say "real-node runtime: $(containerd --version | cut -d' ' -f3), runc $(runc --version | sed -n 's/^runc version //p')"
fi

say "tools ready in $bin"
