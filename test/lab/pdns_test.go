package lab_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

func TestPowerDNS(t *testing.T) {
	checkZoneServer(t, lab.PowerDNSForTest(t))
}

// TestPowerDNSBindBackend: the bind backend serves the zones and holds the
// key (in its bind-dnssec-db) but answers updates with NOTIMP, having no
// transactions.
func TestPowerDNSBindBackend(t *testing.T) {
	d := lab.PowerDNSForTest(t, func(c *lab.PowerDNSConfig) { c.Backend = "bind" })
	name, alg, _ := d.TSIG()
	m := new(dns.Msg)
	m.SetUpdate(lab.TestZone)
	rr, _ := dns.NewRR("host1." + lab.TestZone + " 300 IN A 192.0.2.10")
	m.Insert([]dns.RR{rr})
	m.SetTsig(name, alg, 300, 0)
	r, err := d.Exchange(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("update rcode = %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
	m = new(dns.Msg)
	m.SetQuestion(lab.TestReverseZones()[1], dns.TypeSOA)
	if r, err := d.Exchange(t.Context(), m); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("SOA of the ip6.arpa zone from the bind backend: %v, %v", r, err)
	}
}

// TestStartPowerDNSFailureShowsLog: when pdns_server cannot serve,
// StartPowerDNS fails with what it said, even when another server answers
// for the zone on the port.
func TestStartPowerDNSFailureShowsLog(t *testing.T) {
	lab.RequireRoot(t, "pdns_server", "pdnsutil", "sqlite3")
	cfg := func(listen netip.AddrPort) lab.PowerDNSConfig {
		return lab.PowerDNSConfig{Dir: t.TempDir(), Listen: listen, Zone: lab.TestZone,
			KeyName: "vmprov.", Algorithm: "hmac-sha256", Secret: lab.GenerateSecret()}
	}
	for _, tc := range []struct {
		name   string
		holder func(t *testing.T) netip.AddrPort
	}{
		{"a socket", func(t *testing.T) netip.AddrPort {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return netip.MustParseAddrPort(l.Addr().String())
		}},
		// Knot answers the zone's SOA on the port, but not signed with
		// this server's key.
		{"a Knot DNS serving the zone", func(t *testing.T) netip.AddrPort { return lab.KnotForTest(t).Addr() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := lab.StartPowerDNS(t.Context(), cfg(tc.holder(t)), nil)
			if err == nil {
				d.Stop()
				t.Fatalf("StartPowerDNS on a port held by %s succeeded", tc.name)
			}
			if !strings.Contains(err.Error(), "pdns.log") || !strings.Contains(err.Error(), "in use") {
				t.Errorf("error lacks the tail of pdns.log:\n%v", err)
			}
		})
	}
	c := cfg(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), lab.ReservePort(t)))
	c.Backend = "ldap"
	if _, err := lab.StartPowerDNS(t.Context(), c, nil); err == nil || !strings.Contains(err.Error(), "ldap") {
		t.Errorf("StartPowerDNS with backend ldap = %v, want an error naming it", err)
	}
}
