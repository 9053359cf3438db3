package lab_test

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

func TestBINDDynamicUpdate(t *testing.T) {
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()

	update := func(t *testing.T, secret string, rr dns.RR) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetUpdate(lab.TestZone)
		m.Insert([]dns.RR{rr})
		m.SetTsig(name, alg, 300, 0)
		c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{name: secret}}
		r, _, err := c.ExchangeContext(t.Context(), m, b.Addr().String())
		if err != nil && r == nil {
			t.Fatalf("update: %v", err)
		}
		return r
	}
	query := func(t *testing.T, owner string) []string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(owner, dns.TypeA)
		r, err := b.Exchange(t.Context(), m)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		var got []string
		for _, rr := range r.Answer {
			got = append(got, rr.String())
		}
		return got
	}

	t.Run("signed update is applied", func(t *testing.T) {
		rr := &dns.A{Hdr: dns.RR_Header{Name: "host1." + lab.TestZone, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.ParseIP("192.0.2.10")}
		if r := update(t, secret, rr); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("update rcode = %s, want NOERROR", dns.RcodeToString[r.Rcode])
		}
		if diff := cmp.Diff([]string{rr.String()}, query(t, rr.Hdr.Name)); diff != "" {
			t.Errorf("A records (-want +got):\n%s", diff)
		}
	})

	t.Run("wrongly signed update is refused", func(t *testing.T) {
		rr := &dns.A{Hdr: dns.RR_Header{Name: "host2." + lab.TestZone, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.ParseIP("192.0.2.11")}
		r := update(t, lab.GenerateSecret(), rr)
		if r.Rcode != dns.RcodeNotAuth {
			t.Errorf("update rcode = %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
		}
		// RFC 8945 section 5.2.2: NOTAUTH with BADSIG in the TSIG record.
		if sig := r.IsTsig(); sig == nil || sig.Error != dns.RcodeBadSig {
			t.Errorf("reply TSIG = %v, want error BADSIG", sig)
		}
		if got := query(t, rr.Hdr.Name); len(got) != 0 {
			t.Errorf("A records after refused update = %v, want none", got)
		}
	})

	t.Run("unsigned update is refused", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetUpdate(lab.TestZone)
		rr, _ := dns.NewRR("host3." + lab.TestZone + " 300 IN A 192.0.2.12")
		m.Insert([]dns.RR{rr})
		r, err := b.Exchange(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("unsigned update rcode = %s, want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})

	t.Run("reverse zones answer", func(t *testing.T) {
		for _, z := range b.Config().ReverseZones {
			m := new(dns.Msg)
			m.SetQuestion(z, dns.TypeSOA)
			r, err := b.Exchange(t.Context(), m)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("SOA %s: %v %v", z, r, err)
			}
		}
	})

	t.Run("key file is a tsig-keygen key clause", func(t *testing.T) {
		got, err := os.ReadFile(b.KeyFile())
		if err != nil {
			t.Fatal(err)
		}
		want := "key \"vmprov.\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n"
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("key file (-want +got):\n%s", diff)
		}
	})

	t.Run("logs go to a file", func(t *testing.T) {
		got, err := os.ReadFile(b.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), "running") {
			t.Errorf("named.log lacks the 'running' line:\n%s", got)
		}
	})
}

func TestStartBINDFailureShowsLog(t *testing.T) {
	lab.RequireRoot(t, "named")
	_, err := lab.StartBIND(t.Context(), lab.BINDConfig{
		Dir:       t.TempDir(),
		Listen:    netip.MustParseAddrPort("127.0.0.1:5399"),
		Zone:      lab.TestZone,
		KeyName:   "vmprov.",
		Algorithm: "hmac-bogus",
		Secret:    lab.GenerateSecret(),
	}, nil)
	if err == nil {
		t.Fatal("StartBIND with an unknown algorithm succeeded")
	}
	if !strings.Contains(err.Error(), "named.log") || !strings.Contains(err.Error(), "hmac-bogus") {
		t.Errorf("error lacks the tail of named.log:\n%v", err)
	}
}
