package dnsupdate_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/test/lab"
)

// newPowerDNSClient starts a lab PowerDNS and returns a client holding its
// key.
func newPowerDNSClient(t testing.TB, edit ...func(*lab.PowerDNSConfig)) (*dnsupdate.Client, *lab.PowerDNS) {
	t.Helper()
	d := lab.PowerDNSForTest(t, edit...)
	name, alg, secret := d.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: d.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func TestPowerDNSConformance(t *testing.T) {
	dnstest.Conformance(t, func(t *testing.T) (dnstest.Backend, string, string) {
		c, _ := newPowerDNSClient(t)
		return c, lab.TestZone, lab.TestReverseZones()[0]
	})
}

// TestPowerDNSErrors reproduces the usual misconfigurations of PowerDNS and
// checks that each error names PowerDNS's fix. PowerDNS answers a key it
// cannot verify with REFUSED (updates) or NOTAUTH, unsigned, not with
// BADSIG or BADKEY.
func TestPowerDNSErrors(t *testing.T) {
	good, d := newPowerDNSClient(t, func(c *lab.PowerDNSConfig) {
		// Transfers are not allowed to the key; updates are allowed to
		// another key only.
		c.Metadata = map[string]string{"TSIG-ALLOW-DNSUPDATE": "admin."}
	})
	name, alg, secret := d.TSIG()
	addr := d.Addr().String()
	notFrom, _ := newPowerDNSClient(t, func(c *lab.PowerDNSConfig) { c.AllowUpdateFrom = "192.0.2.0/24" })
	bindBackend, _ := newPowerDNSClient(t, func(c *lab.PowerDNSConfig) { c.Backend = "bind" })
	wrongSecret := clientOf(t, addr, dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()})
	for _, tc := range []misconfigured{
		{"TSIG-ALLOW-DNSUPDATE lacks the key", func(t *testing.T) error { return good.Apply(t.Context(), claimA(t, "h1.example.com.")) },
			dnsupdate.OpUpdate, dns.RcodeRefused,
			[]string{"update refused by " + addr + " for zone example.com.", "PowerDNS: pdnsutil set-meta example.com. TSIG-ALLOW-DNSUPDATE vmprov."},
			[]string{", unsigned: the server did not accept key vmprov."}},
		{"TSIG-ALLOW-AXFR lacks the key", func(t *testing.T) error { _, err := good.Transfer(t.Context(), lab.TestZone); return err },
			dnsupdate.OpTransfer, dns.RcodeNotAuth,
			[]string{"zone transfer of example.com. refused by " + addr + " (NOTAUTH)", "PowerDNS: pdnsutil set-meta example.com. TSIG-ALLOW-AXFR vmprov."}, nil},
		{"allow-dnsupdate-from excludes this host", func(t *testing.T) error { return notFrom.Apply(t.Context(), claimA(t, "h2.example.com.")) },
			dnsupdate.OpUpdate, dns.RcodeRefused, []string{"allow-dnsupdate-from holding this host in pdns.conf"}, nil},
		{"bind backend", func(t *testing.T) error { return bindBackend.Apply(t.Context(), claimA(t, "h3.example.com.")) },
			dnsupdate.OpUpdate, dns.RcodeNotImplemented,
			[]string{"does not implement dynamic updates (NOTIMP)", "PowerDNS answers so when the zone's backend has no transactions (the bind backend)", "gsqlite3"}, nil},
		{"wrong secret: update", func(t *testing.T) error { return wrongSecret.Apply(t.Context(), claimA(t, "h4.example.com.")) },
			dnsupdate.OpUpdate, dns.RcodeRefused,
			[]string{", unsigned: the server did not accept key vmprov.", "PowerDNS answers so to a key it does not hold, or whose secret or algorithm differ", "pdnsutil list-tsig-keys"}, nil},
		{"wrong secret: transfer", func(t *testing.T) error { _, err := wrongSecret.Transfer(t.Context(), lab.TestZone); return err },
			dnsupdate.OpTransfer, dns.RcodeNotAuth,
			[]string{"TSIG-ALLOW-AXFR vmprov.", "PowerDNS answers so to a key it does not hold", "pdnsutil list-tsig-keys"}, nil},
		{"wrong secret: lookup", func(t *testing.T) error {
			_, err := wrongSecret.Lookup(t.Context(), "ns1.example.com.", dns.TypeA)
			return err
		},
			dnsupdate.OpQuery, dns.RcodeNotAuth,
			[]string{"PowerDNS answers so to a key it does not hold", "pdnsutil list-tsig-keys"}, nil},
		{"unknown key", func(t *testing.T) error {
			c := clientOf(t, addr, dnsupdate.Config{KeyName: "other.", Algorithm: alg, Secret: secret})
			return c.Apply(t.Context(), claimA(t, "h5.example.com."))
		}, dnsupdate.OpUpdate, dns.RcodeRefused, []string{"did not accept key other.", "pdnsutil list-tsig-keys"}, nil},
		{"unsigned update", func(t *testing.T) error {
			return clientOf(t, addr, dnsupdate.Config{}).Apply(t.Context(), claimA(t, "h6.example.com."))
		},
			dnsupdate.OpUpdate, dns.RcodeRefused, []string{"unsigned update refused by " + addr, "PowerDNS: pdnsutil set-meta example.com. TSIG-ALLOW-DNSUPDATE KEY"}, nil},
	} {
		t.Run(tc.name, tc.check)
	}
	for _, h := range []string{"h1", "h4", "h5", "h6"} {
		if a, err := good.Lookup(t.Context(), h+".example.com.", dns.TypeA); err != nil || len(a.Records) > 0 {
			t.Errorf("Lookup(%s) = %v, %v; want no records", h, a.Records, err)
		}
	}
}

// TestPowerDNSWithoutUpdateMetadata documents a PowerDNS behaviour the
// README warns of: a zone without TSIG-ALLOW-DNSUPDATE takes every update
// allow-dnsupdate-from lets in, signed or not.
func TestPowerDNSWithoutUpdateMetadata(t *testing.T) {
	_, d := newPowerDNSClient(t, func(c *lab.PowerDNSConfig) {
		c.Metadata = map[string]string{"TSIG-ALLOW-AXFR": "vmprov."}
	})
	unsigned := clientOf(t, d.Addr().String(), dnsupdate.Config{})
	if err := unsigned.Apply(t.Context(), claimA(t, "open.example.com.")); err != nil {
		t.Fatalf("unsigned update of a zone without TSIG-ALLOW-DNSUPDATE = %v; PowerDNS used to accept it", err)
	}
}
