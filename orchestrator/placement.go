package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// place asks every member at once (with --on, that member alone) for its
// node and for a domain named r.Name, and ranks the members for the VM
// (fleet.Place). A domain of that name on a member asked refuses the
// create: names are unique across the fleet.
func (o *Orchestrator) place(ctx context.Context, r Request, vlan config.VLAN) (fleet.Choice, error) {
	type probe struct {
		node   virt.Node
		exists bool
	}
	ask := func(ctx context.Context, _ fleet.Member, hv virt.Hypervisor) (probe, error) {
		n, err := hv.Node(ctx)
		if err != nil {
			return probe{}, err
		}
		_, err = hv.Get(ctx, r.Name)
		switch {
		case err == nil:
			return probe{node: n, exists: true}, nil
		case errors.Is(err, virt.ErrNotFound):
			return probe{node: n}, nil
		}
		return probe{}, err
	}
	asked := o.fleet
	if r.On != "" {
		// Pinned: only that hypervisor is asked (the DNS claim keeps the
		// name unique across the fleet).
		var ok bool
		if asked, ok = o.fleet.Only(r.On); !ok {
			return fleet.Choice{}, invalid("create %s: --on %s: no such hypervisor: use one of %s (hypervisors: in the configuration)", r.Name, r.On, strings.Join(o.fleet.Names(), ", "))
		}
	}
	rs := fleet.Each(ctx, asked, ask)
	statuses := make([]fleet.Status, len(rs))
	for i, res := range rs {
		if res.Value.exists {
			return fleet.Choice{}, fmt.Errorf("%w: a domain named %s already exists on hypervisor %s: pick another --name or remove it with `vmprov destroy %s`", ErrNameExists, r.Name, res.Member.Label(), r.Name)
		}
		statuses[i] = fleet.Status{Member: res.Member, Node: res.Value.node, Err: res.Err}
	}
	need := fleet.Need{Bridge: vlan.Bridge, MemoryMiB: uint64(orDefault(r.MemoryMiB, DefaultMemoryMiB)), VCPUs: int(orDefault(r.VCPUs, DefaultVCPUs))}
	choice, err := fleet.Place(statuses, need, r.On)
	if err != nil {
		return fleet.Choice{}, fmt.Errorf("create %s: %w", r.Name, err)
	}
	return choice, nil
}

// ErrNoRoom marks a create that no member of the fleet can take.
var ErrNoRoom = fleet.ErrNoRoom

// moveIntent rewrites the TXT of pl's host to say hypervisor=to, requiring
// it unchanged since it was written. Whatever its outcome, the claim's undo
// removes the TXT by name, so a rollback needs no step of its own for it.
func (o *Orchestrator) moveIntent(ctx context.Context, pl *Plan, to string) error {
	h := pl.host
	in := h.Intent.With(inventory.KeyHypervisor, to)
	if err := o.rewriteTXT(ctx, h.FQDN, h.Intent, in); err != nil {
		if errors.Is(err, dnsupdate.ErrPrerequisite) {
			return fmt.Errorf("the TXT record of %s changed meanwhile: %w", h.FQDN, err)
		}
		return err
	}
	pl.host.Intent = in
	pl.Records = pl.host.Records(o.cfg.DNS.Zone)
	return nil
}

// located is where a host's domain is in the fleet.
type located struct {
	member fleet.Member
	hv     virt.Hypervisor
	dom    *virt.Domain // nil: no domain of that name
	// warnings say where the host's TXT and the fleet disagree.
	warnings []string
}

// locate finds the domain called name. With a fleet, a TXT hypervisor=X
// sends it straight to X; only when X does not hold the domain (or the TXT
// names none) are the other members asked, and a disagreement between the
// record and the fleet is reported as a warning. An error wrapping
// fleet.ErrUnreachable means the domain may be on a member that could not
// be asked.
func (o *Orchestrator) locate(ctx context.Context, name string, in inventory.Intent) (located, error) {
	if !o.fleet.Named() {
		m := o.fleet.Members()[0]
		if rec, ok := in.Get(inventory.KeyHypervisor); ok {
			for _, h := range o.cfg.Hypervisors {
				if h.Name == rec && h.URI != m.URI {
					return located{}, invalid("its TXT record says hypervisor=%s (%s), not %s: run the command without --connect", rec, h.URI, m.URI)
				}
			}
		}
		hv, err := o.fleet.Hypervisor(ctx, m.Name)
		if err != nil {
			return located{}, err
		}
		f := located{member: m, hv: hv}
		d, err := hv.Get(ctx, name)
		switch {
		case err == nil:
			f.dom = &d
		case !errors.Is(err, virt.ErrNotFound):
			return located{}, err
		}
		return f, nil
	}
	var f located
	rec, hasRec := in.Get(inventory.KeyHypervisor)
	recAsked := false
	if hasRec {
		if m, ok := o.fleet.Member(rec); ok {
			recAsked = true
			hv, err := o.fleet.Hypervisor(ctx, rec)
			if err != nil {
				return located{member: m}, fmt.Errorf("its TXT record says hypervisor=%s: %w", rec, err)
			}
			d, err := hv.Get(ctx, name)
			switch {
			case err == nil:
				return located{member: m, hv: hv, dom: &d}, nil
			case !errors.Is(err, virt.ErrNotFound):
				return located{member: m}, fmt.Errorf("its TXT record says hypervisor=%s: %w", rec, err)
			}
			f.warnings = append(f.warnings, fmt.Sprintf("the TXT record says hypervisor=%s, but %s has no domain %s", rec, rec, name))
		} else {
			f.warnings = append(f.warnings, fmt.Sprintf("the TXT record says hypervisor=%s, which is not in hypervisors: (%s)", rec, strings.Join(o.fleet.Names(), ", ")))
		}
	}
	rs := fleet.Each(ctx, o.fleet, func(ctx context.Context, m fleet.Member, hv virt.Hypervisor) (*virt.Domain, error) {
		if recAsked && m.Name == rec {
			return nil, nil // asked above
		}
		d, err := hv.Get(ctx, name)
		switch {
		case err == nil:
			return &d, nil
		case errors.Is(err, virt.ErrNotFound):
			return nil, nil
		}
		return nil, err
	})
	var on []string
	var errs []error
	for _, r := range rs {
		switch {
		case r.Err != nil:
			errs = append(errs, r.Err)
		case r.Value != nil:
			on = append(on, r.Member.Name)
			if f.dom == nil {
				hv, _ := o.fleet.Hypervisor(ctx, r.Member.Name)
				f.member, f.hv, f.dom = r.Member, hv, r.Value
			}
		}
	}
	switch {
	case len(on) > 1:
		return located{}, fmt.Errorf("domain %s is defined on %s: vmprov names are unique across the fleet; undefine the copies with virsh", name, strings.Join(on, " and "))
	case len(on) == 1 && hasRec:
		f.warnings = append(f.warnings, fmt.Sprintf("domain %s is on %s, not where its TXT record says (hypervisor=%s)", name, on[0], rec))
	case len(on) == 1:
	case len(errs) > 0:
		// A member that could not be asked may hold the domain (moved
		// there, or made before the record said where).
		return located{warnings: f.warnings}, fmt.Errorf("cannot tell whether %s has a domain: %w", name, joined(errs))
	}
	return f, nil
}

// fleetLabel names the hypervisors in messages.
func (o *Orchestrator) fleetLabel() string {
	if o.fleet == nil {
		return o.cfg.Libvirt.URI
	}
	if !o.fleet.Named() {
		return o.fleet.Members()[0].URI
	}
	return "hypervisors " + strings.Join(o.fleet.Names(), ", ")
}

// UnreachableError comes with a partial answer (list, orphans,
// hypervisors): the members named could not be asked, each for the reason
// in Errs; it is fleet.ErrUnreachable when one of them was unreachable.
type UnreachableError struct {
	Members []string // names (or URIs) in fleet order
	Errs    []error
}

func (e *UnreachableError) Error() string {
	var s []string
	for _, err := range e.Errs {
		s = append(s, err.Error())
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the members' errors: it is fleet.ErrUnreachable when one
// of them is.
func (e *UnreachableError) Unwrap() []error { return slices.Clone(e.Errs) }

// joined is errs as one error in which each of them can be found, on one
// line.
func joined(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &UnreachableError{Errs: errs}
}

func unreachable[T any](rs []fleet.Result[T]) error {
	var ue UnreachableError
	for _, r := range rs {
		if r.Err != nil {
			name := r.Member.Name
			if name == "" {
				name = r.Member.URI
			}
			ue.Members = append(ue.Members, name)
			ue.Errs = append(ue.Errs, r.Err)
		}
	}
	if len(ue.Errs) == 0 {
		return nil
	}
	return &ue
}

// Orphan is a half of a VM: a vmprov domain whose name has no records in
// DNS, or a VM's records in DNS with no domain on any hypervisor.
type Orphan struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"` // OrphanDomain or OrphanRecords
	Hypervisor string `json:"hypervisor,omitempty"`
	Detail     string `json:"detail"`
}

// Kinds of Orphan.
const (
	OrphanDomain  = "domain without DNS records"
	OrphanRecords = "DNS records without a domain"
)

// Orphans finds the halves of VMs (`vmprov list --orphans`): domains with
// vmprov metadata on any hypervisor whose name has no A, AAAA or TXT record,
// and names in the zone whose TXT boot intent belongs to a VM (it is not a
// bare-metal host with a _mac CNAME) that no hypervisor has a domain for.
// Records are judged only when every hypervisor answered (a domain may have
// been moved to one that did not); otherwise only domains are reported and
// the error is an *UnreachableError.
func (o *Orchestrator) Orphans(ctx context.Context) ([]Orphan, error) {
	if o.fleet == nil {
		return nil, errors.New("list --orphans: no hypervisor configured")
	}
	tr, ok := o.dns.dns.(transferer)
	if !ok {
		return nil, errors.New("list --orphans: the DNS client cannot transfer zones")
	}
	rs := fleet.Each(ctx, o.fleet, func(ctx context.Context, _ fleet.Member, hv virt.Hypervisor) ([]virt.Domain, error) {
		return hv.List(ctx)
	})
	rrs, err := tr.Transfer(ctx, o.cfg.DNS.Zone)
	if err != nil {
		return nil, fmt.Errorf("list --orphans: transfer zone %s (allow-transfer { key %s; } is needed): %w", o.cfg.DNS.Zone, o.cfg.DNS.TSIG.Name, err)
	}
	zone := dns.CanonicalName(o.cfg.DNS.Zone)
	named := map[string]bool{}               // names with A, AAAA or TXT
	intents := map[string]inventory.Intent{} // names with a boot intent
	bare := map[string]bool{}                // targets of _mac CNAMEs
	for _, rr := range rrs {
		owner := dns.CanonicalName(rr.Header().Name)
		if c, ok := rr.(*dns.CNAME); ok && dns.IsSubDomain("_mac."+zone, owner) {
			if n, ok := strings.CutSuffix(dns.CanonicalName(c.Target), "."+zone); ok {
				bare[n] = true
			}
			continue
		}
		name, ok := strings.CutSuffix(owner, "."+zone)
		if !ok || strings.Contains(name, ".") {
			continue
		}
		switch rr := rr.(type) {
		case *dns.A, *dns.AAAA:
			named[name] = true
		case *dns.TXT:
			named[name] = true
			if in, err := inventory.ParseIntent(rr.Txt); err == nil {
				if _, ok := in.Get(inventory.KeyDistribution); ok {
					intents[name] = in
				}
			}
		}
	}
	var out []Orphan
	domains := map[string]bool{}
	down := map[string]bool{}
	for _, r := range rs {
		if r.Err != nil {
			down[r.Member.Name] = true
			continue
		}
		for _, d := range r.Value {
			domains[d.Name] = true
			if !named[d.Name] {
				out = append(out, Orphan{Name: d.Name, Kind: OrphanDomain, Hypervisor: r.Member.Name,
					Detail: fmt.Sprintf("domain %s on %s has vmprov metadata (%s) but zone %s has no records for it: remove it with virsh, or destroy it with `vmprov destroy %s`", d.Name, r.Member.Label(), d.Meta.FQDN, o.cfg.DNS.Zone, d.Name)})
			}
		}
	}
	for name, in := range intents {
		if domains[name] || bare[name] {
			continue
		}
		rec, hasRec := in.Get(inventory.KeyHypervisor)
		if len(down) > 0 {
			// Its domain may be on a hypervisor that did not answer, moved
			// there whatever the record says; destroy would refuse too.
			continue
		}
		where := o.fleetLabel()
		if hasRec {
			where = "hypervisor " + rec
			if _, ok := o.fleet.Member(rec); !ok {
				where += " (not in hypervisors:)"
			}
		}
		out = append(out, Orphan{Name: name, Kind: OrphanRecords, Hypervisor: rec,
			Detail: fmt.Sprintf("%s.%s has a VM's boot intent but %s has no domain %s: remove the records with `vmprov destroy %s`", name, zone, where, name, name)})
	}
	slices.SortFunc(out, func(a, b Orphan) int { return strings.Compare(a.Name+a.Kind, b.Name+b.Kind) })
	return out, unreachable(rs)
}

// HypervisorStatus is one member of the fleet as `vmprov hypervisors`
// shows it.
type HypervisorStatus struct {
	Name      string `json:"name"`
	URI       string `json:"uri"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// VMs counts vmprov's domains; Node.Domains every domain.
	VMs  int       `json:"vms"`
	Node virt.Node `json:"node"`
	// LimitMiB is what placement lets vmprov commit (memory_mib, else the
	// host's memory).
	LimitMiB uint64 `json:"limit_mib"`
}

// Hypervisors asks every member at once for its node and its vmprov
// domains. Unreachable members are in the result too; the error is then an
// *UnreachableError.
func (o *Orchestrator) Hypervisors(ctx context.Context) ([]HypervisorStatus, error) {
	if o.fleet == nil {
		return nil, errors.New("hypervisors: no hypervisor configured")
	}
	type probe struct {
		node virt.Node
		vms  int
	}
	rs := fleet.Each(ctx, o.fleet, func(ctx context.Context, _ fleet.Member, hv virt.Hypervisor) (probe, error) {
		n, err := hv.Node(ctx)
		if err != nil {
			return probe{}, err
		}
		ds, err := hv.List(ctx)
		return probe{n, len(ds)}, err
	})
	out := make([]HypervisorStatus, len(rs))
	for i, r := range rs {
		out[i] = HypervisorStatus{Name: r.Member.Name, URI: r.Member.URI, Reachable: r.Err == nil, VMs: r.Value.vms, Node: r.Value.node}
		if out[i].Node.Bridges == nil {
			out[i].Node.Bridges = []string{}
		}
		if r.Err != nil {
			out[i].Error = r.Err.Error()
			continue
		}
		out[i].LimitMiB = fleet.Status{Member: r.Member, Node: r.Value.node}.Limit()
	}
	return out, unreachable(rs)
}
