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
	"sync"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Hypervisor is the port to libvirt; see virt.Hypervisor for its contract.
type Hypervisor = virt.Hypervisor

// Orchestrator runs the VM workflow against one DNS server and a fleet of
// hypervisors (one, without `hypervisors:`). It is safe for concurrent use.
type Orchestrator struct {
	cfg     *config.Config
	plan    planner
	dns     hostDNS
	fleet   *fleet.Fleet // nil for DNS-only work
	log     *slog.Logger
	randMAC func() (net.HardwareAddr, error)
}

// Config wires an Orchestrator.
type Config struct {
	Config     *config.Config
	DNS        DNS
	Hypervisor Hypervisor // one hypervisor, at libvirt.uri; nil: see Fleet
	// Fleet is the hypervisors VMs are placed on; nil means Hypervisor
	// alone, and both nil DNS-only work (bare-metal hosts).
	Fleet *fleet.Fleet
	Log   *slog.Logger
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
		cfg:   c.Config,
		plan:  p,
		dns:   hostDNS{dns: c.DNS, zone: c.Config.DNS.Zone, reverseZones: c.Config.DNS.ReverseZones, ttl: c.Config.DNS.TTL},
		fleet: c.Fleet,
		log:   log,
	}
	if o.fleet == nil && c.Hypervisor != nil {
		o.fleet = fleet.Single(c.Config.Libvirt.URI, c.Hypervisor)
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
	var placed fleet.Choice
	if o.fleet != nil && o.fleet.Named() {
		if placed, err = o.place(ctx, r, vlan); err != nil {
			return nil, err
		}
		r.hypervisor = placed.Candidates[0].Member.Name
	} else if r.On != "" {
		return nil, invalid("--on %s: there is no fleet: list the hypervisors under hypervisors: in the configuration", r.On)
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
	if r.hypervisor != "" {
		pl.Hypervisor, pl.Rejected = r.hypervisor, placed.Rejected
		for _, c := range placed.Candidates {
			pl.Candidates = append(pl.Candidates, c.Member.Name)
		}
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
// rolled back. With a fleet (`hypervisors:`) the VM is placed first (Place)
// and the choice recorded in its TXT (hypervisor=NAME); when the disk,
// define or start fails on the chosen hypervisor, that hypervisor's steps
// are undone and the next candidate is tried, and the error lists every
// attempt.
func (o *Orchestrator) Create(ctx context.Context, r Request) (*Plan, error) {
	if o.fleet == nil {
		return nil, errors.New("create: no hypervisor configured")
	}
	vlan, err := o.plan.validate(&r)
	if err != nil {
		return nil, err
	}
	var cands []fleet.Status
	if o.fleet.Named() {
		placed, err := o.place(ctx, r, vlan)
		if err != nil {
			return nil, err
		}
		cands = placed.Candidates
		r.hypervisor = cands[0].Member.Name
	} else {
		if r.On != "" {
			return nil, invalid("--on %s: there is no fleet: list the hypervisors under hypervisors: in the configuration", r.On)
		}
		m := o.fleet.Members()[0]
		hv, err := o.fleet.Hypervisor(ctx, m.Name)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", r.Name, err)
		}
		if _, err := hv.Get(ctx, r.Name); err == nil {
			return nil, fmt.Errorf("%w: a domain named %s already exists on %s: pick another --name or remove it with `vmprov destroy %s`", ErrNameExists, r.Name, m.URI, r.Name)
		} else if !errors.Is(err, virt.ErrNotFound) {
			return nil, fmt.Errorf("create %s: %w", r.Name, err)
		}
		cands = []fleet.Status{{Member: m}}
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
	o.log.Info("dns claimed", "host", pl.FQDN, "mac", pl.MAC, "vlan", pl.VLAN, "hypervisor", r.hypervisor)
	undo := []step{{done: "DNS records removed", fn: undoDNS,
		kept: fmt.Sprintf("the DNS records are kept, so that `vmprov destroy %s` finds and removes what is left", r.Name)}}

	if !o.fleet.Named() {
		steps, err := o.createOn(ctx, cands[0], pl, r)
		if err != nil {
			return nil, o.rollback(ctx, fmt.Errorf("create %s: %w", r.Name, err), append(undo, steps...))
		}
		return pl, nil
	}
	var attempts attemptsError
	for i, c := range cands {
		name := c.Member.Name
		if i > 0 {
			if err := o.moveIntent(ctx, pl, name); err != nil {
				attempts = append(attempts, fmt.Errorf("%s: record hypervisor=%s in the TXT: %w", name, name, err))
				break
			}
		}
		steps, err := o.createOn(ctx, c, pl, r)
		if err == nil {
			pl.Hypervisor = name
			return pl, nil
		}
		aerr := o.rollback(ctx, fmt.Errorf("%s: %w", name, err), steps)
		attempts = append(attempts, aerr)
		var rf *rollbackFailedError
		if errors.As(aerr, &rf) {
			// What is left on the hypervisor is found through the TXT,
			// which names it: the records stay for `vmprov destroy`.
			return nil, fmt.Errorf("create %s: %w; the DNS records are kept (TXT hypervisor=%s), so that `vmprov destroy %s` finds and removes what is left", r.Name, attempts, name, r.Name)
		}
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(cands) {
			o.log.Info("create failed on a hypervisor, trying the next", "host", pl.FQDN, "hypervisor", name, "next", cands[i+1].Member.Name, "err", aerr)
		}
	}
	return nil, o.rollback(ctx, fmt.Errorf("create %s: %w", r.Name, attempts), undo)
}

// createOn makes the VM on candidate c: disk, define, start. It returns the
// steps that undo what it did, on success too.
func (o *Orchestrator) createOn(ctx context.Context, c fleet.Status, pl *Plan, r Request) ([]step, error) {
	hv, err := o.fleet.Hypervisor(ctx, c.Member.Name)
	if err != nil {
		return nil, err
	}
	var undo []step

	// 2. Disk.
	path, err := hv.CreateDisk(ctx, o.cfg.Libvirt.Pool, r.Name, uint64(pl.DiskGiB)<<30)
	if err != nil {
		return undo, fmt.Errorf("disk %s in pool %s: %w", pl.Disk, o.cfg.Libvirt.Pool, err)
	}
	undo = append(undo, step{done: "disk deleted", fn: func(ctx context.Context) error {
		return hv.DeleteDisk(ctx, o.cfg.Libvirt.Pool, r.Name)
	}})

	// 3. Define.
	xml, err := o.plan.domainXML(pl, r, path)
	if err != nil {
		return undo, fmt.Errorf("domain XML: %w", err)
	}
	pl.DomainXML = xml
	if err := hv.Define(ctx, xml); err != nil {
		return undo, fmt.Errorf("define domain: %w", err)
	}
	undo = append(undo, step{done: "domain undefined", fn: func(ctx context.Context) error {
		if err := hv.Destroy(ctx, r.Name); err != nil {
			return err
		}
		return hv.Undefine(ctx, r.Name)
	}})

	// With a fleet, the definition is the reservation: counted again with
	// it, the hypervisor must still be within its limit, or a concurrent
	// create took the room meanwhile and this one yields (docs/design.md,
	// "Many hypervisors").
	if o.fleet.Named() {
		n, err := hv.Node(ctx)
		switch st := (fleet.Status{Member: c.Member, Node: n}); {
		case err != nil:
			// The check guards against concurrent creates only; a
			// hypervisor slow to answer it still gets the VM.
			o.log.Warn("could not count what is committed after define; starting the VM all the same", "host", pl.FQDN, "hypervisor", c.Member.Name, "err", err)
		case fleet.Overcommitted(st):
			return undo, fmt.Errorf("another VM took the room meanwhile: with this one, %d of %d MiB are committed", n.MemoryCommittedMiB, st.Limit())
		}
	}

	// 4. Start.
	if err := hv.Start(ctx, r.Name); err != nil {
		return undo, fmt.Errorf("start domain: %w", err)
	}
	pl.Power = virt.StateRunning
	o.log.Info("vm created", "host", pl.FQDN, "mac", pl.MAC, "vlan", pl.VLAN, "hypervisor", c.Member.Name)
	return undo, nil
}

type step struct {
	done string
	fn   func(context.Context) error
	// kept, when set, makes rollback skip the step once an earlier one
	// has failed, saying kept instead: the DNS records stay, so that
	// `vmprov destroy` finds what could not be undone.
	kept string
}

// rollback undoes steps in reverse order with a context that outlives a
// cancelled request, and reports what it undid. A step with kept is
// skipped once an earlier step has failed.
func (o *Orchestrator) rollback(ctx context.Context, cause error, steps []step) error {
	ctx = context.WithoutCancel(ctx)
	var done, failed, kept []string
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].kept != "" && len(failed) > 0 {
			kept = append(kept, steps[i].kept)
			continue
		}
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
	switch {
	case len(failed) > 0 && len(kept) > 0:
		o.log.Error("rollback incomplete", "err", strings.Join(failed, "; "))
		return &rollbackFailedError{fmt.Errorf("%w; %s; ROLLBACK INCOMPLETE: %s; %s", cause, msg, strings.Join(failed, "; "), strings.Join(kept, "; "))}
	case len(failed) > 0:
		o.log.Error("rollback incomplete", "err", strings.Join(failed, "; "))
		return &rollbackFailedError{fmt.Errorf("%w; %s; ROLLBACK INCOMPLETE: %s", cause, msg, strings.Join(failed, "; "))}
	}
	return fmt.Errorf("%w; %s", cause, msg)
}

// rollbackFailedError is a rollback that could not undo every step.
type rollbackFailedError struct{ error }

func (e *rollbackFailedError) Unwrap() error { return e.error }

// attemptsError lists the failed attempts of a create across the fleet.
type attemptsError []error

func (e attemptsError) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; then ")
}

func (e attemptsError) Unwrap() []error { return e }

// ErrNotFound means neither DNS nor the hypervisor knows the host.
var ErrNotFound = errors.New("no such host")

// Destroy stops and undefines the domain, deletes its disk and removes all
// its DNS records. It succeeds when some part is already gone, and fails
// with ErrNotFound when nothing of the host exists.
//
// With a fleet the domain is looked for where its TXT says (hypervisor=);
// when that hypervisor (or, without the key, any) cannot be reached,
// Destroy refuses and changes nothing: removing the records of a VM that
// still runs would leave it unknown to DNS and to vmprov.
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
	host, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	var errs []error
	foundDomain := false
	var diskHV virt.Hypervisor
	if o.fleet != nil {
		f, err := o.locate(ctx, name, host.Intent)
		switch {
		case errors.Is(err, fleet.ErrUnreachable):
			return fmt.Errorf("destroy %s: %w; nothing was changed (its DNS records are kept): run destroy again when the hypervisor answers (a bare-metal host: `vmprov host remove %s`)", name, err, name)
		case err != nil:
			return fmt.Errorf("destroy %s: %w; nothing was changed", name, err)
		}
		for _, w := range f.warnings {
			o.log.Warn("the TXT record and the fleet disagree", "host", host.FQDN, "detail", w)
		}
		if d := f.dom; d != nil {
			if d.Meta == (virt.Metadata{}) {
				return fmt.Errorf("destroy %s: %w: domain %s on %s was not created by vmprov (it has no vmprov metadata): remove it with virsh", name, ErrInvalid, name, f.member.Label())
			}
			foundDomain = true
			errs = append(errs, f.hv.Destroy(ctx, name), f.hv.Undefine(ctx, name),
				f.hv.DeleteDisk(ctx, o.cfg.Libvirt.Pool, name))
		} else if found {
			diskHV = f.hv // the fleet of one
			if rec, ok := host.Intent.Get(inventory.KeyHypervisor); ok && o.fleet.Named() {
				diskHV, _ = o.fleet.Hypervisor(ctx, rec)
			}
		}
	}
	var macOwners []string
	if !foundDomain {
		if macOwners, err = o.macOwnersOf(ctx, host); err != nil {
			return fmt.Errorf("destroy %s: %w", name, err)
		}
	}
	if diskHV != nil && len(macOwners) == 0 {
		// A VM's records without its domain (undefined behind vmprov's
		// back, or a create whose rollback failed): its disk, on the
		// hypervisor the TXT names, goes too.
		errs = append(errs, diskHV.DeleteDisk(ctx, o.cfg.Libvirt.Pool, name))
	}
	if !found && !foundDomain && len(macOwners) == 0 {
		return fmt.Errorf("destroy %s: %w: neither DNS zone %s nor %s has it (see `vmprov list`)", name, ErrNotFound, o.cfg.DNS.Zone, o.fleetLabel())
	}
	if err := errors.Join(errs...); err != nil && found {
		// The records are how destroy finds what is left: they go last.
		return fmt.Errorf("destroy %s: %w; its DNS records are kept, so that running destroy again finds what is left", name, err)
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

// Show returns what DNS and the hypervisor hold for name. A hypervisor that
// cannot be reached makes a warning, not an error: DNS still answers.
func (o *Orchestrator) Show(ctx context.Context, name string) (*Plan, error) {
	if err := inventory.ValidateName(name); err != nil {
		return nil, invalid("%v", err)
	}
	host, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	var f located
	if o.fleet != nil {
		got, err := o.locate(ctx, name, host.Intent)
		switch {
		case err == nil:
			f = got
		case found:
			// DNS answers: show what it holds, and why the domain is not.
			f = got
			f.warnings = append(f.warnings, err.Error())
		default:
			return nil, fmt.Errorf("show %s: %w", name, err)
		}
	}
	if !found && f.dom == nil {
		return nil, fmt.Errorf("show %s: %w in DNS zone %s or on %s", name, ErrNotFound, o.cfg.DNS.Zone, o.fleetLabel())
	}
	p := o.describe(host, f.dom)
	if f.dom != nil {
		p.Hypervisor = f.member.Name
	}
	p.Warnings = f.warnings
	return p, nil
}

// List returns the vmprov-managed domains of every hypervisor joined with
// their DNS records, sorted by name. The hypervisors are asked at once,
// each within the member deadline; when some cannot be asked, List returns
// what the others hold together with an *UnreachableError naming them.
func (o *Orchestrator) List(ctx context.Context) ([]*Plan, error) {
	if o.fleet == nil {
		return nil, errors.New("list: no hypervisor configured")
	}
	rs := fleet.Each(ctx, o.fleet, func(ctx context.Context, _ fleet.Member, hv virt.Hypervisor) ([]virt.Domain, error) {
		return hv.List(ctx)
	})
	type entry struct {
		member string
		dom    virt.Domain
	}
	var all []entry
	for _, r := range rs {
		for _, d := range r.Value {
			all = append(all, entry{r.Member.Name, d})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].dom.Name != all[j].dom.Name {
			return all[i].dom.Name < all[j].dom.Name
		}
		return all[i].member < all[j].member
	})
	out := make([]*Plan, len(all))
	err := forEach(ctx, len(all), func(ctx context.Context, i int) error {
		host, _, err := o.dns.lookupHost(ctx, all[i].dom.Name)
		if err != nil {
			return err
		}
		p := o.describe(host, &all[i].dom)
		p.Hypervisor = all[i].member
		if rec, ok := host.Intent.Get(inventory.KeyHypervisor); ok && o.fleet.Named() && rec != p.Hypervisor {
			p.Warnings = append(p.Warnings, fmt.Sprintf("the TXT record says hypervisor=%s, but the domain is on %s", rec, p.Hypervisor))
		}
		out[i] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if len(fleet.Failed(rs)) == len(rs) {
		return nil, unreachable(rs) // nothing answered: no list at all
	}
	return out, unreachable(rs)
}

// lookupWorkers bounds the DNS lookups list makes at once.
const lookupWorkers = 8

// forEach runs fn(0..n-1) on up to lookupWorkers goroutines and returns the
// first error.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range min(n, lookupWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
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
	p.Hypervisor, _ = h.Intent.Get(inventory.KeyHypervisor)
	return p
}

var _ DNS = (*dnsupdate.Client)(nil)
