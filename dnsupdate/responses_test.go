package dnsupdate

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/test/lab"
)

// The files in testdata/responses are responses of a real BIND (the lab's),
// captured by TestCaptureBINDResponses with -update. They pin how vmprov
// reads what BIND says, and seed FuzzResponse.

// capture describes one captured exchange and what it must mean.
type capture struct {
	file   string
	op     string
	signed bool
	rcode  int // the *RcodeError expected; -1: none
	// for queries
	qtype    uint16
	nxdomain bool
	records  int
	ttl      time.Duration
	zone     string // zoneOf for SOA queries
}

func captures() []capture {
	return []capture{
		{file: "update-ok", op: OpUpdate, signed: true, rcode: -1},
		{file: "update-yxdomain", op: OpUpdate, signed: true, rcode: dns.RcodeYXDomain},
		{file: "update-nxrrset", op: OpUpdate, signed: true, rcode: dns.RcodeNXRrset},
		{file: "update-badsig", op: OpUpdate, signed: true, rcode: dns.RcodeBadSig},
		{file: "update-badkey", op: OpUpdate, signed: true, rcode: dns.RcodeBadKey},
		{file: "update-unsigned-refused", op: OpUpdate, signed: false, rcode: dns.RcodeRefused},
		{file: "update-notauth", op: OpUpdate, signed: true, rcode: dns.RcodeNotAuth},
		{file: "query-a", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeA, records: 2, ttl: 60 * time.Second},
		{file: "query-txt", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeTXT, records: 1, ttl: 60 * time.Second},
		{file: "query-nxdomain", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeA, nxdomain: true, ttl: 300 * time.Second, zone: "example.com."},
		{file: "query-nodata", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeAAAA, ttl: 300 * time.Second, zone: "example.com."},
		{file: "query-refused", op: OpQuery, signed: true, rcode: dns.RcodeRefused, qtype: dns.TypeA},
		// BIND gives the SOA of a negative answer to an SOA query TTL 0.
		{file: "query-soa-ptr", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeSOA, nxdomain: true, ttl: 0, zone: "2.0.192.in-addr.arpa."},
		{file: "query-soa-apex", op: OpQuery, signed: true, rcode: -1, qtype: dns.TypeSOA, records: 1, ttl: 300 * time.Second, zone: "example.com."},
		{file: "axfr-first", op: OpTransfer, signed: true, rcode: -1},
	}
}

func responsePath(name string) string { return filepath.Join("testdata", "responses", name+".bin") }

// TestCapturedResponses reads each capture as the client would.
func TestCapturedResponses(t *testing.T) {
	for _, tc := range captures() {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(responsePath(tc.file))
			if err != nil {
				t.Fatalf("%v (run go test -update with root and bind9 to capture)", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			c := &Client{server: "127.0.0.1:53"}
			var tsigErr error
			if tc.signed {
				c.key = "vmprov."
				if r.IsTsig() == nil {
					tsigErr = errUnsigned
				}
			}
			var ok []int
			if tc.op == OpQuery {
				ok = []int{dns.RcodeNameError}
			}
			err = c.checkResponse(tc.op, "example.com.", "h.example.com.", r, tsigErr, ok...)
			var re *RcodeError
			switch {
			case tc.rcode < 0 && err != nil:
				t.Fatalf("checkResponse = %v, want nil", err)
			case tc.rcode >= 0 && (!errors.As(err, &re) || re.Rcode != tc.rcode):
				t.Fatalf("checkResponse = %v, want rcode %s", err, rcodeName(tc.rcode))
			}
			if tc.op != OpQuery || tc.rcode >= 0 {
				return
			}
			a := answerOf(r, tc.qtype)
			if a.NXDomain != tc.nxdomain || len(a.Records) != tc.records || a.TTL != tc.ttl {
				t.Errorf("answerOf = %+v, want NXDomain %v, %d records, TTL %v", a, tc.nxdomain, tc.records, tc.ttl)
			}
			if tc.zone != "" {
				if z := zoneOf(r, r.Question[0].Name); z != tc.zone {
					t.Errorf("zoneOf = %q, want %q", z, tc.zone)
				}
			}
		})
	}
}

// TestCaptureBINDResponses rewrites testdata/responses from a lab BIND.
func TestCaptureBINDResponses(t *testing.T) {
	if !golden.Update() {
		t.Skip("captures are rewritten only with -update")
	}
	b := lab.BINDForTest(t)
	key, alg, secret := b.TSIG()
	if err := os.MkdirAll(filepath.Join("testdata", "responses"), 0o755); err != nil {
		t.Fatal(err)
	}
	// raw sends m (signed with secret under key when key is set) and
	// returns the response bytes.
	raw := func(proto string, m *dns.Msg, key, secret string) []byte {
		t.Helper()
		m.Id = dns.Id()
		var out []byte
		var err error
		if key != "" {
			m.SetTsig(key, alg, 300, time.Now().Unix())
			out, _, err = dns.TsigGenerate(m, secret, "", false)
		} else {
			out, err = m.Pack()
		}
		if err != nil {
			t.Fatal(err)
		}
		nc, err := net.DialTimeout(proto, b.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		co := &dns.Conn{Conn: nc, UDPSize: 65535}
		if _, err := co.Write(out); err != nil {
			t.Fatal(err)
		}
		p, err := co.ReadMsgHeader(nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	save := func(name string, p []byte) {
		t.Helper()
		if err := os.WriteFile(responsePath(name), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	upd := func(zone string, cs ChangeSet) *dns.Msg {
		cs.Zone = zone
		return cs.msg()
	}
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.RecursionDesired = false
		m.SetEdns0(udpSize, false)
		return m
	}
	a1, a2 := mustRR(t, "h.example.com. 60 IN A 192.0.2.1"), mustRR(t, "h.example.com. 60 IN A 192.0.2.2")
	txt := mustRR(t, `h.example.com. 60 IN TXT "filename=test.ipxe" "distribution=core"`)
	z := "example.com."
	save("update-ok", raw("tcp", upd(z, ChangeSet{NameNotInUse: []string{"h.example.com."}, Add: []dns.RR{a1, a2, txt}}), key, secret))
	save("update-yxdomain", raw("tcp", upd(z, ChangeSet{NameNotInUse: []string{"h.example.com."}, Add: []dns.RR{a1}}), key, secret))
	save("update-nxrrset", raw("tcp", upd(z, ChangeSet{RRsetEquals: []dns.RR{a1}, RemoveRRset: []RRKey{{Name: "h.example.com.", Type: dns.TypeA}}}), key, secret))
	save("update-badsig", raw("tcp", upd(z, ChangeSet{Add: []dns.RR{a1}}), key, lab.GenerateSecret()))
	save("update-badkey", raw("tcp", upd(z, ChangeSet{Add: []dns.RR{a1}}), "other.", secret))
	save("update-unsigned-refused", raw("tcp", upd(z, ChangeSet{Add: []dns.RR{a1}}), "", ""))
	save("update-notauth", raw("tcp", upd("example.org.", ChangeSet{Add: []dns.RR{mustRR(t, "h.example.org. 60 IN A 192.0.2.1")}}), key, secret))
	save("query-a", raw("udp", q("h.example.com.", dns.TypeA), key, secret))
	save("query-txt", raw("udp", q("h.example.com.", dns.TypeTXT), key, secret))
	save("query-nxdomain", raw("udp", q("nothing.example.com.", dns.TypeA), key, secret))
	save("query-nodata", raw("udp", q("h.example.com.", dns.TypeAAAA), key, secret))
	save("query-refused", raw("udp", q("h.example.org.", dns.TypeA), key, secret))
	save("query-soa-ptr", raw("udp", q("1.2.0.192.in-addr.arpa.", dns.TypeSOA), key, secret))
	save("query-soa-apex", raw("udp", q("example.com.", dns.TypeSOA), key, secret))
	ax := new(dns.Msg)
	ax.SetAxfr(z)
	save("axfr-first", raw("tcp", ax, key, secret))
}

// FuzzResponse feeds arbitrary messages to everything that reads a
// response: classification, answers, zone discovery. None may panic.
func FuzzResponse(f *testing.F) {
	for _, c := range captures() {
		if b, err := os.ReadFile(responsePath(c.file)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			return
		}
		q := new(dns.Msg)
		q.SetQuestion("h.example.com.", dns.TypeA)
		_ = answers(q, r)
		qtype, name := uint16(dns.TypeA), "h.example.com."
		if len(r.Question) > 0 {
			qtype, name = r.Question[0].Qtype, r.Question[0].Name
		}
		for _, c := range []*Client{{server: "s:53"}, {server: "s:53", key: "vmprov."}} {
			for _, op := range []string{OpUpdate, OpQuery, OpTransfer} {
				for _, tsigErr := range []error{nil, dns.ErrSig, dns.ErrTime, errUnsigned} {
					if err := c.checkResponse(op, "example.com.", name, r, tsigErr, dns.RcodeNameError); err != nil {
						if s := err.Error(); !strings.Contains(s, "s:53") {
							t.Errorf("error %q does not name the server", s)
						}
						_ = errors.Is(err, ErrPrerequisite)
					}
				}
			}
		}
		a := answerOf(r, qtype)
		if a.TTL < 0 || len(a.Records) != len(r.Answer) {
			t.Errorf("answerOf = %+v from %d answer records", a, len(r.Answer))
		}
		if z := zoneOf(r, name); z != "" && !dns.IsSubDomain(z, name) {
			t.Errorf("zoneOf(%s) = %s, not an ancestor", name, z)
		}
	})
}
