package netboot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// backend is a DNS server the policy reads and the test writes, through
// the dnsupdate seam: a real BIND or the in-memory fake.
type backend interface {
	netboot.Resolver
	dnsupdate.Updater
}

// backends returns the backends every policy test runs against. BIND
// needs root and named; without them only the fake runs (CI has both).
func backends(t *testing.T) map[string]func(t *testing.T) backend {
	return map[string]func(t *testing.T) backend{
		"bind": bindBackend,
		"fake": fakeBackend,
	}
}

func bindBackend(t *testing.T) backend {
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testConfig is the boot service configuration of the tests: seed 000's
// VLAN 135, renumbered into documentation ranges that the lab's reverse
// zones serve.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
dns: {zone: example.com., server: "127.0.0.1:53"}
boot: {url: "http://boot.example.com", url_v6: "http://[2001:db8:135::1]", site: example}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64"}
  - {id: 136, ipv4: 198.51.100.0/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zoneOf returns the lab zone that holds name.
func zoneOf(t testing.TB, name string) string {
	best := ""
	for _, z := range append([]string{lab.TestZone}, lab.TestReverseZones()...) {
		if dns.IsSubDomain(z, name) && len(z) > len(best) {
			best = z
		}
	}
	if best == "" {
		t.Fatalf("%s is in no lab zone", name)
	}
	return best
}

// load adds records (zone file syntax) with one UPDATE per zone.
func load(t testing.TB, u dnsupdate.Updater, records ...string) {
	t.Helper()
	byZone := map[string][]dns.RR{}
	var order []string
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		z := zoneOf(t, rr.Header().Name)
		if _, ok := byZone[z]; !ok {
			order = append(order, z)
		}
		byZone[z] = append(byZone[z], rr)
	}
	for _, z := range order {
		if err := u.Apply(context.Background(), dnsupdate.ChangeSet{Zone: z, Add: byZone[z]}); err != nil {
			t.Fatalf("load %s: %v", z, err)
		}
	}
}

// The hosts of the table, as vmprov writes them (inventory.Host.Records).
var (
	// seed 000's test-centos7, renumbered: VLAN 135, 192.0.2.172.
	centos = inventory.Host{Name: "test-centos7", FQDN: "test-centos7.example.com.",
		MAC: mustMAC("02:04:06:08:72:ac"), IPv4: netip.MustParseAddr("192.0.2.172"),
		Intent: inventory.Intent{{Key: "filename", Value: "test.ipxe"}, {Key: "distribution", Value: "core"}}}
	// seed 000's IPv6-only host: MAC 2a:4a:6a:74:55:06, SLAAC address.
	v6only = inventory.Host{Name: "v6only", FQDN: "v6only.example.com.",
		MAC: mustMAC("2a:4a:6a:74:55:06"), IPv6: netip.MustParseAddr("2001:db8:135::284a:6aff:fe74:5506"),
		Intent: inventory.Intent{{Key: "distribution", Value: "noble"}}}
	// a bare-metal server found by its _mac CNAME.
	sm1 = inventory.Host{Name: "sm1", FQDN: "sm1.example.com.",
		MAC: mustMAC("00:25:90:96:c4:9a"), IPv4: netip.MustParseAddr("192.0.2.50"),
		IPv6: netip.MustParseAddr("2001:db8:135::50"), MACRecord: true,
		Intent: inventory.Intent{{Key: "filename", Value: "metal.ipxe"}, {Key: "distribution", Value: "bookworm"}, {Key: "puppet_server", Value: "puppet.example.com"}}}
	// dual stack: strict MAC, AAAA = EUI-64 of it.
	dual = inventory.Host{Name: "dual", FQDN: "dual.example.com.",
		MAC: mustMAC("02:04:06:08:72:14"), IPv4: netip.MustParseAddr("192.0.2.20"),
		IPv6:   netip.MustParseAddr("2001:db8:135::4:6ff:fe08:7214"),
		Intent: inventory.Intent{{Key: "distribution", Value: "rocky9"}}}
	// no TXT: known, nothing to boot.
	notxt = inventory.Host{Name: "notxt", FQDN: "notxt.example.com.",
		MAC: mustMAC("02:04:06:08:72:50"), IPv4: netip.MustParseAddr("192.0.2.80")}
)

// addrEqual compares netip.Addr values by value.
var addrEqual = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// hostRecords writes h's records with a 300 s TTL.
func hostRecords(h inventory.Host) []string {
	var out []string
	for _, r := range h.Records(lab.TestZone) {
		out = append(out, fmt.Sprintf("%s 300 IN %s %s", r.Name, r.Type, r.Data))
	}
	return out
}

// loadTable writes every host of the table plus the broken cases.
func loadTable(t testing.TB, u dnsupdate.Updater) {
	var rs []string
	for _, h := range []inventory.Host{centos, v6only, sm1, dual, notxt} {
		rs = append(rs, hostRecords(h)...)
	}
	rs = append(rs,
		// FCrDNS mismatch: the PTR names a host whose A is another address.
		"66.2.0.192.in-addr.arpa. 300 PTR liar.example.com.",
		"liar.example.com. 300 A 192.0.2.67",
		`liar.example.com. 300 TXT "distribution=core"`,
		// a TXT that is no boot intent.
		"81.2.0.192.in-addr.arpa. 300 PTR badtxt.example.com.",
		"badtxt.example.com. 300 A 192.0.2.81",
		`badtxt.example.com. 300 TXT "v=spf1 -all"`,
		// a PTR out of the zone, with a forward record elsewhere.
		"90.2.0.192.in-addr.arpa. 300 PTR host.example.net.",
		// a _mac CNAME that leaves the zone.
		"00-25-90-00-00-01._mac.example.com. 300 CNAME host.example.net.",
	)
	load(t, u, rs...)
}

func TestDecide(t *testing.T) {
	noIntent := func(h inventory.Host) inventory.Host { h.Intent = nil; return h }
	sm1ByAddr := sm1
	sm1ByAddr.MAC, sm1ByAddr.MACRecord = mustMAC("02:04:06:08:72:32"), false // derived: strict MAC of 192.0.2.50
	badtxt := inventory.Host{Name: "badtxt", FQDN: "badtxt.example.com.", MAC: mustMAC("02:04:06:08:72:51"), IPv4: netip.MustParseAddr("192.0.2.81")}
	tests := []struct {
		name    string
		client  netboot.Client
		want    inventory.Host
		vlan    int
		unknown bool
	}{
		{name: "seed 000 host by address", client: netboot.Client{Addr: centos.IPv4}, want: centos, vlan: 135},
		{name: "seed 000 host by IPv4-mapped address", client: netboot.Client{Addr: netip.AddrFrom16(centos.IPv4.As16())}, want: centos, vlan: 135},
		{name: "seed 000 host by strict MAC", client: netboot.Client{MAC: centos.MAC}, want: centos, vlan: 135},
		{name: "strict MAC on its VLAN", client: netboot.Client{MAC: centos.MAC, VLAN: 135}, want: centos, vlan: 135},
		{name: "strict MAC on another VLAN", client: netboot.Client{MAC: centos.MAC, VLAN: 136}, unknown: true},
		{name: "strict MAC of an unconfigured VLAN", client: netboot.Client{MAC: mustMAC("02:04:06:09:92:ac")}, unknown: true},
		{name: "strict MAC of a free address", client: netboot.Client{MAC: mustMAC("02:04:06:08:72:ad")}, unknown: true},
		{name: "IPv6-only host by address", client: netboot.Client{Addr: v6only.IPv6}, want: v6only, vlan: 135},
		{name: "IPv6-only host by SLAAC MAC", client: netboot.Client{MAC: v6only.MAC}, want: v6only, vlan: 135},
		{name: "IPv6-only host by SLAAC MAC on its VLAN", client: netboot.Client{MAC: v6only.MAC, VLAN: 135}, want: v6only, vlan: 135},
		{name: "SLAAC MAC of nobody", client: netboot.Client{MAC: mustMAC("2a:4a:6a:00:00:01")}, unknown: true},
		{name: "bare metal by _mac CNAME", client: netboot.Client{MAC: sm1.MAC}, want: sm1, vlan: 135},
		{name: "bare metal by address", client: netboot.Client{Addr: sm1.IPv4}, want: sm1ByAddr, vlan: 135},
		{name: "dual stack by IPv4", client: netboot.Client{Addr: dual.IPv4}, want: dual, vlan: 135},
		{name: "dual stack by IPv6", client: netboot.Client{Addr: dual.IPv6}, want: dual, vlan: 135},
		{name: "dual stack by MAC", client: netboot.Client{MAC: dual.MAC}, want: dual, vlan: 135},
		{name: "no TXT: known without intent", client: netboot.Client{Addr: notxt.IPv4}, want: noIntent(notxt), vlan: 135},
		{name: "malformed TXT: known without intent", client: netboot.Client{Addr: badtxt.IPv4}, want: badtxt, vlan: 135},
		{name: "FCrDNS mismatch", client: netboot.Client{Addr: netip.MustParseAddr("192.0.2.66")}, unknown: true},
		{name: "A without PTR", client: netboot.Client{Addr: netip.MustParseAddr("192.0.2.67")}, unknown: true},
		{name: "PTR outside the zone", client: netboot.Client{Addr: netip.MustParseAddr("192.0.2.90")}, unknown: true},
		{name: "no records", client: netboot.Client{Addr: netip.MustParseAddr("192.0.2.99")}, unknown: true},
		{name: "unknown MAC", client: netboot.Client{MAC: mustMAC("00:11:22:33:44:55")}, unknown: true},
		{name: "_mac CNAME out of the zone", client: netboot.Client{MAC: mustMAC("00:25:90:00:00:01")}, unknown: true},
		{name: "nothing to go by", client: netboot.Client{}, unknown: true},
	}
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			b := mk(t)
			loadTable(t, b)
			p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), b)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					d, err := p.Decide(t.Context(), tt.client)
					if tt.unknown {
						if !errors.Is(err, netboot.ErrUnknown) {
							t.Fatalf("Decide = %+v, %v; want ErrUnknown", d, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Decide: %v", err)
					}
					if diff := cmp.Diff(tt.want, d.Host, addrEqual); diff != "" {
						t.Errorf("host (-want +got):\n%s", diff)
					}
					if d.VLAN.ID != tt.vlan {
						t.Errorf("VLAN %d, want %d", d.VLAN.ID, tt.vlan)
					}
					if d.TTL <= 0 || d.TTL > 300*time.Second {
						t.Errorf("TTL %v, want the records' 300s or less", d.TTL)
					}
				})
			}
		})
	}
}

// TestDecideDNSDown: no DNS answer is an error that is not ErrUnknown.
func TestDecideDNSDown(t *testing.T) {
	cases := map[string]func(t *testing.T) netboot.Resolver{
		// Nothing listens: the lookups fail at once (port unreachable).
		"no server": func(t *testing.T) netboot.Resolver {
			l, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.LocalAddr().String()
			l.Close()
			c, err := dnsupdate.New(dnsupdate.Config{Server: addr, Timeout: 200 * time.Millisecond, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		// A server that never answers: the lookups time out.
		"silent server": func(t *testing.T) netboot.Resolver {
			l, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			c, err := dnsupdate.New(dnsupdate.Config{Server: l.LocalAddr().String(), Timeout: 200 * time.Millisecond, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		// The fake answers SERVFAIL.
		"servfail": func(t *testing.T) netboot.Resolver {
			f := fakeBackend(t).(*dnstest.Fake)
			load(t, f, hostRecords(centos)...)
			for range 4 {
				f.FailNextLookup(dns.RcodeServerFailure)
			}
			return f
		},
		// BIND was there and stopped. The records are loaded with a client
		// of default timeout and retries (a busy machine may be slow to
		// answer the UPDATE); only the lookups after the stop use the
		// short, no-retry client the failure case is about.
		"bind stopped": func(t *testing.T) netboot.Resolver {
			b := lab.BINDForTest(t)
			name, alg, secret := b.TSIG()
			loader, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			load(t, loader, hostRecords(centos)...)
			c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret, Timeout: 200 * time.Millisecond, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), mk(t))
			for _, c := range []netboot.Client{{Addr: centos.IPv4}, {MAC: centos.MAC}, {MAC: v6only.MAC}, {MAC: sm1.MAC}} {
				d, err := p.Decide(t.Context(), c)
				if err == nil || errors.Is(err, netboot.ErrUnknown) {
					t.Errorf("Decide(%v %v) = %+v, %v; want an error other than ErrUnknown", c.Addr, c.MAC, d, err)
				}
			}
		})
	}
}

// TestDecideRefused: a server that refuses the question (here: no zone for
// the reverse name) is no answer either.
// TestDecideRefused: a DNS server that refuses the PTR query serves no
// reverse zone for the address. On a configured VLAN (198.51.100.0/24 is
// VLAN 136, whose reverse zone the lab lacks) that is a setup error the
// caller must not mistake for an unknown client; on no VLAN (203.0.113.7)
// the client is simply unknown.
func TestDecideRefused(t *testing.T) {
	for name, newBackend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), newBackend(t))
			_, err := p.Decide(t.Context(), netboot.Client{Addr: netip.MustParseAddr("198.51.100.7")})
			var re *dnsupdate.RcodeError
			if !errors.As(err, &re) || re.Rcode != dns.RcodeRefused || errors.Is(err, netboot.ErrUnknown) {
				t.Errorf("Decide(198.51.100.7 on VLAN 136) = %v; want REFUSED, not ErrUnknown", err)
			}
			_, err = p.Decide(t.Context(), netboot.Client{Addr: netip.MustParseAddr("203.0.113.7")})
			if !errors.Is(err, netboot.ErrUnknown) {
				t.Errorf("Decide(203.0.113.7 on no VLAN) = %v; want ErrUnknown", err)
			}
		})
	}
}

// counter counts the queries that reach a backend, per type.
type counter struct {
	netboot.Resolver
	mu sync.Mutex
	n  map[string]int
	// gate, when set, holds every query until it is closed.
	gate chan struct{}
	// inflight counts queries waiting at the gate.
	inflight atomic.Int32
}

func (c *counter) Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[dns.Type(qtype).String()+" "+strings.ToLower(name)]++
	c.mu.Unlock()
	if c.gate != nil {
		c.inflight.Add(1)
		<-c.gate
	}
	return c.Resolver.Lookup(ctx, name, qtype)
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// TestBootStorm: concurrent decisions for one client send one query per
// record they need, and repeated ones none while the answers are fresh.
func TestBootStorm(t *testing.T) {
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			b := mk(t)
			loadTable(t, b)
			clients := map[string]netboot.Client{
				"by address": {Addr: centos.IPv4},
				"by MAC":     {MAC: centos.MAC},
			}
			for cname, client := range clients {
				t.Run(cname, func(t *testing.T) {
					cnt := &counter{Resolver: b, gate: make(chan struct{})}
					p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), cnt)
					const n = 64
					var wg sync.WaitGroup
					errs := make(chan error, n)
					for range n {
						wg.Go(func() {
							d, err := p.Decide(t.Context(), client)
							if err == nil && d.Host.FQDN != centos.FQDN {
								err = fmt.Errorf("decided %s", d.Host.FQDN)
							}
							errs <- err
						})
					}
					// Release the first query once everyone waits for it.
					deadline := time.Now().Add(10 * time.Second)
					for cnt.inflight.Load() < 1 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
					close(cnt.gate)
					wg.Wait()
					close(errs)
					for err := range errs {
						if err != nil {
							t.Fatal(err)
						}
					}
					want := map[string]int{
						"PTR 172.2.0.192.in-addr.arpa.":  1,
						"A test-centos7.example.com.":    1,
						"AAAA test-centos7.example.com.": 1,
						"TXT test-centos7.example.com.":  1,
					}
					if diff := cmp.Diff(want, cnt.counts()); diff != "" {
						t.Errorf("queries (-want +got):\n%s", diff)
					}
					for range 10 {
						if _, err := p.Decide(t.Context(), client); err != nil {
							t.Fatal(err)
						}
					}
					if diff := cmp.Diff(want, cnt.counts()); diff != "" {
						t.Errorf("queries after cached decisions (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// clock is a manual clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestDecideFollowsTTL: a decision rests on cached answers for their TTL,
// positive and negative (RFC 2308), and DNS changes show after it.
func TestDecideFollowsTTL(t *testing.T) {
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			b := mk(t)
			load(t, b, hostRecords(centos)...)
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			cnt := &counter{Resolver: b}
			cache := netboot.NewCache(cnt, netboot.CacheConfig{Now: clk.Now})
			p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), cache)
			ctx := t.Context()
			newHost := inventory.Host{Name: "late", FQDN: "late.example.com.", MAC: mustMAC("02:04:06:08:72:63"),
				IPv4: netip.MustParseAddr("192.0.2.99"), Intent: inventory.Intent{{Key: "distribution", Value: "core"}}}

			d, err := p.Decide(ctx, netboot.Client{Addr: centos.IPv4})
			if err != nil {
				t.Fatal(err)
			}
			if d.TTL != 300*time.Second {
				t.Errorf("TTL %v, want 300s", d.TTL)
			}
			if _, err := p.Decide(ctx, netboot.Client{Addr: newHost.IPv4}); !errors.Is(err, netboot.ErrUnknown) {
				t.Fatalf("before it exists: %v, want ErrUnknown", err)
			}
			// The host appears and the first one's intent changes.
			load(t, b, hostRecords(newHost)...)
			if err := b.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestZone,
				RemoveRRset: []dnsupdate.RRKey{{Name: centos.FQDN, Type: dns.TypeTXT}},
				Add:         []dns.RR{mustRR(t, `test-centos7.example.com. 300 TXT "distribution=rocky9"`)}}); err != nil {
				t.Fatal(err)
			}
			before := cnt.counts()
			clk.Advance(100 * time.Second)
			d, err = p.Decide(ctx, netboot.Client{Addr: centos.IPv4})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := d.Host.Intent.Get("distribution"); got != "core" {
				t.Errorf("within the TTL: distribution %q, want the cached core", got)
			}
			if d.TTL != 200*time.Second {
				t.Errorf("TTL %v, want the 200s left", d.TTL)
			}
			if _, err := p.Decide(ctx, netboot.Client{Addr: newHost.IPv4}); !errors.Is(err, netboot.ErrUnknown) {
				t.Errorf("within the negative TTL: %v, want the cached ErrUnknown", err)
			}
			if diff := cmp.Diff(before, cnt.counts()); diff != "" {
				t.Errorf("queries within the TTL (-before +after):\n%s", diff)
			}
			clk.Advance(201 * time.Second)
			d, err = p.Decide(ctx, netboot.Client{Addr: centos.IPv4})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := d.Host.Intent.Get("distribution"); got != "rocky9" {
				t.Errorf("after the TTL: distribution %q, want rocky9", got)
			}
			if d, err := p.Decide(ctx, netboot.Client{Addr: newHost.IPv4}); err != nil || d.Host.FQDN != newHost.FQDN {
				t.Errorf("after the negative TTL: %+v, %v; want %s", d.Host, err, newHost.FQDN)
			}
		})
	}
}

// TestDecideRecreatedHost: a host destroyed and made again at another
// address within the TTL is known at once: its new PTR names it, and the
// forward answer the cache still holds (here: no A, from when it was
// IPv6-only) is asked again past the cache. A client with no PTR of ours
// causes no query while its negative answer is cached, and a PTR whose
// host keeps disagreeing is still unknown.
func TestDecideRecreatedHost(t *testing.T) {
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			b := mk(t)
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			cnt := &counter{Resolver: b}
			cache := netboot.NewCache(cnt, netboot.CacheConfig{Now: clk.Now})
			p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(t), nil), cache)
			ctx := t.Context()
			intent := inventory.Intent{{Key: "distribution", Value: "bookworm"}}
			before := inventory.Host{Name: "again", FQDN: "again.example.com.", MAC: mustMAC("2a:4a:6a:47:7a:8e"),
				IPv6: netip.MustParseAddr("2001:db8:135:0:284a:6aff:fe47:7a8e"), Intent: intent}
			load(t, b, hostRecords(before)...)
			if d, err := p.Decide(ctx, netboot.Client{Addr: before.IPv6}); err != nil || d.Host.IPv4.IsValid() {
				t.Fatalf("IPv6-only host: %+v, %v; want it without IPv4 (its empty A now cached)", d.Host, err)
			}
			// vmprov destroy, then vmprov create at an IPv4 address.
			var remove []dnsupdate.RRKey
			for _, r := range before.Records(lab.TestZone) {
				if dns.IsSubDomain(lab.TestZone, r.Name) {
					remove = append(remove, dnsupdate.RRKey{Name: r.Name, Type: dns.StringToType[r.Type]})
				}
			}
			if err := b.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestZone, RemoveRRset: remove}); err != nil {
				t.Fatal(err)
			}
			after := inventory.Host{Name: "again", FQDN: "again.example.com.", MAC: mustMAC("02:04:06:08:72:28"),
				IPv4: netip.MustParseAddr("192.0.2.40"), Intent: intent}
			load(t, b, hostRecords(after)...)
			clk.Advance(10 * time.Second)
			d, err := p.Decide(ctx, netboot.Client{MAC: after.MAC, VLAN: 135})
			if err != nil || d.Host.IPv4 != after.IPv4 {
				t.Fatalf("re-created host within the TTL: %+v, %v; want it at %s", d.Host, err, after.IPv4)
			}
			// Its renewed answers are cached again: no query on the next decision.
			n := cnt.counts()
			if _, err := p.Decide(ctx, netboot.Client{MAC: after.MAC, VLAN: 135}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(n, cnt.counts()); diff != "" {
				t.Errorf("queries of a second decision (-before +after):\n%s", diff)
			}
			// A PTR that names a host whose A holds another address stays unknown.
			load(t, b, "66.2.0.192.in-addr.arpa. 300 PTR liar.example.com.", "liar.example.com. 300 A 192.0.2.67")
			if _, err := p.Decide(ctx, netboot.Client{Addr: netip.MustParseAddr("192.0.2.66")}); !errors.Is(err, netboot.ErrUnknown) {
				t.Errorf("FCrDNS mismatch: %v, want ErrUnknown", err)
			}
			// An address without a PTR of ours: no query once its negative answer is cached.
			stranger := netboot.Client{Addr: netip.MustParseAddr("192.0.2.77")}
			if _, err := p.Decide(ctx, stranger); !errors.Is(err, netboot.ErrUnknown) {
				t.Fatalf("no PTR: %v, want ErrUnknown", err)
			}
			n = cnt.counts()
			if _, err := p.Decide(ctx, stranger); !errors.Is(err, netboot.ErrUnknown) {
				t.Fatalf("no PTR: %v, want ErrUnknown", err)
			}
			if diff := cmp.Diff(n, cnt.counts()); diff != "" {
				t.Errorf("queries for a client with no PTR of ours (-before +after):\n%s", diff)
			}
		})
	}
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func fakeBackend(t *testing.T) backend {
	return dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
}

// BenchmarkDecideCached measures a decision whose DNS answers are all
// cached, as for every request of a boot storm after the first from each
// client: a strict MAC (PTR, A, AAAA, TXT), a _mac host (CNAME, A, AAAA,
// TXT) and a host by address (HTTP, TFTP).
func BenchmarkDecideCached(b *testing.B) {
	f := dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
	loadTable(b, f)
	p := netboot.NewDNSPolicy(serveconfig.Policy(testConfig(b), nil), f)
	for _, tt := range []struct {
		name string
		c    netboot.Client
	}{
		{"strict-mac", netboot.Client{MAC: centos.MAC, VLAN: 135}},
		{"mac-cname", netboot.Client{MAC: sm1.MAC, VLAN: 135}},
		{"addr", netboot.Client{Addr: centos.IPv4}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			if _, err := p.Decide(b.Context(), tt.c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Decide(b.Context(), tt.c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIntentParsedOncePerAnswer: a host's TXT is read as a boot intent once
// for each answer DNS gives, not on every decision: a TXT that is no boot
// intent is logged once per TTL however many requests the host makes, and
// a caller that changes a decision's intent does not change the next one.
func TestIntentParsedOncePerAnswer(t *testing.T) {
	f := fakeBackend(t)
	loadTable(t, f)
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	cfg := serveconfig.Policy(testConfig(t), nil)
	cfg.Log = log
	p := netboot.NewDNSPolicy(cfg, netboot.NewCache(f, netboot.CacheConfig{Now: clk.Now}))
	badtxt := netboot.Client{Addr: netip.MustParseAddr("192.0.2.81")}
	warnings := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logs.String(), "txt record is not a boot intent")
	}
	for range 3 {
		d, err := p.Decide(t.Context(), badtxt)
		if err != nil {
			t.Fatal(err)
		}
		if d.Host.Intent != nil {
			t.Errorf("badtxt: intent %v, want none", d.Host.Intent)
		}
	}
	if n := warnings(); n != 1 {
		t.Errorf("3 decisions within the TTL logged %d warnings, want 1:\n%s", n, logs.String())
	}
	clk.Advance(301 * time.Second)
	if _, err := p.Decide(t.Context(), badtxt); err != nil {
		t.Fatal(err)
	}
	if n := warnings(); n != 2 {
		t.Errorf("a decision after the TTL: %d warnings in all, want 2", n)
	}

	d, err := p.Decide(t.Context(), netboot.Client{Addr: centos.IPv4})
	if err != nil {
		t.Fatal(err)
	}
	d.Host.Intent[0].Value = "changed.ipxe"
	d, err = p.Decide(t.Context(), netboot.Client{Addr: centos.IPv4})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(centos.Intent, d.Host.Intent); diff != "" {
		t.Errorf("intent after a caller changed an earlier decision's (-want +got):\n%s", diff)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
