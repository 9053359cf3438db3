package httpboot

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/netboot"
)

// durationBuckets are the upper bounds, in seconds, of
// vmprov_http_request_duration_seconds: from a script answered from the
// cache (under a millisecond) to an installer's initrd on a slow link.
func durationBuckets() []float64 {
	return []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 10, 30, 120}
}

// metrics are the server's Prometheus metrics. Routes are the server's
// patterns (a fixed, small set) or "refused", so the label sets stay
// bounded whatever clients ask for.
type metrics struct {
	requests  *prometheus.CounterVec   // route, code
	bytes     *prometheus.CounterVec   // route
	duration  *prometheus.HistogramVec // route
	decisions prometheus.Histogram     // proto="http"
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmprov_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmprov_http_response_bytes_total",
			Help: "Bytes of HTTP response bodies by route.",
		}, []string{"route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vmprov_http_request_duration_seconds",
			Help:    "Time spent answering HTTP requests by route.",
			Buckets: durationBuckets(),
		}, []string{"route"}),
		decisions: netboot.NewDecisionHistogram("http"),
	}
}

func (m *metrics) observe(route string, status int, bytes int64, dur time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.bytes.WithLabelValues(route).Add(float64(max(bytes, 0)))
	m.duration.WithLabelValues(route).Observe(dur.Seconds())
}

// Collector returns the server's metrics for a prometheus.Registerer:
// vmprov_http_requests_total{route,code}, vmprov_http_response_bytes_total{route},
// the histogram vmprov_http_request_duration_seconds{route},
// vmprov_decision_duration_seconds{proto="http"},
// vmprov_http_connections_limited_total and the gauge
// vmprov_http_connections_open.
func (s *Server) Collector() prometheus.Collector {
	m := s.metrics
	return append(netboot.Collectors{m.requests, m.bytes, m.duration, m.decisions}, s.connCollectors()...)
}
