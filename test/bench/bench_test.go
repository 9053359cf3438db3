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
	benchHosts      = 1000  // DHCP reservations; 4 cached DNS answers each fit vmprov's default cache
	defaultDHCPRate = 10000 // DORA exchanges a second offered by perfdhcp: more than Kea and dnsmasq complete, even on a quiet machine
	defaultDHCPSecs = 10
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

// BenchmarkServeDHCPv4DORA offers perfdhcp's DORA load (VMPROV_BENCH_DHCP_RATE
// exchanges a second, default 10000, for VMPROV_BENCH_DHCP_SECONDS, default
// 10) from 1000 reserved MACs picked at random to vmprov, Kea (memfile,
// multi-threaded) and dnsmasq in turn, and reports each one's completed
// exchanges a second (leases/s), its drops, and vmprov's ratios.
//
// vmprov-leases/s is measured with a warm DNS cache: every host's records
// were read once (a cold run and a DISCOVER sweep came first, and all
// answers live for their 300 s TTL). vmprov-cold-leases/s is the first
// run of a fresh process, whose first DISCOVER from each MAC waits for four
// DNS queries to BIND.
func BenchmarkServeDHCPv4DORA(b *testing.B) {
	requireBinaries(b, "perfdhcp", "kea-dhcp4", "dnsmasq")
	rate := envInt("VMPROV_BENCH_DHCP_RATE", defaultDHCPRate)
	secs := envInt("VMPROV_BENCH_DHCP_SECONDS", defaultDHCPSecs)
	e := newEnv(b, benchHosts)
	macs := e.macFile()
	logLoad(b)
	// leases/s counts ACKs over the sending period: perfdhcp's own rate
	// also divides by the exit wait (-W) it spends collecting late replies.
	type total struct{ leases, sent, drops float64 }
	sum := map[string]*total{}
	add := func(name string, r PerfdhcpReport) {
		t := sum[name]
		if t == nil {
			t = &total{}
			sum[name] = t
		}
		t.leases += float64(r.RA.Received) / float64(secs)
		t.sent += float64(r.DO.Sent)
		t.drops += float64(r.Drops())
	}
	// Each iteration is the whole comparison; it takes longer than the
	// default benchtime, so `go test -bench` runs it once.
	for range b.N {
		for _, s := range dhcpServers() {
			p := s.start(e)
			if s.name == "vmprov" {
				rep, _ := e.perfdhcp(b, macs, rate, secs, 0)
				b.Logf("vmprov (cold DNS cache): %.0f leases/s of %d offered, drops %d/%d", float64(rep.RA.Received)/float64(secs), rate, rep.Drops(), rep.DO.Sent)
				add("vmprov-cold", rep)
			}
			e.sweep(b, s.name)
			rep, _ := e.perfdhcp(b, macs, rate, secs, 0)
			b.Logf("%s: %.0f leases/s of %d offered, drops %d/%d (avg delay DO %v RA %v)",
				s.name, float64(rep.RA.Received)/float64(secs), rate, rep.Drops(), rep.DO.Sent, rep.DO.AvgDelay, rep.RA.AvgDelay)
			add(s.name, rep)
			if err := p.stop(); err != nil {
				b.Error(err)
			}
			if s.name == "vmprov" {
				logProblems(b, p)
			}
		}
	}
	logLoad(b)
	n := float64(b.N)
	for name, t := range sum {
		b.ReportMetric(t.leases/n, name+"-leases/s")
		b.ReportMetric(100*ratio(t.drops, t.sent), name+"-drop-%")
	}
	b.ReportMetric(float64(rate), "offered/s")
	for _, peer := range []string{"kea", "dnsmasq"} {
		b.ReportMetric(ratio(sum["vmprov"].leases, sum[peer].leases), "vmprov/"+peer)
	}
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
