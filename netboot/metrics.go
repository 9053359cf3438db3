package netboot

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics. Each server of the boot service (and the DNS Cache) counts what
// it does and returns its metrics as one prometheus.Collector; the caller
// registers the collectors it wants exported in a registry of its own
// (vmprov serve: one per process, served on /metrics). Nothing is
// registered globally, and a collector nobody registers costs a few
// allocations, so a server without a registry works the same.
//
// The servers count with atomics, which their Stats read too, and export
// them as counters read at each scrape (Counter). Every server also
// measures its Policy's decisions (TimedPolicy): that is where the time of
// a request goes when DNS is slow (docs/design.md, "The boot decision").

// DecisionDurationName is the histogram of decision latency, one series per
// protocol (label proto: dhcp4, dhcp6, tftp, http).
const DecisionDurationName = "vmprov_decision_duration_seconds"

// DecisionBuckets returns the upper bounds, in seconds, of the
// vmprov_decision_duration_seconds buckets: from a decision made from the
// cache (tens of microseconds) to one that waited for DNS as long as a
// lookup may take (DefaultLookupTime, 2 s). A decision in the +Inf bucket
// outlived its lookups: DNS timed out.
func DecisionBuckets() []float64 {
	return []float64{
		25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
		1, DefaultLookupTime.Seconds(),
	}
}

// NewDecisionHistogram returns the vmprov_decision_duration_seconds series
// of one protocol. Each server makes its own; as they share name, help and
// buckets, a registry takes them all as one family.
func NewDecisionHistogram(proto string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        DecisionDurationName,
		Help:        "Time the boot service waited for its policy's decisions (DNS lookups included), by protocol.",
		ConstLabels: prometheus.Labels{"proto": proto},
		Buckets:     DecisionBuckets(),
	})
}

// TimedPolicy returns a Policy that observes in h how long each of p's
// decisions takes, whatever the outcome. It returns nil when p is nil, so a
// server's "no policy" stays nil.
func TimedPolicy(p Policy, h prometheus.Observer) Policy {
	if p == nil {
		return nil
	}
	return timedPolicy{p: p, h: h}
}

type timedPolicy struct {
	p Policy
	h prometheus.Observer
}

func (t timedPolicy) Decide(ctx context.Context, c Client) (Decision, error) {
	start := time.Now()
	d, err := t.p.Decide(ctx, c)
	t.h.Observe(time.Since(start).Seconds())
	return d, err
}

// Confirm confirms d through p when p is a Confirmer, timed as a
// decision; otherwise d is fresh already and returned as it is.
func (t timedPolicy) Confirm(ctx context.Context, d Decision) (Decision, error) {
	c, ok := t.p.(Confirmer)
	if !ok {
		return d, nil
	}
	start := time.Now()
	d, err := c.Confirm(ctx, d)
	t.h.Observe(time.Since(start).Seconds())
	return d, err
}

// Counter is a Prometheus counter whose value is an atomic the owner
// increments; it is read at each scrape.
type Counter struct {
	Name, Help string
	// Labels are constant labels, e.g. type="offer"; counters of one Name
	// differ by their values.
	Labels prometheus.Labels
	Value  *atomic.Uint64
}

// Collectors is one prometheus.Collector made of several.
type Collectors []prometheus.Collector

var _ prometheus.Collector = Collectors(nil)

// CounterCollectors returns the counters as collectors, followed by more.
func CounterCollectors(counters []Counter, more ...prometheus.Collector) Collectors {
	out := make(Collectors, 0, len(counters)+len(more))
	for _, c := range counters {
		v := c.Value
		out = append(out, prometheus.NewCounterFunc(
			prometheus.CounterOpts{Name: c.Name, Help: c.Help, ConstLabels: c.Labels},
			func() float64 { return float64(v.Load()) },
		))
	}
	return append(out, more...)
}

// Describe sends the descriptors of every collector.
func (cs Collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

// Collect sends the metrics of every collector.
func (cs Collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
