package orchestrator

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// BuildState reads the build state of host name from DNS (docs/design.md,
// "A host's life"), as `vmprov wait` polls it. A host whose TXT record
// holds no state is inventory.StateInstall; ok is false for a host without
// a boot intent. A name not in DNS is ErrNotFound, an invalid one
// ErrInvalid.
func (o *Orchestrator) BuildState(ctx context.Context, name string) (st inventory.State, ok bool, err error) {
	if err := inventory.ValidateName(name); err != nil {
		return "", false, invalid("%v", err)
	}
	h, found, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return "", false, fmt.Errorf("build state of %s: %w", name, err)
	}
	if !found {
		return "", false, fmt.Errorf("%w: %s in DNS zone %s", ErrNotFound, name, o.cfg.DNS.Zone)
	}
	if len(h.Intent) == 0 {
		return "", false, nil
	}
	return h.Intent.State(), true, nil
}

// ReinstallNow is Reinstall followed by a power cycle of the VM (destroy,
// start), for `vmprov reinstall --now`. The domain is looked up first: a
// host without one (bare metal: vmprov has no power control of it) is
// refused before anything changes.
func (o *Orchestrator) ReinstallNow(ctx context.Context, name, distro, script string, vars []inventory.Var) (*Plan, error) {
	if err := validateHost(name, distro, script, vars); err != nil {
		return nil, err
	}
	if o.fleet == nil {
		return nil, fmt.Errorf("reinstall %s --now: no hypervisor configured", name)
	}
	h, _, err := o.dns.lookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reinstall %s --now: %w", name, err)
	}
	f, err := o.locate(ctx, name, h.Intent)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reinstall %s --now: %w; nothing was changed", name, err)
	case f.dom == nil:
		return nil, invalid("reinstall %s --now: %s has no domain on %s, and power control of bare metal is not configured: run reinstall without --now and power-cycle the machine yourself", name, name, o.fleetLabel())
	}
	d, hv := *f.dom, f.hv
	p, err := o.Reinstall(ctx, name, distro, script, vars)
	if err != nil {
		return nil, err
	}
	if err := hv.Destroy(ctx, name); err != nil {
		return nil, fmt.Errorf("reinstall %s --now: the TXT record says install, but the power-off failed: %w; reset the VM yourself", name, err)
	}
	if err := hv.Start(ctx, name); err != nil {
		return nil, fmt.Errorf("reinstall %s --now: the TXT record says install, but the start failed: %w; start the VM yourself", name, err)
	}
	if len(d.Boot) > 0 && d.Boot[0] == virt.BootDisk {
		o.log.Warn("the VM boots from its disk first, so the reset starts the installed system, not the installer; VMs created with --boot network,hd install on reset",
			"host", p.FQDN)
	}
	o.log.Info("vm power-cycled", "host", p.FQDN)
	if got, err := hv.Get(ctx, name); err == nil {
		p.Power, p.Boot = got.State, slices.Clone(got.Boot)
		p.VLAN, p.MAC, p.Bridge = got.Meta.VLAN, got.MAC, got.Bridge
	}
	return p, nil
}
