package bench

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The capacity sweep: each server is offered a ladder of rates, a few
// seconds each, and its capacity is the highest rate at which at most
// maxIncomplete of the offered exchanges failed to complete. A server's
// ladder stops at its first step past that, so an overloaded server is not
// kept overloaded for the rest of the run.
var defaultDHCPRates = []int{2000, 4000, 6000, 8000, 12000, 16000, 20000}

const (
	defaultStepSecs = 3     // each step's perfdhcp period
	maxIncomplete   = 0.025 // the share of exchanges a sustained rate may lose
)

// dhcpRates reads VMPROV_BENCH_DHCP_RATES ("2000,4000,8000"), else the
// default ladder. The rates are taken in the order given.
func dhcpRates(tb testing.TB) []int {
	v := os.Getenv("VMPROV_BENCH_DHCP_RATES")
	if v == "" {
		return defaultDHCPRates
	}
	var rates []int
	for _, f := range strings.Split(v, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			tb.Fatalf("VMPROV_BENCH_DHCP_RATES=%q: %q is not a positive rate a second: give a comma-separated list such as 2000,4000,8000", v, f)
		}
		rates = append(rates, r)
	}
	return rates
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// load1 is the one-minute load average, or -1 when unreadable.
func load1() float64 {
	f := strings.Fields(loadAvg())
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// climb offers rates in turn for secs each through run and returns the
// highest one sustained (at most maxIncomplete of its exchanges
// incomplete), or 0 when even the first was not. It logs every step with
// the load average beside it.
func climb(b testing.TB, name string, rates []int, secs int, run func(rate int) PerfdhcpReport) int {
	best := 0
	for _, r := range rates {
		rep := run(r)
		inc := rep.Incomplete(uint64(r * secs))
		b.Logf("%s: offered %d/s: %.0f exchanges/s completed, %.2f %% incomplete (sent %d, answered %d, completed %d; avg delay %v, %v) [load %s]",
			name, r, float64(rep.RA.Received)/float64(secs), 100*inc, rep.DO.Sent, rep.DO.Received, rep.RA.Received, rep.DO.AvgDelay, rep.RA.AvgDelay, loadAvg())
		if inc > maxIncomplete {
			break
		}
		best = r
	}
	switch {
	case best == 0:
		b.Logf("%s: more than %.1f %% incomplete already at %d/s: no sustained rate on this ladder [load %s]", name, 100*maxIncomplete, rates[0], loadAvg())
	case best == rates[len(rates)-1]:
		b.Logf("%s: sustained %d/s, the top of the ladder: its capacity is higher [load %s]", name, best, loadAvg())
	default:
		b.Logf("%s: sustained %d/s [load %s]", name, best, loadAvg())
	}
	return best
}

// capacity runs one sweep for family 4 (DORA) or 6 (Solicit-Advertise-
// Request-Reply): the bare responder first, for the ceiling, then each of
// servers, each warmed up by one request per host (which also fills
// vmprov's DNS cache) before its ladder. vmprov's first run, with a cold
// cache, is logged and returned as cold (exchanges completed a second at
// the lowest rate). It returns each one's highest sustained rate by name.
func (e *env) capacity(b *testing.B, family int, servers []dhcpServer, rates []int, secs int) (best map[string]int, cold float64) {
	b.Helper()
	macs := e.macFile()
	best = map[string]int{}
	run := func(rate int) PerfdhcpReport {
		rep, _ := e.perfdhcp(b, family, macs, rate, secs, 0)
		return rep
	}
	stopEcho := e.startEcho(family)
	best["ceiling"] = climb(b, "ceiling", rates, secs, run)
	stopEcho()
	for _, s := range servers {
		p := s.start(e)
		if s.name == "vmprov" {
			rep := run(rates[0])
			cold = float64(rep.RA.Received) / float64(secs)
			b.Logf("vmprov (cold DNS cache): offered %d/s: %.0f exchanges/s completed, %.2f %% incomplete [load %s]",
				rates[0], cold, 100*rep.Incomplete(uint64(rates[0]*secs)), loadAvg())
		}
		if family == 6 {
			e.sweep6(b, s.name)
		} else {
			e.sweep(b, s.name)
		}
		best[s.name] = climb(b, s.name, rates, secs, run)
		if err := p.stop(); err != nil {
			b.Error(err)
		}
		if s.name == "vmprov" {
			logProblems(b, p)
		}
	}
	overload := true
	for _, s := range servers {
		if best[s.name] > 0 {
			overload = false
		}
	}
	if overload {
		b.Logf("every server lost more than %.1f %% at %d/s, the lowest rate offered: this run measured overload, not capacity; offer lower rates with VMPROV_BENCH_DHCP_RATES [load %s]",
			100*maxIncomplete, rates[0], loadAvg())
	}
	return best, cold
}

// reportCapacity reports the mean sustained rates of sums over n sweeps
// of the ladder whose top rate is top, and vmprov's ratio to each peer and
// to the ceiling, each logged with the load average. A ratio to a peer
// that sustained no rate is reported as 0; a rate at the top of the ladder
// is a lower bound, and so the ratios it enters are bounds too, which the
// log says.
func reportCapacity(b *testing.B, sums map[string]float64, cold float64, n, top int, peers []string) {
	l := loadAvg()
	atTop := func(name string) bool { return sums[name] >= float64(top*n) }
	for name, v := range sums {
		b.ReportMetric(v/float64(n), name+"-sustained/s")
		b.Logf("%s: %.0f exchanges/s sustained (mean of %d) [load %s]", name, v/float64(n), n, l)
	}
	b.ReportMetric(cold/float64(n), "vmprov-cold/s")
	for _, peer := range append(peers, "ceiling") {
		r := ratio(sums["vmprov"], sums[peer])
		b.ReportMetric(r, "vmprov/"+peer)
		switch {
		case sums[peer] == 0:
			b.Logf("vmprov/%s: undefined, %s sustained no rate of the ladder [load %s]", peer, peer, l)
		case atTop("vmprov") && atTop(peer):
			b.Logf("vmprov/%s: %.2f, both sustained the top of the ladder: offer higher rates to compare [load %s]", peer, r, l)
		case atTop("vmprov"):
			b.Logf("vmprov/%s: at least %.2f, vmprov sustained the top of the ladder [load %s]", peer, r, l)
		case atTop(peer):
			b.Logf("vmprov/%s: at most %.2f, %s sustained the top of the ladder [load %s]", peer, r, peer, l)
		default:
			b.Logf("vmprov/%s: %.2f [load %s]", peer, r, l)
		}
	}
	b.ReportMetric(load1(), "load1")
}

// sweepDHCP runs b.N capacity sweeps and reports them.
func sweepDHCP(b *testing.B, family int, servers []dhcpServer) {
	rates := dhcpRates(b)
	secs := envInt("VMPROV_BENCH_DHCP_SECONDS", defaultStepSecs)
	e := newEnv(b, benchHosts)
	b.Logf("ladder %v/s, %d s a step, %d reservations [load %s]", rates, secs, benchHosts, loadAvg())
	sums := map[string]float64{}
	var cold float64
	var peers []string
	for _, s := range servers {
		if s.name != "vmprov" {
			peers = append(peers, s.name)
		}
	}
	// Each iteration is the whole comparison; it takes longer than the
	// default benchtime, so `go test -bench` runs it once.
	for range b.N {
		best, c := e.capacity(b, family, servers, rates, secs)
		for name, v := range best {
			sums[name] += float64(v)
		}
		cold += c
	}
	reportCapacity(b, sums, cold, b.N, slices.Max(rates), peers)
}

// TestClimb: a server's capacity is the highest rate of the ladder before
// its first step with more than 2.5 % of the exchanges incomplete, and no
// rate above that step is offered.
func TestClimb(t *testing.T) {
	tests := []struct {
		name      string
		completed map[int]uint64 // ACKs a second at each rate
		want      int
		wantRates []int
	}{
		{"stops at the first step past 2.5 %", map[int]uint64{2000: 2000, 4000: 3950, 6000: 5000, 8000: 8000}, 4000, []int{2000, 4000, 6000}},
		{"fails the lowest step", map[int]uint64{2000: 1900, 4000: 4000}, 0, []int{2000}},
		{"sustains the top", map[int]uint64{2000: 2000, 4000: 4000}, 4000, []int{2000, 4000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rates, offered []int
			for r := range tt.completed {
				rates = append(rates, r)
			}
			slices.Sort(rates)
			const secs = 3
			got := climb(t, "server", rates, secs, func(rate int) PerfdhcpReport {
				offered = append(offered, rate)
				n := uint64(rate * secs)
				return PerfdhcpReport{DO: Exchange{Sent: n, Received: n}, RA: Exchange{Sent: n, Received: tt.completed[rate] * secs}}
			})
			if got != tt.want {
				t.Errorf("capacity %d, want %d", got, tt.want)
			}
			if !slices.Equal(offered, tt.wantRates) {
				t.Errorf("offered %v, want %v", offered, tt.wantRates)
			}
		})
	}
}
