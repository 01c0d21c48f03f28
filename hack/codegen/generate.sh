#!/usr/bin/env bash
# Generates, from the markers in api/v1alpha1: deepcopy and the Migration CRD (controller-gen),
# the typed clientset, listers and informers (code-generator), into OUT (default: the
# repository, as `make generate` does; the drift test passes a temporary directory).
# The generators are built from this module, pinned by its go.mod; CODEGEN_BIN caches them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root}
bin=${CODEGEN_BIN:-$root/bin/codegen}
module=github.com/edgemigrate/edgemigrate
header=$root/hack/codegen/boilerplate.go.txt

mkdir -p "$bin"
(cd "$root/hack/codegen" && go build -o "$bin/" \
	sigs.k8s.io/controller-tools/cmd/controller-gen \
	k8s.io/code-generator/cmd/client-gen \
	k8s.io/code-generator/cmd/lister-gen \
	k8s.io/code-generator/cmd/informer-gen)

cd "$root"
mkdir -p "$out/api/v1alpha1" "$out/manifests/crds" "$out/charts/edgemigrate/crds"
# allowDangerousTypes: Location is in float degrees, as on the ledger.
"$bin/controller-gen" object:headerFile="$header" crd:crdVersions=v1,allowDangerousTypes=true paths=./api/v1alpha1 \
	output:object:dir="$out/api/v1alpha1" output:crd:dir="$out/manifests/crds"
cp "$out/manifests/crds/edgemigrate.io_migrations.yaml" "$out/charts/edgemigrate/crds/"

gen=$out/api/generated
rm -rf "$gen"
"$bin/client-gen" --go-header-file "$header" --input-base "" --input "$module/api/v1alpha1" \
	--clientset-name versioned --output-pkg "$module/api/generated/clientset" --output-dir "$gen/clientset"
"$bin/lister-gen" --go-header-file "$header" --output-pkg "$module/api/generated/listers" \
	--output-dir "$gen/listers" "$module/api/v1alpha1"
"$bin/informer-gen" --go-header-file "$header" --versioned-clientset-package "$module/api/generated/clientset/versioned" \
	--listers-package "$module/api/generated/listers" --output-pkg "$module/api/generated/informers" \
	--output-dir "$gen/informers" "$module/api/v1alpha1"
