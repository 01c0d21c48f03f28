//go:build tools

// Package codegen pins the code generators `make generate` runs: controller-gen for deepcopy
// and the CRD, code-generator for the typed clientset, listers and informers. Its own module
// keeps their dependencies out of the product's go.mod.
package codegen

import (
	_ "k8s.io/code-generator/cmd/client-gen"
	_ "k8s.io/code-generator/cmd/informer-gen"
	_ "k8s.io/code-generator/cmd/lister-gen"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
