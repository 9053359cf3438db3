package dnstest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
)

// FakeServer is the Server of the *dnsupdate.RcodeError values a Fake
// returns.
const FakeServer = "dnstest.Fake"

// Fake is an in-memory Backend with the semantics of an RFC 2136 primary
// server (as BIND behaves): atomic change sets whose prerequisites are
// checked before anything changes, an SOA serial that counts changes, TTLs,
// NXDOMAIN versus NODATA (empty non-terminals exist), negative TTLs from the
// SOA, in-zone CNAME chasing and zone transfers. It does not know
// delegations, wildcards or DNSSEC. It is safe for concurrent use.
//
// FailNext, FailNextLookup and SetApplyHook inject failures so that tests
// of callers can make any step fail.
type Fake struct {
	mu          sync.Mutex
	zones       map[string]*fakeZone // by canonical name
	failApply   []int
	failLookup  []int
	applyHook   func(ctx context.Context, cs dnsupdate.ChangeSet) error
	appliedSets int
}

var _ Backend = (*Fake)(nil)

type fakeZone struct {
	name string
	soa  *dns.SOA
	// sets holds the RRsets by canonical owner name and type; never empty
	// slices.
	sets map[dnsupdate.RRKey][]dns.RR
}

// NewFake returns a Fake serving the given zones (fully qualified), each
// with an SOA (TTL and negative TTL 300 s) and one NS record.
func NewFake(zones ...string) *Fake {
	f := &Fake{zones: map[string]*fakeZone{}}
	for _, z := range zones {
		f.AddZone(z)
	}
	return f
}

// AddZone adds an empty zone, replacing any zone of that name.
func (f *Fake) AddZone(zone string) {
	zone = dns.CanonicalName(zone)
	ns := "ns1." + zone
	z := &fakeZone{
		name: zone,
		soa: &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
			Ns: ns, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300},
		sets: map[dnsupdate.RRKey][]dns.RR{},
	}
	z.sets[dnsupdate.RRKey{Name: zone, Type: dns.TypeNS}] = []dns.RR{
		&dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: ns}}
	f.mu.Lock()
	f.zones[zone] = z
	f.mu.Unlock()
}

// FailNext makes the next Apply fail with an *dnsupdate.RcodeError of the
// given rcode, changing nothing. Calls queue up.
func (f *Fake) FailNext(rcode int) {
	f.mu.Lock()
	f.failApply = append(f.failApply, rcode)
	f.mu.Unlock()
}

// FailNextLookup makes the next Lookup or FindZone fail with an
// *dnsupdate.RcodeError of the given rcode. Calls queue up.
func (f *Fake) FailNextLookup(rcode int) {
	f.mu.Lock()
	f.failLookup = append(f.failLookup, rcode)
	f.mu.Unlock()
}

// SetApplyHook installs h, called at the start of every Apply of a valid
// change set before anything is checked; nil removes it. An error from h is
// returned by Apply, which then changes nothing. h runs without the Fake's
// lock, so it may itself call the Fake, e.g. to let a competing claim win.
func (f *Fake) SetApplyHook(h func(ctx context.Context, cs dnsupdate.ChangeSet) error) {
	f.mu.Lock()
	f.applyHook = h
	f.mu.Unlock()
}

// Applied returns how many change sets have been applied successfully.
func (f *Fake) Applied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appliedSets
}

func (f *Fake) refusal(op, zone, name string, rcode int) error {
	return &dnsupdate.RcodeError{Op: op, Rcode: rcode, Zone: zone, Name: name, Server: FakeServer}
}

// Apply implements dnsupdate.Updater (RFC 2136 3.2-3.4).
func (f *Fake) Apply(ctx context.Context, cs dnsupdate.ChangeSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns update: %w", err)
	}
	if err := cs.Validate(); err != nil {
		return fmt.Errorf("dns update: %w", err)
	}
	zoneName := dns.CanonicalName(cs.Zone)
	f.mu.Lock()
	hook := f.applyHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, cs); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failApply) > 0 {
		rcode := f.failApply[0]
		f.failApply = f.failApply[1:]
		return f.refusal(dnsupdate.OpUpdate, zoneName, "", rcode)
	}
	z := f.zones[zoneName]
	if z == nil {
		return f.refusal(dnsupdate.OpUpdate, zoneName, "", dns.RcodeNotAuth)
	}
	if rcode := z.prerequisites(cs); rcode != dns.RcodeSuccess {
		return f.refusal(dnsupdate.OpUpdate, zoneName, "", rcode)
	}
	if z.update(cs) {
		z.soa.Serial++
	}
	f.appliedSets++
	return nil
}

// prerequisites checks RFC 2136 3.2 in the order of the message.
func (z *fakeZone) prerequisites(cs dnsupdate.ChangeSet) int {
	for _, n := range cs.NameNotInUse {
		if z.inUse(n) {
			return dns.RcodeYXDomain
		}
	}
	for _, n := range cs.NameInUse {
		if !z.inUse(n) {
			return dns.RcodeNameError
		}
	}
	for _, k := range cs.RRsetAbsent {
		if len(z.get(k)) > 0 {
			return dns.RcodeYXRrset
		}
	}
	for _, k := range cs.RRsetExists {
		if len(z.get(k)) == 0 {
			return dns.RcodeNXRrset
		}
	}
	// 3.2.3: the value-dependent prerequisites are compared per RRset.
	want := map[dnsupdate.RRKey][]dns.RR{}
	for _, r := range cs.RRsetEquals {
		k := keyOf(r)
		if !slices.ContainsFunc(want[k], func(x dns.RR) bool { return sameData(x, r) }) {
			want[k] = append(want[k], r)
		}
	}
	for k, rrs := range want {
		have := z.get(k)
		if len(have) != len(rrs) {
			return dns.RcodeNXRrset
		}
		for _, r := range rrs {
			if !slices.ContainsFunc(have, func(x dns.RR) bool { return sameData(x, r) }) {
				return dns.RcodeNXRrset
			}
		}
	}
	return dns.RcodeSuccess
}

// update applies the update section (RFC 2136 3.4.2) and reports whether
// anything changed.
func (z *fakeZone) update(cs dnsupdate.ChangeSet) bool {
	changed := false
	apex := func(name string) bool { return dns.CanonicalName(name) == z.name }
	for _, n := range cs.RemoveName {
		for k := range z.sets {
			if k.Name == dns.CanonicalName(n) && !(apex(n) && (k.Type == dns.TypeSOA || k.Type == dns.TypeNS)) {
				delete(z.sets, k)
				changed = true
			}
		}
	}
	for _, k := range cs.RemoveRRset {
		k = canonical(k)
		if apex(k.Name) && (k.Type == dns.TypeSOA || k.Type == dns.TypeNS) {
			continue // 3.4.2.3
		}
		if _, ok := z.sets[k]; ok {
			delete(z.sets, k)
			changed = true
		}
	}
	for _, r := range cs.Remove {
		k := keyOf(r)
		if k.Type == dns.TypeSOA {
			continue // 3.4.2.4
		}
		have := z.sets[k]
		i := slices.IndexFunc(have, func(x dns.RR) bool { return sameData(x, r) })
		if i < 0 || (apex(k.Name) && k.Type == dns.TypeNS && len(have) == 1) {
			continue
		}
		have = slices.Delete(slices.Clone(have), i, i+1)
		if len(have) == 0 {
			delete(z.sets, k)
		} else {
			z.sets[k] = have
		}
		changed = true
	}
	for _, r := range cs.Add {
		k := keyOf(r)
		switch {
		case k.Type == dns.TypeSOA:
			// 3.4.2.2: an SOA replaces the zone's only if its serial is newer.
			if soa, ok := r.(*dns.SOA); ok && apex(k.Name) && soa.Serial > z.soa.Serial {
				z.soa = dns.Copy(soa).(*dns.SOA)
				z.soa.Hdr.Class = dns.ClassINET
				changed = true
			}
			continue
		case k.Type == dns.TypeCNAME && z.hasOtherThan(k.Name, dns.TypeCNAME):
			continue // 3.4.2.2: CNAME next to other data is ignored
		case k.Type != dns.TypeCNAME && len(z.get(dnsupdate.RRKey{Name: k.Name, Type: dns.TypeCNAME})) > 0:
			continue // and other data next to a CNAME too
		}
		r = wireCopy(r)
		have := slices.Clone(z.sets[k])
		if k.Type == dns.TypeCNAME {
			have = nil // a name has at most one CNAME: the new one replaces it
		}
		// RFC 2181 5.2: the RRset takes the TTL of the record added last.
		for i := range have {
			have[i] = dns.Copy(have[i])
			have[i].Header().Ttl = r.Header().Ttl
		}
		if !slices.ContainsFunc(have, func(x dns.RR) bool { return sameData(x, r) }) {
			have = append(have, r)
		}
		z.sets[k] = have
		changed = true
	}
	return changed
}

// get returns the RRset k; the SOA is kept apart.
func (z *fakeZone) get(k dnsupdate.RRKey) []dns.RR {
	k = canonical(k)
	if k.Type == dns.TypeSOA && k.Name == z.name {
		return []dns.RR{z.soa}
	}
	return z.sets[k]
}

// inUse reports whether any RR exists at name (RFC 2136 2.4.4: an empty
// non-terminal is not in use).
func (z *fakeZone) inUse(name string) bool {
	return z.hasOtherThan(name, 0)
}

func (z *fakeZone) hasOtherThan(name string, t uint16) bool {
	name = dns.CanonicalName(name)
	if name == z.name && t != dns.TypeSOA {
		return true // the SOA
	}
	for k := range z.sets {
		if k.Name == name && k.Type != t {
			return true
		}
	}
	return false
}

// exists reports whether name exists in the zone: it owns records or is an
// empty non-terminal above names that do (RFC 8020).
func (z *fakeZone) exists(name string) bool {
	name = dns.CanonicalName(name)
	if name == z.name {
		return true
	}
	for k := range z.sets {
		if dns.IsSubDomain(name, k.Name) {
			return true
		}
	}
	return false
}

func keyOf(r dns.RR) dnsupdate.RRKey {
	return dnsupdate.RRKey{Name: dns.CanonicalName(r.Header().Name), Type: r.Header().Rrtype}
}

func canonical(k dnsupdate.RRKey) dnsupdate.RRKey {
	return dnsupdate.RRKey{Name: dns.CanonicalName(k.Name), Type: k.Type}
}

// sameData compares two records by owner, type and data, not class or TTL.
func sameData(a, b dns.RR) bool {
	a, b = dns.Copy(a), dns.Copy(b)
	for _, r := range []dns.RR{a, b} {
		r.Header().Class = dns.ClassINET
		r.Header().Ttl = 0
	}
	return dns.IsDuplicate(a, b)
}

// zoneFor returns the most specific zone holding name.
func (f *Fake) zoneFor(name string) *fakeZone {
	var best *fakeZone
	for _, z := range f.zones {
		if dns.IsSubDomain(z.name, name) && (best == nil || dns.CountLabel(z.name) > dns.CountLabel(best.name)) {
			best = z
		}
	}
	return best
}

// Lookup answers as an authoritative server without recursion would.
func (f *Fake) Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error) {
	if err := ctx.Err(); err != nil {
		return dnsupdate.Answer{}, fmt.Errorf("dns query: %w", err)
	}
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
		return dnsupdate.Answer{}, fmt.Errorf("dns query: %q is not a fully qualified domain name", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failLookup) > 0 {
		rcode := f.failLookup[0]
		f.failLookup = f.failLookup[1:]
		return dnsupdate.Answer{}, f.refusal(dnsupdate.OpQuery, "", name, rcode)
	}
	z := f.zoneFor(name)
	if z == nil {
		return dnsupdate.Answer{}, f.refusal(dnsupdate.OpQuery, "", name, dns.RcodeRefused)
	}
	var a dnsupdate.Answer
	negative := func() {
		a.TTL = time.Duration(min(z.soa.Hdr.Ttl, z.soa.Minttl)) * time.Second
	}
	// RFC 1034 4.3.2: follow CNAMEs within the zone, a bounded number of
	// times.
	for range 8 {
		var rrs []dns.RR
		if qtype == dns.TypeANY {
			for k := range z.sets {
				if k.Name == dns.CanonicalName(name) {
					rrs = append(rrs, z.sets[k]...)
				}
			}
			rrs = append(rrs, z.get(dnsupdate.RRKey{Name: name, Type: dns.TypeSOA})...)
		} else {
			rrs = z.get(dnsupdate.RRKey{Name: name, Type: qtype})
		}
		if len(rrs) > 0 {
			a.Records = append(a.Records, copies(rrs)...)
			break
		}
		if cn := z.get(dnsupdate.RRKey{Name: name, Type: dns.TypeCNAME}); len(cn) > 0 {
			a.Records = append(a.Records, copies(cn)...)
			name = cn[0].(*dns.CNAME).Target
			if dns.IsSubDomain(z.name, name) {
				continue
			}
			break
		}
		if !z.exists(name) {
			a.NXDomain = true
		}
		negative()
		break
	}
	if len(a.Records) > 0 {
		t := a.Records[0].Header().Ttl
		for _, r := range a.Records {
			t = min(t, r.Header().Ttl)
		}
		if a.TTL == 0 || time.Duration(t)*time.Second < a.TTL {
			a.TTL = time.Duration(t) * time.Second
		}
	}
	return a, nil
}

// wireCopy returns r as a server stores it: through its wire form (which
// normalizes how miekg/dns represents data, e.g. escapes in TXT strings),
// in class IN.
func wireCopy(r dns.RR) dns.RR {
	r = dns.Copy(r)
	r.Header().Class = dns.ClassINET
	buf := make([]byte, dns.Len(r)+256)
	n, err := dns.PackRR(r, buf, 0, nil, false)
	if err != nil {
		return r
	}
	w, _, err := dns.UnpackRR(buf[:n], 0)
	if err != nil {
		return r
	}
	return w
}

func copies(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, r := range rrs {
		out[i] = dns.Copy(r)
	}
	return out
}

// FindZone returns the most specific zone holding name.
func (f *Fake) FindZone(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("find zone: %w", err)
	}
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
		return "", fmt.Errorf("find zone: %q is not a fully qualified domain name", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failLookup) > 0 {
		rcode := f.failLookup[0]
		f.failLookup = f.failLookup[1:]
		return "", fmt.Errorf("find zone of %s: %w", name, f.refusal(dnsupdate.OpQuery, "", name, rcode))
	}
	z := f.zoneFor(name)
	if z == nil {
		return "", fmt.Errorf("find zone of %s: %w", name, f.refusal(dnsupdate.OpQuery, "", name, dns.RcodeRefused))
	}
	return z.name, nil
}

// Transfer returns the zone's SOA followed by its other records, sorted by
// owner name and type.
func (f *Fake) Transfer(ctx context.Context, zone string) ([]dns.RR, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("zone transfer: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[dns.CanonicalName(zone)]
	if z == nil {
		return nil, f.refusal(dnsupdate.OpTransfer, zone, "", dns.RcodeNotAuth)
	}
	keys := make([]dnsupdate.RRKey, 0, len(z.sets))
	for k := range z.sets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dnsupdate.RRKey) int {
		return cmp.Or(strings.Compare(reverseLabels(a.Name), reverseLabels(b.Name)), cmp.Compare(a.Type, b.Type))
	})
	out := []dns.RR{dns.Copy(z.soa)}
	for _, k := range keys {
		out = append(out, copies(z.sets[k])...)
	}
	return out, nil
}

// reverseLabels orders names the way a zone file lists them: parents first.
func reverseLabels(name string) string {
	l := dns.SplitDomainName(name)
	slices.Reverse(l)
	return strings.Join(l, ".")
}
