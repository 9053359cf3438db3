// Package netboot is vmprov's boot service: one stateless policy, decided
// from DNS, answered over DHCPv4 (dhcp4), DHCPv6 (dhcp6), Apple BSDP (bsdp),
// TFTP (tftp) and HTTP (httpboot).
//
// The policy identifies a client from what the protocol gives (MAC, source
// address, DUID) and from DNS only, so any number of identical instances on
// a VLAN give identical answers with no lease state (ARCHITECTURE.md).
package netboot

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
)

// ErrUnknown means DNS does not identify the client: the service stays
// silent (DHCP) or answers 404 (HTTP) and reveals nothing about any host.
var ErrUnknown = errors.New("netboot: client not known in DNS")

// Arch is a client system architecture type (RFC 4578 section 2.1, DHCPv4
// option 93; DHCPv6 option 61, RFC 5970).
type Arch uint16

// Client architectures the boot policy distinguishes.
const (
	ArchBIOS      Arch = 0
	ArchUEFIx86   Arch = 6
	ArchUEFIx64   Arch = 7
	ArchUEFIBC    Arch = 9
	ArchUEFIARM64 Arch = 11
	ArchHTTPx64   Arch = 16
	ArchHTTPARM64 Arch = 19
)

// PXE maps the UEFI HTTP boot architectures of the IANA registry (RFC 4578
// section 2.1 as extended) to the UEFI PXE architecture whose loader they
// run: 15 x86 → 6, 16 x64 → 7, 17 EBC → 9, 18 ARM32 → 10, 19 ARM64 → 11.
// Other architectures are returned unchanged.
func (a Arch) PXE() Arch {
	switch a {
	case 15:
		return ArchUEFIx86
	case ArchHTTPx64:
		return ArchUEFIx64
	case 17:
		return ArchUEFIBC
	case 18:
		return 10
	case ArchHTTPARM64:
		return ArchUEFIARM64
	}
	return a
}

// Client is what a protocol knows about a requester. Zero fields are unknown.
type Client struct {
	MAC net.HardwareAddr
	// Addr is the source address of an HTTP/TFTP request, or the address a
	// DHCP client asks for; it must be confirmed by DNS before it is used.
	Addr netip.Addr
	// VLAN is the VLAN the request came from, when the listener knows it
	// (interface or relay giaddr); 0 when unknown.
	VLAN    int
	Arch    Arch
	HasArch bool
	// IPXE is true when the client is iPXE (DHCPv4 option 77 / DHCPv6
	// option 15 user class "iPXE"), which breaks the chainload loop.
	IPXE bool
	// HTTPClient is true for UEFI HTTP boot (vendor class "HTTPClient").
	HTTPClient bool
}

// Decision is what the policy decided for a known client.
type Decision struct {
	Host inventory.Host
	VLAN config.VLAN
	// TTL is how long the decision may be cached: the smallest TTL of the
	// DNS answers it rests on.
	TTL time.Duration
}

// Policy identifies clients and decides what they get.
//
// Decide is called several times per boot (DHCP discover and request, TFTP,
// each HTTP request), possibly concurrently; it must be idempotent, cheap
// when repeated (answers are cached for their DNS TTL) and safe for
// concurrent use. It returns ErrUnknown (wrapped or not) for clients DNS does
// not know, and another error when DNS cannot be asked: then the caller gives
// no answer and logs, never a guess.
type Policy interface {
	Decide(ctx context.Context, c Client) (Decision, error)
}
