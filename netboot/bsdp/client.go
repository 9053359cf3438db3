package bsdp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// VendorClass is the vendor class identifier (DHCP option 60) of BSDP:
// clients send "AAPLBSDPC/<arch>/<model>", servers answer with it alone.
const VendorClass = "AAPLBSDPC"

// Client architectures in the vendor class. Intel Macs say i386 whether
// their EFI is 32 or 64 bits; seed 001 boots them with mactel64.efi.
const (
	ArchI386 = "i386"
	ArchPPC  = "ppc"
)

// DefaultReplyPort is where replies go unless the client asks for another
// port with code 5: the BOOTP client port.
const DefaultReplyPort = dhcpv4.ClientPort

// minMessageSize is the size every DHCP client accepts (RFC 2131 section 2).
const minMessageSize = 576

// ErrNotBSDP means a DHCPv4 packet is not from a BSDP client: its vendor
// class is not "AAPLBSDPC/<arch>/<model>". Serve it as plain DHCP.
var ErrNotBSDP = errors.New("not a BSDP client")

// ParseVendorClass splits a client's vendor class identifier,
// "AAPLBSDPC/i386/MacBookPro11,1", into its architecture and model (Apple's
// "system identifier"). ok is false for anything else, including the bare
// "AAPLBSDPC" of servers and a class with NUL or newline in it, as in
// Apple's bsdp_parse_class_id.
func ParseVendorClass(s string) (arch, model string, ok bool) {
	rest, found := strings.CutPrefix(s, VendorClass+"/")
	if !found {
		return "", "", false
	}
	arch, model, found = strings.Cut(rest, "/")
	if !found || strings.ContainsAny(rest, "\x00\n") {
		return "", "", false
	}
	return arch, model, true
}

// IsBSDP reports whether req comes from a BSDP client.
func IsBSDP(req *dhcpv4.DHCPv4) bool {
	_, _, ok := ParseVendorClass(req.ClassIdentifier())
	return ok
}

// Request is what a BSDP client's DHCPv4 packet says.
type Request struct {
	// DHCPType is the DHCP message type: INFORM for LIST and SELECT,
	// DISCOVER or REQUEST when a Mac boots with the N key.
	DHCPType dhcpv4.MessageType
	// ClientIP is ciaddr; Apple's server ignores an INFORM without it.
	ClientIP netip.Addr
	Arch     string // "i386", "ppc"
	Model    string // e.g. "MacBookPro11,1"
	// Message is option 43, zero when the packet has none.
	Message Message
	// ReplyPort is where the answer to an INFORM goes: code 5, else
	// DefaultReplyPort. Answers to DISCOVER and REQUEST go to port 68.
	ReplyPort uint16
	// MaxMessageSize is the largest reply the client takes, IP and UDP
	// headers included: code 12, else DHCP option 57, and never below
	// 576 (Apple bsdpd.c bsdp_max_message_size).
	MaxMessageSize int
}

// ParseRequest reads a BSDP client's DHCPv4 packet. It returns ErrNotBSDP
// when req is not from a BSDP client and an error wrapping ErrMalformed when
// its option 43 does not decode.
func ParseRequest(req *dhcpv4.DHCPv4) (*Request, error) {
	arch, model, ok := ParseVendorClass(req.ClassIdentifier())
	if !ok {
		return nil, fmt.Errorf("bsdp: parse request: vendor class %q: %w", req.ClassIdentifier(), ErrNotBSDP)
	}
	r := &Request{
		DHCPType:  req.MessageType(),
		Arch:      arch,
		Model:     model,
		ReplyPort: DefaultReplyPort,
	}
	if ip, ok := netip.AddrFromSlice(req.ClientIPAddr.To4()); ok {
		r.ClientIP = ip
	}
	if v := req.Options.Get(dhcpv4.OptionVendorSpecificInformation); v != nil {
		m, err := Decode(v)
		if err != nil {
			return nil, fmt.Errorf("bsdp: parse request from %s: %w", req.ClientHWAddr, err)
		}
		r.Message = *m
	}
	if r.Message.ReplyPort != 0 {
		r.ReplyPort = r.Message.ReplyPort
	}
	r.MaxMessageSize = minMessageSize
	size := int(r.Message.MaxMessageSize)
	if size == 0 {
		if s, err := req.MaxMessageSize(); err == nil {
			size = int(s)
		}
	}
	if size > r.MaxMessageSize {
		r.MaxMessageSize = size
	}
	return r, nil
}

// ReplyPort returns the UDP port a reply to req goes to: BSDP code 5 when
// req carries a well-formed one, else DefaultReplyPort. Respond and Reply
// do not answer an INFORM that asks for an unprivileged port.
func ReplyPort(req *dhcpv4.DHCPv4) uint16 {
	if m, err := Decode(req.Options.Get(dhcpv4.OptionVendorSpecificInformation)); err == nil && m.ReplyPort != 0 {
		return m.ReplyPort
	}
	return DefaultReplyPort
}
