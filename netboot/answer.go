package netboot

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/vmprov/vmprov/inventory"
)

// Via is the protocol a boot answer travels in.
type Via int

// Protocols that ask for a boot answer.
const (
	ViaDHCPv4 Via = iota + 1
	ViaDHCPv6
	ViaTFTP
	ViaHTTP
)

func (v Via) String() string {
	switch v {
	case ViaDHCPv4:
		return "dhcp4"
	case ViaDHCPv6:
		return "dhcp6"
	case ViaTFTP:
		return "tftp"
	case ViaHTTP:
		return "http"
	}
	return fmt.Sprintf("Via(%d)", int(v))
}

// Query is what a protocol asks the Booter about a known client.
type Query struct {
	Firmware Firmware
	Via      Via
	// Server is this server's address on the client's link: the TFTP
	// server a PXE answer names (DHCPv4 next-server, the host of a DHCPv6
	// tftp:// URL).
	Server netip.Addr
	// IPv6 says the client talks IPv6 (always so over DHCPv6): its URLs
	// use the IPv6 base URL.
	IPv6 bool
}

// Action is what an Answer tells the protocol to do.
type Action int

// Actions.
const (
	// ActionNone: nothing to boot. DHCP gives the address and options
	// only; TFTP and HTTP answer "not found". Answer.Why says why.
	ActionNone Action = iota
	// ActionFile: hand the client Answer.File.
	ActionFile
	// ActionBSDP: an Intel Mac; BSDP selects among the configured images.
	ActionBSDP
	// ActionConfig: render the host's per-host GRUB or PXELINUX
	// configuration.
	ActionConfig
	// ActionChain: iPXE's /pxedust: set the host's variables and chain its
	// bootstrap script Answer.Script under Answer.Base.
	ActionChain
	// ActionLocal: the host is installed and boots from its local disk
	// (docs/design.md, "A host's life"). DHCP gives the address and options
	// only (no boot file, BSDP no image), HTTP an iPXE script that exits to
	// the next boot device, TFTP the per-host GRUB or PXELINUX
	// configuration that boots the local disk. Answer.Why says so.
	ActionLocal
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionFile:
		return "file"
	case ActionBSDP:
		return "bsdp"
	case ActionConfig:
		return "config"
	case ActionChain:
		return "chain"
	case ActionLocal:
		return "local"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Answer is the boot answer for one client.
type Answer struct {
	Action   Action
	Firmware Firmware
	// File is the boot file of ActionFile: a TFTP file name on TFTPServer
	// (DHCPv4 file field and next-server), or a URL (http://, or tftp://
	// for DHCPv6, RFC 5970 section 3.1).
	File       string
	TFTPServer netip.Addr
	// VendorClass, when set, is echoed as the reply's vendor class: EDK2
	// takes an HTTP boot offer only when it carries "HTTPClient"
	// (HttpBootDhcp4.c, HttpBootDhcp6.c).
	VendorClass string
	// Base is the boot service's base URL for this client (the URLs of
	// File, the chain and the install scripts start with it).
	Base string
	// Script is the host's bootstrap script (TXT filename=) that
	// ActionChain chains as Base/bootstrap/SITE/Script.
	Script string
	// NoProxyDHCP tells an iPXE client over DHCPv4 that the answer is
	// complete: iPXE then requests the offered address at once instead of
	// waiting seconds for ProxyDHCP offers (iPXE's encapsulated option 175,
	// sub-option 176, "no-pxedhcp"; docs/design.md, "The boot decision").
	NoProxyDHCP bool
	// Why says why the answer is ActionNone or ActionLocal, for logs and
	// vmprov explain.
	Why string
	// SecureBoot says the answer is a step of the Secure Boot chain of a
	// host whose intent says firmware=efi-secure: the signed shim of
	// serve.secure_boot.loaders, or the configuration of signed GRUB. (An
	// arm64 host's signed GRUB, after serve.loaders' shim, is not.)
	SecureBoot bool
	// Installs says the answer hands out the host's installer (the
	// /pxedust chain, an installing GRUB or PXELINUX configuration): it
	// rests on a build state that is not installed, which the caller must
	// confirm past any cache before answering (Booter.Confirmed). Answers
	// that only lead to one of these (a PXE loader, BSDP's image) need no
	// confirmation: the step they lead to confirms.
	Installs bool
}

// Booter decides what a known client boots: the one boot decision of
// every protocol (docs/design.md, "The boot decision"). It is a value,
// safe for concurrent use, and reads nothing but its fields.
type Booter struct {
	// URL is the base URL IPv4 clients reach the HTTP service at (boot.url).
	URL string
	// URLv6 is the base URL for IPv6 clients (boot.url_v6); empty means
	// URL, except that DHCPv6 does not hand out a URL whose host is an
	// IPv4 address.
	URLv6 string
	// Site is {site} of BOOT/bootstrap/{site}/FILENAME.
	Site string
	// Assets is the kernel and initrd mirror (boot.assets); empty means
	// BASE/assets.
	Assets string
	// Loaders is the loader of each client architecture (serve.loaders):
	// fetched over TFTP by PXE firmware, over HTTP from BASE/ipxe/ by UEFI
	// HTTP boot.
	Loaders map[Arch]string
	// SecureBootLoaders is the first loader of the Secure Boot chain of each
	// client architecture (serve.secure_boot.loaders), the signed shim,
	// fetched over TFTP by PXE firmware of hosts whose intent says
	// firmware=efi-secure instead of Loaders' iPXE, which Secure Boot
	// refuses to run.
	SecureBootLoaders map[Arch]string
	// BSDP says NetBoot images are configured for Intel Macs.
	BSDP bool
}

// Answer decides the boot answer for the known host d and the query q.
// It is the only place that does: DHCPv4, DHCPv6, BSDP, TFTP and HTTP
// translate its result, and vmprov explain prints it.
//
//   - iPXE gets BASE/boot.ipxe from DHCP, over DHCPv4 with NoProxyDHCP
//     (the offer names the script, so no ProxyDHCP server has anything to
//     add), and from HTTP (/pxedust) the chain to its bootstrap script; a
//     host without a TXT boot intent gets nothing from HTTP (404), but
//     keeps its DHCP answer.
//   - UEFI HTTP boot gets BASE/ipxe/LOADER, LOADER by its architecture
//     (HTTP types 15-19 use the loader of their UEFI PXE type unless listed
//     themselves), with vendor class "HTTPClient" echoed.
//   - PXE firmware gets the loader of its architecture from this server's
//     TFTP: over DHCPv4 as file name and next-server, over DHCPv6 as
//     tftp://[SERVER]/LOADER (RFC 5970 section 3.1's boot file URL; EDK2's
//     PXE over IPv6 reads only that form), so SERVER must be global.
//   - Intel Macs get BSDP's image selection when images are configured.
//   - A host whose intent says firmware=efi-secure boots the Secure Boot
//     chain (docs/design.md, "Secure Boot"), chosen by that key only, since
//     its firmware's requests look like any UEFI's: PXE firmware gets the
//     signed shim of its architecture (SecureBootLoaders) instead of iPXE,
//     and UEFI HTTP boot nothing, as signed GRUB cannot load over HTTP.
//     arm64 UEFI PXE boots the same signed chain, shim → signed GRUB →
//     kernel over TFTP, without Secure Boot, by configuration only:
//     serve.loaders' default for architecture 11 is Debian's shim.
//     A host without a boot intent is handed no shim: signed GRUB would
//     find no grub.cfg and stop at its prompt instead of booting the disk,
//     where iPXE exits to the next boot device.
//   - GRUB, signed GRUB and PXELINUX get their per-host configuration for
//     a host with a boot intent.
//   - Everything else gets no boot file.
//
// A host in build state installed boots from its local disk instead
// (ActionLocal, docs/design.md, "A host's life"): PXE firmware and UEFI
// HTTP boot get their address but no boot file, Intel Macs no BSDP image,
// GRUB and PXELINUX a configuration that boots the disk, and iPXE over
// HTTP (/boot.ipxe, /pxedust) a script that exits to the next boot device.
// iPXE's DHCP answer stays BASE/boot.ipxe, which then answers that script.
// An answer that hands out the installer is marked Installs.
func (b Booter) Answer(d Decision, q Query) Answer {
	fw := q.Firmware
	a := Answer{Firmware: fw, Base: b.base(q)}
	none := func(format string, args ...any) Answer {
		a.Action, a.Why = ActionNone, fmt.Sprintf(format, args...)
		return a
	}
	installed := len(d.Host.Intent) > 0 && d.Host.Intent.State() == inventory.StateInstalled
	local := func() Answer {
		a.Action, a.Why = ActionLocal, fmt.Sprintf("host %s is installed: it boots from its local disk (vmprov reinstall installs it again)", d.Host.FQDN)
		return a
	}
	dhcp := q.Via == ViaDHCPv4 || q.Via == ViaDHCPv6
	switch fw.Kind {
	case KindIPXE:
		if a.Base == "" {
			return none("no boot URL for %s clients: %s", family(q), b.urlHint(q))
		}
		switch {
		case dhcp:
			a.Action, a.File = ActionFile, a.Base+"/boot.ipxe"
			a.NoProxyDHCP = q.Via == ViaDHCPv4
		case q.Via == ViaHTTP:
			if len(d.Host.Intent) == 0 {
				return none("host %s has no boot intent (TXT record): set one with vmprov reinstall", d.Host.FQDN)
			}
			if installed {
				return local()
			}
			a.Action, a.Script, a.Installs = ActionChain, d.Host.Intent.Filename(), true
		default:
			return none("iPXE asks over DHCP or HTTP, not %s", q.Via)
		}
	case KindHTTP:
		if !dhcp {
			return none("UEFI HTTP boot asks over DHCP, not %s", q.Via)
		}
		if installed {
			return local()
		}
		if d.Host.Intent.SecureBoot() {
			return none("host %s boots with Secure Boot (TXT firmware=efi-secure), whose signed GRUB loads over TFTP only: it boots by PXE, not UEFI HTTP boot", d.Host.FQDN)
		}
		if !fw.HasArch {
			return none("UEFI HTTP boot client sent no architecture (option 93/61)")
		}
		if a.Base == "" {
			return none("no boot URL for %s clients: %s", family(q), b.urlHint(q))
		}
		loader, ok := b.loader(fw.Arch)
		if !ok {
			loader, ok = b.loader(fw.Arch.PXE())
		}
		if !ok {
			return none("no serve.loaders entry for architecture %d (or %d)", fw.Arch, fw.Arch.PXE())
		}
		if b.signedShim(loader) {
			return none("the loader of architecture %d, %s, starts the signed GRUB chain, which loads its grub.cfg, kernel and initrd over TFTP only: boot the machine by PXE, or name an iPXE for architecture %d in serve.loaders", fw.Arch, loader, fw.Arch)
		}
		a.Action, a.File, a.VendorClass = ActionFile, a.Base+"/ipxe/"+loader, ClassHTTP
	case KindPXE:
		if !dhcp {
			return none("PXE firmware asks over DHCP, not %s", q.Via)
		}
		if installed {
			return local()
		}
		if !fw.HasArch {
			return none("PXE client sent no architecture (option 93/61)")
		}
		loader, ok := b.loader(fw.Arch)
		switch {
		case d.Host.Intent.SecureBoot():
			if loader, ok = b.SecureBootLoaders[fw.Arch]; !ok || loader == "" {
				return none("host %s boots with Secure Boot (TXT firmware=efi-secure), and serve.secure_boot.loaders has no entry for architecture %d", d.Host.FQDN, fw.Arch)
			}
			a.SecureBoot = true
		case !ok:
			return none("no serve.loaders entry for architecture %d", fw.Arch)
		case len(d.Host.Intent) == 0 && b.signedShim(loader):
			return none("%s has no TXT boot intent: the loader of architecture %d, %s, starts the signed GRUB chain, which would stop at GRUB's prompt without a grub.cfg instead of booting the disk (set an intent with vmprov reinstall)", hostName(d), fw.Arch, loader)
		}
		srv := q.Server.WithZone("")
		if q.Via == ViaDHCPv6 {
			if !srv.Is6() || srv.Is4In6() || srv.IsLinkLocalUnicast() {
				return none("no global IPv6 address of this server on the client's link for tftp:// URLs")
			}
			a.Action, a.File = ActionFile, "tftp://["+srv.String()+"]/"+loader
			break
		}
		if !srv.Unmap().Is4() {
			return none("no IPv4 address of this server on the client's link for next-server")
		}
		a.Action, a.File, a.TFTPServer = ActionFile, loader, srv.Unmap()
	case KindBSDP:
		if q.Via != ViaDHCPv4 {
			return none("BSDP runs over DHCPv4 only")
		}
		if installed {
			return local()
		}
		if !b.BSDP {
			return none("no bsdp.images configured")
		}
		a.Action = ActionBSDP
	case KindGRUB, KindSignedGRUB, KindPXELinux:
		if q.Via != ViaTFTP {
			return none("%s asks over TFTP, not %s", fw.Kind, q.Via)
		}
		if len(d.Host.Intent) == 0 {
			return none("host %s has no boot intent (TXT record): set one with vmprov reinstall", d.Host.FQDN)
		}
		if installed {
			return local()
		}
		a.Action, a.Installs, a.SecureBoot = ActionConfig, true, fw.Kind == KindSignedGRUB && d.Host.Intent.SecureBoot()
	default:
		return none("not a booting client (no PXE, HTTP boot, iPXE or BSDP class)")
	}
	return a
}

// Confirmer is a Policy that can read a host's build state again past its
// cache. *DNSPolicy is one.
type Confirmer interface {
	// Confirm returns d with the host's boot intent as DNS holds it now,
	// read with an uncached query. It must be safe for concurrent use. An
	// error means DNS could not be asked: the caller answers nothing, as
	// for a failed Decide.
	Confirm(ctx context.Context, d Decision) (Decision, error)
}

// Confirmed is Answer for a decision of p, except that an answer that
// rests on the build state (one that hands out the installer, Installs, or
// boots the local disk, ActionLocal) is decided again from the intent p
// confirms with an uncached read (Confirmer), and the confirmed decision is
// returned with it. A cached TXT answer may be older than a write of
// another serve instance or of `vmprov reinstall`: answering install from
// a stale install would install the host again and wipe its disk, and
// answering local boot from a stale installed would ignore a reinstall for
// up to the record's TTL (docs/design.md, "A host's life"). Other answers
// (a PXE loader, a BSDP image) only lead to one of these and need no read.
// So a boot of a host with a build decision costs one query per answer
// that makes it, and the many DHCP answers without one cost none. A Policy
// that is no Confirmer is taken to decide from fresh reads already.
func (b Booter) Confirmed(ctx context.Context, p Policy, d Decision, q Query) (Answer, Decision, error) {
	a := b.Answer(d, q)
	c, ok := p.(Confirmer)
	if !(a.Installs || a.Action == ActionLocal) || !ok {
		return a, d, nil
	}
	fresh, err := c.Confirm(ctx, d)
	if err != nil {
		return Answer{}, Decision{}, fmt.Errorf("confirm the build state of %s: %w", d.Host.FQDN, err)
	}
	return b.Answer(fresh, q), fresh, nil
}

// signedShim reports whether loader is a shim of SecureBootLoaders, the
// start of the signed GRUB chain (docs/design.md, "The boot chain"): its
// GRUB reads grub.cfg, kernel and initrd over TFTP only, so UEFI HTTP boot
// must not be handed it.
func (b Booter) signedShim(loader string) bool {
	for _, l := range b.SecureBootLoaders {
		if l == loader {
			return true
		}
	}
	return false
}

// loader returns the configured loader for arch, if any.
func (b Booter) loader(a Arch) (string, bool) {
	l, ok := b.Loaders[a]
	return l, ok && l != ""
}

// BaseURL is the base URL a client reaches the HTTP service at: URLv6 for
// IPv6 clients when set, else URL.
func (b Booter) BaseURL(ipv6 bool) string {
	if ipv6 && b.URLv6 != "" {
		return strings.TrimSuffix(b.URLv6, "/")
	}
	return strings.TrimSuffix(b.URL, "/")
}

// MirrorURL is the kernel and initrd mirror for a client: Assets, or
// BASE/assets when Assets is unset or is the default {boot.url}/assets (so
// IPv6 clients fetch from the IPv6 base).
func (b Booter) MirrorURL(ipv6 bool) string {
	if b.Assets == "" || b.Assets == strings.TrimSuffix(b.URL, "/")+"/assets" {
		return b.BaseURL(ipv6) + "/assets"
	}
	return b.Assets
}

// base is the base URL of q's client. Over DHCPv6 a URL whose host is an
// IPv4 address is no use to the client, so it is "" then.
func (b Booter) base(q Query) string {
	ipv6 := q.IPv6 || q.Via == ViaDHCPv6
	u := b.BaseURL(ipv6)
	if q.Via == ViaDHCPv6 && b.URLv6 == "" {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return ""
		}
		if a, err := netip.ParseAddr(p.Hostname()); err == nil && a.Unmap().Is4() {
			return ""
		}
	}
	return u
}

func family(q Query) string {
	if q.IPv6 || q.Via == ViaDHCPv6 {
		return "IPv6"
	}
	return "IPv4"
}

func (b Booter) urlHint(q Query) string {
	if q.IPv6 || q.Via == ViaDHCPv6 {
		return "set boot.url_v6"
	}
	return "set boot.url"
}

// hostName names d's host in a reason: by its FQDN, or "this client" when DNS named
// none.
func hostName(d Decision) string {
	if d.Host.FQDN == "" {
		return "this client"
	}
	return "host " + d.Host.FQDN
}
