//go:build tools

// Package tools pins the Kubernetes control-plane binaries the tests and the demo run.
// It is built only by hack/build-tools.sh, never imported by the product.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
