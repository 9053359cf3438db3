package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// logRecorder is a slog.Handler that keeps every record so that tests can
// wait for a log line (readiness, a request seen).
type logRecorder struct {
	t      testing.TB
	mu     sync.Mutex
	lines  []string
	change chan struct{}
}

func newLogRecorder(t testing.TB) *logRecorder {
	return &logRecorder{t: t, change: make(chan struct{})}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{r: r, attrs: as}
}
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	return r.handle(rec, nil)
}

func (r *logRecorder) handle(rec slog.Record, attrs []slog.Attr) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	close(r.change)
	r.change = make(chan struct{})
	r.mu.Unlock()
	r.t.Log(b.String())
	return nil
}

// wait returns the first line holding every part, waiting up to 10 s.
func (r *logRecorder) wait(t testing.TB, parts ...string) string {
	t.Helper()
	return r.waitFor(t, 10*time.Second, parts...)
}

// waitFor returns the first line holding every part, waiting up to d.
func (r *logRecorder) waitFor(t testing.TB, d time.Duration, parts ...string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		r.mu.Lock()
		for _, l := range r.lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				r.mu.Unlock()
				return l
			}
		}
		ch := r.change
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no log line with %q within %v", parts, d)
			return ""
		}
	}
}

type attrHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) WithGroup(string) slog.Handler            { return h }
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *attrHandler) Handle(_ context.Context, rec slog.Record) error {
	return h.r.handle(rec, h.attrs)
}

// TestServeRealClient runs Serve on the bridge of a lab segment and nclient4
// in a client namespace plugged into it, with vmprov's DNS policy reading real
// BIND: the DORA, a renewal unicast to the leased address, an iPXE client's
// boot URL, and silence towards a MAC DNS does not know.
func TestServeRealClient(t *testing.T) {
	lab.RequireRoot(t, "ip", "named")
	ctx := t.Context()
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	dnsc, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
dns: {zone: ` + lab.TestZone + `}
boot: {url: "http://192.0.2.1:8080"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, dns_servers: [192.0.2.53]}
serve: {interfaces: [br135], lease_time: 600}
`))
	if err != nil {
		t.Fatal(err)
	}
	hostIP := netip.MustParseAddr("192.0.2.10")
	prefix, err := config.ParseMACPrefix(cfg.Addressing.StrictMACPrefix)
	if err != nil {
		t.Fatal(err)
	}
	scheme := inventory.Scheme{Strict: prefix}
	hwaddr, err := scheme.StrictMAC(135, hostIP) // 02:04:06:08:72:0a
	if err != nil {
		t.Fatal(err)
	}
	loadRecords(t, dnsc, append([]string{lab.TestZone}, lab.TestReverseZones()...), []dns.RR{
		mustRR(t, "web10.example.com. 300 IN A 192.0.2.10"),
		mustRR(t, "10.2.0.192.in-addr.arpa. 300 IN PTR web10.example.com."),
		mustRR(t, `web10.example.com. 300 IN TXT "filename=test.ipxe" "distribution=core"`),
	})

	seg := lab.SegmentForTest(t) // br135, 192.0.2.1/24, in seg.Router
	srvNS := seg.Router
	cliNS := seg.ClientForTest(t, hwaddr)

	logs := newLogRecorder(t)
	log := slog.New(logs)
	s, err := New(testServerConfig(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, log), dnsc), log))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srvNS.Do(func() error { return s.Serve(sctx) }) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s of its context ending")
		}
	})
	logs.wait(t, "dhcp4 listening", "iface=br135")

	newClient := func(t *testing.T, opts ...nclient4.ClientOpt) *nclient4.Client {
		t.Helper()
		var c *nclient4.Client
		if err := cliNS.Do(func() error {
			var err error
			c, err = nclient4.New("eth0", append([]nclient4.ClientOpt{nclient4.WithTimeout(2 * time.Second), nclient4.WithRetry(3)}, opts...)...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	check := func(t *testing.T, r *dhcpv4.DHCPv4, mt dhcpv4.MessageType, file string) {
		t.Helper()
		got := []string{
			r.MessageType().String(), r.YourIPAddr.String(), net.IP(r.SubnetMask()).String(), fmt.Sprint(r.Router()), fmt.Sprint(r.DNS()),
			r.DomainName(), r.HostName(), r.IPAddressLeaseTime(0).String(), fmt.Sprint(r.ServerIdentifier()), r.BootFileName,
		}
		want := []string{
			mt.String(), hostIP.String(), "255.255.255.0", "[192.0.2.1]", "[192.0.2.53]",
			"example.com", "web10", "10m0s", "192.0.2.1", file,
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s:\n got %q\nwant %q", mt, got, want)
		}
	}

	var lease *nclient4.Lease
	t.Run("dora", func(t *testing.T) {
		c := newClient(t)
		l, err := c.Request(ctx)
		if err != nil {
			t.Fatalf("DORA: %v", err)
		}
		check(t, l.Offer, dhcpv4.MessageTypeOffer, "")
		check(t, l.ACK, dhcpv4.MessageTypeAck, "")
		lease = l
	})
	t.Run("renew", func(t *testing.T) {
		if lease == nil {
			t.Skip("no lease")
		}
		// A client that took the lease configures its address; the ACK to
		// its renewal is unicast there (RFC 2131 section 4.1).
		if _, err := cliNS.IP(ctx, "addr", "add", "192.0.2.10/24", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		c := newClient(t)
		ack, err := c.Renew(ctx, lease)
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		check(t, ack.ACK, dhcpv4.MessageTypeAck, "")
		if !ack.ACK.ClientIPAddr.Equal(hostIP.AsSlice()) {
			t.Errorf("renewal ACK ciaddr %s, want %s", ack.ACK.ClientIPAddr, hostIP)
		}
		logs.wait(t, "dhcp4 ACK", "state=renewing")
	})
	t.Run("ipxe", func(t *testing.T) {
		c := newClient(t)
		l, err := c.Request(ctx, dhcpv4.WithUserClass("iPXE", false),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")))
		if err != nil {
			t.Fatalf("DORA: %v", err)
		}
		check(t, l.ACK, dhcpv4.MessageTypeAck, "http://192.0.2.1:8080/boot.ipxe")
	})
	t.Run("pxe firmware", func(t *testing.T) {
		c := newClient(t)
		l, err := c.Request(ctx, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(7)))
		if err != nil {
			t.Fatalf("DORA: %v", err)
		}
		check(t, l.ACK, dhcpv4.MessageTypeAck, "snponly.efi")
		if got := l.ACK.ServerIPAddr.String(); got != "192.0.2.1" {
			t.Errorf("next-server %s, want 192.0.2.1", got)
		}
	})
	t.Run("unknown mac", func(t *testing.T) {
		stranger, err := scheme.StrictMAC(135, netip.MustParseAddr("192.0.2.99"))
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, nclient4.WithHWAddr(stranger), nclient4.WithTimeout(time.Second), nclient4.WithRetry(2))
		offer, err := c.DiscoverOffer(ctx)
		if err == nil {
			t.Fatalf("a MAC unknown to DNS got an offer: %s", offer.Summary())
		}
		if !errors.Is(err, nclient4.ErrNoResponse) {
			t.Fatalf("discover failed otherwise than by silence: %v", err)
		}
		logs.wait(t, "client unknown to DNS", "mac="+stranger.String())
	})
	if st := s.Stats(); st.Offers < 3 || st.Acks < 4 || st.Silent < 1 || st.Malformed != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("record %q: %v", s, err)
	}
	return rr
}

// TestServeSkipsIPv6OnlyVLAN: the bridge of an IPv6-only VLAN has no IPv4
// address; DHCPv4 leaves it to DHCPv6 and serves the other interfaces, while
// an interface without IPv4 that no VLAN explains is still a setup error.
func TestServeSkipsIPv6OnlyVLAN(t *testing.T) {
	lab.RequireRoot(t, "ip")
	seg := lab.SegmentForTest(t) // br135, 192.0.2.1/24
	if err := seg.Router.AddBridge(t.Context(), lab.Bridge{Name: "br136", IPv6: netip.MustParsePrefix("2001:db8:136::1/64")}); err != nil {
		t.Fatal(err)
	}
	if err := seg.Router.AddBridge(t.Context(), lab.Bridge{Name: "br137", IPv6: netip.MustParsePrefix("2001:db8:137::1/64")}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
dns: {zone: example.com.}
boot: {url: "http://192.0.2.1:8080"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24}
  - {id: 136, ipv6: "2001:db8:136::/64"}
serve: {interfaces: [br135, br136]}
`))
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogRecorder(t)
	s, err := New(testServerConfig(cfg, &fakePolicy{cfg: cfg}, slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- seg.Router.Do(func() error { return s.Serve(ctx) }) }()
	logs.wait(t, "dhcp4 not listening: IPv6-only VLAN", "iface=br136", "vlan=136")
	logs.wait(t, "dhcp4 listening", "iface=br135", "vlan=135")
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}

	// br137 is on no VLAN: without an IPv4 address it cannot serve.
	cfg.Serve.Interfaces = []string{"br137"}
	s, err = New(testServerConfig(cfg, &fakePolicy{cfg: cfg}, nil))
	if err != nil {
		t.Fatal(err)
	}
	err = seg.Router.Do(func() error { return s.Serve(t.Context()) })
	if err == nil || !strings.Contains(err.Error(), "br137 has no IPv4 address") {
		t.Errorf("Serve on br137 = %v; want an error naming br137", err)
	}
}
