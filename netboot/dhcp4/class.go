package dhcp4

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/netboot"
)

// Firmware names the firmware of the client that sent req, from options 60
// (vendor class), 77 (user class) and 93 (client architecture), by
// netboot.Classify's rules.
func Firmware(req *dhcpv4.DHCPv4) netboot.Firmware {
	vendor := string(req.Options.Get(dhcpv4.OptionClassIdentifier))
	s := netboot.Signals{UserClassIPXE: hasUserClass(req.Options.Get(dhcpv4.OptionUserClassInformation), netboot.UserClassIPXE)}
	if vendor != "" {
		s.VendorClasses = []string{vendor}
	}
	s.Arch, s.HasArch = clientArch(req.Options.Get(dhcpv4.OptionClientSystemArchitectureType), vendor)
	return netboot.Classify(s)
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
	for _, prefix := range []string{netboot.ClassPXE, netboot.ClassHTTP} {
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
