// Package config loads and validates vmprov's one YAML configuration file.
//
// The file is strict: an unknown key is an error, and every value is checked
// before any command changes anything. Defaults are those of the README's
// configuration reference; the MAC prefixes are seed 000's (docs/design.md,
// "Addressing").
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultPath is where the configuration is read from when neither --config
// nor $VMPROV_CONFIG names a file.
const DefaultPath = "/etc/vmprov/vmprov.yaml"

// EnvPath names the environment variable that may hold the configuration path.
const EnvPath = "VMPROV_CONFIG"

// Config is the whole configuration file.
type Config struct {
	DNS     DNS     `yaml:"dns" json:"dns"`
	Libvirt Libvirt `yaml:"libvirt" json:"libvirt"`
	// Hypervisors is the fleet VMs are placed on (docs/design.md, "Many
	// hypervisors"); empty means libvirt.uri alone.
	Hypervisors []Hypervisor `yaml:"hypervisors" json:"hypervisors,omitempty"`
	Boot        Boot         `yaml:"boot" json:"boot"`
	VLANs       []VLAN       `yaml:"vlans" json:"vlans"`
	Serve       Serve        `yaml:"serve" json:"serve"`
	BSDP        BSDP         `yaml:"bsdp" json:"bsdp"`
	Addressing  Addressing   `yaml:"addressing" json:"addressing"`
	IPXE        IPXE         `yaml:"ipxe" json:"ipxe"`
}

// DNS says where vmprov's records live and how updates are signed.
type DNS struct {
	// Server receives RFC 2136 updates and lookups, host:port.
	Server string `yaml:"server" json:"server"`
	// Zone is the forward zone, fully qualified.
	Zone string `yaml:"zone" json:"zone"`
	// ReverseZones pins the reverse zones; when empty they are found with
	// an SOA query for each PTR owner, as nsupdate does.
	ReverseZones []string `yaml:"reverse_zones" json:"reverse_zones"`
	TSIG         TSIG     `yaml:"tsig" json:"tsig"`
	// TTL of the records vmprov writes, in seconds.
	TTL uint32 `yaml:"ttl" json:"ttl"`
}

// TSIG names the key that signs updates.
type TSIG struct {
	Name       string `yaml:"name" json:"name"`
	Algorithm  string `yaml:"algorithm" json:"algorithm"`
	SecretFile string `yaml:"secret_file" json:"secret_file"`
}

// Libvirt says where VM domains are defined.
type Libvirt struct {
	URI        string `yaml:"uri" json:"uri"`
	DomainType string `yaml:"domain_type" json:"domain_type"`
	Pool       string `yaml:"pool" json:"pool"`
	// ROM, when set, is referenced by every interface as <rom file=.../>;
	// ROMNone ("none") loads no option ROM, so UEFI firmware netboots with
	// its own PXE stack.
	ROM string `yaml:"rom" json:"rom,omitempty"`
	// Firmware of new VMs: FirmwareBIOS (SeaBIOS), FirmwareEFI (OVMF) or
	// FirmwareEFISecure (OVMF with Secure Boot).
	Firmware string `yaml:"firmware" json:"firmware"`
	// Emulator overrides the domain's <emulator>; empty lets libvirt choose.
	Emulator string `yaml:"emulator" json:"emulator,omitempty"`
	// Timeout bounds connecting to one hypervisor of hypervisors: and each
	// question to it (its node, a domain, the list of domains): one that
	// does not answer within it counts as unreachable for the rest of the
	// command. libvirt.uri alone has no deadline but libvirt's own.
	// Changes (disk, define, start, destroy) are not cut short; libvirt's
	// keepalive notices a hypervisor that stops answering during one.
	// Default DefaultHypervisorTimeout.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// DefaultHypervisorTimeout is libvirt.timeout's default.
const DefaultHypervisorTimeout = 10 * time.Second

// Hypervisor is one member of the fleet.
type Hypervisor struct {
	// Name is how vmprov names it (an RFC 1123 label): in --on, in the
	// host's TXT (hypervisor=NAME) and in list.
	Name string `yaml:"name" json:"name"`
	// URI is its libvirt URI, e.g. qemu+ssh://root@hv1.example.com/system.
	URI string `yaml:"uri" json:"uri"`
	// MemoryMiB caps the memory vmprov commits on it (every domain's
	// maximum memory, vmprov's or not); 0 means the host's memory.
	MemoryMiB uint64 `yaml:"memory_mib" json:"memory_mib,omitempty"`
}

// Duration is a time.Duration written as Go writes one ("10s", "1m30s").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, e.g. 10s or 1m", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// TFTPOff as serve.tftp turns the TFTP server off.
const TFTPOff = "off"

// TFTPEnabled reports whether serve.tftp asks for a TFTP server.
func (s Serve) TFTPEnabled() bool { return s.TFTP != "" && s.TFTP != TFTPOff }

// Values of Libvirt.ROM and Libvirt.Firmware.
const (
	ROMNone      = "none"
	FirmwareBIOS = "bios"
	FirmwareEFI  = "efi"
	// FirmwareEFISecure is OVMF with Secure Boot and Microsoft's keys on a
	// q35 machine with SMM; the host's TXT records firmware=efi-secure.
	FirmwareEFISecure = "efi-secure"
)

// Boot says how clients reach the boot service.
type Boot struct {
	URL   string `yaml:"url" json:"url"`
	URLv6 string `yaml:"url_v6" json:"url_v6,omitempty"`
	Site  string `yaml:"site" json:"site"`
	// Assets is the base URL of kernel/initrd mirrors used by the install
	// scripts; default {url}/assets.
	Assets string `yaml:"assets" json:"assets"`
}

// VLAN is one provisioning network.
type VLAN struct {
	ID         int          `yaml:"id" json:"id"`
	Bridge     string       `yaml:"bridge" json:"bridge"`
	IPv4       netip.Prefix `yaml:"ipv4" json:"ipv4"`
	Gateway    netip.Addr   `yaml:"gateway" json:"gateway"`
	IPv6       netip.Prefix `yaml:"ipv6" json:"ipv6"`
	Gateway6   netip.Addr   `yaml:"gateway6" json:"gateway6"`
	DNSServers []netip.Addr `yaml:"dns_servers" json:"dns_servers"`
}

// Serve configures `vmprov serve`.
type Serve struct {
	// Interfaces are where DHCPv4 and DHCPv6 listen.
	Interfaces []string `yaml:"interfaces" json:"interfaces"`
	HTTP       string   `yaml:"http" json:"http"`
	// TFTP is the TFTP listen address; TFTPOff ("off") serves no TFTP.
	TFTP string `yaml:"tftp" json:"tftp"`
	Dir  string `yaml:"dir" json:"dir"`
	// LeaseTime of DHCP answers, in seconds.
	LeaseTime uint32 `yaml:"lease_time" json:"lease_time"`
	// ServerIPv4 is the address DHCPv4 answers carry as server identifier and
	// next-server; default: the address of the interface the request came in on.
	ServerIPv4 netip.Addr `yaml:"server_ipv4" json:"server_ipv4"`
	// Loaders maps a client architecture (DHCP option 93/61) to the loader
	// file served over TFTP to PXE clients.
	Loaders map[uint16]string `yaml:"loaders" json:"loaders"`
	// LoaderDirs are where TFTP and HTTP's /ipxe/ look for a file (a plain
	// name, such as a loader) that serve.dir/tftp resp. serve.dir/ipxe
	// lacks, in order: Debian's packaged loaders by default
	// (DefaultLoaderDirs). An empty list turns the lookup off.
	LoaderDirs []string `yaml:"loader_dirs" json:"loader_dirs"`
	// AssetDirs are folders served under /assets/PREFIX/ (HTTP) and
	// assets/PREFIX/ (TFTP) for files serve.dir/assets lacks: Debian's
	// packaged bookworm installers by default (DefaultAssetDirs). An empty
	// list serves none.
	AssetDirs []AssetDir `yaml:"asset_dirs" json:"asset_dirs"`
	// SecureBoot is the Secure Boot chain of hosts with firmware=efi-secure.
	SecureBoot SecureBoot `yaml:"secure_boot" json:"secure_boot"`
	// SignedGrubConfigs maps a client architecture to the TFTP name where
	// the distribution's signed GRUB of that architecture, which a shim
	// loads, reads its configuration: its built-in prefix followed by
	// /grub.cfg. serve renders the requester's grub.cfg there, loading the
	// kernel and initrd over TFTP (docs/design.md, "Secure Boot"). Secure
	// Boot hosts (serve.secure_boot) and arm64 UEFI hosts (serve.loaders'
	// default for 11 is Debian's shim) boot this chain. Default
	// DefaultSignedGrubConfigs.
	SignedGrubConfigs map[uint16]string `yaml:"signed_grub_cfg" json:"signed_grub_cfg"`
	// DHCPv6 tunes the DHCPv6 server.
	DHCPv6 DHCPv6 `yaml:"dhcp6" json:"dhcp6"`
	// PublicMACScripts serves DIR/mac/MAC/ipxe to anyone who asks, as the
	// web server of seed 000 did. Off by default: strict MACs follow from
	// addresses, so a per-MAC script goes only to the FCrDNS-confirmed host
	// with that MAC, and everyone else gets the 404 of a missing script.
	PublicMACScripts bool `yaml:"public_mac_scripts" json:"public_mac_scripts"`
	// Limits bounds the transfers and connections served at once.
	Limits Limits `yaml:"limits" json:"limits"`
	// TSIG is the key vmprov serve signs its only DNS writes with, the
	// build state changes of docs/design.md ("A host's life"), so that the
	// DNS server may restrict it to TXT updates. Unset (no name), it is
	// dns.tsig.
	TSIG TSIG `yaml:"tsig" json:"tsig"`
	// DoneSecretFile holds the secret that keys the installers' callback
	// tokens; every serve instance of a zone needs the same one. Empty: a
	// secret derived from serve.tsig's.
	DoneSecretFile string `yaml:"done_secret_file" json:"done_secret_file"`
}

// Limits bounds what `vmprov serve` holds at once (docs/design.md). The
// defaults fit deploy/vmprov-serve.service's LimitNOFILE: raising them
// needs Files() file descriptors.
type Limits struct {
	// TFTPTransfers is how many TFTP transfers run at once; requests
	// beyond it are dropped unanswered, and clients retry them.
	TFTPTransfers int `yaml:"tftp_transfers" json:"tftp_transfers"`
	// TFTPTransfersPerClient is how many of them one source address runs.
	TFTPTransfersPerClient int `yaml:"tftp_transfers_per_client" json:"tftp_transfers_per_client"`
	// HTTPConnections is how many HTTP connections are open at once;
	// further ones wait in the listen queue until one closes.
	HTTPConnections int `yaml:"http_connections" json:"http_connections"`
}

// Defaults of serve.limits, and the file descriptors each transfer or
// connection may hold: a TFTP transfer its socket and the file it sends;
// an HTTP connection its socket, the file it sends and a DNS query's
// socket. FilesReserved covers the rest: listeners, DHCP sockets, the DNS
// client, netlink, standard streams and the Go runtime.
const (
	DefaultTFTPTransfers          = 256
	DefaultTFTPTransfersPerClient = 8
	DefaultHTTPConnections        = 512

	FilesPerTFTPTransfer   = 2
	FilesPerHTTPConnection = 3
	FilesReserved          = 64
)

// Files is how many file descriptors vmprov serve may hold at these
// limits.
func (l Limits) Files() int {
	return l.TFTPTransfers*FilesPerTFTPTransfer + l.HTTPConnections*FilesPerHTTPConnection + FilesReserved
}

// DHCPv6 tunes `vmprov serve`'s DHCPv6 server.
type DHCPv6 struct {
	// ServerDUID is the DUID the server identifies itself with, as hex bytes
	// (00:03:00:01:02:00:5e:00:53:01 or 00030001...). Empty: a DUID-LL from
	// the MAC of the first DHCP interface. Instances serving one VLAN must
	// differ, as RFC 8415 §11 requires of servers.
	ServerDUID string `yaml:"server_duid" json:"server_duid"`
	// AnswerUnidentified gives clients whose MAC cannot be learnt (DUID-UUID
	// or DUID-EN, no EUI-64 link-local, no RFC 6939 relay option) the
	// stateless boot answer. Off by default: on a shared VLAN such clients
	// may belong to another service.
	AnswerUnidentified bool `yaml:"answer_unidentified" json:"answer_unidentified"`
}

// DUID returns ServerDUID as bytes; nil when it is empty.
func (d DHCPv6) DUID() ([]byte, error) {
	if d.ServerDUID == "" {
		return nil, nil
	}
	h := strings.NewReplacer(":", "", "-", "").Replace(d.ServerDUID)
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 4 || len(b) > 130 {
		return nil, fmt.Errorf("serve.dhcp6.server_duid %q is not a DUID: give 4 to 130 hex bytes, e.g. 00:03:00:01:02:00:5e:00:53:01 (DUID-LL)", d.ServerDUID)
	}
	return b, nil
}

// BSDP configures Apple NetBoot for Intel Macs.
type BSDP struct {
	Priority uint16      `yaml:"priority" json:"priority"`
	Images   []BSDPImage `yaml:"images" json:"images"`
}

// BSDPImage is one NetBoot image offered to Macs.
type BSDPImage struct {
	ID       uint32 `yaml:"id" json:"id"`
	Name     string `yaml:"name" json:"name"`
	BootFile string `yaml:"bootfile" json:"bootfile"`
}

// Addressing holds the MAC prefixes of the addressing formulas
// (docs/design.md, "Addressing").
type Addressing struct {
	// StrictMACPrefix starts MACs derived from VLAN + IPv4.
	StrictMACPrefix string `yaml:"strict_mac_prefix" json:"strict_mac_prefix"`
	// SLAACMACPrefix starts random MACs of IPv6-only hosts.
	SLAACMACPrefix string `yaml:"slaac_mac_prefix" json:"slaac_mac_prefix"`
}

// IPXE holds the site options of `vmprov ipxe build`.
type IPXE struct {
	// Options are extra iPXE config/general.h switches to #define, e.g.
	// DOWNLOAD_PROTO_HTTPS, PING_CMD, NSLOOKUP_CMD.
	Options []string `yaml:"options" json:"options"`
	// Serial adds a serial console (config/local/console.h).
	Serial bool `yaml:"serial" json:"serial"`
}

// Path returns the configuration path: flag, else $VMPROV_CONFIG, else
// DefaultPath.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config: %s does not exist: write one (see README) or pass --config FILE or set $%s", path, EnvPath)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly, applies defaults and validates.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s (keys and their spelling are listed in README's configuration reference)", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills every unset value with its documented default.
func (c *Config) SetDefaults() {
	if c.DNS.Server == "" {
		c.DNS.Server = "127.0.0.1:53"
	}
	if c.DNS.Zone != "" && !strings.HasSuffix(c.DNS.Zone, ".") {
		c.DNS.Zone += "."
	}
	for i, z := range c.DNS.ReverseZones {
		if !strings.HasSuffix(z, ".") {
			c.DNS.ReverseZones[i] = z + "."
		}
	}
	if c.DNS.TSIG.Name == "" {
		c.DNS.TSIG.Name = "vmprov."
	}
	if !strings.HasSuffix(c.DNS.TSIG.Name, ".") {
		c.DNS.TSIG.Name += "."
	}
	if c.DNS.TSIG.Algorithm == "" {
		c.DNS.TSIG.Algorithm = "hmac-sha256"
	}
	if c.DNS.TSIG.SecretFile == "" {
		c.DNS.TSIG.SecretFile = "/etc/vmprov/tsig.secret"
	}
	if c.DNS.TTL == 0 {
		c.DNS.TTL = 300
	}
	if c.Libvirt.URI == "" {
		c.Libvirt.URI = "qemu:///system"
	}
	if c.Libvirt.DomainType == "" {
		c.Libvirt.DomainType = "kvm"
	}
	if c.Libvirt.Pool == "" {
		c.Libvirt.Pool = "default"
	}
	if c.Libvirt.Firmware == "" {
		c.Libvirt.Firmware = FirmwareBIOS
	}
	if c.Libvirt.Timeout.Duration == 0 {
		c.Libvirt.Timeout.Duration = DefaultHypervisorTimeout
	}
	if c.Boot.Site == "" && c.DNS.Zone != "" {
		c.Boot.Site, _, _ = strings.Cut(c.DNS.Zone, ".")
	}
	c.Boot.URL = strings.TrimSuffix(c.Boot.URL, "/")
	c.Boot.URLv6 = strings.TrimSuffix(c.Boot.URLv6, "/")
	if c.Boot.Assets == "" && c.Boot.URL != "" {
		c.Boot.Assets = c.Boot.URL + "/assets"
	}
	for i := range c.VLANs {
		if c.VLANs[i].Bridge == "" {
			c.VLANs[i].Bridge = fmt.Sprintf("br%d", c.VLANs[i].ID)
		}
	}
	if c.Serve.HTTP == "" {
		c.Serve.HTTP = ":80"
	}
	if c.Serve.TFTP == "" {
		c.Serve.TFTP = ":69"
	}
	if c.Serve.Dir == "" {
		c.Serve.Dir = "/var/lib/vmprov"
	}
	if c.Serve.LeaseTime == 0 {
		c.Serve.LeaseTime = 3600
	}
	if c.Serve.Limits.TFTPTransfers == 0 {
		c.Serve.Limits.TFTPTransfers = DefaultTFTPTransfers
	}
	if c.Serve.Limits.TFTPTransfersPerClient == 0 {
		c.Serve.Limits.TFTPTransfersPerClient = min(DefaultTFTPTransfersPerClient, c.Serve.Limits.TFTPTransfers)
	}
	if c.Serve.Limits.HTTPConnections == 0 {
		c.Serve.Limits.HTTPConnections = DefaultHTTPConnections
	}
	if c.Serve.TSIG.Name == "" {
		c.Serve.TSIG = c.DNS.TSIG
	}
	if !strings.HasSuffix(c.Serve.TSIG.Name, ".") {
		c.Serve.TSIG.Name += "."
	}
	if c.Serve.TSIG.Algorithm == "" {
		c.Serve.TSIG.Algorithm = "hmac-sha256"
	}
	if c.Serve.Loaders == nil {
		c.Serve.Loaders = DefaultLoaders()
	}
	if c.Serve.LoaderDirs == nil {
		c.Serve.LoaderDirs = DefaultLoaderDirs()
	}
	if c.Serve.AssetDirs == nil {
		c.Serve.AssetDirs = DefaultAssetDirs()
	}
	c.Serve.SecureBoot.setDefaults()
	if c.Serve.SignedGrubConfigs == nil {
		c.Serve.SignedGrubConfigs = DefaultSignedGrubConfigs()
	}
	if c.BSDP.Priority == 0 {
		c.BSDP.Priority = 32768
	}
	if c.Addressing.StrictMACPrefix == "" {
		c.Addressing.StrictMACPrefix = "02:04:06"
	}
	if c.Addressing.SLAACMACPrefix == "" {
		c.Addressing.SLAACMACPrefix = "2a:4a:6a"
	}
}

// DefaultLoaders is the PXE loader table by client architecture
// (RFC 4578 section 2.1 / IANA processor architecture types). arm64 UEFI
// (11) gets Debian's netboot shim, found in serve.loader_dirs
// (debian-installer-12-netboot-arm64), as Debian packages no arm64 iPXE:
// the shim loads the signed grubaa64.efi beside it, which reads the grub.cfg
// of serve.signed_grub_cfg, the chain of Secure Boot hosts
// (docs/design.md, "Secure Boot").
func DefaultLoaders() map[uint16]string {
	return map[uint16]string{
		0:  "undionly.kpxe",   // x86 BIOS
		6:  "ipxe-i386.efi",   // x86 UEFI
		7:  "snponly.efi",     // x64 UEFI: iPXE on the firmware's network driver (SNP)
		9:  "snponly.efi",     // EBC, used by x64 UEFI firmware in practice
		11: "bootnetaa64.efi", // arm64 UEFI: Debian's shim → signed GRUB
	}
}

// DefaultLoaderDirs is serve.loader_dirs unless set: the folders of
// Debian's packages ipxe (undionly.kpxe, ipxe.efi, snponly.efi) and
// debian-installer-12-netboot-amd64 and -arm64 (shim, GRUB, pxelinux.0).
func DefaultLoaderDirs() []string {
	return []string{
		"/usr/lib/ipxe",
		"/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64",
		"/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64",
	}
}

// tsigAlgorithms are the algorithms accepted for dns.tsig.algorithm.
func tsigAlgorithms() []string {
	return []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"}
}

// Validate checks every value; the error names the key, the value and the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.DNS.Zone == "" {
		bad("dns.zone is empty: set the forward zone vmprov writes to, e.g. example.com.")
	} else if !validDomain(c.DNS.Zone) {
		bad("dns.zone %q is not a domain name", c.DNS.Zone)
	}
	if _, err := netip.ParseAddrPort(c.DNS.Server); err != nil {
		bad("dns.server %q is not ADDRESS:PORT (e.g. 127.0.0.1:53 or [2001:db8::53]:53)", c.DNS.Server)
	}
	for _, z := range c.DNS.ReverseZones {
		if !strings.HasSuffix(z, ".in-addr.arpa.") && !strings.HasSuffix(z, ".ip6.arpa.") {
			bad("dns.reverse_zones: %q is not under in-addr.arpa. or ip6.arpa.", z)
		}
	}
	if !validDomain(c.DNS.TSIG.Name) {
		bad("dns.tsig.name %q is not a key name (e.g. vmprov.)", c.DNS.TSIG.Name)
	}
	if !contains(tsigAlgorithms(), strings.TrimSuffix(strings.ToLower(c.DNS.TSIG.Algorithm), ".")) {
		bad("dns.tsig.algorithm %q is not supported: use one of %s", c.DNS.TSIG.Algorithm, strings.Join(tsigAlgorithms(), ", "))
	}
	if !validDomain(c.Serve.TSIG.Name) {
		bad("serve.tsig.name %q is not a key name (e.g. vmprov-serve.)", c.Serve.TSIG.Name)
	}
	if !contains(tsigAlgorithms(), strings.TrimSuffix(strings.ToLower(c.Serve.TSIG.Algorithm), ".")) {
		bad("serve.tsig.algorithm %q is not supported: use one of %s", c.Serve.TSIG.Algorithm, strings.Join(tsigAlgorithms(), ", "))
	}
	if c.Serve.TSIG.SecretFile == "" {
		bad("serve.tsig.secret_file is empty: key %s needs the file holding its secret (or leave serve.tsig unset to use dns.tsig)", c.Serve.TSIG.Name)
	}
	switch c.Libvirt.DomainType {
	case "kvm", "qemu":
	default:
		bad("libvirt.domain_type %q is not kvm or qemu", c.Libvirt.DomainType)
	}
	if c.Libvirt.Firmware != FirmwareBIOS && c.Libvirt.Firmware != FirmwareEFI && c.Libvirt.Firmware != FirmwareEFISecure {
		bad("libvirt.firmware %q is not %s (SeaBIOS), %s (OVMF) or %s (OVMF with Secure Boot)", c.Libvirt.Firmware, FirmwareBIOS, FirmwareEFI, FirmwareEFISecure)
	}
	if c.Libvirt.Timeout.Duration < 0 {
		bad("libvirt.timeout %s is negative: give a positive duration such as 10s", c.Libvirt.Timeout)
	}
	names, uris := map[string]bool{}, map[string]string{}
	for i, h := range c.Hypervisors {
		switch {
		case !validLabel(h.Name):
			bad("hypervisors[%d].name %q is not a host name label (letters, digits, hyphens)", i, h.Name)
		case names[h.Name]:
			bad("hypervisors[%d].name %q is used twice: each hypervisor needs its own name", i, h.Name)
		case h.URI == "":
			bad("hypervisors[%d] (%s) has no uri: give its libvirt URI, e.g. qemu+ssh://root@%s.example.com/system", i, h.Name, h.Name)
		case uris[h.URI] != "":
			bad("hypervisors[%d] (%s) has the uri of %s (%s): one hypervisor, one entry", i, h.Name, uris[h.URI], h.URI)
		}
		names[h.Name], uris[h.URI] = true, h.Name
	}
	if r := c.Libvirt.ROM; r != "" && r != ROMNone && !strings.HasPrefix(r, "/") {
		bad("libvirt.rom %q is not an absolute path: give the ROM's path on the hypervisor, or %q for no option ROM", r, ROMNone)
	}
	if c.Boot.URL != "" {
		if err := checkURL(c.Boot.URL); err != nil {
			bad("boot.url %q: %v", c.Boot.URL, err)
		}
	}
	if c.Boot.URLv6 != "" {
		if err := checkURL(c.Boot.URLv6); err != nil {
			bad("boot.url_v6 %q: %v", c.Boot.URLv6, err)
		}
	}
	if c.Boot.Site != "" && !validLabel(c.Boot.Site) {
		bad("boot.site %q is not a single DNS label", c.Boot.Site)
	}
	if _, err := ParseMACPrefix(c.Addressing.StrictMACPrefix); err != nil {
		bad("addressing.strict_mac_prefix: %v", err)
	}
	if _, err := ParseMACPrefix(c.Addressing.SLAACMACPrefix); err != nil {
		bad("addressing.slaac_mac_prefix: %v", err)
	}
	seen := map[int]bool{}
	for i, v := range c.VLANs {
		where := fmt.Sprintf("vlans[%d] (id %d)", i, v.ID)
		if v.ID < 1 || v.ID > 4094 {
			bad("%s: id %d is not a VLAN id: use 1 to 4094", where, v.ID)
		}
		if seen[v.ID] {
			bad("%s: id %d is listed twice", where, v.ID)
		}
		seen[v.ID] = true
		if !v.IPv4.IsValid() && !v.IPv6.IsValid() {
			bad("%s: set ipv4, ipv6 or both", where)
		}
		if v.IPv4.IsValid() {
			if !v.IPv4.Addr().Is4() {
				bad("%s: ipv4 %s is not an IPv4 prefix", where, v.IPv4)
			} else if v.IPv4.Bits() < 20 {
				bad("%s: ipv4 %s is larger than /20: the strict MAC carries only the low 12 bits of the address; split it into /20 or smaller VLAN subnets", where, v.IPv4)
			} else if v.IPv4.Masked() != v.IPv4 {
				bad("%s: ipv4 %s has host bits set: use %s", where, v.IPv4, v.IPv4.Masked())
			}
			if v.Gateway.IsValid() && !v.IPv4.Contains(v.Gateway) {
				bad("%s: gateway %s is outside %s", where, v.Gateway, v.IPv4)
			}
		} else if v.Gateway.IsValid() {
			bad("%s: gateway %s set without ipv4", where, v.Gateway)
		}
		if v.IPv6.IsValid() {
			if !v.IPv6.Addr().Is6() || v.IPv6.Addr().Is4In6() {
				bad("%s: ipv6 %s is not an IPv6 prefix", where, v.IPv6)
			} else if v.IPv6.Bits() != 64 {
				bad("%s: ipv6 %s is not a /64: SLAAC needs a /64 prefix", where, v.IPv6)
			} else if v.IPv6.Masked() != v.IPv6 {
				bad("%s: ipv6 %s has host bits set: use %s", where, v.IPv6, v.IPv6.Masked())
			}
		}
		if !validIfName(v.Bridge) {
			bad("%s: bridge %q is not an interface name", where, v.Bridge)
		}
		for j, o := range c.VLANs[:i] {
			if v.IPv4.IsValid() && o.IPv4.IsValid() && v.IPv4.Overlaps(o.IPv4) {
				bad("%s: ipv4 %s overlaps vlans[%d] %s", where, v.IPv4, j, o.IPv4)
			}
			if v.IPv6.IsValid() && o.IPv6.IsValid() && v.IPv6.Overlaps(o.IPv6) {
				bad("%s: ipv6 %s overlaps vlans[%d] %s", where, v.IPv6, j, o.IPv6)
			}
		}
	}
	if _, _, err := net.SplitHostPort(c.Serve.HTTP); err != nil {
		bad("serve.http %q is not [ADDRESS]:PORT (e.g. :80 or 192.0.2.1:8080)", c.Serve.HTTP)
	}
	for _, d := range c.Serve.LoaderDirs {
		if !filepath.IsAbs(d) {
			bad("serve.loader_dirs: %q is not an absolute path (e.g. /usr/lib/ipxe); [] turns the lookup off", d)
		}
	}
	checkAssetDirs(c.Serve.AssetDirs, bad)
	if c.Serve.TFTPEnabled() {
		if _, _, err := net.SplitHostPort(c.Serve.TFTP); err != nil {
			bad("serve.tftp %q is not [ADDRESS]:PORT (e.g. :69) or %s", c.Serve.TFTP, TFTPOff)
		}
	}
	if l := c.Serve.Limits; l.TFTPTransfers < 1 || l.TFTPTransfers > 16384 {
		bad("serve.limits.tftp_transfers %d is out of range: use 1 to 16384 (default %d)", l.TFTPTransfers, DefaultTFTPTransfers)
	} else if l.TFTPTransfersPerClient < 1 || l.TFTPTransfersPerClient > l.TFTPTransfers {
		bad("serve.limits.tftp_transfers_per_client %d is out of range: use 1 to serve.limits.tftp_transfers (%d)", l.TFTPTransfersPerClient, l.TFTPTransfers)
	}
	if l := c.Serve.Limits; l.HTTPConnections < 1 || l.HTTPConnections > 65536 {
		bad("serve.limits.http_connections %d is out of range: use 1 to 65536 (default %d)", l.HTTPConnections, DefaultHTTPConnections)
	}
	c.Serve.SecureBoot.validate(bad)
	validateSignedGrubConfigs(c.Serve.SignedGrubConfigs, bad)
	if _, err := c.Serve.DHCPv6.DUID(); err != nil {
		errs = append(errs, err)
	}
	for _, im := range c.BSDP.Images {
		if im.Name == "" || len(im.Name) > 246 || im.BootFile == "" {
			bad("bsdp.images: image %#x needs a name (at most 246 bytes, Apple's limit) and a bootfile", im.ID)
		}
	}
	return errors.Join(errs...)
}

// VLAN returns the VLAN with the given id.
func (c *Config) VLAN(id int) (VLAN, bool) {
	for _, v := range c.VLANs {
		if v.ID == id {
			return v, true
		}
	}
	return VLAN{}, false
}

// VLANOf returns the VLAN whose IPv4 or IPv6 subnet holds a.
func (c *Config) VLANOf(a netip.Addr) (VLAN, bool) {
	a = a.Unmap()
	for _, v := range c.VLANs {
		if (v.IPv4.IsValid() && v.IPv4.Contains(a)) || (v.IPv6.IsValid() && v.IPv6.Contains(a)) {
			return v, true
		}
	}
	return VLAN{}, false
}

// VLANIDs lists the configured VLAN ids, for error messages.
func (c *Config) VLANIDs() []int {
	ids := make([]int, 0, len(c.VLANs))
	for _, v := range c.VLANs {
		ids = append(ids, v.ID)
	}
	return ids
}

// ParseMACPrefix parses a three-octet MAC prefix such as "02:04:06".
func ParseMACPrefix(s string) ([3]byte, error) {
	var p [3]byte
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return p, fmt.Errorf("%q is not three octets like 02:04:06", s)
	}
	for i, h := range parts {
		var b byte
		if len(h) != 2 {
			return p, fmt.Errorf("%q is not three octets like 02:04:06", s)
		}
		if _, err := fmt.Sscanf(h, "%02x", &b); err != nil {
			return p, fmt.Errorf("%q is not three octets like 02:04:06", s)
		}
		p[i] = b
	}
	if p[0]&1 != 0 {
		return p, fmt.Errorf("%q is a multicast prefix: the first octet must be even", s)
	}
	return p, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("use an http:// or https:// URL")
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	if strings.ContainsAny(s, " \t\n\"'$;&|#") {
		return errors.New("the URL has a character iPXE scripts cannot carry")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) && l != "_mac" {
			return false
		}
	}
	return true
}

// validLabel reports whether s is an RFC 1123 host label.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validIfName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	return !strings.ContainsAny(s, " /\t\n:")
}
