package lab_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

func TestKnot(t *testing.T) {
	k := lab.KnotForTest(t)
	if !strings.HasPrefix(k.Addr().String(), "127.0.0.1:") {
		t.Errorf("Addr() = %s, want loopback", k.Addr())
	}
	checkZoneServer(t, k)
}

func TestKnotACL(t *testing.T) {
	k := lab.KnotForTest(t, func(c *lab.KnotConfig) { c.Actions = []string{"transfer"} })
	name, alg, secret := k.TSIG()
	m := new(dns.Msg)
	m.SetUpdate(lab.TestZone)
	rr, _ := dns.NewRR("host3." + lab.TestZone + " 300 IN A 192.0.2.12")
	m.Insert([]dns.RR{rr})
	m.SetTsig(name, alg, 300, 0)
	r, err := k.Exchange(t.Context(), m)
	if r == nil {
		t.Fatal(err)
	}
	// Knot refuses a key its acl does not allow with NOTAUTH and BADKEY.
	if sig := r.IsTsig(); r.Rcode != dns.RcodeNotAuth || sig == nil || sig.Error != dns.RcodeBadKey {
		t.Errorf("update with an acl of transfer only: rcode %s, TSIG %v; want NOTAUTH with BADKEY", dns.RcodeToString[r.Rcode], sig)
	}
	m = new(dns.Msg)
	m.SetAxfr(lab.TestZone)
	m.SetTsig(name, alg, 300, 0)
	c := &dns.Transfer{TsigSecret: map[string]string{name: secret}}
	env, err := c.In(m, k.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for e := range env {
		if e.Error != nil {
			t.Errorf("transfer: %v", e.Error)
		}
		n += len(e.RR)
	}
	if n == 0 {
		t.Error("transfer with an acl of transfer only gave no records")
	}
}

// TestKnotNoACL: a zone of NoACL is served, but Knot verifies a signed
// query in it with no key (BADKEY), while the other zones keep the acl.
func TestKnotNoACL(t *testing.T) {
	rev6 := lab.TestReverseZones()[1]
	k := lab.KnotForTest(t, func(c *lab.KnotConfig) { c.NoACL = []string{rev6} })
	name, alg, _ := k.TSIG()
	for z, want := range map[string]uint16{rev6: dns.RcodeBadKey, lab.TestReverseZones()[0]: dns.RcodeSuccess} {
		m := new(dns.Msg)
		m.SetQuestion(z, dns.TypeSOA)
		m.SetTsig(name, alg, 300, 0)
		r, err := k.Exchange(t.Context(), m)
		if r == nil {
			t.Fatal(err)
		}
		got := uint16(r.Rcode)
		if sig := r.IsTsig(); sig != nil && sig.Error != 0 {
			got = sig.Error
		}
		if got != want {
			t.Errorf("signed SOA query of %s: %s, want %s", z, dns.RcodeToString[int(got)], dns.RcodeToString[int(want)])
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(rev6, dns.TypeSOA)
	if r, err := k.Exchange(t.Context(), m); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("unsigned SOA query of %s: %v, %v; want it served", rev6, r, err)
	}
}

// TestStartKnotFailureShowsLog: when knotd cannot serve, StartKnot fails
// with what knotc or knotd said.
func TestStartKnotFailureShowsLog(t *testing.T) {
	lab.RequireRoot(t, "knotd", "knotc")
	cfg := func(listen netip.AddrPort, alg string) lab.KnotConfig {
		return lab.KnotConfig{Dir: t.TempDir(), Listen: listen, Zone: lab.TestZone, KeyName: "vmprov.", Algorithm: alg, Secret: lab.GenerateSecret()}
	}
	// knotc conf-check refuses the configuration: knotd does not start.
	port := lab.ReservePort(t)
	k, err := lab.StartKnot(t.Context(), cfg(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "hmac-bogus"), nil)
	if err == nil {
		k.Stop()
		t.Fatal("StartKnot with an unknown algorithm succeeded")
	}
	if !strings.Contains(err.Error(), "conf-check") || !strings.Contains(err.Error(), "hmac-bogus") {
		t.Errorf("StartKnot with an unknown algorithm = %v, want knotc's error naming it", err)
	}
	// Another socket holds the port: knotd cannot bind it and exits.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k, err = lab.StartKnot(t.Context(), cfg(netip.MustParseAddrPort(l.Addr().String()), "hmac-sha256"), nil)
	if err == nil {
		k.Stop()
		t.Fatal("StartKnot on a port in use succeeded")
	}
	if !strings.Contains(err.Error(), "knotd.log") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error lacks the tail of knotd.log:\n%v", err)
	}
}
