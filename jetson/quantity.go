package jetson

import "k8s.io/apimachinery/pkg/api/resource"

// ParseQuantity parses a non-negative quantity of at most 1Pi, refusing in microseconds the
// inputs (such as "1e-99999999") on which resource.ParseQuantity spends minutes. Use it for
// any quantity read from a request rather than from the API server.
func ParseQuantity(s string) (resource.Quantity, error) { return parseQuantity(s) }
