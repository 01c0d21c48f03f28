package jetson

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Flags are the command-line settings of the Jetson model, shared by every part that fits
// pods to nodes (the extender and the descheduler's bidding), so both judge alike.
type Flags struct {
	// Policy is binpack or spread.
	Policy string
	// MemoryReserve is kept free on every Jetson, a quantity such as 1Gi.
	MemoryReserve string
	// NodeSelector decides which nodes are Jetson.
	NodeSelector string
}

// DefaultFlags returns the defaults.
func DefaultFlags() Flags {
	return Flags{Policy: string(Binpack), MemoryReserve: "0", NodeSelector: DefaultSelectorString}
}

// AddFlags binds f to flags.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Policy, "policy", f.Policy, "how fitting Jetson nodes are ranked: binpack (keep large holes for large models) or spread")
	fs.StringVar(&f.MemoryReserve, "memory-reserve", f.MemoryReserve, "unified memory kept free on every Jetson for the OS and CUDA, a quantity such as 1Gi")
	fs.StringVar(&f.NodeSelector, "jetson-node-selector", f.NodeSelector, "label selector of the nodes treated as Jetson; others pass through")
}

// Parse checks the flags and returns the node configuration and ranking policy.
func (f Flags) Parse() (Config, Policy, error) {
	policy, err := ParsePolicy(f.Policy)
	if err != nil {
		return Config{}, "", err
	}
	reserve, err := resource.ParseQuantity(f.MemoryReserve)
	if err != nil || reserve.Sign() < 0 {
		return Config{}, "", fmt.Errorf("--memory-reserve %q: want a non-negative quantity such as 1Gi", f.MemoryReserve)
	}
	selector, err := ParseSelector(f.NodeSelector)
	if err != nil {
		return Config{}, "", err
	}
	return Config{Selector: selector, MemoryReserve: reserve.Value()}, policy, nil
}
