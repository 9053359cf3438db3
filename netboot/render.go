package netboot

import (
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/templates"
)

// TemplateVars turns a boot intent into template variables, in TXT order.
func TemplateVars(in inventory.Intent) []templates.Var {
	out := make([]templates.Var, len(in))
	for i, v := range in {
		out[i] = templates.Var{Name: v.Key, Value: v.Value}
	}
	return out
}

// TemplateHost is the templates' view of the decided host d for a client
// of that address family: its names, addresses, MAC, distribution and
// variables, and the base and mirror URLs it reaches the service at. The
// per-host files of HTTP (answer files) and TFTP (grub.cfg, pxelinux.cfg)
// are rendered from it.
func (b Booter) TemplateHost(d Decision, ipv6 bool) templates.Host {
	dist, _ := d.Host.Intent.Get(inventory.KeyDistribution)
	return templates.Host{
		FQDN:         d.Host.FQDN,
		Name:         d.Host.Name,
		IPv4:         d.Host.IPv4,
		IPv6:         d.Host.IPv6,
		MAC:          d.Host.MAC,
		Distribution: dist,
		BootURL:      b.BaseURL(ipv6),
		MirrorURL:    b.MirrorURL(ipv6),
		Site:         b.Site,
		Vars:         TemplateVars(d.Host.Intent),
	}
}
