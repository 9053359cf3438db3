package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Hypervisor is the port to libvirt; see virt.Hypervisor for its contract.
type Hypervisor = virt.Hypervisor

// Orchestrator runs the VM workflow against one DNS server and one
// hypervisor. It is safe for concurrent use.
type Orchestrator struct {
	cfg     *config.Config
	plan    planner
	dns     hostDNS
	hv      Hypervisor
	log     *slog.Logger
	randMAC func() (net.HardwareAddr, error)
}

// Config wires an Orchestrator.
type Config struct {
	Config     *config.Config
	DNS        DNS
	Hypervisor Hypervisor // may be nil for DNS-only work (bare-metal hosts)
	Log        *slog.Logger
	// Rand draws build ids (TXT build_id=); nil is crypto/rand.
	Rand io.Reader
}

// New returns an Orchestrator.
func New(c Config) (*Orchestrator, error) {
	p, err := newPlanner(c.Config)
	if err != nil {
		return nil, err
	}
	p.rand = c.Rand
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Orchestrator{
		cfg:  c.Config,
		plan: p,
		dns:  hostDNS{dns: c.DNS, zone: c.Config.DNS.Zone, reverseZones: c.Config.DNS.ReverseZones, ttl: c.Config.DNS.TTL},
		hv:   c.Hypervisor,
		log:  log,
	}
	o.randMAC = func() (net.HardwareAddr, error) { return p.scheme.RandomSLAACMAC(nil) }
	return o, nil
}

// maxMACTries bounds the search for an unused random MAC.
const maxMACTries = 16

// Plan validates r and returns what Create would do, changing nothing. For
// IPv6-only hosts it picks a random MAC whose address is not yet in DNS.
func (o *Orchestrator) Plan(ctx context.Context, r Request) (*Plan, error) {
	vlan, err := o.plan.validate(&r)
	if err != nil {
		return nil, err
	}
	var pl *Plan
	if r.IPv4.IsValid() {
		pl, err = o.plan.plan(r, vlan, nil)
	} else {
		pl, err = o.planSLAAC(ctx, r, vlan, nil)
	}
	if err != nil {
		return nil, err
	}
	pl.DomainXML, err = o.plan.domainXML(pl, r, "/path/of/"+pl.Disk)
	if err != nil {
		return nil, err
	}
	return pl, nil
}

// planSLAAC picks a random MAC whose SLAAC address has no PTR yet; skip
// lists MACs already seen to collide.
func (o *Orchestrator) planSLAAC(ctx context.Context, r Request, vlan config.VLAN, skip map[string]bool) (*Plan, error) {
	for range maxMACTries {
		mac, err := o.randMAC()
		if err != nil {
			return nil, err
		}
		if skip[mac.String()] {
			continue
		}
		pl, err := o.plan.plan(r, vlan, mac)
		if err != nil {
			return nil, err
		}
		ans, err := o.dns.dns.Lookup(ctx, inventory.ReverseName(pl.host.IPv6), dnsTypePTR)
		if err != nil {
			return nil, fmt.Errorf("check %s for a collision: %w", pl.host.IPv6, err)
		}
		if len(ans.Records) == 0 {
			return pl, nil
		}
		o.log.Info("random MAC collides, picking another", "mac", mac.String(), "ip", pl.host.IPv6.String())
	}
	return nil, fmt.Errorf("no unused random MAC after %d tries in VLAN %d", maxMACTries, vlan.ID)
}

// Create runs the whole workflow: DNS claim, disk, define, start. On failure
// every earlier step is undone and the error says what failed and what was
// rolled back.
func (o *Orchestrator) Create(ctx context.Context, r Request) (*Plan, error) {
	if o.hv == nil {
		return nil, errors.New("create: no hypervisor configured")
	}
	vlan, err := o.plan.validate(&r)
	if err != nil {
		return nil, err
	}
	if _, err := o.hv.Get(ctx, r.Name); err == nil {
		return nil, fmt.Errorf("%w: a domain named %s already exists on %s: pick another --name or remove it with `vmprov destroy %s`", ErrNameExists, r.Name, o.cfg.Libvirt.URI, r.Name)
	} else if !errors.Is(err, virt.ErrNotFound) {
		return nil, fmt.Errorf("create %s: %w", r.Name, err)
	}

	// 1. Plan and claim DNS. IPv6-only hosts retry with a new MAC when the
	// reverse name was taken between the check and the claim.
	var (
		pl      *Plan
		undoDNS func(context.Context) error
		tried   = map[string]bool{}
	)
	for attempt := 0; ; attempt++ {
		if r.IPv4.IsValid() {
			pl, err = o.plan.plan(r, vlan, nil)
		} else {
			pl, err = o.planSLAAC(ctx, r, vlan, tried)
		}
		if err != nil {
			return nil, err
		}
		undoDNS, err = o.dns.claim(ctx, pl.host)
		if err == nil {
			break
		}
		var taken *ReverseNameError
		if r.IPv4.IsValid() || !errors.As(err, &taken) || attempt >= maxMACTries {
			return nil, fmt.Errorf("create %s: %w", r.Name, err)
		}
		o.log.Info("random MAC's address taken meanwhile, picking another", "mac", pl.MAC, "ip", pl.host.IPv6.String())
		tried[pl.MAC] = true
	}
	o.log.Info("dns claimed", "host", pl.FQDN, "mac", pl.MAC, "vlan", pl.VLAN)

	var undo []step
	undo = append(undo, step{"DNS records removed", undoDNS})
	fail := func(what string, err error) (*Plan, error) {
		return nil, o.rollback(ctx, fmt.Errorf("create %s: %s: %w", r.Name, what, err), undo)
	}

	// 2. Disk.
	path, err := o.hv.CreateDisk(ctx, o.cfg.Libvirt.Pool, r.Name, uint64(pl.DiskGiB)<<30)
	if err != nil {
		return fail(fmt.Sprintf("disk %s in pool %s", pl.Disk, o.cfg.Libvirt.Pool), err)
	}
	undo = append(undo, step{"disk deleted", func(ctx context.Context) error {
		return o.hv.DeleteDisk(ctx, o.cfg.Libvirt.Pool, r.Name)
	}})

	// 3. Define.
	xml, err := o.plan.domainXML(pl, r, path)
	if err != nil {
		return fail("domain XML", err)
	}
	pl.DomainXML = xml
	if err := o.hv.Define(ctx, xml); err != nil {
		return fail("define domain", err)
	}
	undo = append(undo, step{"domain undefined", func(ctx context.Context) error {
		return errors.Join(o.hv.Destroy(ctx, r.Name), o.hv.Undefine(ctx, r.Name))
	}})

	// 4. Start.
	if err := o.hv.Start(ctx, r.Name); err != nil {
		return fail("start domain", err)
	}
	pl.Power = virt.StateRunning
	o.log.Info("vm created", "host", pl.FQDN, "mac", pl.MAC, "vlan", pl.VLAN)
	return pl, nil
}

type step struct {
	done string
	fn   func(context.Context) error
}

// rollback undoes steps in reverse order with a context that outlives a
// cancelled request, and reports what it undid.
func (o *Orchestrator) rollback(ctx context.Context, cause error, steps []step) error {
	ctx = context.WithoutCancel(ctx)
	var done, failed []string
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].fn(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", strings.TrimSuffix(steps[i].done, " removed"), err))
			continue
		}
		done = append(done, steps[i].done)
	}
	msg := "rolled back: " + strings.Join(done, ", ")
	if len(done) == 0 {
		msg = "nothing to roll back"
	}
	if len(failed) > 0 {
		o.log.Error("rollback incomplete", "err", strings.Join(failed, "; "))
		return fmt.Errorf("%w; %s; ROLLBACK FAILED (clean up by hand): %s", cause, msg, strings.Join(failed, "; "))
	}
	return fmt.Errorf("%w; %s", cause, msg)
}

// ErrNotFound means neither DNS nor the hypervisor knows the host.
var ErrNotFound = errors.New("no such host")

// Destroy stops and undefines the domain, deletes its disk and removes all
// its DNS records. It succeeds when some part is already gone, and fails
// with ErrNotFound when nothing of the host exists.
//
// A name without a vmprov domain may be a bare-metal host (vmprov host
// add): Destroy then removes its _mac CNAME too, as host remove does. An
// operator who destroys a host means all of it gone, and a CNAME left
// behind would keep its MAC registered to nothing, refused by a new host add
// and invisible to host remove. Finding the CNAME takes a zone transfer, so
// it is looked for only when there is no domain: vmprov never publishes one
// for a VM.
func (o *Orchestrator) Destroy(ctx context.Context, name string) error {
	if err := inventory.ValidateName(name); err != nil {
		return invalid("%v", err)
	}
	var errs []error
	foundDomain := false
	if o.hv != nil {
		d, err := o.hv.Get(ctx, name)
		switch {
		case err == nil:
			if d.Meta == (virt.Metadata{}) {
				return fmt.Errorf("destroy %s: %w: domain %s on %s was not created by vmprov (it has no vmprov metadata): remove it with virsh", name, ErrInvalid, name, o.cfg.Libvirt.URI)
			}
			foundDomain = true
			errs = append(errs, o.hv.Destroy(ctx, name), o.hv.Undefine(ctx, name),
				o.hv.DeleteDisk(ctx, o.cfg.Libvirt.Pool, name))
		case errors.Is(err, virt.ErrNotFound):
		default:
			return fmt.Errorf("destroy %s: %w", name, err)
		}
	}
	host, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	var macOwners []string
	if !foundDomain {
		if macOwners, err = o.macOwnersOf(ctx, host); err != nil {
			return fmt.Errorf("destroy %s: %w", name, err)
		}
	}
	if !found && !foundDomain && len(macOwners) == 0 {
		return fmt.Errorf("destroy %s: %w: neither DNS zone %s nor %s has it (see `vmprov list`)", name, ErrNotFound, o.cfg.DNS.Zone, o.cfg.Libvirt.URI)
	}
	if found || len(macOwners) > 0 {
		errs = append(errs, o.dns.release(ctx, host, macOwners))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	o.log.Info("vm destroyed", "host", host.FQDN)
	return nil
}

// Show returns what DNS and the hypervisor hold for name.
func (o *Orchestrator) Show(ctx context.Context, name string) (*Plan, error) {
	if err := inventory.ValidateName(name); err != nil {
		return nil, invalid("%v", err)
	}
	var d *virt.Domain
	if o.hv != nil {
		got, err := o.hv.Get(ctx, name)
		switch {
		case err == nil:
			d = &got
		case !errors.Is(err, virt.ErrNotFound):
			return nil, fmt.Errorf("show %s: %w", name, err)
		}
	}
	host, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	if !found && d == nil {
		return nil, fmt.Errorf("show %s: %w in DNS zone %s or on %s", name, ErrNotFound, o.cfg.DNS.Zone, o.cfg.Libvirt.URI)
	}
	return o.describe(host, d), nil
}

// List returns the vmprov-managed domains joined with their DNS records,
// sorted by name.
func (o *Orchestrator) List(ctx context.Context) ([]*Plan, error) {
	if o.hv == nil {
		return nil, errors.New("list: no hypervisor configured")
	}
	ds, err := o.hv.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
	out := make([]*Plan, 0, len(ds))
	for i := range ds {
		host, _, err := o.dns.lookupHost(ctx, ds[i].Name)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		out = append(out, o.describe(host, &ds[i]))
	}
	return out, nil
}

func (o *Orchestrator) describe(h inventory.Host, d *virt.Domain) *Plan {
	p := &Plan{Name: h.Name, FQDN: h.FQDN, Records: []inventory.Record{}, host: h}
	if h.IPv4.IsValid() || h.IPv6.IsValid() || len(h.Intent) > 0 {
		p.Records = h.Records(o.cfg.DNS.Zone)
	}
	if h.IPv4.IsValid() {
		a := h.IPv4
		p.IPv4 = &a
	}
	if h.IPv6.IsValid() {
		a := h.IPv6
		p.IPv6 = &a
	}
	p.Distro, _ = h.Intent.Get(inventory.KeyDistribution)
	if len(h.Intent) > 0 {
		p.State = string(h.Intent.State())
	}
	if d != nil {
		p.VLAN, p.MAC, p.Bridge, p.Power, p.DomainXML, p.Boot = d.Meta.VLAN, d.MAC, d.Bridge, d.State, d.XML, d.Boot
		p.Disk = d.DiskPath
		if p.Distro == "" {
			p.Distro = d.Meta.Distro
		}
	} else if v, ok := o.cfg.VLANOf(firstValid(h.IPv4, h.IPv6)); ok {
		p.VLAN, p.Bridge = v.ID, v.Bridge
	}
	return p
}

var _ DNS = (*dnsupdate.Client)(nil)
