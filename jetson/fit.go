package jetson

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Add returns the sum of two demands: what pods on one node claim together.
func (d Demand) Add(o Demand) Demand {
	return Demand{
		CPUMilli:  d.CPUMilli + o.CPUMilli,
		Memory:    d.Memory + o.Memory,
		GPUMemory: d.GPUMemory + o.GPUMemory,
		GPUSlots:  d.GPUSlots + o.GPUSlots,
	}
}

// Sub returns d less o: what remains claimed once a pod leaves.
func (d Demand) Sub(o Demand) Demand {
	return Demand{
		CPUMilli:  d.CPUMilli - o.CPUMilli,
		Memory:    d.Memory - o.Memory,
		GPUMemory: d.GPUMemory - o.GPUMemory,
		GPUSlots:  d.GPUSlots - o.GPUSlots,
	}
}

// Fit tells whether a pod demanding pod fits a node of capacity c on which the pods already
// there (bound or assumed) claim used. It returns nil when it fits, otherwise one sentence
// per exhausted resource, with quantities. Nodes that are not Jetson always fit: the
// default scheduler's own checks apply to them.
func Fit(c Capacity, used, pod Demand) []string {
	reasons, fits := AppendFit(nil, c, used, pod)
	if fits {
		return nil
	}
	return strings.Split(string(reasons), reasonSeparator)
}

const reasonSeparator = "; "

// AppendFit is Fit for callers judging thousands of nodes at a time: it appends Fit's
// sentences, joined as Reason joins them, to dst and reports whether the pod fits.
func AppendFit(dst []byte, c Capacity, used, pod Demand) ([]byte, bool) {
	if !c.Jetson {
		return dst, true
	}
	start := len(dst)
	sep := func() {
		if len(dst) > start {
			dst = append(dst, reasonSeparator...)
		}
	}
	if need := pod.Unified(); need > 0 && need > c.Memory-used.Unified() {
		dst = append(dst, "unified memory: need "...)
		dst = AppendBytes(dst, need)
		dst = append(dst, ", free "...)
		dst = AppendBytes(dst, c.Memory-used.Unified())
		dst = append(dst, " of "...)
		dst = AppendBytes(dst, c.Memory)
		dst = append(dst, " on "...)
		dst = append(dst, modelName(c)...)
	}
	if pod.GPUSlots > 0 && pod.GPUSlots > c.GPUSlots-used.GPUSlots {
		sep()
		dst = append(dst, "GPU slots: need "...)
		dst = strconv.AppendInt(dst, pod.GPUSlots, 10)
		dst = append(dst, ", free "...)
		dst = strconv.AppendInt(dst, max(c.GPUSlots-used.GPUSlots, 0), 10)
		dst = append(dst, " of "...)
		dst = strconv.AppendInt(dst, c.GPUSlots, 10)
	}
	if pod.CPUMilli > 0 && pod.CPUMilli > c.CPUMilli-used.CPUMilli {
		sep()
		dst = append(dst, "CPU: need "...)
		dst = appendMilli(dst, pod.CPUMilli)
		dst = append(dst, ", free "...)
		dst = appendMilli(dst, max(c.CPUMilli-used.CPUMilli, 0))
	}
	return dst, len(dst) == start
}

// Reason joins Fit's sentences into one, as the scheduler shows it in the pod's events.
func Reason(reasons []string) string { return strings.Join(reasons, reasonSeparator) }

func modelName(c Capacity) string {
	if c.Model == "" {
		return "Jetson"
	}
	return c.Model
}

// Policy is how fitting nodes are ranked.
type Policy string

const (
	// Binpack prefers the fullest node that fits, keeping large holes free for large models.
	Binpack Policy = "binpack"
	// Spread prefers the emptiest node, leaving every node headroom.
	Spread Policy = "spread"
)

// ParsePolicy checks a policy name; the empty string is Binpack.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", Binpack:
		return Binpack, nil
	case Spread:
		return Spread, nil
	}
	return "", fmt.Errorf("scoring policy %q: want %s or %s", s, Binpack, Spread)
}

// MaxScore is the best score.
const MaxScore = 100

// Score ranks a node that fits, 0 (worst) to MaxScore (best), by its unified memory use
// once the pod is placed. Nodes that are not Jetson, or have no memory for pods, score 0:
// the extender has no opinion about them.
func Score(p Policy, c Capacity, used, pod Demand) int64 {
	if !c.Jetson || c.Memory <= 0 {
		return 0
	}
	// Floating point: sums of many large demands times 100 could overflow int64.
	ratio := float64(used.Unified()+pod.Unified()) / float64(c.Memory)
	ratio = math.Min(math.Max(ratio, 0), 1)
	score := int64(math.Round(ratio * MaxScore))
	if p == Spread {
		return MaxScore - score
	}
	return score
}

// FormatBytes writes a byte count as people read memory sizes: 6.0Gi, 512.0Mi, 300B.
// Negative values, as free memory on an overcommitted node, read as 0B.
func FormatBytes(b int64) string { return string(AppendBytes(nil, b)) }

// AppendBytes appends FormatBytes(b) to dst.
func AppendBytes(dst []byte, b int64) []byte {
	units := [...]struct {
		shift  uint
		suffix string
	}{{40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}}
	if b <= 0 {
		return append(dst, "0B"...)
	}
	for _, u := range units {
		if b >= 1<<u.shift {
			dst = strconv.AppendFloat(dst, float64(b)/float64(int64(1)<<u.shift), 'f', 1, 64)
			return append(dst, u.suffix...)
		}
	}
	dst = strconv.AppendInt(dst, b, 10)
	return append(dst, 'B')
}

func appendMilli(dst []byte, m int64) []byte {
	if m%1000 == 0 {
		return strconv.AppendInt(dst, m/1000, 10)
	}
	dst = strconv.AppendInt(dst, m, 10)
	return append(dst, 'm')
}
