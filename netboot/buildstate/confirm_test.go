package buildstate_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/test/lab"
)

// TestConfirmedAfterAnotherInstance runs two serve instances' policies
// against one real BIND: both read a host in state install into their
// caches (TTL 300 s), then the first instance's writer marks it installing
// and installed, as its HTTP server does for the installer's answer file
// and callback. The second instance's cache still says install, yet the
// answers that would hand out the installer (the /pxedust chain, the
// per-host grub.cfg and pxelinux.cfg) confirm the state with one uncached
// query and boot the local disk. Then a reinstall is written while the
// second instance caches installed: its local-boot answers (DHCP to PXE
// firmware included) confirm the state too, and install again.
func TestConfirmedAfterAnotherInstance(t *testing.T) {
	b := lab.BINDForTest(t)
	name, alg, s := b.TSIG()
	newClient := func() *dnsupdate.Client {
		c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: s})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := t.Context()
	fqdn, addr := "metal1.example.com.", netip.MustParseAddr("192.0.2.77")
	intent := inventory.Intent{{Key: "distribution", Value: "bookworm"}, {Key: "state", Value: "install"}, {Key: "build_id", Value: "38b6bf72"}}
	rrs := []dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: addr.AsSlice()},
		&dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: intent.TXT()},
	}
	ptr := &dns.PTR{Hdr: dns.RR_Header{Name: inventory.ReverseName(addr), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 300}, Ptr: fqdn}
	w := newClient()
	if err := w.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestZone, Add: rrs}); err != nil {
		t.Fatal(err)
	}
	if err := w.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestReverseZones()[0], Add: []dns.RR{ptr}}); err != nil {
		t.Fatal(err)
	}

	cfg := netboot.PolicyConfig{Zone: lab.TestZone, VLANs: netboot.VLANs{{ID: 135, IPv4: netip.MustParsePrefix("192.0.2.0/24")}}}
	first := netboot.NewDNSPolicy(cfg, newClient())
	second := netboot.NewDNSPolicy(cfg, newClient())
	booter := netboot.Booter{URL: "http://192.0.2.1:8080", Site: "example"}
	queries := []netboot.Query{
		{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaHTTP},
		{Firmware: netboot.Firmware{Kind: netboot.KindGRUB}, Via: netboot.ViaTFTP},
		{Firmware: netboot.Firmware{Kind: netboot.KindPXELinux}, Via: netboot.ViaTFTP},
	}
	decide := func(p *netboot.DNSPolicy) netboot.Decision {
		t.Helper()
		d, err := p.Decide(ctx, netboot.Client{Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Both instances answer the install while it is due: the fresh read
	// agrees with the cache.
	for _, p := range []*netboot.DNSPolicy{first, second} {
		d := decide(p)
		for _, q := range queries {
			if a, _, err := booter.Confirmed(ctx, p, d, q); err != nil || !a.Installs {
				t.Fatalf("%s over %s in state install = %+v, %v; want the installer", q.Firmware, q.Via, a, err)
			}
		}
	}

	// The first instance's HTTP server marks the host installing, then
	// installed.
	ws := buildstate.NewWriter(newClient(), lab.TestZone)
	for _, c := range []buildstate.Change{
		{FQDN: fqdn, To: inventory.StateInstalling, From: []inventory.State{inventory.StateInstall}},
		{FQDN: fqdn, To: inventory.StateInstalled, From: []inventory.State{inventory.StateInstall, inventory.StateInstalling}},
	} {
		if res, err := ws.Apply(ctx, c); err != nil || !res.Changed {
			t.Fatalf("mark %s: %+v, %v", c.To, res, err)
		}
	}

	// The second instance's cache still holds state install: Answer alone
	// would hand out the installer again.
	stale := decide(second)
	if st := stale.Host.Intent.State(); st != inventory.StateInstall {
		t.Fatalf("the second instance's cache says %s; the test needs it warm with install", st)
	}
	before := second.Cache().Stats().Queries
	// The servers reach the policy through TimedPolicy; it must pass the
	// confirmation on.
	timed := netboot.TimedPolicy(second, nopObserver{})
	for _, p := range []netboot.Policy{second, timed} {
		for _, q := range queries {
			if a := booter.Answer(stale, q); !a.Installs {
				t.Fatalf("%s over %s from the warm cache = %+v; the test needs it to say install", q.Firmware, q.Via, a)
			}
			a, fresh, err := booter.Confirmed(ctx, p, stale, q)
			if err != nil {
				t.Fatal(err)
			}
			if a.Action != netboot.ActionLocal || a.Installs {
				t.Errorf("%s over %s after another instance wrote installed = %+v, want local boot", q.Firmware, q.Via, a)
			}
			if st := fresh.Host.Intent.State(); st != inventory.StateInstalled {
				t.Errorf("confirmed decision says %s, want installed", st)
			}
		}
	}
	if got, want := second.Cache().Stats().Queries-before, uint64(2*len(queries)); got != want {
		t.Errorf("confirming cost %d DNS queries, want %d: one per answer that would hand out the installer", got, want)
	}
	// The fresh answer replaced the cached one.
	if st := decide(second).Host.Intent.State(); st != inventory.StateInstalled {
		t.Errorf("after confirming, the cache says %s, want installed", st)
	}

	// A reinstall written elsewhere (vmprov reinstall: state install and
	// a new build_id): the second instance's cache says installed, yet its
	// local-boot answers, confirmed, hand out the installer again.
	cached := decide(second)
	if st := cached.Host.Intent.State(); st != inventory.StateInstalled {
		t.Fatalf("the second instance's cache says %s; the test needs it warm with installed", st)
	}
	installed := cached.Host.Intent.TXT()
	again := inventory.Intent{{Key: "distribution", Value: "bookworm"}, {Key: "state", Value: "install"}, {Key: "build_id", Value: "9f0c1d2e"}}
	txt := func(ss []string) *dns.TXT {
		return &dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: ss}
	}
	if err := w.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestZone, Remove: []dns.RR{txt(installed)}, Add: []dns.RR{txt(again.TXT())}}); err != nil {
		t.Fatal(err)
	}
	local := append(queries, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindPXE, Arch: 0, HasArch: true}, Via: netboot.ViaDHCPv4, Server: netip.MustParseAddr("192.0.2.1")})
	booter.Loaders = map[netboot.Arch]string{0: "undionly.kpxe"}
	for _, q := range local {
		if a := booter.Answer(cached, q); a.Action != netboot.ActionLocal {
			t.Fatalf("%s over %s from the warm cache = %+v; the test needs local boot", q.Firmware, q.Via, a)
		}
		a, fresh, err := booter.Confirmed(ctx, second, cached, q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Action == netboot.ActionLocal || a.Action == netboot.ActionNone {
			t.Errorf("%s over %s after a reinstall = %+v, want the install answer", q.Firmware, q.Via, a)
		}
		if st := fresh.Host.Intent.State(); st != inventory.StateInstall {
			t.Errorf("confirmed decision says %s, want install", st)
		}
	}
}

// TestConfirmedDNSFailure: when the fresh read fails, no installer is
// handed out and the caller gets the error (DHCP stays silent, HTTP 503).
func TestConfirmedDNSFailure(t *testing.T) {
	intent := inventory.Intent{{Key: "distribution", Value: "bookworm"}, {Key: "state", Value: "install"}}
	d := netboot.Decision{Host: inventory.Host{FQDN: "h.example.com.", Intent: intent}}
	c, err := dnsupdate.New(dnsupdate.Config{Server: "127.0.0.1:1", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := netboot.NewDNSPolicy(netboot.PolicyConfig{Zone: lab.TestZone}, c)
	q := netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaHTTP}
	a, _, err := netboot.Booter{URL: "http://192.0.2.1"}.Confirmed(context.Background(), p, d, q)
	if err == nil || a.Action != netboot.ActionNone {
		t.Errorf("Confirmed with DNS down = %+v, %v; want no answer and an error", a, err)
	}
}

type nopObserver struct{}

func (nopObserver) Observe(float64) {}
