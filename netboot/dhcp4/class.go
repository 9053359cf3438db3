package dhcp4

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/netboot"
)

// Vendor class identifiers (option 60) that select a boot flavour.
const (
	// classPXE starts the vendor class of PXE firmware (PXE 2.1 spec,
	// "PXEClient:Arch:xxxxx:UNDI:yyyzzz"), and of iPXE.
	classPXE = "PXEClient"
	// classHTTP starts the vendor class of UEFI HTTP boot (UEFI 2.5+
	// section 24.7.2, "HTTPClient:Arch:xxxxx:UNDI:yyyzzz"); the offer
	// must echo "HTTPClient" or EDK2 ignores it (HttpBootDhcp4.c).
	classHTTP = "HTTPClient"
	// classBSDP starts the vendor class of Apple NetBoot clients.
	classBSDP = "AAPLBSDPC"
)

// userClassIPXE is the user class (option 77) iPXE sends.
const userClassIPXE = "iPXE"

// flavour is how a client boots, from its vendor and user classes.
type flavour int

const (
	plain  flavour = iota // an ordinary DHCP client: address only
	ipxe                  // iPXE: HTTP script URL
	httpFW                // UEFI HTTP boot: URL of the EFI loader
	pxe                   // PXE firmware: TFTP next-server and loader
	bsdpFW                // Apple NetBoot
)

func (f flavour) String() string {
	switch f {
	case ipxe:
		return "ipxe"
	case httpFW:
		return "http"
	case pxe:
		return "pxe"
	case bsdpFW:
		return "bsdp"
	}
	return "plain"
}

// class is what a request says about the booting client.
type class struct {
	flavour flavour
	arch    netboot.Arch
	hasArch bool
	vendor  string // option 60 as sent
}

// classify reads options 60, 77 and 93 of req. A user class "iPXE" wins
// over the vendor class: iPXE loaded by PXE firmware still says
// "PXEClient", and answering it like firmware would chainload iPXE forever
// (seed 002).
func classify(req *dhcpv4.DHCPv4) class {
	c := class{vendor: string(req.Options.Get(dhcpv4.OptionClassIdentifier))}
	c.arch, c.hasArch = clientArch(req.Options.Get(dhcpv4.OptionClientSystemArchitectureType), c.vendor)
	switch {
	case hasUserClass(req.Options.Get(dhcpv4.OptionUserClassInformation), userClassIPXE):
		c.flavour = ipxe
	case strings.HasPrefix(c.vendor, classHTTP):
		c.flavour = httpFW
	case strings.HasPrefix(c.vendor, classPXE):
		c.flavour = pxe
	case strings.HasPrefix(c.vendor, classBSDP):
		c.flavour = bsdpFW
	}
	return c
}

// hasUserClass reports whether the raw option 77 holds want. iPXE sends its
// user class as the bare string "iPXE" (what ISC dhcpd's `option user-class
// = "iPXE"` matches), while RFC 3004 clients send length-prefixed
// instances; both are accepted.
func hasUserClass(raw []byte, want string) bool {
	if len(raw) == 0 {
		return false
	}
	if string(raw) == want {
		return true
	}
	for len(raw) > 0 {
		n := int(raw[0])
		if n == 0 || 1+n > len(raw) {
			return false
		}
		if string(raw[1:1+n]) == want {
			return true
		}
		raw = raw[1+n:]
	}
	return false
}

// clientArch returns the client system architecture: the first type in
// option 93 (RFC 4578 section 2.1), else the Arch field of a PXE or HTTP
// vendor class ("PXEClient:Arch:00007:...").
func clientArch(opt93 []byte, vendor string) (netboot.Arch, bool) {
	if len(opt93) >= 2 && len(opt93)%2 == 0 {
		return netboot.Arch(binary.BigEndian.Uint16(opt93)), true
	}
	for _, prefix := range []string{classPXE, classHTTP} {
		rest, ok := strings.CutPrefix(vendor, prefix+":Arch:")
		if !ok || len(rest) < 5 {
			continue
		}
		n, err := strconv.ParseUint(rest[:5], 10, 16)
		if err != nil {
			return 0, false
		}
		return netboot.Arch(n), true
	}
	return 0, false
}
