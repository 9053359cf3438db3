package netboot

import (
	"fmt"
	"strings"
)

// Arch is a client system architecture type (RFC 4578 section 2.1, DHCPv4
// option 93; DHCPv6 option 61, RFC 5970).
type Arch uint16

// Client architectures the boot service names.
const (
	ArchBIOS      Arch = 0
	ArchUEFIx86   Arch = 6
	ArchUEFIx64   Arch = 7
	ArchUEFIBC    Arch = 9
	ArchUEFIARM64 Arch = 11
	ArchHTTPx64   Arch = 16
	ArchHTTPARM64 Arch = 19
)

// PXE maps the UEFI HTTP boot architectures of the IANA registry (RFC 4578
// section 2.1 as extended) to the UEFI PXE architecture whose loader they
// run: 15 x86 → 6, 16 x64 → 7, 17 EBC → 9, 18 ARM32 → 10, 19 ARM64 → 11.
// Other architectures are returned unchanged.
func (a Arch) PXE() Arch {
	switch a {
	case 15:
		return ArchUEFIx86
	case ArchHTTPx64:
		return ArchUEFIx64
	case 17:
		return ArchUEFIBC
	case 18:
		return 10
	case ArchHTTPARM64:
		return ArchUEFIARM64
	}
	return a
}

// isHTTP reports whether a is a UEFI HTTP boot architecture type (15-19).
func (a Arch) isHTTP() bool { return a >= 15 && a <= 19 }

// Kind is the stage of the boot chain a client is at: which program asks,
// and so what kind of answer it can take.
type Kind int

// Kinds of client.
const (
	// KindNone is an ordinary DHCP client (an installed OS): it gets its
	// address and options, no boot file.
	KindNone Kind = iota
	// KindPXE is PXE firmware, BIOS or UEFI: a loader over TFTP.
	KindPXE
	// KindHTTP is UEFI HTTP boot: the URL of an EFI loader.
	KindHTTP
	// KindIPXE is iPXE: its boot script over HTTP (/boot.ipxe from DHCP,
	// then the /pxedust chain).
	KindIPXE
	// KindBSDP is an Intel Mac's NetBoot (Apple BSDP).
	KindBSDP
	// KindGRUB is GRUB asking for its per-host grub.cfg-01-<mac> over TFTP.
	KindGRUB
	// KindPXELinux is PXELINUX asking for pxelinux.cfg/01-<mac> over TFTP.
	KindPXELinux
	// KindSignedGRUB is the distribution's signed GRUB that a shim loads
	// (the Secure Boot chain, docs/design.md "Secure Boot", and arm64
	// UEFI's) asking over TFTP for the grub.cfg under its built-in prefix
	// (serve.signed_grub_cfg): no MAC in the name, which tells its
	// architecture, and it loads nothing over HTTP.
	KindSignedGRUB
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindPXE:
		return "pxe"
	case KindHTTP:
		return "http"
	case KindIPXE:
		return "ipxe"
	case KindBSDP:
		return "bsdp"
	case KindGRUB:
		return "grub"
	case KindPXELinux:
		return "pxelinux"
	case KindSignedGRUB:
		return "grub-signed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Firmware is how a client boots: its kind and, when it sent one, its
// architecture.
type Firmware struct {
	Kind    Kind
	Arch    Arch
	HasArch bool
}

// ArchString is the architecture for logs: its number, or "" when the
// client sent none.
func (f Firmware) ArchString() string {
	if !f.HasArch {
		return ""
	}
	return fmt.Sprint(uint16(f.Arch))
}

// String names the firmware: its row in Firmwares when it has one
// ("efi-http"), else kind and architecture ("pxe/arch 9").
func (f Firmware) String() string {
	for _, r := range Firmwares() {
		if r.Firmware == f {
			return r.Name
		}
	}
	if f.HasArch {
		return fmt.Sprintf("%s/arch %d", f.Kind, f.Arch)
	}
	return f.Kind.String()
}

// NamedFirmware is one row of the firmware table.
type NamedFirmware struct {
	Name        string // what `vmprov explain --firmware` takes
	Firmware    Firmware
	Description string
}

// Firmwares is the table of the firmware the boot service tells apart by
// name. Booter.Answer decides by kind and architecture, so adding a
// firmware the decision already covers (another architecture of a known
// kind) is one row here and, for PXE and HTTP boot, a serve.loaders entry.
func Firmwares() []NamedFirmware {
	arch := func(k Kind, a Arch) Firmware { return Firmware{Kind: k, Arch: a, HasArch: true} }
	return []NamedFirmware{
		{"bios", arch(KindPXE, ArchBIOS), "BIOS PXE (option ROM), arch 0: loader over TFTP"},
		{"efi", arch(KindPXE, ArchUEFIx64), "x64 UEFI PXE, arch 7: loader over TFTP"},
		{"efi32", arch(KindPXE, ArchUEFIx86), "x86 UEFI PXE, arch 6: loader over TFTP"},
		{"efi-http", arch(KindHTTP, ArchHTTPx64), "x64 UEFI HTTP boot, arch 16: loader URL"},
		{"arm64", arch(KindPXE, ArchUEFIARM64), "arm64 UEFI PXE, arch 11: loader over TFTP (Debian's shim by default)"},
		{"arm64-http", arch(KindHTTP, ArchHTTPARM64), "arm64 UEFI HTTP boot, arch 19: loader URL"},
		{"ipxe", arch(KindIPXE, ArchBIOS), "iPXE (user class iPXE): /boot.ipxe, then /pxedust"},
		{"bsdp", Firmware{Kind: KindBSDP}, "Intel Mac NetBoot (BSDP): the configured image"},
		{"grub", Firmware{Kind: KindGRUB}, "GRUB over TFTP: per-host grub.cfg-01-<mac>"},
		{"pxelinux", Firmware{Kind: KindPXELinux}, "PXELINUX over TFTP: per-host pxelinux.cfg/01-<mac>"},
		{"grub-signed", Firmware{Kind: KindSignedGRUB}, "signed GRUB after a shim (Secure Boot, arm64) over TFTP: per-host grub.cfg at its prefix"},
		{"none", Firmware{Kind: KindNone}, "an installed OS's DHCP client: address only"},
	}
}

// ParseFirmware returns the firmware of the table row called name.
func ParseFirmware(name string) (Firmware, error) {
	var names []string
	for _, r := range Firmwares() {
		if r.Name == name {
			return r.Firmware, nil
		}
		names = append(names, r.Name)
	}
	return Firmware{}, fmt.Errorf("firmware %q is not one of %s", name, strings.Join(names, ", "))
}

// Class identifiers that name a firmware, in DHCPv4 option 60 and the
// DHCPv6 vendor class (option 16, enterprise 343).
const (
	// ClassPXE starts the vendor class of PXE firmware (PXE 2.1,
	// "PXEClient:Arch:xxxxx:UNDI:yyyzzz"), and of iPXE.
	ClassPXE = "PXEClient"
	// ClassHTTP starts the vendor class of UEFI HTTP boot (UEFI 2.5+
	// section 24.7.2, "HTTPClient:Arch:xxxxx:UNDI:yyyzzz").
	ClassHTTP = "HTTPClient"
	// ClassBSDP starts the vendor class of Apple NetBoot clients.
	ClassBSDP = "AAPLBSDPC"
	// UserClassIPXE is the user class iPXE sends (DHCPv4 option 77,
	// DHCPv6 option 15).
	UserClassIPXE = "iPXE"
)

// Signals is what a DHCP request says about the booting client, read by
// the protocol package from its own options.
type Signals struct {
	// UserClassIPXE: the user class holds "iPXE".
	UserClassIPXE bool
	// VendorClasses are the vendor class identifiers: DHCPv4 option 60, or
	// the data instances of DHCPv6 vendor class options.
	VendorClasses []string
	// Arch is the first client architecture type (DHCPv4 option 93, DHCPv6
	// option 61), else the Arch field of a PXEClient or HTTPClient vendor
	// class.
	Arch    Arch
	HasArch bool
}

// Classify names the firmware of a DHCP client. In order:
//
//  1. user class "iPXE" is iPXE, whatever else it sends: iPXE loaded by
//     PXE firmware still says "PXEClient", and handing it a loader again
//     would chainload iPXE forever (docs/design.md, "The boot decision");
//  2. vendor class "HTTPClient", or an HTTP boot architecture (15-19), is
//     UEFI HTTP boot;
//  3. vendor class "AAPLBSDPC" is an Intel Mac (BSDP);
//  4. vendor class "PXEClient", or any architecture, is PXE firmware
//     (EDK2's PXE over IPv6 sends only option 61, RFC 5970);
//  5. anything else is an ordinary DHCP client.
func Classify(s Signals) Firmware {
	f := Firmware{Arch: s.Arch, HasArch: s.HasArch}
	has := func(prefix string) bool {
		for _, v := range s.VendorClasses {
			if strings.HasPrefix(v, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case s.UserClassIPXE:
		f.Kind = KindIPXE
	case has(ClassHTTP) || s.HasArch && s.Arch.isHTTP():
		f.Kind = KindHTTP
	case has(ClassBSDP):
		f.Kind = KindBSDP
	case has(ClassPXE) || s.HasArch:
		f.Kind = KindPXE
	default:
		f.Kind = KindNone
	}
	return f
}
