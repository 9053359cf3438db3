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

	"github.com/vmprov/vmprov/config"
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
	// Firmware is config.FirmwareEFISecure for a machine that boots with
	// UEFI Secure Boot (TXT firmware=efi-secure: the boot service hands it
	// the signed chain); config.FirmwareBIOS, config.FirmwareEFI or empty
	// record nothing, as the firmware's requests tell them apart.
	Firmware string
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
	switch r.Firmware {
	case "", config.FirmwareBIOS, config.FirmwareEFI, config.FirmwareEFISecure:
	default:
		return nil, invalid("--firmware %q is not %s, %s or %s (UEFI with Secure Boot)", r.Firmware, config.FirmwareBIOS, config.FirmwareEFI, config.FirmwareEFISecure)
	}
	if err := checkSecureBootDistro(r.Firmware, r.Distro); err != nil {
		return nil, err
	}
	h := inventory.Host{Name: r.Name, FQDN: r.Name + "." + o.cfg.DNS.Zone, MAC: r.MAC, MACRecord: true, IPv4: r.IPv4, IPv6: r.IPv6}
	if r.Script != "" {
		h.Intent = h.Intent.With(inventory.KeyFilename, r.Script)
	}
	h.Intent = h.Intent.With(inventory.KeyDistribution, r.Distro)
	for _, v := range r.Vars {
		h.Intent = h.Intent.With(v.Key, v.Value)
	}
	h.Intent = withFirmware(h.Intent, r.Firmware)
	if err := checkBootable(h.Intent); err != nil {
		return nil, err
	}
	in, err := h.Intent.ForInstall(o.plan.rand)
	if err != nil {
		return nil, err
	}
	h.Intent = in
	if _, err := o.dns.claim(ctx, h); err != nil {
		return nil, fmt.Errorf("host add %s: %w", r.Name, err)
	}
	o.log.Info("host added", "host", h.FQDN, "mac", r.MAC.String())
	p := o.describe(h, nil)
	p.MAC = r.MAC.String()
	return p, nil
}

// RemoveHost removes a bare-metal host's records, its _mac CNAME included.
// A _mac CNAME left without the records it names is removed too: its MAC
// could not be registered again otherwise.
func (o *Orchestrator) RemoveHost(ctx context.Context, name string) error {
	if err := inventory.ValidateName(name); err != nil {
		return invalid("%v", err)
	}
	h, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	macOwners, err := o.macOwnersOf(ctx, h)
	if err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	if !found && len(macOwners) == 0 {
		return fmt.Errorf("host remove %s: %w in zone %s", name, ErrNotFound, o.cfg.DNS.Zone)
	}
	if err := o.dns.release(ctx, h, macOwners); err != nil {
		return fmt.Errorf("host remove %s: %w", name, err)
	}
	return nil
}

// ShowHost returns what DNS holds for a bare-metal host: its records, and
// its MAC with the _mac CNAME that publishes it.
func (o *Orchestrator) ShowHost(ctx context.Context, name string) (*Plan, error) {
	if err := inventory.ValidateName(name); err != nil {
		return nil, invalid("%v", err)
	}
	h, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("host show %s: %w", name, err)
	}
	macOwners, err := o.macOwnersOf(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("host show %s: %w", name, err)
	}
	if !found && len(macOwners) == 0 {
		return nil, fmt.Errorf("host show %s: %w in zone %s", name, ErrNotFound, o.cfg.DNS.Zone)
	}
	var macs []net.HardwareAddr
	for _, owner := range macOwners {
		if mac, ok := o.macOf(owner); ok {
			macs = append(macs, mac)
		}
	}
	if len(macs) > 0 {
		h.MAC, h.MACRecord = macs[0], true
	}
	p := o.describe(h, nil)
	if len(macs) > 0 {
		p.MAC = macs[0].String()
	}
	// A host registered by hand under a second MAC shows both CNAMEs.
	for _, mac := range macs[min(1, len(macs)):] {
		p.Records = append(p.Records, inventory.Record{Name: inventory.MACOwner(mac, o.cfg.DNS.Zone), Type: "CNAME", Data: h.FQDN})
	}
	return p, nil
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

// macOwnersOf returns the owners of the _mac CNAMEs that point at the host,
// sorted: one for a host that vmprov host add registered.
func (o *Orchestrator) macOwnersOf(ctx context.Context, h inventory.Host) ([]string, error) {
	cnames, err := o.macCNAMEs(ctx)
	if err != nil {
		return nil, err
	}
	var owners []string
	for owner, target := range cnames {
		if target == dns.CanonicalName(h.FQDN) {
			owners = append(owners, owner)
		}
	}
	sort.Strings(owners)
	return owners, nil
}

// macOf returns the MAC a _mac CNAME owner publishes.
func (o *Orchestrator) macOf(owner string) (net.HardwareAddr, bool) {
	hexhyp, ok := strings.CutSuffix(owner, "._mac."+dns.CanonicalName(o.cfg.DNS.Zone))
	if !ok {
		return nil, false
	}
	mac, err := inventory.ParseHexHyp(hexhyp)
	return mac, err == nil
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
		mac, ok := o.macOf(owner)
		if !ok {
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
	if err := checkBootable(in); err != nil {
		return nil, fmt.Errorf("reinstall %s: %w", name, err)
	}
	// A new build: state=install and a new build_id, which revokes the
	// installer callback tokens of every earlier build (docs/design.md,
	// "A host's life"). The prerequisite on the TXT read makes a late
	// callback's prerequisite on it fail, so the reinstall wins.
	if in, err = in.ForInstall(o.plan.rand); err != nil {
		return nil, err
	}
	// The flags passed; a refusal now is of a variable kept from the old
	// record, which serve would refuse too.
	if err := templates.CheckIntent(templateVars(in)); err != nil {
		return nil, invalid("reinstall %s: the TXT record of %s keeps a variable the boot service refuses: %w: give it a valid value with --txt, or correct the record in DNS", name, h.FQDN, err)
	}
	if err := o.rewriteTXT(ctx, h.FQDN, old, in); err != nil {
		if errors.Is(err, dnsupdate.ErrPrerequisite) {
			return nil, fmt.Errorf("reinstall %s: its TXT record changed meanwhile: run the command again", name)
		}
		return nil, fmt.Errorf("reinstall %s: %w", name, err)
	}
	h.Intent = in
	o.log.Info("boot intent rewritten", "host", h.FQDN)
	o.log.Info("build state changed", "host", h.FQDN, "from", string(old.State()), "to", string(in.State()), "by", "vmprov reinstall")
	return o.describe(h, nil), nil
}

// rewriteTXT replaces the boot intent at fqdn, which must still hold old
// (or no TXT, when old is empty) and whose name must exist; the error wraps
// dnsupdate.ErrPrerequisite when it does not. An update whose answer was
// lost counts as done when the TXT holds the new intent (rewritten).
func (o *Orchestrator) rewriteTXT(ctx context.Context, fqdn string, old, in inventory.Intent) error {
	hdr := dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: o.cfg.DNS.TTL}
	key := dnsupdate.RRKey{Name: fqdn, Type: dns.TypeTXT}
	cs := dnsupdate.ChangeSet{Zone: o.cfg.DNS.Zone, NameInUse: []string{fqdn},
		RemoveRRset: []dnsupdate.RRKey{key},
		Add:         []dns.RR{&dns.TXT{Hdr: hdr, Txt: in.TXT()}}}
	if len(old) > 0 {
		cs.RRsetEquals = []dns.RR{&dns.TXT{Hdr: hdr, Txt: old.TXT()}}
	} else {
		cs.RRsetAbsent = []dnsupdate.RRKey{key}
	}
	if err := o.dns.dns.Apply(ctx, cs); err != nil && !o.rewritten(ctx, err, cs.Add) {
		return err
	}
	return nil
}

// rewritten reports whether a TXT rewrite that failed with err was applied
// all the same: its answer was lost (dnsupdate.ErrMaybeApplied), most
// likely its retry then found the old TXT gone, and the TXT holds exactly
// the new records. Whoever wrote them, the intent is what was asked for.
func (o *Orchestrator) rewritten(ctx context.Context, err error, txt []dns.RR) bool {
	if !errors.Is(err, dnsupdate.ErrMaybeApplied) {
		return false
	}
	k := dnsupdate.RRKey{Name: txt[0].Header().Name, Type: dns.TypeTXT}
	ok, lerr := o.dns.holdExactly(context.WithoutCancel(ctx), []dnsupdate.RRKey{k}, txt)
	return lerr == nil && ok
}
