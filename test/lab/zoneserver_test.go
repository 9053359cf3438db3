package lab_test

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

// zoneServer is what the lab's DNS servers have in common.
type zoneServer interface {
	Addr() netip.AddrPort
	TSIG() (name, algorithm, secret string)
	Process() lab.Process
	LogFile() string
	Stop() error
}

// checkZoneServer checks what every lab DNS server offers: signed updates
// of the forward zone, refusal of a wrong secret, SOA answers for the
// reverse zones, a log, and Stop ending the process.
func checkZoneServer(t *testing.T, s zoneServer) {
	name, alg, secret := s.TSIG()
	if name != "vmprov." || alg != dns.HmacSHA256 {
		t.Errorf("TSIG() = %q, %q; want vmprov., %s", name, alg, dns.HmacSHA256)
	}
	exchange := func(t *testing.T, m *dns.Msg, secret string) *dns.Msg {
		t.Helper()
		c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{name: secret}}
		r, _, err := c.ExchangeContext(t.Context(), m, s.Addr().String())
		if r == nil {
			t.Fatalf("exchange: %v", err)
		}
		return r
	}
	update := func(t *testing.T, secret string, host, ip string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetUpdate(lab.TestZone)
		m.Insert([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)}})
		m.SetTsig(name, alg, 300, 0)
		return exchange(t, m, secret)
	}
	query := func(t *testing.T, owner string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(owner, qtype)
		return exchange(t, m, secret)
	}
	t.Run("signed update is applied", func(t *testing.T) {
		if r := update(t, secret, "host1."+lab.TestZone, "192.0.2.10"); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("update rcode = %s, want NOERROR", dns.RcodeToString[r.Rcode])
		}
		if r := query(t, "host1."+lab.TestZone, dns.TypeA); len(r.Answer) != 1 {
			t.Errorf("A host1 = %v, want one record", r.Answer)
		}
	})
	t.Run("wrongly signed update is refused", func(t *testing.T) {
		if r := update(t, lab.GenerateSecret(), "host2."+lab.TestZone, "192.0.2.11"); r.Rcode == dns.RcodeSuccess {
			t.Fatal("update with a wrong secret succeeded")
		}
		if r := query(t, "host2."+lab.TestZone, dns.TypeA); len(r.Answer) != 0 {
			t.Errorf("A host2 = %v after a refused update", r.Answer)
		}
	})
	t.Run("reverse zones answer", func(t *testing.T) {
		for _, z := range lab.TestReverseZones() {
			if r := query(t, z, dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("SOA %s: %v", z, r)
			}
		}
	})
	t.Run("logs go to a file", func(t *testing.T) {
		if fi, err := os.Stat(s.LogFile()); err != nil || fi.Size() == 0 {
			t.Errorf("log %s: %v, empty or missing", s.LogFile(), err)
		}
	})
	t.Run("stop ends the process", func(t *testing.T) {
		pid := s.Process().PID
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still runs after Stop", pid)
		}
		if err := s.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}
