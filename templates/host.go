package templates

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Host is the input of the per-host files: answer files, grub.cfg and pxelinux.cfg. The
// boot service fills it from DNS (A/AAAA, TXT) for the requesting host only.
type Host struct {
	FQDN         string           // test-centos7.example.com (a trailing dot is dropped)
	Name         string           // short name; empty means the first label of FQDN
	Domain       string           // empty means FQDN without its first label
	IPv4         netip.Addr       // zero if the host is IPv6-only
	IPv6         netip.Addr       // zero if the host has no AAAA
	MAC          net.HardwareAddr // the provisioning interface
	Distribution string           // a Distributions name
	Arch         string           // empty means TXT arch=, else x86_64
	BootURL      string           // boot service base URL
	MirrorURL    string           // empty means BootURL + "/assets"
	Site         string           // bootstrap site
	Vars         []Var            // TXT variables in TXT order (filename, distribution included or not)
	SSHKeys      []string         // authorized keys for root (or the install user); none = console only
	// DoneToken is the host's installer callback token (docs/design.md, "A host's life"):
	// the answer files hand BOOT/done?token=DoneToken to firstboot --install, which calls
	// it once the system is installed. Empty: no callback.
	DoneToken string
}

// host is a validated Host with derived values for the templates.
type host struct {
	Host
	Dist        Distribution
	PXEBootURL  string // mirror + PXEBoot with ${arch} expanded
	RepoURL     string // FamilyEL
	ISOURL      string // FamilyUbuntu
	MirrorHost  string // FamilyDebian: mirror/http/hostname
	MirrorDir   string // FamilyDebian: mirror/http/directory
	MirrorProto string // FamilyDebian: mirror/protocol
	InstallURL  string // BOOT/bootstrap/install/{distribution}/{arch}
	Firstboot   string // firstboot URL (TXT firstboot overrides the default)
	Console     string // console= argument (TXT console overrides)
	Cmdline     string // kernel command line, as install/default.ipxe builds it
	HasIPv4     bool
	MACString   string
	DoneURL     string // BootURL/done?token=DoneToken; empty without a token
}

// ErrInvalidHost is wrapped by errors about Host fields other than variables and URLs.
var ErrInvalidHost = errors.New("invalid host")

func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validDomainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

func validSSHKey(k string) error {
	if k == "" || len(k) > 16384 {
		return fmt.Errorf("%w: ssh key: empty or too long", ErrInvalidHost)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 0x20 || c > 0x7e || strings.IndexByte("\"'\\`$;&|<>", c) >= 0 {
			return fmt.Errorf("%w: ssh key %.20q...: character %q at %d is not allowed", ErrInvalidHost, k, c, i)
		}
	}
	return nil
}

func varValue(vars []Var, name string) (string, bool) {
	for _, v := range vars {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

// prepare validates h and computes the values the templates use.
func (h Host) prepare() (*host, error) {
	h.FQDN = strings.TrimSuffix(h.FQDN, ".")
	if !validDomainName(h.FQDN) || !strings.Contains(h.FQDN, ".") {
		return nil, fmt.Errorf("%w: FQDN %q is not a fully qualified host name", ErrInvalidHost, h.FQDN)
	}
	first, rest, _ := strings.Cut(h.FQDN, ".")
	if h.Name == "" {
		h.Name = first
	}
	if h.Domain == "" {
		h.Domain = rest
	}
	h.Domain = strings.TrimSuffix(h.Domain, ".")
	if !validLabel(h.Name) {
		return nil, fmt.Errorf("%w: name %q is not an RFC 1123 label", ErrInvalidHost, h.Name)
	}
	if !validDomainName(h.Domain) {
		return nil, fmt.Errorf("%w: domain %q is not a domain name", ErrInvalidHost, h.Domain)
	}
	if h.IPv4.IsValid() && !h.IPv4.Is4() {
		return nil, fmt.Errorf("%w: IPv4 %s is not an IPv4 address", ErrInvalidHost, h.IPv4)
	}
	if h.IPv6.IsValid() && (!h.IPv6.Is6() || h.IPv6.Is4In6()) {
		return nil, fmt.Errorf("%w: IPv6 %s is not an IPv6 address", ErrInvalidHost, h.IPv6)
	}
	if len(h.MAC) != 6 {
		return nil, fmt.Errorf("%w: MAC %q is not a 48-bit MAC address", ErrInvalidHost, h.MAC.String())
	}
	d, err := LookupDistribution(h.Distribution)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHost, err)
	}
	if v, ok := varValue(h.Vars, "arch"); ok && h.Arch == "" {
		h.Arch = v // TXT arch=, as install/default.ipxe reads it
	}
	if h.Arch == "" {
		h.Arch = ArchX8664
	}
	if err := CheckVar(Var{Name: intentArch, Value: h.Arch}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHost, err)
	}
	if err := ValidURL(h.BootURL); err != nil {
		return nil, fmt.Errorf("%w: boot URL: %w", ErrInvalidHost, err)
	}
	if h.MirrorURL == "" {
		h.MirrorURL = h.BootURL + "/assets"
	}
	if v, ok := varValue(h.Vars, "mirror"); ok {
		h.MirrorURL = v
	}
	if err := ValidURL(h.MirrorURL); err != nil {
		return nil, fmt.Errorf("%w: mirror URL: %w", ErrInvalidHost, err)
	}
	if err := validSegment("site", h.Site); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHost, err)
	}
	if err := validVars(h.Vars); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHost, err)
	}
	for _, k := range h.SSHKeys {
		if err := validSSHKey(k); err != nil {
			return nil, err
		}
	}
	x := &host{Host: h, Dist: d, HasIPv4: h.IPv4.IsValid(), MACString: h.MAC.String()}
	x.InstallURL = h.BootURL + "/bootstrap/install/" + d.Name + "/" + h.Arch
	x.PXEBootURL = h.MirrorURL + "/" + expandArch(d.PXEBoot, h.Arch)
	if v, ok := varValue(h.Vars, "pxeboot"); ok {
		x.PXEBootURL = v
	}
	x.RepoURL = h.MirrorURL + "/" + expandArch(d.Repo, h.Arch)
	if v, ok := varValue(h.Vars, "repo"); ok {
		x.RepoURL = v
	}
	x.ISOURL = h.MirrorURL + "/" + d.ISO
	if v, ok := varValue(h.Vars, "iso"); ok {
		x.ISOURL = v
	}
	u, _ := url.Parse(h.MirrorURL) // validated above
	x.MirrorProto, x.MirrorHost, x.MirrorDir = u.Scheme, rawHost(h.MirrorURL, u), u.EscapedPath()+"/"+d.Archive
	x.Firstboot = h.BootURL + "/bootstrap/install/" + d.Name + "/firstboot"
	if v, ok := varValue(h.Vars, "firstboot"); ok {
		x.Firstboot = v
	}
	x.Console = "console=ttyS0,115200"
	if h.Arch == ArchARM64 {
		x.Console = "console=ttyAMA0,115200" // the PL011 UART of arm64 servers and QEMU virt
	}
	if v, ok := varValue(h.Vars, "console"); ok {
		x.Console = v
	}
	x.Cmdline = x.cmdline()
	if h.DoneToken != "" {
		if !validToken(h.DoneToken) {
			return nil, fmt.Errorf("%w: done token %q: want letters, digits, '.', ':' and '-' only", ErrInvalidHost, h.DoneToken)
		}
		x.DoneURL = h.BootURL + "/done?token=" + h.DoneToken
	}
	return x, nil
}

// validToken reports whether a callback token is safe in a URL's query, shell single
// quotes, a preseed line and YAML: at most 320 bytes of [A-Za-z0-9.:-].
func validToken(s string) bool {
	if len(s) > 320 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// rawHost returns the host (and port) of raw, which parses to u, as raw spells it.
//
// The templates write URL parts as the TXT value spells them, percent-escapes kept:
// rawHost for the host and u.EscapedPath() for the path, never u.Host or u.Path. Those
// are decoded, and a decoded %0A, %20 or %27 (in a path, or in an IPv6 zone, which
// net/url decodes to spaces and quotes too) adds a preseed directive or a GRUB command.
// The escaped form is also what the consumers want: debian-installer, apt and GRUB's http
// put the host and directory back into a URL or request line as they are, so a mirror
// whose path holds an escape (%7E) keeps working, where refusing escapes would break it.
func rawHost(raw string, u *url.URL) string {
	a := raw[len(u.Scheme)+len("://"):] // url.Parse found a host, so "//" follows the scheme
	if i := strings.IndexAny(a, "/?#"); i >= 0 {
		a = a[:i]
	}
	if i := strings.LastIndex(a, "@"); i >= 0 {
		a = a[i+1:]
	}
	return a
}

// answerURL is where the installer fetches its answer file (TXT overrides apply).
func (x *host) answerURL() string {
	switch x.Dist.Family {
	case FamilyEL:
		if v, ok := varValue(x.Vars, "kickstart"); ok {
			return v
		}
		return x.InstallURL + "/ks.cfg"
	case FamilyDebian:
		if v, ok := varValue(x.Vars, "preseed"); ok {
			return v
		}
		return x.InstallURL + "/preseed.cfg"
	default:
		if v, ok := varValue(x.Vars, "autoinstall"); ok {
			return v
		}
		return x.InstallURL + "/"
	}
}

// cmdline builds the kernel command line exactly as install/default.ipxe does at boot.
func (x *host) cmdline() string {
	var a []string
	switch x.Dist.Family {
	case FamilyEL:
		a = append(a, "inst.ks="+x.answerURL(), "inst.repo="+x.RepoURL)
	case FamilyDebian:
		a = append(a, "DEBIAN_FRONTEND=text", "auto=true", "priority=critical", "interface=auto",
			"url="+x.answerURL(), "hostname="+x.Name, "domain="+x.Domain, "locale=en_US.UTF-8",
			"keyboard-configuration/xkb-keymap=us", "console-setup/ask_detect=false")
	case FamilyUbuntu:
		a = append(a, "ip=dhcp", "url="+x.ISOURL, "autoinstall", "ds=nocloud-net;s="+x.answerURL(),
			"cloud-config-url=/dev/null")
	}
	ifnames := "0"
	if v, ok := varValue(x.Vars, "ifnames"); ok {
		ifnames = v
	}
	a = append(a, "net.ifnames="+ifnames, "firstboot="+x.Firstboot, x.Console)
	names := make([]string, len(x.Vars))
	for i, v := range x.Vars {
		names[i] = v.Name
	}
	for _, n := range kernelVars(names) {
		v, _ := varValue(x.Vars, n)
		a = append(a, n+"="+v)
	}
	if v, ok := varValue(x.Vars, "extra"); ok {
		a = append(a, v)
	}
	return strings.Join(a, " ")
}

// KernelCmdline returns the kernel command line install/default.ipxe builds for h at boot;
// grub.cfg uses the same one.
func KernelCmdline(h Host) (string, error) {
	x, err := h.prepare()
	if err != nil {
		return "", fmt.Errorf("kernel command line: %w", err)
	}
	return x.Cmdline, nil
}

func renderHost(what, path string, h Host, family Family) ([]byte, error) {
	x, err := h.prepare()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if family != "" && x.Dist.Family != family {
		return nil, fmt.Errorf("%s: %w: distribution %s is family %s, not %s", what, ErrInvalidHost, x.Dist.Name, x.Dist.Family, family)
	}
	return render(path, x)
}

// Kickstart renders ks.cfg for an EL-family host: url repo, network with the host name,
// root password locked with the host's SSH keys, and a %post that installs firstboot.
func Kickstart(h Host) ([]byte, error) { return renderHost("kickstart", "ks.cfg", h, FamilyEL) }

// Preseed renders preseed.cfg for a debian-installer host.
func Preseed(h Host) ([]byte, error) { return renderHost("preseed", "preseed.cfg", h, FamilyDebian) }

// UserData renders the autoinstall user-data for a Subiquity (Ubuntu ≥ 20.04) host.
func UserData(h Host) ([]byte, error) {
	return renderHost("autoinstall user-data", "user-data", h, FamilyUbuntu)
}

// MetaData renders the NoCloud meta-data that goes beside user-data.
func MetaData(h Host) ([]byte, error) {
	return renderHost("autoinstall meta-data", "meta-data", h, FamilyUbuntu)
}

// Firstboot returns the firstboot script. Installers save their kernel command line
// (which holds firstboot= and every host variable) and run `firstboot --install FILE`;
// on first boot it writes the key=value pairs to /etc/vmprov/firstboot.env, configures
// Puppet when puppet_server is set (seed 000), and runs /etc/vmprov/firstboot.d/* with
// the pairs in their environment (never in its own shell, so no key replaces its variables).
func Firstboot() []byte {
	b, err := files.ReadFile("files/firstboot")
	if err != nil {
		panic("templates: firstboot missing from the embedded files") // a build error, not input
	}
	return b
}

// GrubInput is the input of GrubConfig.
type GrubInput struct {
	Host
	// EFI selects linuxefi/initrdefi (EL GRUB builds); otherwise linux/initrd, which
	// upstream GRUB ≥ 2.04 uses for both BIOS and UEFI.
	EFI bool
	// TFTP loads the kernel and initrd from the TFTP server GRUB was loaded from ($root)
	// instead of over HTTP: Debian's signed GRUB, which the Secure Boot chain runs, has
	// no http module and loads none under Secure Boot (docs/design.md, "Secure Boot").
	// That server is vmprov serve, whose TFTP serves installers only under assets/ (from
	// serve.dir/assets and serve.asset_dirs), so the kernel and initrd are always
	// /assets/ + the distribution's PXEBoot path for the host's architecture, wherever
	// the mirror is (boot.assets, TXT mirror=, TXT pxeboot=). The installer's own mirror
	// (the answer file's) stays the host's.
	TFTP bool
}

// GrubConfig renders a per-host grub.cfg (seed 001 style, TFTP name grub.cfg-01-<mac>):
// one menu entry loading the installer kernel and initrd over HTTP from the mirror with the
// same command line as install/default.ipxe. The mirror must be plain http; with in.TFTP
// they are read from serve's TFTP assets/ instead (GrubInput.TFTP), and the mirror may be
// anything the installer reads.
func GrubConfig(in GrubInput) ([]byte, error) {
	x, err := in.Host.prepare()
	if err != nil {
		return nil, fmt.Errorf("grub.cfg: %w", err)
	}
	linux, initrd := "linux", "initrd"
	if in.EFI {
		linux, initrd = "linuxefi", "initrdefi"
	}
	device, path := "", tftpAssets(x)
	if !in.TFTP {
		u, _ := url.Parse(x.PXEBootURL)
		if u == nil || u.Scheme != "http" {
			return nil, fmt.Errorf("grub.cfg: %w: GRUB fetches over plain http only, got %q", ErrInvalidHost, x.PXEBootURL)
		}
		if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery {
			return nil, fmt.Errorf("grub.cfg: %w: GRUB loads from (http,HOST)PATH: want http://HOST/PATH without user info or query, got %q", ErrInvalidHost, x.PXEBootURL)
		}
		device, path = "(http,"+rawHost(x.PXEBootURL, u)+")", u.EscapedPath() // escaped: see rawHost
	}
	// One quoted word per argument: GRUB passes a word that holds spaces to
	// the kernel wrapped in double quotes, which makes the whole command line
	// one kernel parameter.
	return render("grub.cfg", struct {
		*host
		Linux, Initrd, Device, Path string
		Args                        []string
	}{x, linux, initrd, device, path, strings.Fields(x.Cmdline)})
}

// tftpAssets is the TFTP directory of x's kernel and initrd (GrubInput.TFTP): serve's
// assets/ and the distribution's PXEBoot path for x's architecture, never the mirror's.
func tftpAssets(x *host) string {
	p := "/assets"
	if d := x.Dist.PXEBootFor(x.Arch); d != "" {
		p += "/" + d
	}
	return (&url.URL{Path: p}).EscapedPath()
}

// PXELinuxConfig renders a per-host pxelinux.cfg/01-<mac> (seed 002): PXELINUX loads
// ipxe.lkrn, which runs the boot script from the boot service. The DHCP server hands iPXE
// (user class iPXE) the HTTP script URL, so iPXE does not chainload itself again.
func PXELinuxConfig(h Host) ([]byte, error) {
	return renderHost("pxelinux.cfg", "pxelinux.cfg", h, "")
}

// InstallFile renders the per-host file name (ks.cfg, preseed.cfg, user-data, meta-data
// or firstboot) served at BOOT/bootstrap/install/{distribution}/{arch}/{name}; it fails
// if the file does not belong to h's distribution family.
func InstallFile(h Host, name string) ([]byte, error) {
	switch name {
	case "ks.cfg":
		return Kickstart(h)
	case "preseed.cfg":
		return Preseed(h)
	case "user-data":
		return UserData(h)
	case "meta-data":
		return MetaData(h)
	case "firstboot":
		return Firstboot(), nil
	}
	return nil, fmt.Errorf("install file %q: %w: not one of ks.cfg, preseed.cfg, user-data, meta-data, firstboot", name, ErrInvalidHost)
}
