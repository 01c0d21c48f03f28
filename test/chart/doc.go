// Package chart tests the Helm chart charts/edgemigrate: its rendered objects for several
// value sets (valid, hardened, least privilege), its values schema, its agreement with the
// plain manifests, and a real `helm install` into a local cluster.
package chart
