package virt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// Guest architectures of DomainSpec.Arch, as libvirt's <type arch=…/> names them.
const (
	ArchX8664 = "x86_64"  // the default: SeaBIOS or OVMF on pc/q35
	ArchARM64 = "aarch64" // AAVMF (UEFI) on QEMU's virt machine
)

// ARM64Machine is the machine type of aarch64 VMs: QEMU's "virt", an alias of the
// newest virt-* (the machines AAVMF's firmware descriptors name), the board arm64
// servers are emulated as.
const ARM64Machine = "virt"

// ARM64CPU is the CPU model of aarch64 VMs under TCG (domain type qemu); KVM passes the
// host's CPU through. Cortex-A57 is a plain ARMv8.0 core every arm64 kernel runs on,
// and cheaper to emulate than QEMU's "max".
const ARM64CPU = "cortex-a57"

// checkArch checks what the guest architecture allows: aarch64 boots only UEFI
// (AAVMF), and loads no option ROM, since QEMU's are x86 code that AAVMF ignores.
func (s DomainSpec) checkArch() error {
	switch s.Arch {
	case "", ArchX8664:
		return nil
	case ArchARM64:
		if s.Firmware == FirmwareEFISecure {
			return fmt.Errorf("domain %s: Secure Boot is not supported for %s VMs: use firmware %q", s.Name, s.Arch, FirmwareEFI)
		}
		if s.Firmware != FirmwareEFI {
			return fmt.Errorf("domain %s: arch %s boots UEFI firmware (AAVMF) only, not %q: use firmware %q", s.Name, s.Arch, s.Firmware, FirmwareEFI)
		}
		if s.ROMFile != "" {
			return fmt.Errorf("domain %s: arch %s cannot load the option ROM %s (x86 code)", s.Name, s.Arch, s.ROMFile)
		}
		return nil
	}
	return fmt.Errorf("domain %s: arch %q is not %s or %s", s.Name, s.Arch, ArchX8664, ArchARM64)
}

// arm64 turns d, built for x86_64, into an aarch64 guest: the virt machine, ACPI
// without the x86 APIC, the CPU, and no option ROM on the interface, so that AAVMF's
// own virtio-net driver and PXE boot from the network. libvirt picks
// qemu-system-aarch64 by the architecture, and its firmware autoselection picks AAVMF
// from QEMU's firmware descriptors for <os firmware='efi'> without Secure Boot.
func arm64(d *libvirtxml.Domain, s DomainSpec) {
	d.OS.Type.Arch = ArchARM64
	d.OS.Type.Machine = ARM64Machine
	if s.Machine != "" {
		d.OS.Type.Machine = s.Machine
	}
	d.Features.APIC = nil
	d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	if s.Type == "qemu" {
		d.CPU = &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Model: &libvirtxml.DomainCPUModel{Value: ARM64CPU, Fallback: "forbid"}}
	}
	for i := range d.Devices.Interfaces {
		d.Devices.Interfaces[i].ROM = &libvirtxml.DomainROM{Enabled: "no"}
	}
}

// ForArch returns s with what its architecture does not use removed: an aarch64 VM
// loads no option ROM (libvirt.rom is x86 code) and runs the emulator libvirt picks for
// aarch64 (libvirt.emulator is the x86 one).
func (s DomainSpec) ForArch() DomainSpec {
	if s.Arch == ArchARM64 {
		s.ROMFile, s.ROMDisabled, s.Emulator = "", true, ""
	}
	return s
}
