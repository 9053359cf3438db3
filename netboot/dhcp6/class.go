package dhcp6

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"net/url"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
)

// Vendor class data (option 16, RFC 8415 section 21.16) that selects a boot
// flavour. Firmware sends them under enterprise number 343, the number EDK2
// (HTTP_BOOT_DHCP6_ENTERPRISE_NUM) and iPXE (DHCPV6_VENDOR_CLASS_PXE) use.
const (
	classPXE  = "PXEClient"
	classHTTP = "HTTPClient"
	// enterpriseEDK2 is the enterprise number of the HTTPClient vendor
	// class vmprov echoes to UEFI HTTP boot clients.
	enterpriseEDK2 = 343
)

// userClassIPXE is the user class (option 15) iPXE sends (dhcpv6.c
// dhcpv6_user_class: one RFC 8415 section 21.15 instance, "iPXE").
const userClassIPXE = "iPXE"

// flavour is how a client boots, from its user class, vendor class and
// architecture.
type flavour int

const (
	plain  flavour = iota // an ordinary DHCPv6 client: no boot file
	ipxe                  // iPXE: HTTP script URL
	httpFW                // UEFI HTTP boot: HTTP URL of the EFI loader
	pxe                   // PXE firmware: TFTP URL of the loader
)

func (f flavour) String() string {
	switch f {
	case ipxe:
		return "ipxe"
	case httpFW:
		return "http"
	case pxe:
		return "pxe"
	}
	return "plain"
}

// class is what a message says about the booting client.
type class struct {
	flavour flavour
	arch    netboot.Arch
	hasArch bool
}

// classify reads options 15, 16 and 61 of m. The user class "iPXE" wins
// over everything else: iPXE sends the PXEClient vendor class and its
// architecture too (dhcpv6.c dhcpv6_request_options_data), and handing it a
// loader again would chainload iPXE forever (seed 003's dhcpd6.conf has
// the same test). Next comes UEFI HTTP boot, by its vendor class or by an
// HTTP architecture type (15-19), then any client that names its
// architecture, which is PXE firmware.
func classify(m *dhcpv6.Message) class {
	var c class
	if o := m.GetOneOption(dhcpv6.OptionClientArchType); o != nil {
		if b := o.ToBytes(); len(b) >= 2 && len(b)%2 == 0 {
			c.arch, c.hasArch = netboot.Arch(binary.BigEndian.Uint16(b)), true
		}
	}
	vendorHTTP := false
	for _, o := range m.GetOption(dhcpv6.OptionVendorClass) {
		for _, d := range vendorData(o.ToBytes()) {
			if bytes.HasPrefix(d, []byte(classHTTP)) {
				vendorHTTP = true
			}
		}
	}
	switch {
	case hasUserClass(m, userClassIPXE):
		c.flavour = ipxe
	case vendorHTTP || c.hasArch && isHTTPArch(c.arch):
		c.flavour = httpFW
	case c.hasArch:
		c.flavour = pxe
	}
	return c
}

// hasUserClass reports whether a user class option of m holds an instance
// equal to want (RFC 8415 section 21.15: instances of a 2-byte length and
// data).
func hasUserClass(m *dhcpv6.Message, want string) bool {
	for _, o := range m.GetOption(dhcpv6.OptionUserClass) {
		b := o.ToBytes()
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			if 2+n > len(b) {
				break
			}
			if string(b[2:2+n]) == want {
				return true
			}
			b = b[2+n:]
		}
	}
	return false
}

// vendorData splits the data of a vendor class option (RFC 8415 section
// 21.16: a 4-byte enterprise number, then instances of a 2-byte length and
// data).
func vendorData(b []byte) [][]byte {
	if len(b) < 4 {
		return nil
	}
	var out [][]byte
	b = b[4:]
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if 2+n > len(b) {
			break
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// isHTTPArch reports whether a is a UEFI HTTP boot architecture type of the
// IANA registry (RFC 4578 section 2.1 as extended): 15 x86, 16 x64, 17 EBC,
// 18 ARM32, 19 ARM64.
func isHTTPArch(a netboot.Arch) bool { return a >= 15 && a <= 19 }

// bootBaseV6 is the base URL IPv6 clients fetch HTTP boot files from:
// boot.url_v6, else boot.url unless its host is an IPv4 literal (a name
// with AAAA records serves IPv6 clients too). Empty means none.
func bootBaseV6(b config.Boot) string {
	if b.URLv6 != "" {
		return strings.TrimSuffix(b.URLv6, "/")
	}
	u, err := url.Parse(b.URL)
	if err != nil || u.Host == "" {
		return ""
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Unmap().Is4() {
		return ""
	}
	return strings.TrimSuffix(b.URL, "/")
}

// bootFile returns the boot file URL (option 59, RFC 5970 section 3.1) for
// the client's class, and whether the reply must carry the HTTPClient
// vendor class; "" for none:
//
//   - iPXE gets BASE/boot.ipxe, the embedded boot script over HTTP, as
//     DHCPv4 gives it (ARCHITECTURE.md "The boot chain").
//   - UEFI HTTP boot gets BASE/ipxe/LOADER, LOADER from serve.loaders by
//     its architecture (HTTP types 15-19 use the loader of their UEFI type
//     unless listed themselves). The reply echoes vendor class
//     "HTTPClient": EDK2 takes only an offer carrying it for an HTTP offer
//     (HttpBootDhcp6.c HttpBootParseDhcp6Packet).
//   - PXE firmware gets tftp://[SERVER]/LOADER: EDK2's PXE over IPv6 reads
//     only TFTP URLs of that form (PxeBcDhcp6.c PxeBcExtractBootFileUrl),
//     so the loader comes from vmprov's TFTP service on port 69, at the
//     server's global address on the interface the request came in on.
//   - Other clients get no boot file.
func (s *Server) bootFile(c class, in Ingress) (file string, httpClient bool) {
	switch c.flavour {
	case ipxe:
		if s.base != "" {
			return s.base + "/boot.ipxe", false
		}
	case httpFW:
		if !c.hasArch || s.base == "" {
			return "", false
		}
		loader, ok := s.loader(c.arch)
		if !ok {
			loader, ok = s.loader(c.arch.PXE())
		}
		if ok {
			return s.base + "/ipxe/" + loader, true
		}
	case pxe:
		srv := in.ServerIP.WithZone("")
		if !srv.Is6() || srv.Is4In6() || srv.IsLinkLocalUnicast() {
			return "", false
		}
		if loader, ok := s.loader(c.arch); ok {
			return "tftp://[" + srv.String() + "]/" + loader, false
		}
	}
	return "", false
}

// loader returns the configured loader for arch.
func (s *Server) loader(a netboot.Arch) (string, bool) {
	l, ok := s.cfg.Serve.Loaders[uint16(a)]
	return l, ok && l != ""
}
