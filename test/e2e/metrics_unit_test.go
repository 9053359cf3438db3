package e2e

import "testing"

// scrape is a /metrics body as vmprov serve writes it after a DHCPv4 and
// HTTP boot, trimmed to a few series of each kind.
const scrape = `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds{quantile="0.5"} 4.2e-05
go_gc_duration_seconds{quantile="1"} 0.000113
go_gc_duration_seconds_sum 0.000331
go_gc_duration_seconds_count 6
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 14
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.5233792e+07
# HELP vmprov_decision_duration_seconds Time the boot service waited for its policy's decisions (DNS lookups included), by protocol.
# TYPE vmprov_decision_duration_seconds histogram
vmprov_decision_duration_seconds_bucket{proto="dhcp4",le="2.5e-05"} 0
vmprov_decision_duration_seconds_bucket{proto="dhcp4",le="0.001"} 3
vmprov_decision_duration_seconds_bucket{proto="dhcp4",le="2"} 4
vmprov_decision_duration_seconds_bucket{proto="dhcp4",le="+Inf"} 4
vmprov_decision_duration_seconds_sum{proto="dhcp4"} 0.012579591
vmprov_decision_duration_seconds_count{proto="dhcp4"} 4
vmprov_decision_duration_seconds_bucket{proto="http",le="2.5e-05"} 0
vmprov_decision_duration_seconds_bucket{proto="http",le="0.001"} 5
vmprov_decision_duration_seconds_bucket{proto="http",le="2"} 5
vmprov_decision_duration_seconds_bucket{proto="http",le="+Inf"} 5
vmprov_decision_duration_seconds_sum{proto="http"} 0.000811
vmprov_decision_duration_seconds_count{proto="http"} 5
# HELP vmprov_dhcp4_replies_total DHCPv4 replies sent, by message type.
# TYPE vmprov_dhcp4_replies_total counter
vmprov_dhcp4_replies_total{type="ack"} 2
vmprov_dhcp4_replies_total{type="nak"} 0
vmprov_dhcp4_replies_total{type="offer"} 2
# HELP vmprov_dns_queries_total DNS queries sent by the boot policy.
# TYPE vmprov_dns_queries_total counter
vmprov_dns_queries_total 9
# HELP vmprov_http_requests_total HTTP requests by route and status code.
# TYPE vmprov_http_requests_total counter
vmprov_http_requests_total{code="200",route="/boot.ipxe"} 1
vmprov_http_requests_total{code="200",route="/pxedust"} 1
vmprov_http_requests_total{code="404",route="/mac/{hexhyp}/ipxe"} 1
`

// TestSeriesValue reads the series the boot tests check from a captured
// scrape. It needs neither root nor the lab.
func TestSeriesValue(t *testing.T) {
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vmprov_dhcp4_replies_total", []string{"type", "ack"}, 2},
		{"vmprov_dhcp4_replies_total", []string{"type", "nak"}, 0},
		{"vmprov_dhcp4_replies_total", nil, 4}, // every type, summed
		{"vmprov_dns_queries_total", nil, 9},
		{"vmprov_http_requests_total", []string{"route", "/mac/{hexhyp}/ipxe", "code", "404"}, 1},
		{"vmprov_http_requests_total", []string{"code", "200"}, 2},
		{"vmprov_decision_duration_seconds_count", []string{"proto", "dhcp4"}, 4},
		{"vmprov_decision_duration_seconds_count", []string{"proto", "http"}, 5},
		{"vmprov_decision_duration_seconds_sum", []string{"proto", "http"}, 0.000811},
		{"go_gc_duration_seconds_count", nil, 6},
		{"go_goroutines", nil, 14},
		{"process_resident_memory_bytes", nil, 35233792},
		// Absent: -1.
		{"vmprov_dhcp6_replies_total", []string{"type", "reply"}, -1},
		{"vmprov_dhcp4_replies_total", []string{"type", "decline"}, -1},
		{"vmprov_decision_duration_seconds_count", []string{"proto", "tftp"}, -1},
		{"vmprov_decision_duration_seconds", []string{"proto", "http"}, -1}, // a histogram has no single value
	} {
		got, err := seriesValue(scrape, tt.name, tt.labels...)
		if err != nil || got != tt.want {
			t.Errorf("seriesValue(%s, %q) = %v, %v; want %v", tt.name, tt.labels, got, err, tt.want)
		}
	}
	if _, err := seriesValue(scrape, "go_goroutines", "odd"); err == nil {
		t.Error("labels that are not pairs: no error")
	}
	if _, err := seriesValue("vmprov_dns_queries_total{ 1\n", "vmprov_dns_queries_total"); err == nil {
		t.Error("a body that is not the text format: no error")
	}
}
