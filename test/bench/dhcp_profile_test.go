package bench

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp4"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// nsResolver asks DNS from inside a network namespace: the bench's BIND
// listens on the server namespace's loopback.
type nsResolver struct {
	ns *lab.Namespace
	r  netboot.Resolver
}

func (n nsResolver) Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error) {
	var a dnsupdate.Answer
	err := n.ns.Do(func() error {
		var err error
		a, err = n.r.Lookup(ctx, name, qtype)
		return err
	})
	return a, err
}

// BenchmarkDHCPv4InProcess serves DHCPv4 with vmprov's netboot/dhcp4
// server and DNS policy inside this process (its socket in the server
// namespace, Info logs to a file as serve writes them to stderr), with the
// configuration of BenchmarkServeDHCPv4DORA, and offers it perfdhcp's DORA
// load at VMPROV_BENCH_DHCP_RATE a second (default 4000) for
// VMPROV_BENCH_DHCP_SECONDS (default 3) after a DISCOVER sweep has filled
// the DNS cache, so that `go test -cpuprofile` shows the server's hot path
// under load. perfdhcp runs as its own process; only the server is in this
// one.
func BenchmarkDHCPv4InProcess(b *testing.B) {
	requireBinaries(b, "perfdhcp")
	rate := envInt("VMPROV_BENCH_DHCP_RATE", 4000)
	secs := envInt("VMPROV_BENCH_DHCP_SECONDS", defaultStepSecs)
	e := newEnv(b, benchHosts)
	c, err := config.Load(e.config)
	if err != nil {
		b.Fatal(err)
	}
	name, alg, secret := e.bind.TSIG()
	dc, err := dnsupdate.New(dnsupdate.Config{Server: e.bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(e.dir, "dhcp4-in-process.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logf.Close() })
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := netboot.NewDNSPolicy(serveconfig.Policy(c, log), nsResolver{e.srv, dc})
	s, err := dhcp4.New(dhcp4.Config{DHCPConfig: serveconfig.DHCP(c, p, log), ServerIPv4: c.Serve.ServerIPv4})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Do(func() error { return s.Serve(ctx) }) }()
	b.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Error(err)
			}
		case <-time.After(30 * time.Second):
			b.Error("dhcp4 server did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.newRelay()
		if err != nil {
			b.Fatal(err)
		}
		got := r.exchange([]*dhcpv4.DHCPv4{r.discover(b, e.hosts[0].MAC)}, 1, 300*time.Millisecond)
		r.close()
		if len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("in-process dhcp4 server: no OFFER within 30s")
		}
	}
	e.sweep(b, "vmprov in process")
	macs := e.macFile()
	for b.Loop() {
		rep, _ := e.perfdhcp(b, 4, macs, rate, secs, 0)
		b.Logf("offered %d/s: %.0f exchanges/s completed, %.2f %% incomplete (avg delay %v, %v) [load %s]",
			rate, float64(rep.RA.Received)/float64(secs), 100*rep.Incomplete(uint64(rate*secs)), rep.DO.AvgDelay, rep.RA.AvgDelay, loadAvg())
	}
}
