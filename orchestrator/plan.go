// Package orchestrator runs vmprov's VM workflow (docs/design.md, "The VM workflow"; seed 000
// "Installing the Virtual Machine"): plan the host (VLAN, MAC, addresses,
// records, domain XML), claim it in DNS with RFC 2136 prerequisites, create
// its disk, define and start its domain — and undo every earlier step when a
// later one fails. It also registers bare-metal hosts, which have only DNS.
//
// It drives two seams, DNS (dnsupdate) and Hypervisor (virt); the command
// line wires the concrete adapters.
package orchestrator

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Request is what `vmprov create` asks for.
type Request struct {
	Name   string
	VLAN   int        // 0: the VLAN whose subnet holds IPv4
	IPv4   netip.Addr // zero: IPv6-only (random MAC + SLAAC)
	Distro string
	Script string          // TXT filename=; empty leaves the default
	Vars   []inventory.Var // extra TXT key=value
	// MemoryMiB, VCPUs and DiskGiB size the VM; zero means the defaults.
	MemoryMiB uint
	VCPUs     uint
	DiskGiB   uint
	// Firmware is config.FirmwareBIOS, config.FirmwareEFI or
	// config.FirmwareEFISecure (recorded in the TXT as firmware=efi-secure,
	// which gives the VM the Secure Boot chain); empty means
	// libvirt.firmware.
	Firmware string
	// Netboot is how UEFI firmware boots from the network: NetbootPXE
	// (empty too) or NetbootHTTP (UEFI HTTP boot, EFI firmware only).
	Netboot string
	// Boot is the domain's boot order (virt.BootDisk, virt.BootNetwork);
	// empty means virt.DefaultBoot, disk first. Network first boots the VM
	// like bare metal: the build state decides between install and disk.
	Boot []string
	// Arch is the VM's architecture: virt.ArchX8664 (empty) or virt.ArchARM64, an
	// AAVMF VM whose TXT record says arch=aarch64, so that it installs the arm64
	// installer (docs/design.md, "The boot chain").
	Arch string
	// On pins the VM to the fleet member of that name (create --on); empty
	// lets placement choose (docs/design.md, "Many hypervisors").
	On string

	hypervisor string // the member the TXT names (hypervisor=), set by Create
}

// Defaults of a VM's size.
const (
	DefaultMemoryMiB = 2048
	DefaultVCPUs     = 2
	DefaultDiskGiB   = 20
)

// Plan is everything create will do. Its JSON form is the `--dry-run -o json`
// and `list -o json` output.
type Plan struct {
	Name   string      `json:"name"`
	FQDN   string      `json:"fqdn"`
	VLAN   int         `json:"vlan"`
	Bridge string      `json:"bridge"`
	MAC    string      `json:"mac"`
	IPv4   *netip.Addr `json:"ipv4"`
	IPv6   *netip.Addr `json:"ipv6"`
	Distro string      `json:"distro"`
	// State is the host's build state (TXT state=: install, installing,
	// installed); empty for a name without a boot intent.
	State     string             `json:"state,omitempty"`
	Records   []inventory.Record `json:"records"`
	DomainXML string             `json:"domain_xml,omitempty"`
	Pool      string             `json:"pool,omitempty"`
	Disk      string             `json:"disk,omitempty"`
	DiskGiB   uint               `json:"disk_gib,omitempty"`
	// Power is the VM's domain state as virsh names it (running, shut off).
	Power string `json:"power,omitempty"`
	// Boot is the VM's boot order (hd, network).
	Boot []string `json:"boot,omitempty"`
	// Hypervisor is the fleet member the VM is on (or, for a plan, would
	// go to); empty without `hypervisors:`.
	Hypervisor string `json:"hypervisor,omitempty"`
	// Candidates (a plan only) are the members placement would try, in
	// order; Rejected those it left out, with the reason.
	Candidates []string          `json:"candidates,omitempty"`
	Rejected   []fleet.Rejection `json:"rejected,omitempty"`
	// Warnings are disagreements found while reading the host, such as a
	// TXT hypervisor= that does not hold the domain.
	Warnings []string `json:"warnings,omitempty"`

	host inventory.Host
}

// Host returns the planned host.
func (p *Plan) Host() inventory.Host { return p.host }

// ErrInvalid marks a request refused before anything changed.
var ErrInvalid = errors.New("invalid request")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// planner builds plans from the configuration.
type planner struct {
	cfg    *config.Config
	scheme inventory.Scheme
	rand   io.Reader // build ids; nil is crypto/rand
}

func newPlanner(cfg *config.Config) (planner, error) {
	strict, err := config.ParseMACPrefix(cfg.Addressing.StrictMACPrefix)
	if err != nil {
		return planner{}, err
	}
	slaac, err := config.ParseMACPrefix(cfg.Addressing.SLAACMACPrefix)
	if err != nil {
		return planner{}, err
	}
	return planner{cfg: cfg, scheme: inventory.Scheme{Strict: strict, SLAAC: slaac}}, nil
}

// validate checks the request and resolves its VLAN. Nothing is looked up.
func (p planner) validate(r *Request) (config.VLAN, error) {
	if err := validateHost(r.Name, r.Distro, r.Script, r.Vars); err != nil {
		return config.VLAN{}, err
	}
	if len(r.Boot) > 0 {
		if err := virt.CheckBoot(r.Boot); err != nil {
			return config.VLAN{}, invalid("--boot %s: %v", strings.Join(r.Boot, ","), err)
		}
	}
	if err := checkArch(r, p.cfg.Libvirt.DomainType); err != nil {
		return config.VLAN{}, err
	}
	switch r.Firmware {
	case "":
		r.Firmware = p.cfg.Libvirt.Firmware
	case config.FirmwareBIOS, config.FirmwareEFI, config.FirmwareEFISecure:
	default:
		return config.VLAN{}, invalid("--firmware %q is not %s (SeaBIOS), %s (OVMF) or %s (OVMF with Secure Boot)", r.Firmware, config.FirmwareBIOS, config.FirmwareEFI, config.FirmwareEFISecure)
	}
	if err := checkSecureBootDistro(r.Firmware, r.Distro); err != nil {
		return config.VLAN{}, err
	}
	switch r.Netboot {
	case "", NetbootPXE:
		r.Netboot = NetbootPXE
	case NetbootHTTP:
		switch r.Firmware {
		case config.FirmwareEFI:
		case config.FirmwareEFISecure:
			return config.VLAN{}, invalid("--netboot %s --firmware %s: the Secure Boot chain loads over TFTP only: give --netboot %s, or --firmware %s", NetbootHTTP, r.Firmware, NetbootPXE, config.FirmwareEFI)
		default:
			return config.VLAN{}, invalid("--netboot %s needs UEFI firmware: add --firmware %s (SeaBIOS has no HTTP boot; its iPXE ROM fetches everything over HTTP already)", NetbootHTTP, config.FirmwareEFI)
		}
	default:
		return config.VLAN{}, invalid("--netboot %q is not %s (PXE, the default) or %s (UEFI HTTP boot)", r.Netboot, NetbootPXE, NetbootHTTP)
	}
	var vlan config.VLAN
	switch {
	case r.VLAN == 0 && !r.IPv4.IsValid():
		return config.VLAN{}, invalid("give --vlan (one of %v), --ip, or both", p.cfg.VLANIDs())
	case r.VLAN == 0:
		v, ok := p.cfg.VLANOf(r.IPv4)
		if !ok {
			return config.VLAN{}, invalid("--ip %s is in no configured VLAN subnet: add the VLAN to vlans: in the config or pick an address in one of %s", r.IPv4, p.subnets())
		}
		vlan = v
	default:
		v, ok := p.cfg.VLAN(r.VLAN)
		if !ok {
			return config.VLAN{}, invalid("--vlan %d is not configured: use one of %v or add it to vlans: in the config", r.VLAN, p.cfg.VLANIDs())
		}
		vlan = v
	}
	if r.IPv4.IsValid() {
		if !r.IPv4.Is4() {
			return config.VLAN{}, invalid("--ip %s is not an IPv4 address: IPv6-only hosts get a SLAAC address from --vlan alone", r.IPv4)
		}
		if !vlan.IPv4.IsValid() {
			return config.VLAN{}, invalid("--ip %s: VLAN %d has no ipv4 subnet: omit --ip for an IPv6-only host", r.IPv4, vlan.ID)
		}
		if !vlan.IPv4.Contains(r.IPv4) {
			return config.VLAN{}, invalid("--ip %s is outside VLAN %d's subnet %s: pick an address in %s or the right --vlan", r.IPv4, vlan.ID, vlan.IPv4, vlan.IPv4)
		}
		if r.IPv4 == vlan.IPv4.Masked().Addr() || r.IPv4 == lastAddr(vlan.IPv4) || r.IPv4 == vlan.Gateway {
			return config.VLAN{}, invalid("--ip %s is the network, broadcast or gateway address of VLAN %d: pick a host address", r.IPv4, vlan.ID)
		}
	} else if !vlan.IPv6.IsValid() {
		return config.VLAN{}, invalid("VLAN %d has no ipv6 prefix for an IPv6-only host: give --ip", vlan.ID)
	}
	return vlan, nil
}

// validateHost checks what a VM and a bare-metal host both have: a name and
// the boot intent the command writes.
func validateHost(name, distro, script string, vars []inventory.Var) error {
	if err := inventory.ValidateName(name); err != nil {
		return invalid("%v", err)
	}
	return checkIntent(distro, script, vars)
}

func (p planner) subnets() string {
	var s []string
	for _, v := range p.cfg.VLANs {
		if v.IPv4.IsValid() {
			s = append(s, fmt.Sprintf("%s (VLAN %d)", v.IPv4, v.ID))
		}
	}
	return strings.Join(s, ", ")
}

// plan derives MAC, addresses, records and XML. For IPv6-only hosts mac is
// the random MAC to use.
func (p planner) plan(r Request, vlan config.VLAN, mac net.HardwareAddr) (*Plan, error) {
	h := inventory.Host{Name: r.Name, FQDN: r.Name + "." + p.cfg.DNS.Zone, IPv4: r.IPv4}
	if r.IPv4.IsValid() {
		m, err := p.scheme.StrictMAC(vlan.ID, r.IPv4)
		if err != nil {
			return nil, invalid("%v", err)
		}
		mac = m
	}
	h.MAC = mac
	if vlan.IPv6.IsValid() {
		a, err := inventory.EUI64(vlan.IPv6, mac)
		if err != nil {
			return nil, err
		}
		h.IPv6 = a
	}
	if r.Script != "" {
		h.Intent = h.Intent.With(inventory.KeyFilename, r.Script)
	}
	h.Intent = h.Intent.With(inventory.KeyDistribution, r.Distro)
	if r.Arch == virt.ArchARM64 {
		h.Intent = h.Intent.With(inventory.KeyArch, r.Arch)
	}
	for _, v := range r.Vars {
		h.Intent = h.Intent.With(v.Key, v.Value)
	}
	h.Intent = withFirmware(h.Intent, r.Firmware)
	if r.hypervisor != "" {
		h.Intent = h.Intent.With(inventory.KeyHypervisor, r.hypervisor)
	}
	in, err := h.Intent.ForInstall(p.rand)
	if err != nil {
		return nil, err
	}
	h.Intent = in
	pl := &Plan{
		Name: r.Name, FQDN: h.FQDN, VLAN: vlan.ID, Bridge: vlan.Bridge, MAC: mac.String(),
		Distro: r.Distro, State: string(inventory.StateInstall), Boot: bootOrder(r.Boot), Records: h.Records(p.cfg.DNS.Zone), Pool: p.cfg.Libvirt.Pool,
		Disk: virt.VolumeName(r.Name), DiskGiB: orDefault(r.DiskGiB, DefaultDiskGiB), Hypervisor: r.hypervisor, host: h,
	}
	if h.IPv4.IsValid() {
		a := h.IPv4
		pl.IPv4 = &a
	}
	if h.IPv6.IsValid() {
		a := h.IPv6
		pl.IPv6 = &a
	}
	return pl, nil
}

// domainXML renders the plan's domain with the disk at path.
func (p planner) domainXML(pl *Plan, r Request, diskPath string) (string, error) {
	return virt.BuildDomainXML(virt.DomainSpec{
		Name:        pl.Name,
		Type:        p.cfg.Libvirt.DomainType,
		MemoryMiB:   orDefault(r.MemoryMiB, DefaultMemoryMiB),
		VCPUs:       orDefault(r.VCPUs, DefaultVCPUs),
		MAC:         pl.MAC,
		Bridge:      pl.Bridge,
		DiskPath:    diskPath,
		ROMFile:     romFile(p.cfg.Libvirt.ROM),
		Emulator:    p.cfg.Libvirt.Emulator,
		Firmware:    firmware(r.Firmware),
		Netboot:     netboot(r.Netboot),
		NoIPv4:      pl.IPv4 == nil,
		Boot:        r.Boot,
		ROMDisabled: p.cfg.Libvirt.ROM == config.ROMNone,
		Meta:        virt.Metadata{VLAN: pl.VLAN, Distro: pl.Distro, FQDN: pl.FQDN},
		Arch:        r.Arch,
	}.ForArch())
}

// firmware maps the configured firmware to the domain's.
func firmware(f string) string {
	switch f {
	case config.FirmwareEFI:
		return virt.FirmwareEFI
	case config.FirmwareEFISecure:
		return virt.FirmwareEFISecure
	}
	return virt.FirmwareBIOS
}

// Values of Request.Netboot, `vmprov create --netboot`.
const (
	NetbootPXE  = "pxe"
	NetbootHTTP = "http"
)

// netboot maps Request.Netboot to the domain's.
func netboot(n string) string {
	if n == NetbootHTTP {
		return virt.NetbootHTTP
	}
	return virt.NetbootPXE
}

// withFirmware records in the intent the firmware the boot service must
// know of: Secure Boot (firmware=efi-secure), which the firmware's DHCP
// requests do not show (docs/design.md, "Secure Boot"). Other firmware
// records nothing.
func withFirmware(in inventory.Intent, f string) inventory.Intent {
	if f == config.FirmwareEFISecure {
		return in.With(inventory.KeyFirmware, inventory.FirmwareEFISecure)
	}
	return in
}

// romFile is libvirt.rom as a file; "none" is no file.
func romFile(rom string) string {
	if rom == config.ROMNone {
		return ""
	}
	return rom
}

// bootOrder is the boot order a VM gets for boot.
func bootOrder(boot []string) []string {
	if len(boot) == 0 {
		return virt.DefaultBoot()
	}
	return boot
}

func orDefault(v, d uint) uint {
	if v == 0 {
		return d
	}
	return v
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
