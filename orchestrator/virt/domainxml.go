package virt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// MetadataNamespace is the XML namespace of vmprov's element inside a
// domain's <metadata>. List recognises vmprov's domains by it.
const MetadataNamespace = "https://vmprov.dev/xmlns/instance/1"

// metadataPrefix is the namespace prefix vmprov writes; readers match the
// namespace, not the prefix.
const metadataPrefix = "vmprov"

// DefaultMachine is the x86_64 machine type used when DomainSpec.Machine is
// empty: "pc" (i440FX), as in seed 000, an alias of the newest pc-i440fx-*
// of the hypervisor's QEMU (pc-i440fx-7.2 on Debian 12). "q35" works too.
const DefaultMachine = "pc"

// Firmware values of DomainSpec.Firmware.
const (
	FirmwareBIOS = ""    // SeaBIOS, with its output on the serial console
	FirmwareEFI  = "efi" // OVMF without Secure Boot, chosen by libvirt from QEMU's firmware descriptors
	// FirmwareEFISecure is OVMF with Secure Boot on and Microsoft's keys
	// enrolled, chosen by libvirt from QEMU's firmware descriptors (Debian:
	// OVMF_CODE_4M.secboot.fd with a copy of OVMF_VARS_4M.ms.fd per VM,
	// which undefine removes). It needs SMM, so the machine is q35.
	FirmwareEFISecure = "efi-secure"
	// SecureMachine is the machine of FirmwareEFISecure when
	// DomainSpec.Machine is empty.
	SecureMachine = "q35"
)

// Netboot values of DomainSpec.Netboot: how UEFI firmware boots from the
// network.
const (
	NetbootPXE  = ""     // PXE (and, firmware permitting, HTTP boot after it)
	NetbootHTTP = "http" // UEFI HTTP boot only: the firmware's PXE options are off
)

// EDK2's fw_cfg switches of its PXE boot options: EDK2's OVMF reads the fw_cfg
// files opt/org.tianocore/IPv4PXESupport and IPv6PXESupport when it starts, with
// or without Secure Boot, and "n" leaves no PXE boot option of
// that IP version, so the firmware goes on to the next, or to UEFI HTTP
// boot (UEFI 2.5+ section 24.7), which OVMF offers after PXE.
const (
	FWCfgIPv4PXE = "opt/org.tianocore/IPv4PXESupport"
	FWCfgIPv6PXE = "opt/org.tianocore/IPv6PXESupport"
)

// Boot devices of DomainSpec.Boot, as libvirt's <boot dev=…/> names them.
const (
	BootDisk    = "hd"
	BootNetwork = "network"
)

// DefaultBoot is a VM's boot order unless told otherwise: its disk, then
// the network, so that only an empty disk falls through to iPXE (seed 000).
func DefaultBoot() []string { return []string{BootDisk, BootNetwork} }

// CheckBoot checks a boot order: hd and network, each at most once, at
// least one of them.
func CheckBoot(boot []string) error {
	if len(boot) == 0 {
		return errors.New("boot order is empty: give hd, network or both, e.g. network,hd")
	}
	for i, dev := range boot {
		if dev != BootDisk && dev != BootNetwork {
			return fmt.Errorf("boot device %q is not %s or %s", dev, BootDisk, BootNetwork)
		}
		if slices.Contains(boot[:i], dev) {
			return fmt.Errorf("boot device %q is listed twice", dev)
		}
	}
	return nil
}

// DomainSpec is what vmprov decides about a VM; BuildDomainXML renders it.
type DomainSpec struct {
	Name      string
	Type      string // "kvm" or "qemu" (TCG, no hardware virtualisation)
	MemoryMiB uint
	VCPUs     uint
	MAC       string // the interface's MAC, e.g. "02:04:06:08:73:ac"
	Bridge    string // host bridge of the VLAN, e.g. "br135"
	DiskPath  string // absolute path of the qcow2 boot disk
	ROMFile   string // optional absolute path of the interface's option ROM (<rom file=…/>)
	// ROMDisabled loads no option ROM on the interface (<rom enabled='no'/>),
	// so UEFI firmware boots from the network with its own PXE stack.
	ROMDisabled bool
	Emulator    string // optional absolute path of the QEMU binary; empty lets libvirt choose
	Meta        Metadata
	// Machine is QEMU's machine type: for x86_64 empty means DefaultMachine
	// (SecureMachine with FirmwareEFISecure), for aarch64 ARM64Machine.
	Machine string
	// Firmware is FirmwareBIOS, FirmwareEFI or FirmwareEFISecure.
	Firmware string
	// Netboot is how UEFI firmware boots from the network: NetbootPXE or
	// NetbootHTTP. Only with FirmwareEFI.
	Netboot string
	// NoIPv4 says the VM has no IPv4 address (IPv6-only): UEFI firmware
	// skips its IPv4 PXE, whose DHCPv4 the boot service does not answer
	// for it, and starts with PXE over IPv6 (DHCPv6, RFC 5970).
	NoIPv4 bool
	// Boot is the boot order (BootDisk, BootNetwork); empty means
	// DefaultBoot. Network first makes a VM boot like bare metal: what the
	// boot service answers decides, install or local boot.
	Boot []string
	// Arch is the guest architecture, ArchX8664 (empty) or ArchARM64; aarch64 boots
	// AAVMF (Firmware must be FirmwareEFI) on the virt machine (Machine, if set, names
	// another aarch64 machine).
	Arch string
}

// BuildDomainXML renders the libvirt domain XML of a vmprov VM
// (docs/design.md, "The VM workflow"): boot from disk first, then from the
// network (seed 000), so that an empty disk falls through to iPXE, unless
// Boot says otherwise; a serial
// console that SeaBIOS also writes to; one virtio disk and one virtio
// interface on the VLAN's bridge; and vmprov's metadata.
func BuildDomainXML(s DomainSpec) (string, error) {
	mac, err := s.check()
	if err != nil {
		return "", fmt.Errorf("build domain xml: %w", err)
	}
	meta, err := marshalMetadata(s.Meta)
	if err != nil {
		return "", fmt.Errorf("build domain xml: %w", err)
	}
	machine := s.Machine
	switch {
	case machine == "" && s.Firmware == FirmwareEFISecure:
		machine = SecureMachine
	case machine == "":
		machine = DefaultMachine
	}
	osx := &libvirtxml.DomainOS{
		Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: machine, Type: "hvm"},
	}
	boot := s.Boot
	if len(boot) == 0 {
		boot = DefaultBoot()
	}
	for _, dev := range boot {
		osx.BootDevices = append(osx.BootDevices, libvirtxml.DomainBootDevice{Dev: dev})
	}
	switch s.Firmware {
	case FirmwareBIOS:
		osx.BIOS = &libvirtxml.DomainBIOS{UseSerial: "yes"}
	case FirmwareEFI:
		// Firmware auto-selection finds OVMF wherever the distribution puts
		// it; Secure Boot is off because it needs SMM, which i440FX lacks.
		osx.Firmware = "efi"
		osx.FirmwareInfo = &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
			{Enabled: "no", Name: "secure-boot"},
		}}
	case FirmwareEFISecure:
		// The varstore with Microsoft's keys enrolled (enrolled-keys), on
		// flash that only SMM code may write (loader secure='yes', SMM on),
		// so the OS cannot turn Secure Boot off.
		osx.Firmware = "efi"
		osx.FirmwareInfo = &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
			{Enabled: "yes", Name: "secure-boot"},
			{Enabled: "yes", Name: "enrolled-keys"},
		}}
		osx.Loader = &libvirtxml.DomainLoader{Secure: "yes"}
	}
	features := &libvirtxml.DomainFeatureList{
		ACPI: &libvirtxml.DomainFeature{},
		APIC: &libvirtxml.DomainFeatureAPIC{},
	}
	if s.Firmware == FirmwareEFISecure {
		features.SMM = &libvirtxml.DomainFeatureSMM{State: "on"}
	}
	iface := libvirtxml.DomainInterface{
		MAC:    &libvirtxml.DomainInterfaceMAC{Address: mac},
		Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: s.Bridge}},
		Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
	}
	switch {
	case s.ROMDisabled:
		iface.ROM = &libvirtxml.DomainROM{Enabled: "no"}
	case s.ROMFile != "":
		rom := s.ROMFile
		iface.ROM = &libvirtxml.DomainROM{File: &rom}
	}
	port := uint(0)
	d := libvirtxml.Domain{
		Type:       s.Type,
		Name:       s.Name,
		Metadata:   &libvirtxml.DomainMetadata{XML: meta},
		Memory:     &libvirtxml.DomainMemory{Value: s.MemoryMiB, Unit: "MiB"},
		VCPU:       &libvirtxml.DomainVCPU{Value: s.VCPUs},
		OS:         osx,
		SysInfo:    s.sysInfo(),
		Features:   features,
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Emulator: s.Emulator,
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.DiskPath}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}},
			Interfaces: []libvirtxml.DomainInterface{iface},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
		},
	}
	if s.Arch == ArchARM64 {
		arm64(&d, s)
	}
	out, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("build domain xml %s: %w", s.Name, err)
	}
	return out + "\n", nil
}

// sysInfo is the domain's fw_cfg entries: EDK2's PXE switches
// (FWCfgIPv4PXE, FWCfgIPv6PXE) that make OVMF take its UEFI HTTP boot
// option (NetbootHTTP), or skip IPv4 PXE on a VLAN without IPv4. libvirt
// passes them to QEMU as -fw_cfg (<sysinfo type='fwcfg'>). OVMF with
// Secure Boot reads them too: an IPv6-only Secure Boot VM skips IPv4 PXE.
func (s DomainSpec) sysInfo() []libvirtxml.DomainSysInfo {
	if s.Firmware != FirmwareEFI && s.Firmware != FirmwareEFISecure {
		return nil
	}
	var off []string
	switch {
	case s.Netboot == NetbootHTTP:
		off = []string{FWCfgIPv4PXE, FWCfgIPv6PXE}
	case s.NoIPv4:
		off = []string{FWCfgIPv4PXE}
	default:
		return nil
	}
	fw := &libvirtxml.DomainSysInfoFWCfg{}
	for _, name := range off {
		fw.Entry = append(fw.Entry, libvirtxml.DomainSysInfoEntry{Name: name, Value: "n"})
	}
	return []libvirtxml.DomainSysInfo{{FWCfg: fw}}
}

// check validates s and returns its MAC in canonical form.
func (s DomainSpec) check() (string, error) {
	if err := CheckName(s.Name); err != nil {
		return "", err
	}
	if s.Type != "kvm" && s.Type != "qemu" {
		return "", fmt.Errorf("domain %s: type %q is not kvm or qemu", s.Name, s.Type)
	}
	if s.MemoryMiB == 0 || s.VCPUs == 0 {
		return "", fmt.Errorf("domain %s: memory %d MiB and %d vcpus: both must be positive", s.Name, s.MemoryMiB, s.VCPUs)
	}
	hw, err := net.ParseMAC(s.MAC)
	if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
		return "", fmt.Errorf("domain %s: mac %q is not a unicast 48-bit MAC", s.Name, s.MAC)
	}
	if s.Bridge == "" || strings.ContainsAny(s.Bridge, "/ \t\n") {
		return "", fmt.Errorf("domain %s: bridge %q is not an interface name", s.Name, s.Bridge)
	}
	if !filepath.IsAbs(s.DiskPath) {
		return "", fmt.Errorf("domain %s: disk path %q is not absolute", s.Name, s.DiskPath)
	}
	if s.ROMFile != "" && !filepath.IsAbs(s.ROMFile) {
		return "", fmt.Errorf("domain %s: rom path %q is not absolute", s.Name, s.ROMFile)
	}
	if s.ROMFile != "" && s.ROMDisabled {
		return "", fmt.Errorf("domain %s: rom %q given with the option ROM disabled", s.Name, s.ROMFile)
	}
	if s.Emulator != "" && !filepath.IsAbs(s.Emulator) {
		return "", fmt.Errorf("domain %s: emulator path %q is not absolute", s.Name, s.Emulator)
	}
	if s.Firmware != FirmwareBIOS && s.Firmware != FirmwareEFI && s.Firmware != FirmwareEFISecure {
		return "", fmt.Errorf("domain %s: firmware %q is not %q (BIOS), %q or %q", s.Name, s.Firmware, FirmwareBIOS, FirmwareEFI, FirmwareEFISecure)
	}
	if s.Firmware == FirmwareEFISecure && s.Machine != "" && !strings.Contains(s.Machine, "q35") {
		return "", fmt.Errorf("domain %s: firmware %s needs SMM, which machine %q lacks: use q35", s.Name, s.Firmware, s.Machine)
	}
	switch {
	case s.Netboot != NetbootPXE && s.Netboot != NetbootHTTP:
		return "", fmt.Errorf("domain %s: netboot %q is not pxe or %s", s.Name, s.Netboot, NetbootHTTP)
	case s.Netboot == NetbootHTTP && s.Firmware != FirmwareEFI:
		return "", fmt.Errorf("domain %s: UEFI HTTP boot needs UEFI firmware, not %q", s.Name, s.Firmware)
	}
	if err := s.checkArch(); err != nil {
		return "", err
	}
	if s.Meta.VLAN < 1 || s.Meta.VLAN > 4094 {
		return "", fmt.Errorf("domain %s: vlan %d is not 1 to 4094", s.Name, s.Meta.VLAN)
	}
	if len(s.Boot) > 0 {
		if err := CheckBoot(s.Boot); err != nil {
			return "", fmt.Errorf("domain %s: %w", s.Name, err)
		}
	}
	return hw.String(), nil
}

// CheckName refuses domain and disk names that libvirt or a volume path
// cannot hold. vmprov's own names (RFC 1123 labels) always pass.
func CheckName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("name %q: want 1 to 253 characters", name)
	}
	for _, r := range name {
		if r == '/' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("name %q has %q", name, r)
		}
	}
	return nil
}

// metadataXML is vmprov's metadata element. The prefix is written literally
// because encoding/xml cannot choose prefixes; the children are in no
// namespace, as libvirt's own examples have them.
type metadataXML struct {
	XMLName xml.Name `xml:"vmprov:instance"`
	NS      string   `xml:"xmlns:vmprov,attr"`
	VLAN    int      `xml:"vlan"`
	Distro  string   `xml:"distro,omitempty"`
	FQDN    string   `xml:"fqdn,omitempty"`
}

func marshalMetadata(m Metadata) (string, error) {
	b, err := xml.Marshal(metadataXML{NS: MetadataNamespace, VLAN: m.VLAN, Distro: m.Distro, FQDN: m.FQDN})
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	return string(b), nil
}

// ParseDomain reads back what vmprov needs from a domain's XML as a
// hypervisor returns it. Meta is zero exactly when the domain has no vmprov
// metadata element (a present element always has a VLAN of 1 to 4094);
// malformed vmprov metadata is an error. State is left empty.
func ParseDomain(domainXML string) (Domain, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domainXML); err != nil {
		return Domain{}, fmt.Errorf("parse domain xml: %w", err)
	}
	if x.Name == "" {
		return Domain{}, errors.New("parse domain xml: no <name>")
	}
	d := Domain{Name: x.Name, XML: domainXML}
	if x.Memory != nil {
		d.MemoryMiB = memoryMiB(x.Memory.Value, x.Memory.Unit)
	}
	if x.VCPU != nil {
		d.VCPUs = x.VCPU.Value
	}
	if x.OS != nil {
		for _, b := range x.OS.BootDevices {
			d.Boot = append(d.Boot, b.Dev)
		}
	}
	if x.Metadata != nil {
		m, err := parseMetadata(x.Metadata.XML)
		if err != nil {
			return Domain{}, fmt.Errorf("parse domain xml %s: %w", x.Name, err)
		}
		d.Meta = m
	}
	if x.Devices == nil {
		return d, nil
	}
	for _, disk := range x.Devices.Disks {
		if (disk.Device == "" || disk.Device == "disk") && disk.Source != nil && disk.Source.File != nil {
			d.DiskPath = disk.Source.File.File
			break
		}
	}
	if len(x.Devices.Interfaces) > 0 {
		i := x.Devices.Interfaces[0]
		if i.MAC != nil {
			d.MAC = strings.ToLower(i.MAC.Address)
			if hw, err := net.ParseMAC(i.MAC.Address); err == nil {
				d.MAC = hw.String()
			}
		}
		if i.Source != nil && i.Source.Bridge != nil {
			d.Bridge = i.Source.Bridge.Bridge
		}
	}
	return d, nil
}

// memoryMiB converts a libvirt memory size (<memory unit=…>, KiB when no
// unit is given) to MiB, rounded up.
func memoryMiB(v uint, unit string) uint64 {
	mult := uint64(1 << 10) // KiB
	switch strings.ToLower(unit) {
	case "b", "bytes":
		mult = 1
	case "m", "mib":
		mult = 1 << 20
	case "mb":
		mult = 1000 * 1000
	case "g", "gib":
		mult = 1 << 30
	case "gb":
		mult = 1000 * 1000 * 1000
	case "t", "tib":
		mult = 1 << 40
	case "tb":
		mult = 1000 * 1000 * 1000 * 1000
	case "kb":
		mult = 1000
	}
	return (uint64(v)*mult + 1<<20 - 1) >> 20
}

// parseMetadata finds vmprov's element among the children of <metadata>
// (inner XML as libvirt returns it) by its namespace and reads it; zero
// Metadata when there is none.
func parseMetadata(inner string) (Metadata, error) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return Metadata{}, nil
		}
		if err != nil {
			return Metadata{}, fmt.Errorf("metadata: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != MetadataNamespace || start.Name.Local != "instance" {
			if err := dec.Skip(); err != nil {
				return Metadata{}, fmt.Errorf("metadata: %w", err)
			}
			continue
		}
		// Children are matched by local name: written by vmprov they are in
		// no namespace, but a default-namespace form is read the same way.
		var raw struct {
			VLAN   string `xml:"vlan"`
			Distro string `xml:"distro"`
			FQDN   string `xml:"fqdn"`
		}
		if err := dec.DecodeElement(&raw, &start); err != nil {
			return Metadata{}, fmt.Errorf("vmprov metadata: %w", err)
		}
		vlan, err := strconv.Atoi(strings.TrimSpace(raw.VLAN))
		if err != nil || vlan < 1 || vlan > 4094 {
			return Metadata{}, fmt.Errorf("vmprov metadata: vlan %q is not 1 to 4094", raw.VLAN)
		}
		return Metadata{VLAN: vlan, Distro: strings.TrimSpace(raw.Distro), FQDN: strings.TrimSpace(raw.FQDN)}, nil
	}
}
