package car

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Latency are percentiles of request latencies (nearest rank); zero without requests.
type Latency struct {
	P50, P99, Max time.Duration
}

// Window is what happened in the last Span: requests started then, with a Result.
type Window struct {
	Span time.Duration
	// Requests and Failed started within Span; Rate is Requests per second over Span.
	Requests, Failed int
	Rate             float64
	Latency          Latency
	// ByCluster counts the window's successes by the cluster that answered.
	ByCluster map[string]int
}

// Stats are a car's figures so far.
type Stats struct {
	// Sent are the requests issued (Run's ticks and Do's calls); OK and Failed those with
	// a Result; the rest are still waiting (InFlight).
	Sent, OK, Failed, InFlight int
	// FailedBy counts failures by Result.Reason.
	FailedBy map[string]int
	// Latency is over the successes among the kept Results.
	Latency Latency
	// ByCluster counts successes by the cluster that answered.
	ByCluster map[string]int
	Window    Window
}

// counters are the running totals, kept beside the capped Results.
type counters struct {
	sent, ok, failed int
	failedBy         map[string]int
	byCluster        map[string]int
}

func newCounters() counters {
	return counters{failedBy: map[string]int{}, byCluster: map[string]int{}}
}

func (c *counters) add(r Result) {
	if !r.OK() {
		c.failed++
		c.failedBy[r.Reason]++
		return
	}
	c.ok++
	c.byCluster[r.Cluster]++
}

// Stats returns the car's figures now.
func (c *Car) Stats() Stats {
	now := c.opts.Clock.Now()
	c.mu.Lock()
	st := Stats{Sent: c.counts.sent, OK: c.counts.ok, Failed: c.counts.failed, InFlight: c.inFlight,
		FailedBy: maps.Clone(c.counts.failedBy), ByCluster: maps.Clone(c.counts.byCluster)}
	results := c.results
	c.mu.Unlock()
	// results is only ever appended to or replaced under mu: the elements read here stay.
	st.Latency = latencies(results)
	st.Window = window(results, now, c.opts.Window)
	return st
}

// Between sums up the kept results started in [from, to] (e.g. during a migration): Span
// is to-from, Latency over its successes.
func (c *Car) Between(from, to time.Time) Window {
	c.mu.Lock()
	results := c.results
	c.mu.Unlock()
	var in []Result
	for _, r := range results {
		if !r.Start.Before(from) && !r.Start.After(to) {
			in = append(in, r)
		}
	}
	return summarize(in, to.Sub(from))
}

// latencies are the percentiles of the successes' latencies.
func latencies(results []Result) Latency {
	var d []time.Duration
	for _, r := range results {
		if r.OK() {
			d = append(d, r.Latency)
		}
	}
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	return Latency{P50: rank(d, 50), P99: rank(d, 99), Max: d[len(d)-1]}
}

// Percentile is the nearest-rank p-th percentile (1–100) of ds, which it leaves as it is;
// zero without any. Tests and benchmarks sum up their own samples with it.
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return rank(s, p)
}

// rank is the nearest-rank p-th percentile of sorted, non-empty d.
func rank(d []time.Duration, p int) time.Duration {
	return d[min(max((len(d)*p+99)/100-1, 0), len(d)-1)]
}

// window sums up the results started in (now-span, now].
func window(results []Result, now time.Time, span time.Duration) Window {
	from := now.Add(-span)
	i := len(results)
	for i > 0 && results[i-1].Start.After(from) {
		i--
	}
	return summarize(results[i:], span)
}

// summarize counts results over a span of time.
func summarize(recent []Result, span time.Duration) Window {
	w := Window{Span: span, ByCluster: map[string]int{}}
	for _, r := range recent {
		w.Requests++
		if !r.OK() {
			w.Failed++
		} else {
			w.ByCluster[r.Cluster]++
		}
	}
	if span > 0 {
		w.Rate = float64(w.Requests) / span.Seconds()
	}
	w.Latency = latencies(recent)
	return w
}

// Summary is the stats in a few lines, as `edgemigrate car` and the demo print them.
func (s Stats) Summary() []string {
	lines := []string{fmt.Sprintf("requests: %d sent, %d ok, %d failed%s", s.Sent, s.OK, s.Failed, inFlight(s.InFlight))}
	if s.OK > 0 {
		lines = append(lines, "latency: "+s.Latency.String())
	}
	if len(s.ByCluster) > 0 {
		lines = append(lines, "served by: "+countList(s.ByCluster))
	}
	if len(s.FailedBy) > 0 {
		lines = append(lines, "failed: "+countList(s.FailedBy))
	}
	return lines
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s", round(l.P50), round(l.P99), round(l.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func inFlight(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d waiting", n)
}

// countList is "a 3, b 1", sorted by key.
func countList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
