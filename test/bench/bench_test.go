package bench

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Load parameters, overridable from the environment for longer runs.
const (
	benchHosts      = 1000 // DHCP reservations; 4 cached DNS answers each fit vmprov's default cache
	tftpClients     = 100
	tftpRounds      = 3 // alternating rounds per server, to even out a shared machine's noise
	defaultHTTPSecs = 5
	httpRounds      = 3 // alternating rounds per server
	httpThreads     = 2
	httpConns       = 16
)

// envInt reads a positive integer from the environment, else def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// logLoad records how busy the machine was, since the servers share it
// with everything else running.
func logLoad(b *testing.B) {
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(l)))
	}
}

// logProblems logs how many warnings and errors p logged, and the first.
func logProblems(b *testing.B, p *proc) {
	data, err := os.ReadFile(p.log)
	if err != nil {
		b.Error(err)
		return
	}
	var first string
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			if n == 0 {
				first = line
			}
			n++
		}
	}
	if n > 0 {
		b.Logf("%s logged %d warnings and errors, first: %s", p.name, n, first)
	}
}

// BenchmarkServeDHCPv4DORA measures DHCPv4 capacity: perfdhcp offers DORA
// exchanges from 1000 reserved MACs picked at random, at each rate of a
// ladder (VMPROV_BENCH_DHCP_RATES, default 2000 to 20000 a second, for
// VMPROV_BENCH_DHCP_SECONDS each, default 3), to a bare responder (the UDP
// ceiling of the segment), vmprov, Kea (memfile, multi-threaded) and
// dnsmasq in turn. It reports each one's highest rate sustained with at
// most 2.5 % of the exchanges incomplete, and vmprov's ratios to Kea, to
// dnsmasq and to the ceiling.
//
// vmprov climbs with a warm DNS cache: every host's records were read once
// (a cold run at the lowest rate and a DISCOVER sweep came first, and all
// answers live for their 300 s TTL). vmprov-cold/s is that first run of a
// fresh process, whose first DISCOVER from each MAC waits for four DNS
// queries to BIND.
func BenchmarkServeDHCPv4DORA(b *testing.B) {
	requireBinaries(b, "perfdhcp", "kea-dhcp4", "dnsmasq")
	sweepDHCP(b, 4, dhcpServers())
}

// BenchmarkServeDHCPv6SARR is BenchmarkServeDHCPv4DORA for DHCPv6:
// perfdhcp -6 offers Solicit-Advertise-Request-Reply exchanges from the
// DUID-LLs of the same 1000 MACs, multicast to
// All_DHCP_Relay_Agents_and_Servers, to the bare responder, vmprov and Kea
// DHCPv6 (memfile, multi-threaded) with the same reservations, and the
// benchmark reports the same figures.
func BenchmarkServeDHCPv6SARR(b *testing.B) {
	requireBinaries(b, "perfdhcp", "kea-dhcp6")
	sweepDHCP(b, 6, dhcp6Servers())
}

// BenchmarkServeTFTP downloads the 1 MiB loader 100 times at once
// (blksize 1468, each transfer checked by SHA-256) from vmprov and from
// tftpd-hpa, in three alternating rounds, and reports the aggregate
// throughput and vmprov's ratio. The clients are pin/tftp's, in this process.
func BenchmarkServeTFTP(b *testing.B) {
	requireBinaries(b, "in.tftpd")
	e := newEnv(b, 1)
	logLoad(b)
	total := map[string]time.Duration{}
	// Rounds alternate between the servers, so that load from elsewhere on
	// the machine falls on both alike; each round starts with an untimed
	// warm-up of 10 downloads.
	for range b.N * tftpRounds {
		for _, s := range tftpServers() {
			p := s.start(e)
			if _, errs := e.tftpConcurrent(bootFile, 10); len(errs) > 0 {
				b.Fatalf("%s: warm-up: %d of 10 downloads failed, first: %v", s.name, len(errs), errs[0])
			}
			d, errs := e.tftpConcurrent(bootFile, tftpClients)
			if len(errs) > 0 {
				b.Errorf("%s: %d of %d downloads failed, first: %v", s.name, len(errs), tftpClients, errs[0])
			}
			b.Logf("%s: %d x %d KiB in %v", s.name, tftpClients, loaderSize>>10, d.Round(time.Millisecond))
			total[s.name] += d
			if err := p.stop(); err != nil {
				b.Error(err)
			}
		}
	}
	logLoad(b)
	mib := float64(b.N*tftpRounds*tftpClients*loaderSize) / (1 << 20)
	for name, d := range total {
		b.ReportMetric(mib/d.Seconds(), name+"-MiB/s")
	}
	b.ReportMetric(ratio(total["tftpd-hpa"].Seconds(), total["vmprov"].Seconds()), "vmprov/tftpd-hpa")
}

// BenchmarkServeHTTP runs wrk (2 threads, 16 connections, for
// VMPROV_BENCH_HTTP_SECONDS, default 5) against the 64 MiB initrd on
// vmprov and on nginx (sendfile on), in three alternating rounds, after
// checking each serves it byte for byte, and reports requests and MiB a
// second and vmprov's ratio.
func BenchmarkServeHTTP(b *testing.B) {
	requireBinaries(b, "nginx", "wrk")
	secs := envInt("VMPROV_BENCH_HTTP_SECONDS", defaultHTTPSecs)
	e := newEnv(b, 1)
	body, err := os.ReadFile(filepath.Join(e.serveDir, "assets", "initrd.img"))
	if err != nil {
		b.Fatal(err)
	}
	want := sha256.Sum256(body)
	c := e.httpClient()
	logLoad(b)
	reqs, bytes := map[string]float64{}, map[string]float64{}
	for range b.N * httpRounds {
		for _, s := range httpServers() {
			p := s.start(e)
			h := sha256.New()
			if err := httpGet(c, baseURL(s.port)+initrdPath, h); err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			if [32]byte(h.Sum(nil)) != want {
				b.Fatalf("%s: %s is not the file on disk", s.name, initrdPath)
			}
			rep, out := e.wrk(b, baseURL(s.port)+initrdPath, httpThreads, httpConns, time.Duration(secs)*time.Second)
			if rep.Non2xx3xx != 0 || rep.SocketErrors != 0 {
				b.Errorf("%s: %d non-2xx responses, %d socket errors\n%s", s.name, rep.Non2xx3xx, rep.SocketErrors, out)
			}
			b.Logf("%s: %.2f req/s, %.0f MiB/s (%d requests in %v)", s.name, rep.RequestsPerS, rep.BytesPerS/(1<<20), rep.Requests, rep.Duration)
			reqs[s.name] += rep.RequestsPerS
			bytes[s.name] += rep.BytesPerS
			if err := p.stop(); err != nil {
				b.Error(err)
			}
		}
	}
	logLoad(b)
	n := float64(b.N * httpRounds)
	for name := range reqs {
		b.ReportMetric(reqs[name]/n, name+"-req/s")
		b.ReportMetric(bytes[name]/n/(1<<20), name+"-MiB/s")
	}
	b.ReportMetric(ratio(bytes["vmprov"], bytes["nginx"]), "vmprov/nginx")
}
