package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

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
	if err := h.dns.Apply(ctx, fwd); err != nil {
		if errors.Is(err, dnsupdate.ErrPrerequisite) {
			taken := host.FQDN
			if len(fwd.NameNotInUse) > 1 && !h.nameInUse(ctx, host.FQDN) {
				taken = fwd.NameNotInUse[1] + " (the MAC is registered to another host)"
			}
			return nil, fmt.Errorf("%w: %s is already in zone %s: pick another name or remove the existing host first (vmprov destroy / vmprov host remove)", ErrNameExists, taken, h.zone)
		}
		return nil, fmt.Errorf("dns update of %s in zone %s: %w", host.FQDN, h.zone, err)
	}
	var done []dnsupdate.ChangeSet
	undoAll := func(ctx context.Context) error {
		var errs []error
		for i := len(done) - 1; i >= 0; i-- {
			errs = append(errs, h.dns.Apply(ctx, done[i]))
		}
		errs = append(errs, h.dns.Apply(ctx, guardedRemove(h.zone, fwd.Add)))
		return errors.Join(errs...)
	}
	for _, r := range revs {
		cs := dnsupdate.ChangeSet{Zone: r.zone, NameNotInUse: []string{r.rr.Hdr.Name}, Add: []dns.RR{r.rr}}
		if err := h.dns.Apply(ctx, cs); err != nil {
			uerr := undoAll(context.WithoutCancel(ctx))
			if errors.Is(err, dnsupdate.ErrPrerequisite) {
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
		done = append(done, guardedRemove(r.zone, []dns.RR{r.rr}))
	}
	return undoAll, nil
}

// guardedRemove deletes rrs only while each of their RRsets still holds
// exactly our values (RFC 2136 section 2.4.2), so a rollback never removes
// records somebody else wrote meanwhile.
func guardedRemove(zone string, rrs []dns.RR) dnsupdate.ChangeSet {
	cs := dnsupdate.ChangeSet{Zone: zone}
	for _, rr := range rrs {
		cs.RRsetEquals = append(cs.RRsetEquals, rr)
		cs.RemoveRRset = append(cs.RemoveRRset, dnsupdate.RRKey{Name: rr.Header().Name, Type: rr.Header().Rrtype})
	}
	return cs
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

// release removes the host's records: its name's A/AAAA/TXT, the PTRs of its
// addresses that still point to it, and its _mac CNAME when mac is given.
func (h hostDNS) release(ctx context.Context, host inventory.Host, macOwner string) error {
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
	cs := dnsupdate.ChangeSet{Zone: h.zone, RemoveName: []string{host.FQDN}}
	if macOwner != "" {
		cname := &dns.CNAME{Hdr: dns.RR_Header{Name: macOwner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: host.FQDN}
		cs.Remove = append(cs.Remove, cname)
	}
	if err := h.dns.Apply(ctx, cs); err != nil {
		errs = append(errs, fmt.Errorf("remove %s from zone %s: %w", host.FQDN, h.zone, err))
	}
	return errors.Join(errs...)
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
