package dnsupdate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestRcodeErrorMessages(t *testing.T) {
	const srv = "192.0.2.53:53"
	up := func(rcode int, key string) *RcodeError {
		return &RcodeError{Op: OpUpdate, Rcode: rcode, Zone: "example.com.", Server: srv, Key: key}
	}
	for _, tc := range []struct {
		err    *RcodeError
		says   []string
		prereq bool
	}{
		{up(dns.RcodeRefused, "vmprov."), []string{"update refused by " + srv + " for zone example.com.: is key vmprov. allowed to update it?",
			"BIND: allow-update { key vmprov.; };", "an acl with key vmprov. and action update", "PowerDNS: pdnsutil set-meta example.com. TSIG-ALLOW-DNSUPDATE vmprov.", "allow-dnsupdate-from"}, false},
		{unsignedReply(up(dns.RcodeRefused, "vmprov.")), []string{"TSIG-ALLOW-DNSUPDATE vmprov.", ", unsigned: the server did not accept key vmprov.", "pdnsutil list-tsig-keys"}, false},
		{up(dns.RcodeRefused, ""), []string{"unsigned update refused by " + srv, "configure a TSIG key", "allow-update / update-policy", "TSIG-ALLOW-DNSUPDATE KEY"}, false},
		{up(dns.RcodeNotAuth, "vmprov."), []string{srv + " is not authoritative for example.com. (or the key vmprov. is unknown/rejected)", "dns.reverse_zones"}, false},
		{up(dns.RcodeNotAuth, ""), []string{"unsigned update for zone example.com. refused by " + srv + " (NOTAUTH)", "Knot answers so when no acl allows the update", "configure dns.tsig"}, false},
		{up(dns.RcodeNotZone, "vmprov."), []string{"name outside zone example.com.", "NOTZONE"}, false},
		{up(dns.RcodeYXDomain, "vmprov."), []string{"name already exists", "example.com.", srv}, true},
		{up(dns.RcodeYXRrset, "vmprov."), []string{"RRset already exists"}, true},
		{up(dns.RcodeNameError, "vmprov."), []string{"name does not exist"}, true},
		{up(dns.RcodeNXRrset, "vmprov."), []string{"RRset does not exist or holds other values"}, true},
		{up(dns.RcodeServerFailure, "vmprov."), []string{"SERVFAIL", "see its log"}, false},
		{up(dns.RcodeNotImplemented, "vmprov."), []string{"does not implement dynamic updates", "PowerDNS", "no transactions", "gsqlite3"}, false},
		{up(dns.RcodeFormatError, "vmprov."), []string{"could not parse the update"}, false},
		{up(dns.RcodeBadSig, "vmprov."), []string{"TSIG key vmprov. rejected by " + srv + " (BADSIG)", "check the secret/algorithm/clock", "dns.tsig.secret_file"}, false},
		{up(dns.RcodeBadKey, "vmprov."), []string{"TSIG key vmprov. rejected", "BADKEY", "does not hold the key with this algorithm",
			"its acl does not allow the key to update the zone (Knot answers BADKEY to both, whatever the secret)", "an acl with key vmprov. and action update", "pdnsutil import-tsig-key vmprov."}, false},
		{up(dns.RcodeBadTime, "vmprov."), []string{"TSIG key vmprov. rejected", "BADTIME", "clock"}, false},
		{up(99, "vmprov."), []string{"update for zone example.com. at " + srv + ": RCODE99"}, false},
		{&RcodeError{Op: OpQuery, Rcode: dns.RcodeRefused, Name: "h.example.org.", Server: srv}, []string{"query for h.example.org. refused by " + srv, "serves no zone"}, false},
		{&RcodeError{Op: OpQuery, Rcode: dns.RcodeServerFailure, Name: "h.example.com.", Server: srv}, []string{"query for h.example.com.", "SERVFAIL"}, false},
		{&RcodeError{Op: OpQuery, Rcode: dns.RcodeNameError, Name: "h.example.com.", Server: srv}, []string{"query for h.example.com. at " + srv + ": NXDOMAIN"}, false},
		{&RcodeError{Op: OpQuery, Rcode: dns.RcodeBadSig, Name: "h.example.com.", Server: srv, Key: "vmprov."}, []string{"query for h.example.com.: TSIG key vmprov. rejected"}, false},
		{&RcodeError{Op: OpQuery, Rcode: dns.RcodeBadKey, Name: "h.example.com.", Server: srv, Key: "vmprov."}, []string{"does not hold the key with this algorithm", "import-tsig-key",
			"no acl of the zone holding the name names the key (Knot answers BADKEY to both: give every zone vmprov updates an acl with key vmprov. and action update)"}, false},
		{unsignedReply(&RcodeError{Op: OpQuery, Rcode: dns.RcodeNotAuth, Name: "h.example.com.", Server: srv, Key: "vmprov."}), []string{"(NOTAUTH)", "PowerDNS answers so to a key it does not hold", "pdnsutil list-tsig-keys"}, false},
		{&RcodeError{Op: OpTransfer, Rcode: dns.RcodeRefused, Zone: "example.com.", Server: srv, Key: "vmprov."}, []string{"zone transfer of example.com. refused", "allow-transfer { key vmprov.; }",
			"an acl with key vmprov. and action transfer", "PowerDNS: pdnsutil set-meta example.com. TSIG-ALLOW-AXFR vmprov."}, false},
		{&RcodeError{Op: OpTransfer, Rcode: dns.RcodeBadKey, Zone: "example.com.", Server: srv, Key: "vmprov."}, []string{"BADKEY", "its acl does not allow the key to transfer the zone (Knot answers BADKEY to both, whatever the secret)", "action transfer"}, false},
	} {
		name := fmt.Sprintf("%s %s key %q", tc.err.Op, rcodeName(tc.err.Rcode), tc.err.Key)
		if tc.err.UnsignedReply {
			name += " unsigned reply"
		}
		t.Run(name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() = %q, want it to contain %q", msg, s)
				}
			}
			wrapped := fmt.Errorf("create h: %w", tc.err)
			if got := errors.Is(wrapped, ErrPrerequisite); got != tc.prereq {
				t.Errorf("errors.Is(ErrPrerequisite) = %v, want %v", got, tc.prereq)
			}
		})
	}
}

func unsignedReply(e *RcodeError) *RcodeError {
	e.UnsignedReply = true
	return e
}

// TestCheckResponse covers the mapping of a response (and the verification
// of its TSIG) to an error.
func TestCheckResponse(t *testing.T) {
	signed := &Client{server: "s:53", key: "vmprov."}
	unsigned := &Client{server: "s:53"}
	resp := func(rcode int, tsigError uint16) *dns.Msg {
		m := new(dns.Msg)
		m.Response = true
		m.Rcode = rcode
		if tsigError != 0xffff {
			m.Extra = append(m.Extra, &dns.TSIG{Hdr: dns.RR_Header{Name: "vmprov.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
				Algorithm: dns.HmacSHA256, Error: tsigError})
		}
		return m
	}
	const none = 0xffff // no TSIG record
	for _, tc := range []struct {
		name    string
		c       *Client
		op      string
		r       *dns.Msg
		tsigErr error
		want    int // -1: nil
	}{
		{"accepted", signed, OpUpdate, resp(dns.RcodeSuccess, 0), nil, -1},
		{"unsigned client", unsigned, OpUpdate, resp(dns.RcodeSuccess, none), nil, -1},
		{"TSIG error field wins over rcode", signed, OpUpdate, resp(dns.RcodeNotAuth, dns.RcodeBadSig), dns.ErrAuth, dns.RcodeBadSig},
		{"BADKEY", signed, OpUpdate, resp(dns.RcodeNotAuth, dns.RcodeBadKey), dns.ErrAuth, dns.RcodeBadKey},
		{"BADTIME", signed, OpUpdate, resp(dns.RcodeNotAuth, dns.RcodeBadTime), dns.ErrAuth, dns.RcodeBadTime},
		{"success that fails verification", signed, OpUpdate, resp(dns.RcodeSuccess, 0), dns.ErrSig, dns.RcodeBadSig},
		{"success out of time", signed, OpUpdate, resp(dns.RcodeSuccess, 0), dns.ErrTime, dns.RcodeBadTime},
		{"unsigned success", signed, OpUpdate, resp(dns.RcodeSuccess, none), errUnsigned, dns.RcodeBadSig},
		{"unsigned refusal keeps its rcode", signed, OpUpdate, resp(dns.RcodeRefused, none), errUnsigned, dns.RcodeRefused},
		{"signed NOTAUTH miekg cannot verify", signed, OpUpdate, resp(dns.RcodeNotAuth, 0), dns.ErrAuth, dns.RcodeNotAuth},
		{"prerequisite", signed, OpUpdate, resp(dns.RcodeYXDomain, 0), nil, dns.RcodeYXDomain},
		{"NXDOMAIN answers a query", signed, OpQuery, resp(dns.RcodeNameError, 0), nil, -1},
		{"NXDOMAIN answer must verify", signed, OpQuery, resp(dns.RcodeNameError, 0), dns.ErrSig, dns.RcodeBadSig},
		{"SERVFAIL", unsigned, OpQuery, resp(dns.RcodeServerFailure, none), nil, dns.RcodeServerFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ok []int
			if tc.op == OpQuery {
				ok = []int{dns.RcodeNameError}
			}
			err := tc.c.checkResponse(tc.op, "example.com.", "", tc.r, tc.tsigErr, ok...)
			if tc.want < 0 {
				if err != nil {
					t.Fatalf("checkResponse = %v, want nil", err)
				}
				return
			}
			var re *RcodeError
			if !errors.As(err, &re) || re.Rcode != tc.want || re.Server != "s:53" || re.Key != tc.c.key {
				t.Fatalf("checkResponse = %#v, want rcode %s", err, rcodeName(tc.want))
			}
		})
	}
}

// TestCheckResponseUnsignedReply: a refusal without a TSIG record, in reply
// to a signed request, is marked, since PowerDNS refuses a key it cannot
// verify so.
func TestCheckResponseUnsignedReply(t *testing.T) {
	resp := func(signed bool) *dns.Msg {
		m := new(dns.Msg)
		m.Response, m.Rcode = true, dns.RcodeRefused
		if signed {
			m.Extra = append(m.Extra, &dns.TSIG{Hdr: dns.RR_Header{Name: "vmprov.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256})
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		c      *Client
		signed bool
		want   bool
	}{
		{"signed request, unsigned refusal", &Client{server: "s:53", key: "vmprov."}, false, true},
		{"signed request, signed refusal", &Client{server: "s:53", key: "vmprov."}, true, false},
		{"unsigned request", &Client{server: "s:53"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.checkResponse(OpUpdate, "example.com.", "", resp(tc.signed), nil)
			var re *RcodeError
			if !errors.As(err, &re) || re.UnsignedReply != tc.want {
				t.Errorf("checkResponse = %#v, want UnsignedReply %v", err, tc.want)
			}
		})
	}
}
