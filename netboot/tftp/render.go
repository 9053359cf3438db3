package tftp

import (
	"fmt"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/templates"
)

// Templates returns the RenderFunc of vmprov serve: package templates'
// GrubConfig and PXELinuxConfig for the host, with the boot and mirror URLs
// and the site of b and the host's TXT boot intent (distribution and
// variables), or for an installed host (netboot.ActionLocal)
// GrubLocalConfig and PXELinuxLocalConfig, which boot the local disk. The
// configuration of signed GRUB (SignedGrubConfig) loads the kernel and
// initrd over TFTP (templates.GrubInput.TFTP), of the architecture of the
// GRUB that asks when the host's TXT names none: arm64 GRUB boots no amd64
// kernel; wherever the host's mirror is, that kernel and initrd are the
// distribution's installer under serve's own assets/, the only installers
// this TFTP server holds. The boot URLs (url=, firstboot=) are of the
// requester's address family: an IPv6 requester's (DHCPv6 tftp://) are
// boot.url_v6's, as over HTTP.
func Templates(b netboot.Booter) RenderFunc {
	return func(f File, d netboot.Decision, a netboot.Answer, ipv6 bool) ([]byte, error) {
		if a.Action == netboot.ActionLocal {
			in := templates.LocalInput{FQDN: d.Host.FQDN, MAC: d.Host.MAC}
			switch f {
			case GrubConfig, SignedGrubConfig:
				return templates.GrubLocalConfig(in)
			case PXELinuxConfig:
				return templates.PXELinuxLocalConfig(in)
			}
			return nil, fmt.Errorf("tftp: no local-boot template for %s", f)
		}
		h := b.TemplateHost(d, ipv6)
		switch f {
		case GrubConfig:
			return templates.GrubConfig(templates.GrubInput{Host: h})
		case SignedGrubConfig:
			if _, ok := d.Host.Intent.Get(inventory.KeyArch); !ok && a.Firmware.HasArch && a.Firmware.Arch == netboot.ArchUEFIARM64 {
				h.Arch = templates.ArchARM64
			}
			return templates.GrubConfig(templates.GrubInput{Host: h, TFTP: true})
		case PXELinuxConfig:
			return templates.PXELinuxConfig(h)
		}
		return nil, fmt.Errorf("tftp: no template for %s", f)
	}
}
