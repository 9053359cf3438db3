package orchestrator

import (
	"slices"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// checkArch checks --arch and completes r for it: an aarch64 VM boots AAVMF, so its
// firmware is efi, given or not; its architecture goes into the TXT record once, from
// --arch.
func checkArch(r *Request) error {
	switch r.Arch {
	case "", virt.ArchX8664:
		return nil
	case virt.ArchARM64:
	default:
		return invalid("--arch %q is not %s or %s", r.Arch, virt.ArchX8664, virt.ArchARM64)
	}
	if slices.ContainsFunc(r.Vars, func(v inventory.Var) bool { return v.Key == inventory.KeyArch }) {
		return invalid("--txt %s= with --arch %s: give the architecture once, with --arch", inventory.KeyArch, r.Arch)
	}
	switch r.Firmware {
	case "", config.FirmwareEFI:
		r.Firmware = config.FirmwareEFI
		return nil
	}
	return invalid("--arch %s boots UEFI firmware (AAVMF) only: give --firmware %s or none, not %s", r.Arch, config.FirmwareEFI, r.Firmware)
}
