package dhcp6

import (
	"encoding/binary"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/vmprov/vmprov/netboot"
)

// enterpriseEDK2 is the enterprise number of the vendor class (option 16,
// RFC 8415 section 21.16) firmware sends and vmprov echoes to UEFI HTTP
// boot clients: EDK2's HTTP_BOOT_DHCP6_ENTERPRISE_NUM and iPXE's
// DHCPV6_VENDOR_CLASS_PXE.
const enterpriseEDK2 = 343

// Firmware names the firmware of the client that sent m, from options 15
// (user class), 16 (vendor class) and 61 (client architecture, RFC 5970),
// by netboot.Classify's rules. iPXE sends the PXEClient vendor class and
// its architecture too (dhcpv6.c dhcpv6_request_options_data); its user
// class wins.
func Firmware(m *dhcpv6.Message) netboot.Firmware {
	s := netboot.Signals{UserClassIPXE: hasUserClass(m, netboot.UserClassIPXE)}
	if o := m.GetOneOption(dhcpv6.OptionClientArchType); o != nil {
		if b := o.ToBytes(); len(b) >= 2 && len(b)%2 == 0 {
			s.Arch, s.HasArch = netboot.Arch(binary.BigEndian.Uint16(b)), true
		}
	}
	for _, o := range m.GetOption(dhcpv6.OptionVendorClass) {
		for _, d := range vendorData(o.ToBytes()) {
			s.VendorClasses = append(s.VendorClasses, string(d))
		}
	}
	return netboot.Classify(s)
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
