package httpboot

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Collector writes metrics in the Prometheus text exposition format
// (version 0.0.4). *netboot.DNSPolicy and *netboot.Cache are Collectors.
type Collector interface {
	WriteMetrics(w io.Writer)
}

// Metrics counts HTTP requests per route and status, response bytes and
// time per route. Routes are the server's patterns (a fixed, small set), so
// the label sets stay bounded whatever clients ask for. It is safe for
// concurrent use.
type Metrics struct {
	mu       sync.Mutex
	requests map[routeStatus]uint64
	bytes    map[string]uint64
	seconds  map[string]float64
	count    map[string]uint64
}

type routeStatus struct {
	route  string
	status int
}

var _ Collector = (*Metrics)(nil)

// NewMetrics returns empty counters.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: map[routeStatus]uint64{},
		bytes:    map[string]uint64{},
		seconds:  map[string]float64{},
		count:    map[string]uint64{},
	}
}

func (m *Metrics) observe(route string, status int, bytes int64, dur time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeStatus{route, status}]++
	m.bytes[route] += uint64(max(bytes, 0))
	m.seconds[route] += dur.Seconds()
	m.count[route]++
}

// Requests returns how many requests of route got status.
func (m *Metrics) Requests(route string, status int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[routeStatus{route, status}]
}

// WriteMetrics writes the counters, sorted by labels.
func (m *Metrics) WriteMetrics(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]routeStatus, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeStatus) int {
		if a.route != b.route {
			if a.route < b.route {
				return -1
			}
			return 1
		}
		return a.status - b.status
	})
	routes := make([]string, 0, len(m.count))
	for r := range m.count {
		routes = append(routes, r)
	}
	slices.Sort(routes)

	fmt.Fprint(w, "# HELP vmprov_http_requests_total HTTP requests by route and status code.\n# TYPE vmprov_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(w, "vmprov_http_requests_total{route=%s,code=\"%d\"} %d\n", strconv.Quote(k.route), k.status, m.requests[k])
	}
	fmt.Fprint(w, "# HELP vmprov_http_response_bytes_total Bytes of HTTP response bodies by route.\n# TYPE vmprov_http_response_bytes_total counter\n")
	for _, r := range routes {
		fmt.Fprintf(w, "vmprov_http_response_bytes_total{route=%s} %d\n", strconv.Quote(r), m.bytes[r])
	}
	fmt.Fprint(w, "# HELP vmprov_http_request_duration_seconds Time spent answering HTTP requests by route.\n# TYPE vmprov_http_request_duration_seconds summary\n")
	for _, r := range routes {
		fmt.Fprintf(w, "vmprov_http_request_duration_seconds_sum{route=%s} %s\n", strconv.Quote(r), strconv.FormatFloat(m.seconds[r], 'g', -1, 64))
		fmt.Fprintf(w, "vmprov_http_request_duration_seconds_count{route=%s} %d\n", strconv.Quote(r), m.count[r])
	}
}
