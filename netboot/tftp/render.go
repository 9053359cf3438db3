package tftp

import (
	"fmt"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/templates"
)

// Templates returns the RenderFunc of vmprov serve: package templates'
// GrubConfig and PXELinuxConfig for the host, with boot.url, boot.assets and
// boot.site from cfg and the host's TXT boot intent (distribution and
// variables).
func Templates(cfg *config.Config) RenderFunc {
	return func(f File, d netboot.Decision) ([]byte, error) {
		h := hostOf(cfg, d)
		switch f {
		case GrubConfig:
			return templates.GrubConfig(templates.GrubInput{Host: h})
		case PXELinuxConfig:
			return templates.PXELinuxConfig(h)
		}
		return nil, fmt.Errorf("tftp: no template for %s", f)
	}
}

// hostOf is the templates' view of a decided host.
func hostOf(cfg *config.Config, d netboot.Decision) templates.Host {
	dist, _ := d.Host.Intent.Get(inventory.KeyDistribution)
	vars := make([]templates.Var, len(d.Host.Intent))
	for i, v := range d.Host.Intent {
		vars[i] = templates.Var{Name: v.Key, Value: v.Value}
	}
	return templates.Host{
		FQDN:         d.Host.FQDN,
		Name:         d.Host.Name,
		IPv4:         d.Host.IPv4,
		IPv6:         d.Host.IPv6,
		MAC:          d.Host.MAC,
		Distribution: dist,
		BootURL:      cfg.Boot.URL,
		MirrorURL:    cfg.Boot.Assets,
		Site:         cfg.Boot.Site,
		Vars:         vars,
	}
}
