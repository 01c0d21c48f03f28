//go:build tools

// Package tools pins the Kubernetes binaries the tests and the demo run: the control plane,
// and the kubelet and kube-proxy of real nodes.
// It is built only by hack/build-tools.sh, never imported by the product.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
