package netboot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/templates"
)

// Resolver answers DNS questions for the boot policy. *dnsupdate.Client
// satisfies it, and so do dnstest.Fake and *Cache.
//
// Lookup returns the records of the answer section for name and qtype. A
// name that does not exist is an Answer with NXDomain set; a name without
// records of that type is an empty Answer (NODATA); both carry the negative
// TTL (RFC 2308). An error means DNS could not be asked or gave no usable
// answer (timeout, SERVFAIL, REFUSED, a bad signature). Lookup must be safe
// for concurrent use and honour ctx.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error)
}

// DNSPolicy is the boot policy of docs/design.md ("The boot decision"): it identifies a client
// from DNS alone and decides from the host's TXT boot intent.
//
// A client that has a MAC (DHCP) is identified by it:
//   - a strict MAC (addressing.strict_mac_prefix) carries its VLAN and the
//     low 12 bits of its IPv4 address; the address rebuilt inside that VLAN's
//     subnet must have a PTR whose name's A record holds it again;
//   - a SLAAC MAC (addressing.slaac_mac_prefix) gives the modified EUI-64
//     address in the /64 of the client's VLAN (or of each VLAN in turn when
//     the listener does not know it), confirmed the same way with AAAA;
//   - any other MAC must be published as MAC-HEXHYP._mac.ZONE CNAME NAME.ZONE
//     (bare metal), and the host's A/AAAA records give its addresses.
//
// A client known by its source address only (HTTP, TFTP) needs
// forward-confirmed reverse DNS: PTR(address) names a host directly below
// dns.zone whose A or AAAA records hold that address.
//
// Every other case is ErrUnknown, and so is a name outside dns.zone. A DNS
// failure is an error that is not ErrUnknown, so callers answer nothing
// rather than guess; the exception is a PTR query the server REFUSES for an
// address on no configured VLAN, which is an unknown client, not an outage. A host without TXT gets a Decision with an empty
// Intent (it keeps its DHCP address; HTTP answers 404). A TXT record that is
// not a valid intent is treated the same way, and logged at Warn with the
// reason, so that a typo in DNS neither boots a wrong OS nor takes the
// address away from a running host.
//
// All lookups go through a Cache (NewDNSPolicy adds one unless the Resolver
// is one already), so repeated and concurrent decisions cost no queries
// while the answers are fresh.
type DNSPolicy struct {
	vlans  VLANs
	zone   string // lower case, fully qualified
	scheme inventory.Scheme
	dns    *Cache
	log    *slog.Logger
}

var (
	_ Policy    = (*DNSPolicy)(nil)
	_ Confirmer = (*DNSPolicy)(nil)
)

// PolicyConfig configures a DNSPolicy.
type PolicyConfig struct {
	// Zone is the forward zone hosts live in (dns.zone).
	Zone string
	// VLANs are the configured VLANs: strict MACs and SLAAC addresses are
	// decoded inside their subnets.
	VLANs VLANs
	// Scheme holds the MAC prefixes (addressing); the zero Scheme means
	// inventory.DefaultScheme.
	Scheme inventory.Scheme
	// Log receives Warn lines for TXT records that are not a boot intent;
	// nil discards.
	Log *slog.Logger
}

// NewDNSPolicy returns the policy for cfg. r is wrapped in a Cache with
// default settings unless it is a *Cache; pass one to choose its size,
// timeout or clock.
func NewDNSPolicy(cfg PolicyConfig, r Resolver) *DNSPolicy {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, ok := r.(*Cache)
	if !ok {
		c = NewCache(r, CacheConfig{})
	}
	scheme := cfg.Scheme
	if scheme == (inventory.Scheme{}) {
		scheme = inventory.DefaultScheme()
	}
	return &DNSPolicy{
		vlans:  cfg.VLANs,
		zone:   strings.ToLower(dns.Fqdn(cfg.Zone)),
		scheme: scheme,
		dns:    c,
		log:    log,
	}
}

// Cache returns the cache the policy reads DNS through.
func (p *DNSPolicy) Cache() *Cache { return p.dns }

// Decide identifies c from DNS. A MAC, when present, identifies the client
// and Addr is not consulted (the DHCP server compares a requested address
// with the decision); otherwise Addr must be forward-confirmed.
func (p *DNSPolicy) Decide(ctx context.Context, c Client) (Decision, error) {
	var t ttl
	var d Decision
	var err error
	switch {
	case len(c.MAC) > 0:
		d, err = p.byMAC(ctx, &t, c)
		if err != nil {
			return Decision{}, fmt.Errorf("decide %s: %w", c.MAC, err)
		}
	case c.Addr.IsValid():
		d, err = p.byAddr(ctx, &t, c.Addr)
		if err != nil {
			return Decision{}, fmt.Errorf("decide %s: %w", c.Addr, err)
		}
	default:
		return Decision{}, fmt.Errorf("decide: a client without MAC or address: %w", ErrUnknown)
	}
	d.TTL = t.d
	return d, nil
}

// ttl tracks the smallest TTL of the answers a decision rests on.
type ttl struct {
	d   time.Duration
	set bool
}

func (t *ttl) add(d time.Duration) {
	if !t.set || d < t.d {
		t.d, t.set = d, true
	}
}

// lookup asks the cache and records the answer's TTL.
func (p *DNSPolicy) lookup(ctx context.Context, t *ttl, name string, qtype uint16) (dnsupdate.Answer, error) {
	a, err := p.dns.Lookup(ctx, name, qtype)
	if err != nil {
		return a, fmt.Errorf("dns %s %s: %w", dns.Type(qtype), name, err)
	}
	t.add(a.TTL)
	return a, nil
}

// refresh asks past the cache (Cache.Refresh, which renews the cached
// answer) and records the answer's TTL.
func (p *DNSPolicy) refresh(ctx context.Context, t *ttl, name string, qtype uint16) (dnsupdate.Answer, error) {
	a, err := p.dns.Refresh(ctx, name, qtype)
	if err != nil {
		return a, fmt.Errorf("dns %s %s: %w", dns.Type(qtype), name, err)
	}
	t.add(a.TTL)
	return a, nil
}

// unknown returns ErrUnknown with the reason; the caller logs it once.
func unknown(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnknown)
}

// byAddr identifies the host whose PTR and A/AAAA agree on addr.
func (p *DNSPolicy) byAddr(ctx context.Context, t *ttl, addr netip.Addr) (Decision, error) {
	addr = addr.Unmap().WithZone("")
	if addr.IsUnspecified() {
		return Decision{}, unknown("unspecified address %s", addr)
	}
	rev := inventory.ReverseName(addr)
	ptr, err := p.lookup(ctx, t, rev, dns.TypePTR)
	if err != nil {
		// A server that refuses the PTR query serves no reverse zone for
		// addr. Outside every VLAN that is a client vmprov cannot know
		// (a laptop reaching /pxedust through a router); inside one it is
		// a DNS setup the operator must fix, so it stays an error.
		var re *dnsupdate.RcodeError
		if errors.As(err, &re) && re.Rcode == dns.RcodeRefused {
			if _, ours := p.vlans.Of(addr); !ours {
				return Decision{}, unknown("%s is on no configured VLAN and the DNS server serves no reverse zone for it", addr)
			}
		}
		return Decision{}, err
	}
	noPTR := func() error {
		return unknown("no PTR record %s naming a host in %s: add one (vmprov create and host add do)", rev, p.zone)
	}
	names := p.ptrNames(ptr)
	if len(names) == 0 {
		return Decision{}, noPTR()
	}
	qtype := dns.TypeA
	if addr.Is6() {
		qtype = dns.TypeAAAA
	}
	fqdn, err := p.holding(ctx, t, p.lookup, names, addr, qtype)
	if err == nil && fqdn == "" {
		// A PTR of ours whose host's forward record disagrees is a zone
		// that changed under the cache (a host destroyed and made again
		// at another address within the TTL), or one the operator must
		// fix: both are asked once more past the cache (Cache.Refresh,
		// which renews them) before the client counts as unknown. A
		// client with no PTR of ours never causes an uncached query.
		if ptr, err = p.refresh(ctx, t, rev, dns.TypePTR); err != nil {
			return Decision{}, err
		}
		if names = p.ptrNames(ptr); len(names) == 0 {
			return Decision{}, noPTR()
		}
		fqdn, err = p.holding(ctx, t, p.refresh, names, addr, qtype)
	}
	switch {
	case err != nil:
		return Decision{}, err
	case fqdn == "":
		return Decision{}, unknown("forward-confirmed reverse DNS failed: PTR %s names %s, but no %s record there holds %s", rev, strings.Join(names, ", "), dns.TypeToString[qtype], addr)
	}
	return p.complete(ctx, t, fqdn, addr, nil, 0, fmt.Sprintf("FCrDNS: PTR %s → %s, whose %s holds %s", rev, fqdn, dns.TypeToString[qtype], addr))
}

// holding returns the first of names whose qtype record, read with look,
// holds addr, or "" when none does.
func (p *DNSPolicy) holding(ctx context.Context, t *ttl, look func(context.Context, *ttl, string, uint16) (dnsupdate.Answer, error),
	names []string, addr netip.Addr, qtype uint16) (string, error) {
	for _, fqdn := range names {
		fwd, err := look(ctx, t, fqdn, qtype)
		if err != nil {
			return "", err
		}
		if slices.Contains(addrs(fwd), addr) {
			return fqdn, nil
		}
	}
	return "", nil
}

// ptrNames returns the host names in the zone that the PTR answer names,
// sorted: the RRset order is the server's choice, the decision must not be.
func (p *DNSPolicy) ptrNames(ptr dnsupdate.Answer) []string {
	var names []string
	for _, rr := range ptr.Records {
		if r, ok := rr.(*dns.PTR); ok {
			if n := strings.ToLower(r.Ptr); p.inZone(n) && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// byMAC identifies a DHCP client.
func (p *DNSPolicy) byMAC(ctx context.Context, t *ttl, c Client) (Decision, error) {
	mac := c.MAC
	if len(mac) != 6 {
		return Decision{}, unknown("%s is not a 48-bit MAC", mac)
	}
	if id, low12, ok := p.scheme.DecodeStrict(mac); ok {
		if c.VLAN != 0 && c.VLAN != id {
			return Decision{}, unknown("strict MAC %s belongs to VLAN %d but was seen on VLAN %d", mac, id, c.VLAN)
		}
		v, ok := p.vlans.ByID(id)
		if !ok || !v.IPv4.IsValid() {
			return Decision{}, unknown("strict MAC %s belongs to VLAN %d, which has no IPv4 subnet in the configuration", mac, id)
		}
		ip, err := inventory.IPv4InSubnet(v.IPv4, low12)
		if err != nil {
			return Decision{}, unknown("strict MAC %s: %v", mac, err)
		}
		d, err := p.byAddr(ctx, t, ip)
		if err != nil {
			return Decision{}, fmt.Errorf("strict MAC %s → VLAN %d, %s: %w", mac, id, ip, err)
		}
		d.Host.MAC = slices.Clone(mac)
		d.By = fmt.Sprintf("strict MAC %s → VLAN %d, %s; %s", mac, id, ip, d.By)
		return d, nil
	}
	if p.scheme.IsSLAAC(mac) {
		vlans := p.vlans
		if c.VLAN != 0 {
			vlans = nil
			if v, ok := p.vlans.ByID(c.VLAN); ok {
				vlans = VLANs{v}
			}
		}
		var tried []string
		for _, v := range vlans {
			if !v.IPv6.IsValid() {
				continue
			}
			a, err := inventory.EUI64(v.IPv6, mac)
			if err != nil {
				continue
			}
			d, err := p.byAddr(ctx, t, a)
			if errors.Is(err, ErrUnknown) {
				tried = append(tried, fmt.Sprintf("%s (VLAN %d): %v", a, v.ID, errors.Unwrap(err)))
				continue
			}
			if err != nil {
				return Decision{}, err
			}
			d.Host.MAC = slices.Clone(mac)
			d.By = fmt.Sprintf("SLAAC MAC %s → EUI-64 %s on VLAN %d; %s", mac, a, v.ID, d.By)
			return d, nil
		}
		if len(tried) == 0 {
			return Decision{}, unknown("SLAAC MAC %s, but no IPv6 VLAN to form its EUI-64 address in", mac)
		}
		return Decision{}, unknown("SLAAC MAC %s: no EUI-64 address is confirmed: %s", mac, strings.Join(tried, "; "))
	}
	owner := inventory.MACOwner(mac, p.zone)
	cn, err := p.lookup(ctx, t, owner, dns.TypeCNAME)
	if err != nil {
		return Decision{}, err
	}
	var targets []string
	for _, rr := range cn.Records {
		if r, ok := rr.(*dns.CNAME); ok {
			if n := strings.ToLower(r.Target); p.inZone(n) {
				targets = append(targets, n)
			}
		}
	}
	if len(targets) != 1 { // a CNAME owner has exactly one (RFC 1034 3.6.2)
		return Decision{}, unknown("MAC %s is neither a strict nor a SLAAC MAC, and %s has no CNAME to a host in %s: add it with vmprov host add --mac", mac, owner, p.zone)
	}
	return p.complete(ctx, t, targets[0], netip.Addr{}, mac, c.VLAN, fmt.Sprintf("_mac CNAME %s → %s", owner, targets[0]))
}

// complete reads the rest of a confirmed host: its other addresses and its
// TXT intent. confirmed is the address that identified it (zero for _mac
// hosts), vlan the VLAN the request came from (0 unknown), by how it was
// identified.
func (p *DNSPolicy) complete(ctx context.Context, t *ttl, fqdn string, confirmed netip.Addr, mac net.HardwareAddr, vlan int, by string) (Decision, error) {
	h := inventory.Host{
		Name: strings.TrimSuffix(fqdn, "."+p.zone),
		FQDN: fqdn,
		MAC:  slices.Clone(mac),
	}
	h.MACRecord = mac != nil
	var want VLAN
	if confirmed.IsValid() {
		want, _ = p.vlans.Of(confirmed)
	} else if vlan != 0 {
		want, _ = p.vlans.ByID(vlan)
	}
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if confirmed.Is4() && qtype == dns.TypeA {
			h.IPv4 = confirmed
			continue
		}
		if confirmed.Is6() && qtype == dns.TypeAAAA {
			h.IPv6 = confirmed
			continue
		}
		a, err := p.lookup(ctx, t, fqdn, qtype)
		if err != nil {
			return Decision{}, err
		}
		pick := pickAddr(addrs(a), want, qtype == dns.TypeA)
		if qtype == dns.TypeA {
			h.IPv4 = pick
		} else {
			h.IPv6 = pick
		}
	}
	if h.MAC == nil {
		h.MAC = p.deriveMAC(h)
	}
	txt, v, err := p.dns.lookupDerived(ctx, fqdn, dns.TypeTXT, p.parseTXT)
	if err != nil {
		return Decision{}, fmt.Errorf("dns %s %s: %w", dns.Type(dns.TypeTXT), fqdn, err)
	}
	t.add(txt.TTL)
	h.Intent = slices.Clone(v.(parsedIntent).intent)
	d := Decision{Host: h, By: by}
	var ok bool
	for _, a := range []netip.Addr{confirmed, h.IPv4, h.IPv6} {
		if a.IsValid() {
			if d.VLAN, ok = p.vlans.Of(a); ok {
				break
			}
		}
	}
	if !ok && !h.IPv4.IsValid() && !h.IPv6.IsValid() {
		d.VLAN = want // a _mac host without addresses: where it asked from
	}
	return d, nil
}

// Confirm reads the TXT record of d's host again with an uncached query
// (Cache.Refresh, whose answer then replaces the cached one) and returns d
// with the intent it holds now: Booter.Confirmed asks for it before an
// answer hands out the installer, so that a cached state never installs a
// host another instance has marked installed (docs/design.md, "A host's
// life").
func (p *DNSPolicy) Confirm(ctx context.Context, d Decision) (Decision, error) {
	txt, v, err := p.dns.refreshDerived(ctx, d.Host.FQDN, dns.TypeTXT, p.parseTXT)
	if err != nil {
		return Decision{}, fmt.Errorf("dns %s %s: %w", dns.Type(dns.TypeTXT), d.Host.FQDN, err)
	}
	d.Host.Intent = slices.Clone(v.(parsedIntent).intent)
	d.TTL = min(d.TTL, txt.TTL)
	return d, nil
}

// parsedIntent is a TXT answer read as a boot intent; nil when the host
// has none or its TXT is not one.
type parsedIntent struct{ intent inventory.Intent }

// parseTXT reads a TXT answer as a boot intent. The cache keeps the result
// with the answer, so an intent is parsed and checked once per answer DNS
// gives, not on every request; a TXT that is not a boot intent is logged
// then, once per answer (that is, once per TTL) rather than per request.
func (p *DNSPolicy) parseTXT(fqdn string, txt dnsupdate.Answer) any {
	intent, err := ParseIntent(txtStrings(txt))
	if err != nil {
		p.log.Warn("txt record is not a boot intent; treating the host as having none", "host", fqdn, "rrtype", "TXT", "err", err)
		intent = nil
	}
	return parsedIntent{intent}
}

// deriveMAC recovers the MAC of a host identified by address: from a
// modified EUI-64 AAAA (the host formed it from its own MAC), else the
// strict MAC of its IPv4 address in its VLAN. The strict MAC is what vmprov
// gives VMs; a bare-metal host identified by address alone gets it too,
// since DNS cannot say otherwise without its _mac record.
func (p *DNSPolicy) deriveMAC(h inventory.Host) net.HardwareAddr {
	if h.IPv6.IsValid() {
		if mac, ok := inventory.MACFromEUI64(h.IPv6); ok {
			return mac
		}
	}
	if h.IPv4.IsValid() {
		if v, ok := p.vlans.Of(h.IPv4); ok && v.IPv4.Contains(h.IPv4) {
			if mac, err := p.scheme.StrictMAC(v.ID, h.IPv4); err == nil {
				return mac
			}
		}
	}
	return nil
}

// inZone reports whether fqdn is a host name directly below the zone.
func (p *DNSPolicy) inZone(fqdn string) bool {
	label, ok := strings.CutSuffix(fqdn, "."+p.zone)
	return ok && inventory.ValidateName(label) == nil
}

// addrs returns the A and AAAA addresses of an answer.
func addrs(a dnsupdate.Answer) []netip.Addr {
	var out []netip.Addr
	for _, rr := range a.Records {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		if x, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, x.Unmap())
		}
	}
	return out
}

// pickAddr chooses a host's address of one family deterministically: the
// lowest one inside the wanted VLAN's subnet, else the lowest one.
func pickAddr(list []netip.Addr, want VLAN, v4 bool) netip.Addr {
	var in, all []netip.Addr
	for _, a := range list {
		if a.Is4() != v4 {
			continue
		}
		all = append(all, a)
		if v4 && want.IPv4.IsValid() && want.IPv4.Contains(a) || !v4 && want.IPv6.IsValid() && want.IPv6.Contains(a) {
			in = append(in, a)
		}
	}
	for _, l := range [][]netip.Addr{in, all} {
		if len(l) > 0 {
			return slices.MinFunc(l, func(a, b netip.Addr) int { return a.Compare(b) })
		}
	}
	return netip.Addr{}
}

// txtStrings flattens a TXT RRset into its character-strings. A host has
// one TXT record with one string per key (seed 000), but if it has several
// records they are taken in sorted order: the server may return an RRset in
// any order, and every instance must decide the same.
func txtStrings(a dnsupdate.Answer) []string {
	var recs [][]string
	for _, rr := range a.Records {
		if r, ok := rr.(*dns.TXT); ok {
			recs = append(recs, r.Txt)
		}
	}
	slices.SortStableFunc(recs, func(a, b []string) int {
		return cmp.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00"))
	})
	var out []string
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

// ParseIntent reads a host's TXT character-strings as a boot intent and
// checks it with the rules every CLI path writes by, so that whatever
// vmprov create, host add and reinstall accept, serve renders.
func ParseIntent(txt []string) (inventory.Intent, error) {
	in, err := inventory.ParseIntent(txt)
	if err != nil {
		return nil, err
	}
	if err := templates.CheckIntent(TemplateVars(in)); err != nil {
		return nil, err
	}
	return in, nil
}
