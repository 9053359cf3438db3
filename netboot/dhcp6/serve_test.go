package dhcp6_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// logLine is one record the server logged.
type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logStore collects a server's records so tests can wait for one.
type logStore struct {
	mu    sync.Mutex
	lines []logLine
}

// recHandler is a slog.Handler writing into a logStore.
type recHandler struct {
	st    *logStore
	attrs []slog.Attr
}

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recHandler) Handle(_ context.Context, r slog.Record) error {
	l := logLine{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		l.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	h.st.mu.Lock()
	h.st.lines = append(h.st.lines, l)
	h.st.mu.Unlock()
	return nil
}

func (h *recHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recHandler{st: h.st, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *recHandler) WithGroup(string) slog.Handler { return h }

// wait returns the first record matching msg (a prefix) and attrs, waiting
// up to 10 s for it.
func (st *logStore) wait(t *testing.T, msg string, attrs map[string]string) logLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		for _, l := range st.lines {
			if !strings.HasPrefix(l.msg, msg) {
				continue
			}
			ok := true
			for k, v := range attrs {
				ok = ok && l.attrs[k] == v
			}
			if ok {
				st.mu.Unlock()
				return l
			}
		}
		st.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, l := range st.lines {
		t.Logf("server log: %s %q %v", l.level, l.msg, l.attrs)
	}
	t.Fatalf("server never logged %q with %v", msg, attrs)
	return logLine{}
}

// TestServe runs Serve in a lab namespace on bridge br135 against a real
// BIND, and real nclient6 clients in namespaces plugged into the bridge.
func TestServe(t *testing.T) {
	lab.RequireRoot(t, "ip", "named")
	seg := lab.SegmentForTest(t)
	b := bindBackend(t)
	load(t, b, records()...)
	cfg := testConfig(t)
	logs := &logStore{}

	var srv *dhcp6.Server
	var brMAC net.HardwareAddr
	if err := seg.Router.Do(func() error {
		ifi, err := net.InterfaceByName("br135")
		if err != nil {
			return err
		}
		brMAC = ifi.HardwareAddr
		srv, err = dhcp6.New(dhcp6.Config{DHCPConfig: serveconfig.DHCP(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), slog.New(&recHandler{st: logs}))})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !srv.ServerDUID().Equal(duidLL(brMAC)) {
		t.Fatalf("server DUID %v, want DUID-LL of br135's MAC %s", srv.ServerDUID(), brMAC)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- seg.Router.Do(func() error { return srv.Serve(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	logs.wait(t, "dhcp6 listening", map[string]string{"iface": "br135", "vlan": "135", "ip": "2001:db8:135::1"})

	t.Run("DUID-LL solicit, request, information-request", func(t *testing.T) {
		c := newClient(t, seg, v6onlyMAC, netip.Addr{})
		cid := dhcpv6.WithClientID(duidLL(v6onlyMAC))
		adv, err := c.Solicit(t.Context(), cid)
		if err != nil {
			t.Fatalf("Solicit: %v", err)
		}
		checkLease(t, adv, dhcpv6.MessageTypeAdvertise, v6onlyAddr, srv.ServerDUID())
		rep, err := c.Request(t.Context(), adv)
		if err != nil {
			t.Fatalf("Request: %v", err)
		}
		checkLease(t, rep, dhcpv6.MessageTypeReply, v6onlyAddr, srv.ServerDUID())

		rep = infoRequest(t, c, duidLL(v6onlyMAC))
		if got, want := rep.Options.BootFileURL(), "http://[2001:db8:135::1]/boot.ipxe"; got != want {
			t.Errorf("boot file URL %q, want %q", got, want)
		}
		if got := fmt.Sprint(rep.Options.DNS()); got != "[2001:db8:135::53]" {
			t.Errorf("DNS servers %s, want [2001:db8:135::53]", got)
		}
		if l := rep.Options.DomainSearchList(); l == nil || fmt.Sprint(l.Labels) != "[example.com]" {
			t.Errorf("domain search list %v, want [example.com]", l)
		}
	})

	t.Run("DUID-LLT rapid commit", func(t *testing.T) {
		c := newClient(t, seg, sm1MAC, netip.Addr{})
		rep, err := c.RapidSolicit(t.Context())
		if err != nil {
			t.Fatalf("RapidSolicit: %v", err)
		}
		checkLease(t, rep, dhcpv6.MessageTypeReply, sm1Addr, srv.ServerDUID())
		if rep.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
			t.Error("Reply without Rapid Commit")
		}
		rep = infoRequest(t, c, duidLLT(sm1MAC))
		if got, want := rep.Options.BootFileURL(), "http://[2001:db8:135::1]/boot.ipxe"; got != want {
			t.Errorf("boot file URL %q, want %q", got, want)
		}
	})

	t.Run("DUID-UUID identified by EUI-64 link-local", func(t *testing.T) {
		c := newClient(t, seg, fcMAC, netip.Addr{})
		adv, err := c.Solicit(t.Context(), dhcpv6.WithClientID(duidUUID), withUserClass("iPXE"))
		if err != nil {
			t.Fatalf("Solicit: %v", err)
		}
		checkLease(t, adv, dhcpv6.MessageTypeAdvertise, fcAddr, srv.ServerDUID())
		if got, want := adv.Options.BootFileURL(), "http://[2001:db8:135::1]/boot.ipxe"; got != want {
			t.Errorf("boot file URL %q, want %q", got, want)
		}
		rep, err := c.Request(t.Context(), adv, withUserClass("iPXE"))
		if err != nil {
			t.Fatalf("Request: %v", err)
		}
		checkLease(t, rep, dhcpv6.MessageTypeReply, fcAddr, srv.ServerDUID())
		rep = infoRequest(t, c, duidUUID)
		if got, want := rep.Options.BootFileURL(), "http://[2001:db8:135::1]/boot.ipxe"; got != want {
			t.Errorf("boot file URL %q, want %q", got, want)
		}
	})

	t.Run("DUID-UUID without a MAC anywhere: silence", func(t *testing.T) {
		mac := mustMAC("02:42:c6:12:00:07")
		c := newClient(t, seg, mac, privacyLL)
		ctx, stop := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer stop()
		adv, err := c.Solicit(ctx, dhcpv6.WithClientID(duidUUID))
		if err == nil {
			t.Fatalf("Solicit answered: %s", adv.Summary())
		}
		logs.wait(t, "no MAC in the client's DUID", map[string]string{"duid": hexDUID(duidUUID)})
	})

	t.Run("DUID-LL unknown to DNS: silence", func(t *testing.T) {
		c := newClient(t, seg, strangerMAC, netip.Addr{})
		ctx, stop := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer stop()
		adv, err := c.Solicit(ctx, dhcpv6.WithClientID(duidLL(strangerMAC)))
		if err == nil {
			t.Fatalf("Solicit answered: %s", adv.Summary())
		}
		logs.wait(t, "client unknown to DNS", map[string]string{"mac": strangerMAC.String()})
	})

	// The exchanges above, as /metrics shows them. Clients may retransmit
	// on a loaded machine, so the counts are lower bounds.
	t.Run("metrics", func(t *testing.T) {
		st := srv.Stats()
		if st.Advertises < 2 || st.Replies < 6 || st.Silent < 2 || st.Malformed != 0 || st.Errors != 0 {
			t.Errorf("stats %+v, want at least 2 advertises, 6 replies, 2 silent and no malformed or errors", st)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(srv.Collector())
		want := fmt.Sprintf(`
# HELP vmprov_dhcp6_replies_total DHCPv6 answers sent, by message type.
# TYPE vmprov_dhcp6_replies_total counter
vmprov_dhcp6_replies_total{type="advertise"} %d
vmprov_dhcp6_replies_total{type="reply"} %d
# HELP vmprov_dhcp6_silent_total DHCPv6 messages not answered: unidentified clients, another server's.
# TYPE vmprov_dhcp6_silent_total counter
vmprov_dhcp6_silent_total %d
# HELP vmprov_dhcp6_malformed_total DHCPv6 packets dropped as malformed.
# TYPE vmprov_dhcp6_malformed_total counter
vmprov_dhcp6_malformed_total 0
`, st.Advertises, st.Replies, st.Silent)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"vmprov_dhcp6_replies_total", "vmprov_dhcp6_silent_total", "vmprov_dhcp6_malformed_total"); err != nil {
			t.Error(err)
		}
		// Every answer, and every silence for a client unknown to DNS,
		// rests on a decision of the policy, which is timed.
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var decisions uint64
		for _, f := range fams {
			if f.GetName() == netboot.DecisionDurationName {
				for _, m := range f.GetMetric() {
					decisions += m.GetHistogram().GetSampleCount()
				}
			}
		}
		if answers := st.Advertises + st.Replies; decisions < answers {
			t.Errorf("%s counts %d decisions, want at least %d (one per answer)", netboot.DecisionDurationName, decisions, answers)
		}
	})
}

// newClient plugs a client namespace with MAC mac into the segment and
// opens an nclient6 client on its eth0. With ll valid, the interface's
// EUI-64 link-local address is replaced by ll (as with stable privacy
// addresses).
func newClient(t *testing.T, seg *lab.Segment, mac net.HardwareAddr, ll netip.Addr) *nclient6.Client {
	t.Helper()
	ns := seg.ClientForTest(t, mac)
	if ll.IsValid() {
		if _, err := ns.IP(t.Context(), "addr", "flush", "dev", "eth0", "scope", "link"); err != nil {
			t.Fatal(err)
		}
		if _, err := ns.IP(t.Context(), "addr", "add", ll.String()+"/64", "dev", "eth0", "nodad"); err != nil {
			t.Fatal(err)
		}
	}
	var c *nclient6.Client
	deadline := time.Now().Add(5 * time.Second)
	err := ns.Do(func() error {
		// Go resolves zone names through a process-wide cache that does
		// not know namespaces, so the socket and the server address use
		// the interface index as their zone.
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		zone := strconv.Itoa(ifi.Index)
		for {
			// The link-local address appears once both veth ends are up.
			var conn *net.UDPConn
			if lla := linkLocalOf(ifi); lla != nil {
				conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lla, Port: dhcpv6.DefaultClientPort, Zone: zone})
				if err == nil {
					c, err = nclient6.NewWithConn(conn, mac, nclient6.WithTimeout(500*time.Millisecond), nclient6.WithRetry(4),
						nclient6.WithBroadcastAddr(&net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: zone}))
				}
			} else {
				err = errors.New("eth0 has no link-local address")
			}
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err != nil {
		t.Fatalf("nclient6 on eth0: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// infoRequest sends an Information-request as iPXE does after SLAAC (user
// class iPXE, asking for DNS, domain list and boot file URL) and returns
// the Reply.
func infoRequest(t *testing.T, c *nclient6.Client, duid dhcpv6.DUID) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage(dhcpv6.WithClientID(duid), withUserClass("iPXE"),
		dhcpv6.WithRequestedOptions(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList, dhcpv6.OptionBootfileURL))
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeInformationRequest
	rep, err := c.SendAndRead(t.Context(), c.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		t.Fatalf("Information-request: %v", err)
	}
	return rep
}

// linkLocalOf returns the link-local address of ifi, nil when it has none.
func linkLocalOf(ifi *net.Interface) net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP
		}
	}
	return nil
}

// checkLease checks a reply's type, server and single IA_NA address.
func checkLease(t *testing.T, m *dhcpv6.Message, typ dhcpv6.MessageType, want netip.Addr, server dhcpv6.DUID) {
	t.Helper()
	if m.MessageType != typ {
		t.Fatalf("got %s, want %s", m.MessageType, typ)
	}
	if sid := m.Options.ServerID(); sid == nil || !sid.Equal(server) {
		t.Errorf("server ID %v, want %v", sid, server)
	}
	ia := m.Options.OneIANA()
	if ia == nil {
		t.Fatalf("no IA_NA in %s", m.Summary())
	}
	a := ia.Options.OneAddress()
	if a == nil {
		t.Fatalf("no address in %s", m.Summary())
	}
	if got, _ := netip.AddrFromSlice(a.IPv6Addr); got != want {
		t.Errorf("address %s, want %s", got, want)
	}
	if a.ValidLifetime != time.Hour || a.PreferredLifetime != time.Hour {
		t.Errorf("lifetimes %v/%v, want 1h/1h", a.PreferredLifetime, a.ValidLifetime)
	}
}
