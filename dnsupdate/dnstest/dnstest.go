// Package dnstest holds what every implementation of vmprov's DNS seam must
// pass, and an in-memory implementation for tests of the code above it.
//
// Conformance is the contract in executable form: dnsupdate.Client against a
// real BIND passes it, and so does Fake, which is what lets tests of the
// orchestrator and the boot service use Fake in good conscience.
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
)

// Backend is the DNS seam as vmprov uses it: atomic updates, lookups, zone
// discovery and zone listing. The contracts are those of dnsupdate.Updater
// and of the Client methods of the same names.
type Backend interface {
	dnsupdate.Updater
	Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error)
	FindZone(ctx context.Context, name string) (string, error)
	Transfer(ctx context.Context, zone string) ([]dns.RR, error)
}

var _ Backend = (*dnsupdate.Client)(nil)

// Conformance runs the suite against fresh backends from newBackend, one per
// subtest. newBackend returns the backend, the forward zone it serves and a
// reverse zone it serves for 192.0.2.0/24 ("2.0.192.in-addr.arpa."); both
// start holding only their SOA and NS records (and perhaps glue).
func Conformance(t *testing.T, newBackend func(t *testing.T) (b Backend, zone, reverseZone string)) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"claim then look up", testClaim},
		{"claim of a used name changes nothing", testClaimTaken},
		{"prerequisites", testPrerequisites},
		{"guarded delete", testGuardedDelete},
		{"remove one record", testRemove},
		{"remove RRset", testRemoveRRset},
		{"remove name", testRemoveName},
		{"replace RRset", testReplace},
		{"TXT strings keep their order", testTXT},
		{"adding again sets the TTL", testAddAgain},
		{"concurrent claims", testConcurrentClaims},
		{"negative answers", testNegative},
		{"transfer", testTransfer},
		{"find zone", testFindZone},
		{"refusals", testRefusals},
		{"canceled context", testCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, zone, rev := newBackend(t)
			tc.run(t, &suite{t: t, b: b, zone: dns.CanonicalName(zone), rev: dns.CanonicalName(rev)})
		})
	}
}

// ttl is the TTL of the records the suite writes; it differs from the
// zones' default of 300 so that a backend that ignores it is caught.
const ttl = 120

type suite struct {
	t         *testing.T
	b         Backend
	zone, rev string
}

// name returns label.zone.
func (s *suite) name(label string) string { return label + "." + s.zone }

// ptr returns the reverse owner of 192.0.2.last.
func (s *suite) ptr(last int) string { return fmt.Sprintf("%d.%s", last, s.rev) }

func (s *suite) rr(format string, a ...any) dns.RR {
	s.t.Helper()
	text := fmt.Sprintf(format, a...)
	r, err := dns.NewRR(text)
	if err != nil || r == nil {
		s.t.Fatalf("bad record %q: %v", text, err)
	}
	return r
}

func (s *suite) a(label string, ip string) dns.RR {
	return s.rr("%s %d IN A %s", s.name(label), ttl, ip)
}

func (s *suite) apply(cs dnsupdate.ChangeSet) {
	s.t.Helper()
	if cs.Zone == "" {
		cs.Zone = s.zone
	}
	if err := s.b.Apply(s.t.Context(), cs); err != nil {
		s.t.Fatalf("Apply: %v", err)
	}
}

// applyFails applies cs, expecting a prerequisite failure with rcode.
func (s *suite) applyFails(cs dnsupdate.ChangeSet, rcode int) {
	s.t.Helper()
	if cs.Zone == "" {
		cs.Zone = s.zone
	}
	err := s.b.Apply(s.t.Context(), cs)
	if !errors.Is(err, dnsupdate.ErrPrerequisite) {
		s.t.Fatalf("Apply = %v, want an error matching ErrPrerequisite", err)
	}
	var re *dnsupdate.RcodeError
	if !errors.As(err, &re) || re.Rcode != rcode {
		s.t.Fatalf("Apply = %v, want an *RcodeError with rcode %s", err, dns.RcodeToString[rcode])
	}
}

// lookup returns the records at name of type qtype, as sorted text.
func (s *suite) lookup(name string, qtype uint16) []string {
	s.t.Helper()
	a, err := s.b.Lookup(s.t.Context(), name, qtype)
	if err != nil {
		s.t.Fatalf("Lookup(%s, %s): %v", name, dns.Type(qtype), err)
	}
	if len(a.Records) > 0 && a.TTL != minTTL(a.Records) {
		s.t.Errorf("Lookup(%s, %s).TTL = %v, want the smallest record TTL %v", name, dns.Type(qtype), a.TTL, minTTL(a.Records))
	}
	return texts(a.Records)
}

func (s *suite) want(name string, qtype uint16, want ...dns.RR) {
	s.t.Helper()
	if diff := cmp.Diff(texts(want), s.lookup(name, qtype)); diff != "" {
		s.t.Errorf("Lookup(%s, %s) (-want +got):\n%s", name, dns.Type(qtype), diff)
	}
}

// absent checks that name has no records of type qtype.
func (s *suite) absent(name string, qtype uint16) {
	s.t.Helper()
	if got := s.lookup(name, qtype); len(got) > 0 {
		s.t.Errorf("Lookup(%s, %s) = %q, want no records", name, dns.Type(qtype), got)
	}
}

func minTTL(rrs []dns.RR) time.Duration {
	m := rrs[0].Header().Ttl
	for _, r := range rrs {
		m = min(m, r.Header().Ttl)
	}
	return time.Duration(m) * time.Second
}

// texts renders records in presentation format, sorted, with class IN (an
// update's class says nothing about the stored record).
func texts(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, r := range rrs {
		r = dns.Copy(r)
		r.Header().Class = dns.ClassINET
		r.Header().Name = strings.ToLower(r.Header().Name)
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// claim is the change set `vmprov create` sends: the name and its reverse
// name must be free; A, TXT, PTR and the _mac CNAME are added together.
func (s *suite) claim(label string, last int) dnsupdate.ChangeSet {
	return dnsupdate.ChangeSet{
		Zone:         s.zone,
		NameNotInUse: []string{s.name(label)},
		Add: []dns.RR{
			s.a(label, fmt.Sprintf("192.0.2.%d", last)),
			s.rr(`%s %d IN TXT "filename=test.ipxe" "distribution=core"`, s.name(label), ttl),
			s.rr("%s %d IN CNAME %s", s.name("02-04-06-08-73-"+fmt.Sprintf("%02x", last)+"._mac"), ttl, s.name(label)),
		},
	}
}

func (s *suite) claimPTR(label string, last int) dnsupdate.ChangeSet {
	return dnsupdate.ChangeSet{
		Zone:         s.rev,
		NameNotInUse: []string{s.ptr(last)},
		Add:          []dns.RR{s.rr("%s %d IN PTR %s", s.ptr(last), ttl, s.name(label))},
	}
}

func testClaim(t *testing.T, s *suite) {
	cs := s.claim("host1", 10)
	cs.Add = append(cs.Add,
		s.a("host1", "192.0.2.11"),
		s.rr("%s %d IN AAAA 2001:db8:135::284a:6aff:fe74:5506", s.name("host1"), ttl))
	s.apply(cs)
	s.apply(s.claimPTR("host1", 10))
	s.want(s.name("host1"), dns.TypeA, cs.Add[0], cs.Add[3])
	s.want(s.name("host1"), dns.TypeAAAA, cs.Add[4])
	s.want(s.name("host1"), dns.TypeTXT, cs.Add[1])
	s.want(cs.Add[2].Header().Name, dns.TypeCNAME, cs.Add[2])
	s.want(s.ptr(10), dns.TypePTR, s.claimPTR("host1", 10).Add[0])
	a, err := s.b.Lookup(t.Context(), s.name("host1"), dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if a.TTL != ttl*time.Second || a.NXDomain {
		t.Errorf("Lookup(A) TTL, NXDomain = %v, %v; want %v, false", a.TTL, a.NXDomain, ttl*time.Second)
	}
}

func testClaimTaken(t *testing.T, s *suite) {
	s.apply(s.claim("taken", 20))
	second := s.claim("taken", 21)
	// The reverse name of the second claim is free: only the forward
	// prerequisite fails, and then nothing at all may be added.
	second.NameNotInUse = append(second.NameNotInUse, s.name("free"))
	second.Add = append(second.Add, s.a("free", "192.0.2.21"))
	s.applyFails(second, dns.RcodeYXDomain)
	s.want(s.name("taken"), dns.TypeA, s.a("taken", "192.0.2.20"))
	s.absent(s.name("free"), dns.TypeA)
	s.absent(second.Add[2].Header().Name, dns.TypeCNAME)
}

func testPrerequisites(t *testing.T, s *suite) {
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{s.a("p", "192.0.2.30")}})
	fresh := s.name("fresh")
	add := []dns.RR{s.a("fresh", "192.0.2.31")}
	for _, tc := range []struct {
		name  string
		cs    dnsupdate.ChangeSet
		rcode int // 0: passes
	}{
		{"name not in use fails", dnsupdate.ChangeSet{NameNotInUse: []string{s.name("p")}}, dns.RcodeYXDomain},
		{"name in use fails", dnsupdate.ChangeSet{NameInUse: []string{s.name("nothing")}}, dns.RcodeNameError},
		{"RRset absent fails", dnsupdate.ChangeSet{RRsetAbsent: []dnsupdate.RRKey{{Name: s.name("p"), Type: dns.TypeA}}}, dns.RcodeYXRrset},
		{"RRset exists fails", dnsupdate.ChangeSet{RRsetExists: []dnsupdate.RRKey{{Name: s.name("p"), Type: dns.TypeTXT}}}, dns.RcodeNXRrset},
		{"RRset equals fails", dnsupdate.ChangeSet{RRsetEquals: []dns.RR{s.a("p", "192.0.2.39")}}, dns.RcodeNXRrset},
		{"later prerequisite fails", dnsupdate.ChangeSet{
			NameNotInUse: []string{fresh},
			NameInUse:    []string{s.name("p")},
			RRsetExists:  []dnsupdate.RRKey{{Name: s.name("p"), Type: dns.TypeAAAA}},
		}, dns.RcodeNXRrset},
		{"all hold", dnsupdate.ChangeSet{
			NameNotInUse: []string{fresh},
			NameInUse:    []string{s.name("p")},
			RRsetAbsent:  []dnsupdate.RRKey{{Name: s.name("p"), Type: dns.TypeTXT}},
			RRsetExists:  []dnsupdate.RRKey{{Name: s.name("p"), Type: dns.TypeA}},
			RRsetEquals:  []dns.RR{s.a("p", "192.0.2.30")},
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := *s
			s.t = t
			cs := tc.cs
			cs.Zone = s.zone
			cs.Add = add
			if tc.rcode != 0 {
				s.applyFails(cs, tc.rcode)
				s.absent(fresh, dns.TypeA) // atomic: nothing was added
				return
			}
			s.apply(cs)
			s.want(fresh, dns.TypeA, add...)
		})
	}
}

func testGuardedDelete(t *testing.T, s *suite) {
	a20, a21 := s.a("g", "192.0.2.20"), s.a("g", "192.0.2.21")
	txt := s.rr(`%s %d IN TXT "filename=x"`, s.name("g"), ttl)
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{a20, a21, txt}})
	del := []dnsupdate.RRKey{{Name: s.name("g"), Type: dns.TypeA}}
	// A subset, or other values, are not "exactly these".
	s.applyFails(dnsupdate.ChangeSet{RRsetEquals: []dns.RR{a20}, RemoveRRset: del}, dns.RcodeNXRrset)
	s.applyFails(dnsupdate.ChangeSet{RRsetEquals: []dns.RR{a20, s.a("g", "192.0.2.22")}, RemoveRRset: del}, dns.RcodeNXRrset)
	s.want(s.name("g"), dns.TypeA, a20, a21)
	// Order and TTL do not matter.
	other := s.rr("%s 7 IN A 192.0.2.20", s.name("g"))
	s.apply(dnsupdate.ChangeSet{RRsetEquals: []dns.RR{a21, other}, RemoveRRset: del})
	s.absent(s.name("g"), dns.TypeA)
	s.want(s.name("g"), dns.TypeTXT, txt)
}

func testRemove(t *testing.T, s *suite) {
	a20, a21 := s.a("r", "192.0.2.20"), s.a("r", "192.0.2.21")
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{a20, a21}})
	s.apply(dnsupdate.ChangeSet{Remove: []dns.RR{a20, s.a("r", "192.0.2.99")}}) // removing what is not there is no error
	s.want(s.name("r"), dns.TypeA, a21)
}

func testRemoveRRset(t *testing.T, s *suite) {
	a := s.a("rs", "192.0.2.40")
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{a, s.rr(`%s %d IN TXT "a=1" "b=2"`, s.name("rs"), ttl)}})
	s.apply(dnsupdate.ChangeSet{RemoveRRset: []dnsupdate.RRKey{{Name: s.name("rs"), Type: dns.TypeTXT}, {Name: s.name("other"), Type: dns.TypeA}}})
	s.absent(s.name("rs"), dns.TypeTXT)
	s.want(s.name("rs"), dns.TypeA, a)
}

func testRemoveName(t *testing.T, s *suite) {
	s.apply(s.claim("rn", 41))
	s.apply(dnsupdate.ChangeSet{NameInUse: []string{s.name("rn")}, RemoveName: []string{s.name("rn")}})
	a, err := s.b.Lookup(t.Context(), s.name("rn"), dns.TypeTXT)
	if err != nil || !a.NXDomain || len(a.Records) > 0 {
		t.Errorf("Lookup after RemoveName = %+v, %v; want NXDOMAIN", a, err)
	}
	// The apex keeps its SOA and NS (RFC 2136 3.4.2.3).
	s.apply(dnsupdate.ChangeSet{RemoveName: []string{s.zone}})
	if got := s.lookup(s.zone, dns.TypeSOA); len(got) != 1 {
		t.Errorf("SOA after RemoveName of the apex = %q, want one", got)
	}
}

func testReplace(t *testing.T, s *suite) {
	old := s.rr(`%s %d IN TXT "filename=old.ipxe"`, s.name("re"), ttl)
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{old, s.a("re", "192.0.2.42")}})
	repl := s.rr(`%s %d IN TXT "filename=new.ipxe" "distribution=debian"`, s.name("re"), ttl)
	s.apply(dnsupdate.ChangeSet{
		RRsetEquals: []dns.RR{old},
		RemoveRRset: []dnsupdate.RRKey{{Name: s.name("re"), Type: dns.TypeTXT}},
		Add:         []dns.RR{repl},
	})
	s.want(s.name("re"), dns.TypeTXT, repl)
	s.want(s.name("re"), dns.TypeA, s.a("re", "192.0.2.42"))
}

func testTXT(t *testing.T, s *suite) {
	// dns.TXT holds its strings in presentation form: `\"` is a quote.
	strs := []string{"filename=test.ipxe", "distribution=core", "z=last?", "a=first", `quote=\"x y\"`, "semi=a;b", ""}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: s.name("txt"), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: strs}
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{txt}})
	a, err := s.b.Lookup(t.Context(), s.name("txt"), dns.TypeTXT)
	if err != nil || len(a.Records) != 1 {
		t.Fatalf("Lookup = %+v, %v; want one TXT record", a, err)
	}
	got, ok := a.Records[0].(*dns.TXT)
	if !ok {
		t.Fatalf("Lookup = %v, want a TXT record", a.Records[0])
	}
	if diff := cmp.Diff(strs, got.Txt); diff != "" {
		t.Errorf("TXT strings (-want +got):\n%s", diff)
	}
}

func testAddAgain(t *testing.T, s *suite) {
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{s.a("aa", "192.0.2.50")}})
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{s.a("aa", "192.0.2.50")}})
	s.want(s.name("aa"), dns.TypeA, s.a("aa", "192.0.2.50"))
	// RFC 2181 5.2: an RRset has one TTL, the one last added.
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{s.rr("%s 60 IN A 192.0.2.51", s.name("aa"))}})
	s.want(s.name("aa"), dns.TypeA, s.rr("%s 60 IN A 192.0.2.50", s.name("aa")), s.rr("%s 60 IN A 192.0.2.51", s.name("aa")))
}

func testConcurrentClaims(t *testing.T, s *suite) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.b.Apply(t.Context(), s.claim("race", 60+i)) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("claims %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, dnsupdate.ErrPrerequisite):
			t.Errorf("claim %d: %v, want success or ErrPrerequisite", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no claim succeeded")
	}
	s.want(s.name("race"), dns.TypeA, s.a("race", fmt.Sprintf("192.0.2.%d", 60+winner)))
}

func testNegative(t *testing.T, s *suite) {
	mac := s.claim("neg", 70).Add[2]
	s.apply(dnsupdate.ChangeSet{Add: []dns.RR{s.a("neg", "192.0.2.70"), mac}})
	for _, tc := range []struct {
		name     string
		qtype    uint16
		nxdomain bool
	}{
		{s.name("nothing-here"), dns.TypeA, true},
		{"deep." + s.name("nothing-here"), dns.TypeTXT, true},
		{s.ptr(254), dns.TypePTR, true},
		{s.name("neg"), dns.TypeTXT, false},   // NODATA
		{s.name("_mac"), dns.TypeA, false},    // an empty non-terminal exists
		{s.zone, dns.TypeAAAA, false},         // NODATA at the apex
		{s.name("neg"), dns.TypeCNAME, false}, // NODATA
	} {
		t.Run(fmt.Sprintf("%s %s", tc.name, dns.Type(tc.qtype)), func(t *testing.T) {
			a, err := s.b.Lookup(t.Context(), tc.name, tc.qtype)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if a.NXDomain != tc.nxdomain || len(a.Records) != 0 || a.TTL <= 0 || a.TTL > 24*time.Hour {
				t.Errorf("Lookup = %+v, want NXDomain %v, no records and a negative TTL", a, tc.nxdomain)
			}
		})
	}
}

func testTransfer(t *testing.T, s *suite) {
	cs := s.claim("xfr", 80)
	s.apply(cs)
	s.apply(s.claimPTR("xfr", 80))
	rrs, err := s.b.Transfer(t.Context(), s.zone)
	if err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	if len(rrs) == 0 || rrs[0].Header().Rrtype != dns.TypeSOA || !strings.EqualFold(rrs[0].Header().Name, s.zone) {
		t.Fatalf("Transfer = %v, want the SOA of %s first", rrs, s.zone)
	}
	if n := countType(rrs, dns.TypeSOA); n != 1 {
		t.Errorf("Transfer holds %d SOA records, want 1", n)
	}
	got := texts(rrs)
	for _, want := range texts(cs.Add) {
		if !slices.Contains(got, want) {
			t.Errorf("Transfer lacks %s; got %q", want, got)
		}
	}
	for _, r := range rrs {
		if !dns.IsSubDomain(s.zone, r.Header().Name) {
			t.Errorf("Transfer of %s holds %s from another zone", s.zone, r)
		}
	}
	rrs, err = s.b.Transfer(t.Context(), s.rev)
	if err != nil {
		t.Fatalf("Transfer(%s): %v", s.rev, err)
	}
	if want := texts(s.claimPTR("xfr", 80).Add)[0]; !slices.Contains(texts(rrs), want) {
		t.Errorf("Transfer(%s) lacks %s", s.rev, want)
	}
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, r := range rrs {
		if r.Header().Rrtype == t {
			n++
		}
	}
	return n
}

func testFindZone(t *testing.T, s *suite) {
	s.apply(s.claim("fz", 90))
	for _, tc := range []struct{ name, want string }{
		{s.zone, s.zone},
		{s.name("fz"), s.zone},
		{"a.b.c." + s.name("nothing"), s.zone},
		{s.ptr(90), s.rev},
		{s.ptr(91), s.rev},
		{s.rev, s.rev},
	} {
		z, err := s.b.FindZone(t.Context(), tc.name)
		if err != nil || !strings.EqualFold(z, tc.want) {
			t.Errorf("FindZone(%s) = %q, %v; want %q", tc.name, z, err, tc.want)
		}
	}
	if z, err := s.b.FindZone(t.Context(), "host.vmprov.invalid."); err == nil {
		t.Errorf("FindZone(host.vmprov.invalid.) = %q, want an error", z)
	}
}

func testRefusals(t *testing.T, s *suite) {
	var re *dnsupdate.RcodeError
	err := s.b.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "vmprov.invalid.", Add: []dns.RR{s.rr("h.vmprov.invalid. 60 IN A 192.0.2.1")}})
	if !errors.As(err, &re) || errors.Is(err, dnsupdate.ErrPrerequisite) {
		t.Errorf("update of a zone not served = %v, want an *RcodeError that is no prerequisite failure", err)
	}
	_, err = s.b.Lookup(t.Context(), "h.vmprov.invalid.", dns.TypeA)
	if !errors.As(err, &re) || re.Rcode != dns.RcodeRefused {
		t.Errorf("lookup outside the zones = %v, want an *RcodeError with REFUSED", err)
	}
	_, err = s.b.Transfer(t.Context(), "vmprov.invalid.")
	if !errors.As(err, &re) {
		t.Errorf("transfer of a zone not served = %v, want an *RcodeError", err)
	}
	for _, cs := range []dnsupdate.ChangeSet{
		{Zone: s.zone, Add: []dns.RR{s.rr("h.vmprov.invalid. 60 IN A 192.0.2.1"), s.a("inv", "192.0.2.1")}},
		{Zone: s.zone, NameNotInUse: []string{"inv"}, Add: []dns.RR{s.a("inv", "192.0.2.1")}},
		{Zone: s.zone, RemoveRRset: []dnsupdate.RRKey{{Name: s.name("inv"), Type: dns.TypeANY}}, Add: []dns.RR{s.a("inv", "192.0.2.1")}},
		{Zone: "", Add: []dns.RR{s.a("inv", "192.0.2.1")}},
	} {
		if err := s.b.Apply(t.Context(), cs); err == nil || errors.As(err, &re) {
			t.Errorf("Apply(invalid %+v) = %v, want a validation error", cs, err)
		}
	}
	s.absent(s.name("inv"), dns.TypeA)
}

func testCanceled(t *testing.T, s *suite) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.b.Apply(ctx, dnsupdate.ChangeSet{Zone: s.zone, Add: []dns.RR{s.a("cx", "192.0.2.1")}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.b.Lookup(ctx, s.name("cx"), dns.TypeA); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup with a canceled context = %v, want context.Canceled", err)
	}
	s.absent(s.name("cx"), dns.TypeA)
	// A deadline that passes mid-call ends it too.
	ctx, cancel = context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := s.b.Apply(ctx, dnsupdate.ChangeSet{Zone: s.zone, Add: []dns.RR{s.a("cx", "192.0.2.1")}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply after its deadline = %v, want context.DeadlineExceeded", err)
	}
}
