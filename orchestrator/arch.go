package orchestrator

import (
	"slices"
	"strings"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/templates"
)

// checkArch checks --arch and completes r for it: an aarch64 VM boots AAVMF, so its
// firmware is efi, given or not; its architecture goes into the TXT record once, from
// --arch, never from --txt arch=; its distribution must install arm64; and it boots by
// PXE, since its loader is the shim of the signed chain, which UEFI HTTP boot is never
// handed (docs/design.md, "The boot chain").
func checkArch(r *Request, domainType string) error {
	if slices.ContainsFunc(r.Vars, func(v inventory.Var) bool { return v.Key == inventory.KeyArch }) {
		return invalid("--txt %s=: give the VM's architecture with --arch (%s or %s)", inventory.KeyArch, virt.ArchX8664, virt.ArchARM64)
	}
	switch r.Arch {
	case "", virt.ArchX8664:
		return nil
	case virt.ArchARM64:
	default:
		return invalid("--arch %q is not %s or %s", r.Arch, virt.ArchX8664, virt.ArchARM64)
	}
	switch r.Firmware {
	case "", config.FirmwareEFI:
		r.Firmware = config.FirmwareEFI
	case config.FirmwareEFISecure:
		return invalid("--arch %s --firmware %s: Secure Boot is not supported for %s VMs: give --firmware %s or none", r.Arch, r.Firmware, r.Arch, config.FirmwareEFI)
	default:
		return invalid("--arch %s boots UEFI firmware (AAVMF) only: give --firmware %s or none, not %s", r.Arch, config.FirmwareEFI, r.Firmware)
	}
	if r.Netboot == NetbootHTTP {
		return invalid("--arch %s --netboot %s: arm64 VMs netboot by PXE (their loader is the shim of the signed GRUB chain, which loads over TFTP only): give --netboot %s or none", r.Arch, r.Netboot, NetbootPXE)
	}
	if domainType == "kvm" {
		return invalid("--arch %s with libvirt.domain_type kvm: KVM runs guests of the hypervisor's own architecture only, and vmprov cannot tell the hypervisor's: set libvirt.domain_type: qemu (emulation, TCG) in the config", r.Arch)
	}
	return checkDistroArch("--arch "+r.Arch, r.Distro, r.Arch)
}

// checkDistroArch refuses a distribution whose install paths do not depend on the
// architecture (no ${arch} or ${debarch} in the table of templates.Distributions):
// its mirror holds one architecture's installer, amd64's.
// what names what gave the architecture (--arch aarch64, TXT arch=aarch64).
func checkDistroArch(what, distro, arch string) error {
	d, err := templates.LookupDistribution(distro)
	if err != nil {
		return invalid("--distro: %w", err)
	}
	if d.PXEBootFor(arch) == d.PXEBootFor(templates.ArchX8664) {
		return invalid("%s --distro %s: %s's installer paths (%s) are amd64's only: pick a distribution with an %s installer (%s)", what, distro, distro, d.PXEBoot, arch, archDistros(arch))
	}
	return nil
}

// archDistros lists the distributions that install arch.
func archDistros(arch string) string {
	var s []string
	for _, d := range templates.Distributions() {
		if d.PXEBootFor(arch) != d.PXEBootFor(templates.ArchX8664) {
			s = append(s, d.Name)
		}
	}
	return strings.Join(s, ", ")
}

// checkSecureBootDistro refuses --firmware efi-secure for a distribution whose kernel
// Debian did not sign: Debian's shim and signed GRUB (docs/design.md, "Secure Boot")
// boot Debian's kernels only, so only Debian's own releases (family debian, archive
// debian) install under Secure Boot.
func checkSecureBootDistro(firmware, distro string) error {
	if firmware != config.FirmwareEFISecure {
		return nil
	}
	return secureBootDistro("--firmware "+firmware, distro, ", or give --firmware "+config.FirmwareEFI)
}

// secureBootDistro refuses distro for Secure Boot, which what asked for; orElse ends
// the fix.
func secureBootDistro(what, distro, orElse string) error {
	d, err := templates.LookupDistribution(distro)
	if err != nil {
		return invalid("--distro: %w", err)
	}
	if !debianSigned(d) {
		return invalid("%s --distro %s: Debian's shim and signed GRUB boot only kernels Debian signed: pick a Debian release (%s)%s", what, distro, secureBootDistros(), orElse)
	}
	return nil
}

// debianSigned reports whether d's kernels are Debian's own.
func debianSigned(d templates.Distribution) bool {
	return d.Family == templates.FamilyDebian && d.Archive == "debian"
}

func secureBootDistros() string {
	var s []string
	for _, d := range templates.Distributions() {
		if debianSigned(d) {
			s = append(s, d.Name)
		}
	}
	return strings.Join(s, ", ")
}

// checkBootable checks the boot intent host add and reinstall write as a whole, as
// create's plan checks its flags: Secure Boot (firmware=efi-secure) installs Debian's
// releases only, and arch=aarch64 a distribution with an arm64 installer.
func checkBootable(in inventory.Intent) error {
	distro, _ := in.Get(inventory.KeyDistribution)
	if in.SecureBoot() {
		if err := secureBootDistro("TXT "+inventory.KeyFirmware+"="+config.FirmwareEFISecure, distro, ""); err != nil {
			return err
		}
	}
	if arch, ok := in.Get(inventory.KeyArch); ok && arch == templates.ArchARM64 {
		return checkDistroArch("TXT "+inventory.KeyArch+"="+arch, distro, arch)
	}
	return nil
}
