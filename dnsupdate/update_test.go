package dnsupdate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/internal/golden"
)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChangeSetMsg pins the sections each field becomes (RFC 2136 2.4 and
// 2.5): the text form of the message and its packed bytes.
func TestChangeSetMsg(t *testing.T) {
	const z = "example.com."
	for _, tc := range []struct {
		name string
		cs   ChangeSet
	}{
		{"name-not-in-use", ChangeSet{Zone: z, NameNotInUse: []string{"h.example.com."}}},
		{"name-in-use", ChangeSet{Zone: z, NameInUse: []string{"h.example.com."}}},
		{"rrset-absent", ChangeSet{Zone: z, RRsetAbsent: []RRKey{{Name: "h.example.com.", Type: dns.TypeAAAA}}}},
		{"rrset-exists", ChangeSet{Zone: z, RRsetExists: []RRKey{{Name: "h.example.com.", Type: dns.TypeA}}}},
		{"rrset-equals", ChangeSet{Zone: z, RRsetEquals: []dns.RR{
			mustRR(t, "h.example.com. 300 IN A 192.0.2.1"), mustRR(t, "h.example.com. 300 IN A 192.0.2.2")}}},
		{"remove", ChangeSet{Zone: z, Remove: []dns.RR{mustRR(t, "h.example.com. 300 IN A 192.0.2.1")}}},
		{"remove-rrset", ChangeSet{Zone: z, RemoveRRset: []RRKey{{Name: "h.example.com.", Type: dns.TypeTXT}}}},
		{"remove-name", ChangeSet{Zone: z, RemoveName: []string{"h.example.com."}}},
		{"add", ChangeSet{Zone: z, Add: []dns.RR{
			mustRR(t, `h.example.com. 300 IN TXT "filename=test.ipxe" "distribution=core"`),
			mustRR(t, "02-04-06-08-73-ac._mac.example.com. 300 IN CNAME h.example.com.")}}},
		{"claim", ChangeSet{Zone: "2.0.192.in-addr.arpa.",
			NameNotInUse: []string{"10.2.0.192.in-addr.arpa."},
			Add:          []dns.RR{mustRR(t, "10.2.0.192.in-addr.arpa. 300 IN PTR h.example.com.")}}},
		{"replace", ChangeSet{Zone: z,
			RRsetEquals: []dns.RR{mustRR(t, `h.example.com. 300 IN TXT "filename=old.ipxe"`)},
			RemoveRRset: []RRKey{{Name: "h.example.com.", Type: dns.TypeTXT}},
			Add:         []dns.RR{mustRR(t, `h.example.com. 300 IN TXT "filename=new.ipxe"`)}}},
		{"release", ChangeSet{Zone: z,
			RRsetEquals: []dns.RR{mustRR(t, "h.example.com. 300 IN A 192.0.2.1")},
			RemoveName:  []string{"h.example.com."},
			RemoveRRset: []RRKey{{Name: "h.example.com.", Type: dns.TypeA}},
			Remove:      []dns.RR{mustRR(t, "02-04-06-08-73-ac._mac.example.com. 300 IN CNAME h.example.com.")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cs.Validate(); err != nil {
				t.Fatal(err)
			}
			before := texts(tc.cs)
			m := tc.cs.msg()
			if diff := cmp.Diff(before, texts(tc.cs)); diff != "" {
				t.Errorf("msg modified the change set (-before +after):\n%s", diff)
			}
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString(m.String())
			b.WriteString("\n;; WIRE\n")
			for i := 0; i < len(wire); i += 16 {
				b.WriteString(hexLine(wire[i:min(i+16, len(wire))]))
			}
			golden.Check(t, filepath.Join("testdata", "update-"+tc.name+".golden"), []byte(b.String()))
			// What goes on the wire is what a server reads.
			var back dns.Msg
			if err := back.Unpack(wire); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m.String(), back.String()); diff != "" {
				t.Errorf("unpacked message differs (-built +unpacked):\n%s", diff)
			}
		})
	}
}

func hexLine(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&0xf])
	}
	s.WriteByte('\n')
	return s.String()
}

func texts(cs ChangeSet) []string {
	var out []string
	for _, rrs := range [][]dns.RR{cs.RRsetEquals, cs.Remove, cs.Add} {
		for _, r := range rrs {
			out = append(out, r.String())
		}
	}
	return out
}

func TestChangeSetValidate(t *testing.T) {
	a := mustRR(t, "h.example.com. 60 IN A 192.0.2.1")
	for _, tc := range []struct {
		name string
		cs   ChangeSet
		want string // "" = valid
	}{
		{"valid", ChangeSet{Zone: "example.com.", Add: []dns.RR{a}}, ""},
		{"prerequisites only", ChangeSet{Zone: "example.com.", NameNotInUse: []string{"example.com."}}, ""},
		{"no zone", ChangeSet{Add: []dns.RR{a}}, `zone "" is not`},
		{"relative zone", ChangeSet{Zone: "example.com", Add: []dns.RR{a}}, `zone "example.com" is not a fully qualified`},
		{"outside zone", ChangeSet{Zone: "example.org.", Add: []dns.RR{a}}, `Add: "h.example.com." is outside zone example.org.`},
		{"relative name", ChangeSet{Zone: "example.com.", NameNotInUse: []string{"h"}}, `NameNotInUse: "h" is not fully qualified`},
		{"bad name", ChangeSet{Zone: "example.com.", RemoveName: []string{"a..example.com."}}, `RemoveName: "a..example.com." is not a domain name`},
		{"ANY type", ChangeSet{Zone: "example.com.", RemoveRRset: []RRKey{{Name: "h.example.com.", Type: dns.TypeANY}}}, "RemoveRRset: h.example.com. ANY is not a data type"},
		{"nil record", ChangeSet{Zone: "example.com.", Remove: []dns.RR{nil}}, "Remove: nil record"},
		{"class CH", ChangeSet{Zone: "example.com.", Add: []dns.RR{mustRR(t, "h.example.com. 60 CH A 192.0.2.1")}}, "class CH is not IN"},
		{"no data", ChangeSet{Zone: "example.com.", RRsetEquals: []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "h.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET}}}}, "record without data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cs.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
