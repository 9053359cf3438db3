package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
)

// DNS is what the workflow needs of the DNS server: atomic RFC 2136 change
// sets with prerequisites, and authoritative lookups. *dnsupdate.Client
// implements it; so does dnstest.Fake.
type DNS interface {
	dnsupdate.Updater
	Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error)
}

// zoneFinder is implemented by DNS clients that can find the zone of a name
// (an SOA query, as nsupdate does).
type zoneFinder interface {
	FindZone(ctx context.Context, name string) (string, error)
}

// ErrNameExists means the host name or one of its addresses is already in DNS.
var ErrNameExists = errors.New("name exists")

// ReverseNameError means the PTR owner name of one of the host's addresses
// already exists: another host has the address. It wraps ErrNameExists.
// Create retries an IPv6-only host, whose address comes from a random MAC,
// with another MAC when it sees one.
type ReverseNameError struct {
	Name string // the PTR owner name, e.g. 55.2.0.192.in-addr.arpa.
	Zone string // the reverse zone holding it
}

func (e *ReverseNameError) Error() string {
	return fmt.Sprintf("%v: reverse name %s already exists in zone %s: the address is in use by another host", ErrNameExists, e.Name, e.Zone)
}

func (e *ReverseNameError) Unwrap() error { return ErrNameExists }

// hostDNS writes and removes a host's records.
type hostDNS struct {
	dns          DNS
	zone         string
	reverseZones []string
	ttl          uint32
}

// reverseZone returns the zone holding the PTR owner name.
func (h hostDNS) reverseZone(ctx context.Context, owner string) (string, error) {
	best := ""
	for _, z := range h.reverseZones {
		if dns.IsSubDomain(z, owner) && len(z) > len(best) {
			best = z
		}
	}
	if best != "" {
		return best, nil
	}
	if f, ok := h.dns.(zoneFinder); ok {
		z, err := f.FindZone(ctx, owner)
		if err != nil {
			return "", fmt.Errorf("find the reverse zone of %s: %w (or list it in dns.reverse_zones)", owner, err)
		}
		return z, nil
	}
	return "", fmt.Errorf("no reverse zone for %s: list it in dns.reverse_zones", owner)
}

// forwardRRs are the records owned by the host's name (and its _mac CNAME).
func (h hostDNS) forwardRRs(host inventory.Host) []dns.RR {
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: h.ttl}
	}
	var rrs []dns.RR
	if host.IPv4.IsValid() {
		rrs = append(rrs, &dns.A{Hdr: hdr(host.FQDN, dns.TypeA), A: host.IPv4.AsSlice()})
	}
	if host.IPv6.IsValid() {
		rrs = append(rrs, &dns.AAAA{Hdr: hdr(host.FQDN, dns.TypeAAAA), AAAA: host.IPv6.AsSlice()})
	}
	if txt := host.Intent.TXT(); len(txt) > 0 {
		rrs = append(rrs, &dns.TXT{Hdr: hdr(host.FQDN, dns.TypeTXT), Txt: txt})
	}
	if host.MACRecord && host.MAC != nil {
		rrs = append(rrs, &dns.CNAME{Hdr: hdr(inventory.MACOwner(host.MAC, h.zone), dns.TypeCNAME), Target: host.FQDN})
	}
	return rrs
}

func (h hostDNS) ptr(host inventory.Host, a netip.Addr) *dns.PTR {
	return &dns.PTR{Hdr: dns.RR_Header{Name: inventory.ReverseName(a), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: h.ttl}, Ptr: host.FQDN}
}

func addrs(host inventory.Host) []netip.Addr {
	var as []netip.Addr
	for _, a := range []netip.Addr{host.IPv4, host.IPv6} {
		if a.IsValid() {
			as = append(as, a)
		}
	}
	return as
}

// claim publishes the host in one UPDATE per zone. The forward UPDATE
// requires the name (and the _mac name) not to exist, so of two concurrent
// claims exactly one wins; each reverse UPDATE requires its PTR owner not to
// exist. A failed reverse claim removes what this claim added.
// The error wraps ErrNameExists when a prerequisite failed, as a
// *ReverseNameError when it was a reverse one and its undo succeeded.
//
// An UPDATE whose answer was lost after the server applied it is retried
// by the client, and the retry fails the prerequisites the first attempt
// made false; applyClaim tells that from a name taken by another host.
func (h hostDNS) claim(ctx context.Context, host inventory.Host) (undo func(context.Context) error, err error) {
	fwd := dnsupdate.ChangeSet{Zone: h.zone, NameNotInUse: []string{host.FQDN}, Add: h.forwardRRs(host)}
	if host.MACRecord && host.MAC != nil {
		fwd.NameNotInUse = append(fwd.NameNotInUse, inventory.MACOwner(host.MAC, h.zone))
	}
	// Resolve reverse zones before the first change, so a missing zone
	// changes nothing.
	type rev struct {
		zone string
		rr   *dns.PTR
	}
	var revs []rev
	for _, a := range addrs(host) {
		rr := h.ptr(host, a)
		z, err := h.reverseZone(ctx, rr.Hdr.Name)
		if err != nil {
			return nil, err
		}
		revs = append(revs, rev{z, rr})
	}
	if err := h.applyClaim(ctx, fwd); err != nil {
		var unknown *unknownOutcomeError
		switch {
		case errors.As(err, &unknown):
			return nil, fmt.Errorf("dns update of %s in zone %s: %w: %s may be in DNS now: look with `vmprov show %s`, and remove it with `vmprov destroy %s` (or `vmprov host remove %s`)",
				host.FQDN, h.zone, err, host.FQDN, host.Name, host.Name, host.Name)
		case errors.Is(err, dnsupdate.ErrPrerequisite):
			taken := host.FQDN
			if len(fwd.NameNotInUse) > 1 && !h.nameInUse(ctx, host.FQDN) {
				taken = fwd.NameNotInUse[1] + " (the MAC is registered to another host)"
			}
			return nil, fmt.Errorf("%w: %s is already in zone %s: pick another name or remove the existing host first (vmprov destroy / vmprov host remove)", ErrNameExists, taken, h.zone)
		}
		return nil, fmt.Errorf("dns update of %s in zone %s: %w", host.FQDN, h.zone, err)
	}
	// The undo removes our records by value (RFC 2136 2.5.4), the TXT
	// RRset by name: only address records that hold exactly what this
	// claim wrote, whoever changed the rest meanwhile, and with no
	// prerequisite, so that an undo whose answer is
	// lost is retried harmlessly. PTRs go first, and the forward records
	// only once every PTR is gone: a PTR whose host has no forward records
	// is one that destroy cannot find.
	var claimed []rev
	undoAll := func(ctx context.Context) error {
		var errs []error
		for i := len(claimed) - 1; i >= 0; i-- {
			r := claimed[i]
			if err := h.dns.Apply(ctx, dnsupdate.ChangeSet{Zone: r.zone, Remove: []dns.RR{r.rr}}); err != nil {
				errs = append(errs, fmt.Errorf("remove PTR %s from zone %s: %w", r.rr.Hdr.Name, r.zone, err))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w; the records of %s are kept, so that `vmprov destroy %s` finds the host and removes them all", errors.Join(errs...), host.FQDN, host.Name)
		}
		// The TXT goes whatever it holds now: the boot intent of a host
		// being rolled back may have been rewritten since the claim (a
		// create that moved to another hypervisor, a reinstall), and the
		// name is ours until the undo ends.
		cs := dnsupdate.ChangeSet{Zone: h.zone, RemoveRRset: []dnsupdate.RRKey{{Name: host.FQDN, Type: dns.TypeTXT}}}
		for _, rr := range fwd.Add {
			if rr.Header().Rrtype != dns.TypeTXT {
				cs.Remove = append(cs.Remove, rr)
			}
		}
		if err := h.dns.Apply(ctx, cs); err != nil {
			return fmt.Errorf("remove the records of %s from zone %s: %w", host.FQDN, h.zone, err)
		}
		return nil
	}
	for _, r := range revs {
		// A PTR of ours that a failed claim may have left is removed with
		// the rest; one naming another host is not ours and stays.
		claimed = append(claimed, r)
		cs := dnsupdate.ChangeSet{Zone: r.zone, NameNotInUse: []string{r.rr.Hdr.Name}, Add: []dns.RR{r.rr}}
		if err := h.applyClaim(ctx, cs); err != nil {
			uerr := undoAll(context.WithoutCancel(ctx))
			if errors.Is(err, dnsupdate.ErrPrerequisite) && !errors.As(err, new(*unknownOutcomeError)) {
				err = &ReverseNameError{Name: r.rr.Hdr.Name, Zone: r.zone}
			} else {
				err = fmt.Errorf("dns update of %s in zone %s: %w", r.rr.Hdr.Name, r.zone, err)
			}
			if uerr != nil {
				// Records of this claim are left, so a retry with another
				// address would only find its own name taken: the error
				// wraps the undo's failure, not the reverse name's.
				return nil, fmt.Errorf("%v; removing the records already added also failed: %w", err, uerr)
			}
			return nil, err
		}
	}
	return undoAll, nil
}

// unknownOutcomeError is a claim that the server may have applied, whose
// records could not be read back to tell.
type unknownOutcomeError struct{ err, lookup error }

func (e *unknownOutcomeError) Error() string {
	return fmt.Sprintf("%v; reading the records back to tell also failed: %v", e.err, e.lookup)
}

func (e *unknownOutcomeError) Unwrap() error { return e.err }

// applyClaim applies cs, which requires the names NameNotInUse to be free
// and adds the records Add at them. When the client reports that the server
// may have applied it although Apply failed (dnsupdate.ErrMaybeApplied: an
// answer was lost, and most likely the retry then found the names taken),
// applyClaim reads the names back: if they hold exactly the records of cs,
// the claim is ours and succeeded, and it returns nil.
//
// Why records equal to ours are ours: an UPDATE is atomic, so after our
// attempt was applied the names hold exactly what it added, and after it was
// refused they hold what refused it. The names were free, or the attempt
// would have been refused, and only holders of the TSIG key write them. For
// someone else to have written exactly these records (the same addresses,
// the same boot intent, for a bare-metal host the same MAC, for an
// IPv6-only VM an address drawn from a random MAC) a key holder would have
// had to publish this very host, between our lost answer and our retry: in
// practice, only our own first attempt does that. The remaining case is the
// same host published before this command ran, its name taken and our
// attempt refused: create has refused a name whose domain exists already,
// and for a host add the host is then exactly what was asked for. A PTR
// naming our host, at an address we are claiming for it, is ours to keep
// whoever wrote it, since we hold its forward name.
//
// When the read-back fails, the error is an *unknownOutcomeError.
func (h hostDNS) applyClaim(ctx context.Context, cs dnsupdate.ChangeSet) error {
	err := h.dns.Apply(ctx, cs)
	if err == nil || !errors.Is(err, dnsupdate.ErrMaybeApplied) {
		return err
	}
	var keys []dnsupdate.RRKey
	for _, n := range cs.NameNotInUse {
		for _, t := range claimedTypes {
			keys = append(keys, dnsupdate.RRKey{Name: n, Type: t})
		}
	}
	// The names are read even when ctx has ended (the update failed
	// because of it): a claim found applied then counts as done, and the
	// caller's next step, failing on ctx, undoes it with the rest.
	ours, rerr := h.holdExactly(context.WithoutCancel(ctx), keys, cs.Add)
	switch {
	case rerr != nil:
		return &unknownOutcomeError{err: err, lookup: rerr}
	case ours:
		return nil
	}
	return fmt.Errorf("%w; reading the records back shows it was not", err)
}

// claimedTypes are the types a claimed name may hold: what vmprov writes,
// and CNAME, which excludes everything else at its name.
var claimedTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeCNAME, dns.TypePTR}

// holdExactly reports whether the RRsets keys hold exactly the records of
// rrs (whose owners and types are among keys): each of them and nothing
// else, TTLs aside.
func (h hostDNS) holdExactly(ctx context.Context, keys []dnsupdate.RRKey, rrs []dns.RR) (bool, error) {
	var got []dns.RR
	for _, k := range keys {
		ans, err := h.dns.Lookup(ctx, k.Name, k.Type)
		if err != nil {
			return false, fmt.Errorf("look up %s: %w", k, err)
		}
		for _, rr := range ans.Records {
			// An answer may hold the CNAME that leads to the type asked.
			if hd := rr.Header(); hd.Rrtype == k.Type && strings.EqualFold(hd.Name, k.Name) {
				got = append(got, rr)
			}
		}
	}
	if len(got) != len(rrs) {
		return false, nil
	}
	for _, want := range rrs {
		if !slices.ContainsFunc(got, func(rr dns.RR) bool { return dns.IsDuplicate(rr, want) }) {
			return false, nil
		}
	}
	return true, nil
}

// lookupHost reads what DNS holds for fqdn. found is false when the name has
// no A, AAAA or TXT record.
func (h hostDNS) lookupHost(ctx context.Context, name string) (host inventory.Host, found bool, err error) {
	host = inventory.Host{Name: name, FQDN: name + "." + h.zone}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		ans, err := h.dns.Lookup(ctx, host.FQDN, t)
		if err != nil {
			return host, false, fmt.Errorf("look up %s %s: %w", host.FQDN, dns.TypeToString[t], err)
		}
		for _, rr := range ans.Records {
			switch rr := rr.(type) {
			case *dns.A:
				host.IPv4, _ = netip.AddrFromSlice(rr.A.To4())
				found = true
			case *dns.AAAA:
				host.IPv6, _ = netip.AddrFromSlice(rr.AAAA)
				found = true
			case *dns.TXT:
				found = true
				if in, err := inventory.ParseIntent(rr.Txt); err == nil {
					host.Intent = in
				}
			}
		}
	}
	return host, found, nil
}

// release removes the host's records: the PTRs of its addresses that still
// name it, then its name's records and the _mac CNAMEs at macOwners. Every
// removal is idempotent, so an UPDATE whose answer is lost is retried
// harmlessly. When a PTR cannot be removed, the name's records stay: they
// are how a second release finds the PTR.
func (h hostDNS) release(ctx context.Context, host inventory.Host, macOwners []string) error {
	var errs []error
	for _, a := range addrs(host) {
		owner := inventory.ReverseName(a)
		z, err := h.reverseZone(ctx, owner)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Remove the PTR only if it still names this host.
		cs := dnsupdate.ChangeSet{Zone: z, Remove: []dns.RR{h.ptr(host, a)}}
		if err := h.dns.Apply(ctx, cs); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from zone %s: %w", owner, z, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; the records of %s are kept, so that running the command again finds the PTRs", errors.Join(errs...), host.FQDN)
	}
	cs := dnsupdate.ChangeSet{Zone: h.zone, RemoveName: []string{host.FQDN}}
	for _, owner := range macOwners {
		cname := &dns.CNAME{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: host.FQDN}
		cs.Remove = append(cs.Remove, cname)
	}
	if err := h.dns.Apply(ctx, cs); err != nil {
		return fmt.Errorf("remove %s from zone %s: %w", host.FQDN, h.zone, err)
	}
	return nil
}

const dnsTypePTR = dns.TypePTR

func firstValid(as ...netip.Addr) netip.Addr {
	for _, a := range as {
		if a.IsValid() {
			return a
		}
	}
	return netip.Addr{}
}

// nameInUse reports whether name has any of the records vmprov writes; on
// a lookup error it says yes, the cautious answer for an error message.
func (h hostDNS) nameInUse(ctx context.Context, name string) bool {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeCNAME} {
		ans, err := h.dns.Lookup(ctx, name, t)
		if err != nil || len(ans.Records) > 0 {
			return true
		}
	}
	return false
}
