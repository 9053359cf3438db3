package templates

import (
	"fmt"
	"net"
	"strings"
)

// LocalInput is the input of the local-boot files of an installed host.
type LocalInput struct {
	FQDN string // the host's name; a trailing dot is dropped
	MAC  net.HardwareAddr
}

func (in LocalInput) check(what string, needMAC bool) (LocalInput, error) {
	in.FQDN = strings.TrimSuffix(in.FQDN, ".")
	labels := strings.Split(in.FQDN, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return in, fmt.Errorf("%s: %w: host name %q is not a DNS name of RFC 1123 labels", what, ErrInvalidHost, in.FQDN)
		}
	}
	if needMAC && len(in.MAC) != 6 {
		return in, fmt.Errorf("%s: %w: MAC %q is not a 48-bit MAC", what, ErrInvalidHost, in.MAC)
	}
	return in, nil
}

func renderLocal(what, path string, in LocalInput, needMAC bool) ([]byte, error) {
	in, err := in.check(what, needMAC)
	if err != nil {
		return nil, err
	}
	return render(path, struct{ FQDN, MAC string }{in.FQDN, in.MAC.String()})
}

// LocalScript renders the iPXE script an installed host gets at /boot.ipxe and /pxedust
// (docs/design.md, "A host's life"): it says so and runs exit 1, which ends iPXE so that
// the firmware boots its next boot device, the local disk, as the boot script does when
// no answer is found. It names no MAC, so in.MAC may be nil.
func LocalScript(in LocalInput) ([]byte, error) {
	return renderLocal("local boot script", "local.ipxe", in, false)
}

// GrubLocalConfig renders the per-host grub.cfg of an installed host: on BIOS GRUB it
// chainloads the first disk's boot sector; on EFI it chainloads the first boot loader it
// finds on a local disk (a distribution's shim, the removable-media path, a Mac's boot.efi),
// and without one it exits to the firmware, which tries its next boot device.
func GrubLocalConfig(in LocalInput) ([]byte, error) {
	return renderLocal("grub.cfg", "grub-local.cfg", in, true)
}

// PXELinuxLocalConfig renders the per-host pxelinux.cfg of an installed host:
// LOCALBOOT 0, PXELINUX's normal boot from the local disk.
func PXELinuxLocalConfig(in LocalInput) ([]byte, error) {
	return renderLocal("pxelinux.cfg", "pxelinux-local.cfg", in, true)
}
