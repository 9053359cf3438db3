// Package inventory is vmprov's data model in DNS (docs/design.md, "DNS is
// the database" and "Addressing"): how a host's MAC and addresses are
// derived from its VLAN, which records describe it, and how its TXT boot
// intent is written and read.
//
// It is a leaf: it knows no DNS client, no libvirt and no boot protocol.
package inventory

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// Scheme holds the MAC prefixes of the addressing formulas (seed 000).
type Scheme struct {
	// Strict starts MACs derived from VLAN + IPv4: 02:04:06 by default.
	Strict [3]byte
	// SLAAC starts random MACs of IPv6-only hosts: 2a:4a:6a by default.
	SLAAC [3]byte
}

// DefaultScheme is seed 000's choice of prefixes.
func DefaultScheme() Scheme {
	return Scheme{Strict: [3]byte{0x02, 0x04, 0x06}, SLAAC: [3]byte{0x2a, 0x4a, 0x6a}}
}

// StrictMAC derives the MAC of an IPv4 host (seed 000 genStrictMAC):
// prefix : vlan>>4 : (vlan&0xf)<<4 | ip[2]&0xf : ip[3].
// VLAN 135 with 192.168.35.172 gives 02:04:06:08:73:ac.
func (s Scheme) StrictMAC(vlan int, ip netip.Addr) (net.HardwareAddr, error) {
	if vlan < 1 || vlan > 4094 {
		return nil, fmt.Errorf("strict mac: vlan %d is not 1 to 4094", vlan)
	}
	if !ip.Unmap().Is4() {
		return nil, fmt.Errorf("strict mac: %s is not an IPv4 address", ip)
	}
	a := ip.Unmap().As4()
	return net.HardwareAddr{s.Strict[0], s.Strict[1], s.Strict[2],
		byte(vlan >> 4), byte(vlan&0xf)<<4 | a[2]&0xf, a[3]}, nil
}

// DecodeStrict reverses StrictMAC: it returns the VLAN and the low 12 bits
// of the IPv4 address a strict MAC carries. ok is false for other MACs.
func (s Scheme) DecodeStrict(mac net.HardwareAddr) (vlan int, low12 uint16, ok bool) {
	if len(mac) != 6 || mac[0] != s.Strict[0] || mac[1] != s.Strict[1] || mac[2] != s.Strict[2] {
		return 0, 0, false
	}
	vlan = int(mac[3])<<4 | int(mac[4]>>4)
	if vlan < 1 || vlan > 4094 {
		return 0, 0, false
	}
	return vlan, uint16(mac[4]&0xf)<<8 | uint16(mac[5]), true
}

// IPv4InSubnet rebuilds the IPv4 address of a strict MAC inside the VLAN's
// subnet, which must be /20 or smaller. The network and broadcast addresses
// are never hosts, so they are refused.
func IPv4InSubnet(subnet netip.Prefix, low12 uint16) (netip.Addr, error) {
	if !subnet.Addr().Is4() || subnet.Bits() < 20 {
		return netip.Addr{}, fmt.Errorf("strict mac: subnet %s is not an IPv4 /20 or smaller", subnet)
	}
	base := binary.BigEndian.Uint32(subnet.Masked().Addr().AsSlice())
	host := uint32(1)<<(32-subnet.Bits()) - 1
	v := base&^0xfff | uint32(low12)
	if v&^host != base || v == base || (subnet.Bits() < 31 && v == base|host) {
		return netip.Addr{}, fmt.Errorf("strict mac: low bits %#03x are not a host of %s", low12, subnet)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b), nil
}

// RandomSLAACMAC returns prefix + 24 random bits, for IPv6-only hosts.
// r is crypto/rand.Reader when nil.
func (s Scheme) RandomSLAACMAC(r io.Reader) (net.HardwareAddr, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [3]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("random mac: %w", err)
	}
	return net.HardwareAddr{s.SLAAC[0], s.SLAAC[1], s.SLAAC[2], b[0], b[1], b[2]}, nil
}

// IsSLAAC reports whether mac carries the SLAAC prefix.
func (s Scheme) IsSLAAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == s.SLAAC[0] && mac[1] == s.SLAAC[1] && mac[2] == s.SLAAC[2]
}

// EUI64 returns the SLAAC address of mac in a /64 prefix: the modified
// EUI-64 interface identifier (RFC 4291 appendix A) flips the
// universal/local bit, so 2a:4a:6a:74:55:06 becomes ::284a:6aff:fe74:5506.
func EUI64(prefix netip.Prefix, mac net.HardwareAddr) (netip.Addr, error) {
	if len(mac) != 6 {
		return netip.Addr{}, fmt.Errorf("eui-64: %s is not a 48-bit MAC", mac)
	}
	if !prefix.Addr().Is6() || prefix.Bits() != 64 {
		return netip.Addr{}, fmt.Errorf("eui-64: %s is not an IPv6 /64", prefix)
	}
	a := prefix.Masked().Addr().As16()
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a), nil
}

// MACFromEUI64 recovers the MAC from a modified EUI-64 address, such as a
// client's link-local address. ok is false when the interface identifier is
// not EUI-64 (no ff:fe in its middle).
func MACFromEUI64(a netip.Addr) (net.HardwareAddr, bool) {
	if !a.Is6() || a.Is4In6() {
		return nil, false
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return nil, false
	}
	return net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}, true
}

// HexHyp writes a MAC as iPXE's ${mac:hexhyp}: 02-04-06-08-73-ac.
func HexHyp(mac net.HardwareAddr) string {
	return strings.ReplaceAll(strings.ToLower(mac.String()), ":", "-")
}

// ParseHexHyp parses the hexhyp form (and, leniently, colons).
func ParseHexHyp(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("%q is not a MAC address like 02-04-06-08-73-ac", s)
	}
	return mac, nil
}

// MACOwner is the owner name of a host's MAC CNAME:
// 00-25-90-96-c4-9a._mac.example.com.
func MACOwner(mac net.HardwareAddr, zone string) string {
	return HexHyp(mac) + "._mac." + Fqdn(zone)
}

// Fqdn appends the root dot when it is missing.
func Fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// ReverseName returns the PTR owner of a: 172.35.168.192.in-addr.arpa. or
// the nibble form under ip6.arpa. (RFC 3596 section 2.5).
func ReverseName(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", b[3], b[2], b[1], b[0])
	}
	const hex = "0123456789abcdef"
	b := a.As16()
	var sb strings.Builder
	for i := 15; i >= 0; i-- {
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// ValidateName checks a host name: one RFC 1123 label, lower case.
func ValidateName(name string) error {
	hint := "use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen (RFC 1123), e.g. web01"
	switch {
	case name == "":
		return errors.New("name is empty: " + hint)
	case len(name) > 63:
		return fmt.Errorf("name %q is longer than 63 characters: %s", name, hint)
	case name[0] == '-' || name[len(name)-1] == '-':
		return fmt.Errorf("name %q starts or ends with a hyphen: %s", name, hint)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			if r >= 'A' && r <= 'Z' {
				return fmt.Errorf("name %q has upper-case letters: use %q", name, strings.ToLower(name))
			}
			return fmt.Errorf("name %q has the character %q: %s", name, r, hint)
		}
	}
	return nil
}
