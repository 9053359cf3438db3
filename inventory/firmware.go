package inventory

// KeyFirmware records in a host's boot intent the firmware it boots with,
// when the boot service cannot tell it from the wire: UEFI firmware with
// Secure Boot on sends the same DHCP client architecture (7) as without,
// but runs only a signed loader (docs/design.md, "Secure Boot"). create
// --firmware efi-secure and host add --firmware efi-secure write
// firmware=efi-secure. Like the build state it is vmprov's own key: it
// never becomes an iPXE variable or a kernel argument.
const KeyFirmware = "firmware"

// FirmwareEFISecure is the value of KeyFirmware for UEFI with Secure Boot:
// PXE firmware gets the signed shim → GRUB → kernel chain instead of iPXE.
const FirmwareEFISecure = "efi-secure"

// SecureBoot reports whether the intent says the host boots with UEFI
// Secure Boot (firmware=efi-secure).
func (in Intent) SecureBoot() bool {
	v, _ := in.Get(KeyFirmware)
	return v == FirmwareEFISecure
}
