package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/templates"
)

// HostRequest registers a machine that is not a VM (seed 001/002 bare
// metal): its MAC is not derived, so it is published as a _mac CNAME.
type HostRequest struct {
	Name   string
	MAC    net.HardwareAddr
	IPv4   netip.Addr // optional
	IPv6   netip.Addr // optional
	Distro string
	Script string
	Vars   []inventory.Var
}

// AddHost publishes A/AAAA, PTR, TXT and the _mac CNAME of a bare-metal
// host. The forward UPDATE requires both the name and the _mac owner to be
// free, so a MAC is never registered twice.
func (o *Orchestrator) AddHost(ctx context.Context, r HostRequest) (*Plan, error) {
	if err := validateHost(r.Name, r.Distro, r.Script, r.Vars); err != nil {
		return nil, err
	}
	if len(r.MAC) != 6 || r.MAC[0]&1 != 0 {
		return nil, invalid("--mac %s is not a unicast Ethernet MAC like 00:25:90:96:c4:9a", r.MAC)
	}
	for _, a := range []netip.Addr{r.IPv4, r.IPv6} {
		if a.IsValid() {
			if _, ok := o.cfg.VLANOf(a); !ok {
				o.log.Warn("address is in no configured VLAN; the boot service will not answer it by DHCP", "ip", a.String())
			}
		}
	}
	if r.IPv4.IsValid() && !r.IPv4.Is4() {
		return nil, invalid("--ip %s is not an IPv4 address", r.IPv4)
	}
	if r.IPv6.IsValid() && (!r.IPv6.Is6() || r.IPv6.Is4In6()) {
		return nil, invalid("--ipv6 %s is not an IPv6 address", r.IPv6)
	}
	h := inventory.Host{Name: r.Name, FQDN: r.Name + "." + o.cfg.DNS.Zone, MAC: r.MAC, MACRecord: true, IPv4: r.IPv4, IPv6: r.IPv6}
	if r.Script != "" {
		h.Intent = h.Intent.With(inventory.KeyFilename, r.Script)
	}
	h.Intent = h.Intent.With(inventory.KeyDistribution, r.Distro)
	for _, v := range r.Vars {
		h.Intent = h.Intent.With(v.Key, v.Value)
	}
	if _, err := o.dns.claim(ctx, h); err != nil {
		return nil, fmt.Errorf("host add %s: %w", r.Name, err)
	}
	o.log.Info("host added", "host", h.FQDN, "mac", r.MAC.String())
	p := o.describe(h, nil)
	p.MAC = r.MAC.String()
	return p, nil
}

// RemoveHost removes a bare-metal host's records, its _mac CNAME included.
func (o *Orchestrator) RemoveHost(ctx context.Context, name string) error {
	if err := inventory.ValidateName(name); err != nil {
		return invalid("%v", err)
	}
	h, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	if !found {
		return fmt.Errorf("host remove %s: %w in zone %s", name, ErrNotFound, o.cfg.DNS.Zone)
	}
	macOwner, err := o.macOwnerOf(ctx, h)
	if err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	if err := o.dns.release(ctx, h, macOwner); err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	return nil
}

// transferer is implemented by DNS clients that can read a whole zone.
type transferer interface {
	Transfer(ctx context.Context, zone string) ([]dns.RR, error)
}

// macCNAMEs reads the zone and returns the _mac CNAMEs, owner → target.
func (o *Orchestrator) macCNAMEs(ctx context.Context) (map[string]string, error) {
	tr, ok := o.dns.dns.(transferer)
	if !ok {
		return nil, errors.New("the DNS client cannot transfer zones")
	}
	rrs, err := tr.Transfer(ctx, o.cfg.DNS.Zone)
	if err != nil {
		return nil, fmt.Errorf("transfer zone %s (allow-transfer { key %s; } is needed): %w", o.cfg.DNS.Zone, o.cfg.DNS.TSIG.Name, err)
	}
	suffix := "._mac." + o.cfg.DNS.Zone
	out := map[string]string{}
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && dns.IsSubDomain("_mac."+o.cfg.DNS.Zone, c.Hdr.Name) && len(c.Hdr.Name) > len(suffix) {
			out[dns.CanonicalName(c.Hdr.Name)] = dns.CanonicalName(c.Target)
		}
	}
	return out, nil
}

// macOwnerOf finds the _mac CNAME that points at the host.
func (o *Orchestrator) macOwnerOf(ctx context.Context, h inventory.Host) (string, error) {
	cnames, err := o.macCNAMEs(ctx)
	if err != nil {
		return "", err
	}
	for owner, target := range cnames {
		if target == dns.CanonicalName(h.FQDN) {
			return owner, nil
		}
	}
	return "", nil
}

// ListHosts returns the bare-metal hosts: every _mac CNAME with the records
// of the host it names, sorted by name.
func (o *Orchestrator) ListHosts(ctx context.Context) ([]*Plan, error) {
	cnames, err := o.macCNAMEs(ctx)
	if err != nil {
		return nil, fmt.Errorf("host list: %w", err)
	}
	var out []*Plan
	for owner, target := range cnames {
		name, ok := strings.CutSuffix(target, "."+o.cfg.DNS.Zone)
		if !ok || strings.Contains(name, ".") {
			continue
		}
		h, _, err := o.dns.lookupHost(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("host list: %w", err)
		}
		mac, err := inventory.ParseHexHyp(strings.TrimSuffix(owner, "._mac."+o.cfg.DNS.Zone))
		if err != nil {
			continue
		}
		h.MAC, h.MACRecord = mac, true
		p := o.describe(h, nil)
		p.MAC = mac.String()
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Reinstall rewrites the TXT boot intent of a VM or host (seed 000: the
// intent lives in DNS), keeping its variables unless replaced. The update
// requires the old TXT to be unchanged, so concurrent edits do not mix.
func (o *Orchestrator) Reinstall(ctx context.Context, name, distro, script string, vars []inventory.Var) (*Plan, error) {
	if err := validateHost(name, distro, script, vars); err != nil {
		return nil, err
	}
	h, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reinstall %s: %w", name, err)
	}
	if !found {
		return nil, fmt.Errorf("reinstall %s: %w in zone %s", name, ErrNotFound, o.cfg.DNS.Zone)
	}
	old := h.Intent
	in := old.With(inventory.KeyDistribution, distro)
	if script != "" {
		in = in.With(inventory.KeyFilename, script)
	}
	for _, v := range vars {
		in = in.With(v.Key, v.Value)
	}
	// The flags passed; a refusal now is of a variable kept from the old
	// record, which serve would refuse too.
	if err := templates.CheckIntent(templateVars(in)); err != nil {
		return nil, invalid("reinstall %s: the TXT record of %s keeps a variable the boot service refuses: %w: give it a valid value with --txt, or correct the record in DNS", name, h.FQDN, err)
	}
	hdr := dns.RR_Header{Name: h.FQDN, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: o.cfg.DNS.TTL}
	cs := dnsupdate.ChangeSet{Zone: o.cfg.DNS.Zone, NameInUse: []string{h.FQDN},
		RemoveRRset: []dnsupdate.RRKey{{Name: h.FQDN, Type: dns.TypeTXT}},
		Add:         []dns.RR{&dns.TXT{Hdr: hdr, Txt: in.TXT()}}}
	if len(old) > 0 {
		cs.RRsetEquals = []dns.RR{&dns.TXT{Hdr: hdr, Txt: old.TXT()}}
	} else {
		cs.RRsetAbsent = []dnsupdate.RRKey{{Name: h.FQDN, Type: dns.TypeTXT}}
	}
	if err := o.dns.dns.Apply(ctx, cs); err != nil {
		if errors.Is(err, dnsupdate.ErrPrerequisite) {
			return nil, fmt.Errorf("reinstall %s: its TXT record changed meanwhile: run the command again", name)
		}
		return nil, fmt.Errorf("reinstall %s: %w", name, err)
	}
	h.Intent = in
	o.log.Info("boot intent rewritten", "host", h.FQDN)
	return o.describe(h, nil), nil
}
