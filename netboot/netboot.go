// Package netboot is vmprov's boot service: one stateless policy, decided
// from DNS, answered over DHCPv4 (dhcp4), DHCPv6 (dhcp6), Apple BSDP (bsdp),
// TFTP (tftp) and HTTP (httpboot).
//
// Two decisions make every answer, and each is made in one place:
//
//   - who the client is: Policy.Decide identifies it from what the protocol
//     gives (MAC, source address) and from DNS only (DNSPolicy);
//   - what it boots: Booter.Answer picks the boot answer from the identified
//     host and the client's Firmware, which Classify names from the
//     request's classes and architecture.
//
// The protocol packages only translate: a request into a Client and a
// Firmware, and an Answer into their wire format. Any number of identical
// instances on a VLAN therefore give identical answers with no lease state
// (docs/design.md, "The boot decision").
//
// The package takes explicit configuration (VLANs, Booter, PolicyConfig);
// netboot/serveconfig maps vmprov's YAML onto it.
package netboot

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/vmprov/vmprov/inventory"
)

// ErrUnknown means DNS does not identify the client: the service stays
// silent (DHCP) or answers 404 (HTTP) and reveals nothing about any host.
var ErrUnknown = errors.New("netboot: client not known in DNS")

// Client is what a protocol knows about a requester's identity. Zero fields
// are unknown. How the client boots is its Firmware, which does not take
// part in identifying it.
type Client struct {
	MAC net.HardwareAddr
	// Addr is the source address of an HTTP/TFTP request; it must be
	// confirmed by DNS before it is used.
	Addr netip.Addr
	// VLAN is the VLAN the request came from, when the listener knows it
	// (interface or relay giaddr); 0 when unknown.
	VLAN int
}

// Decision is what the policy decided for a known client.
type Decision struct {
	Host inventory.Host
	VLAN VLAN
	// TTL is how long the decision may be cached: the smallest TTL of the
	// DNS answers it rests on.
	TTL time.Duration
	// By says how the client was identified, e.g. "strict MAC 02:04:06:08:73:ac
	// → VLAN 135, 192.0.2.10; FCrDNS 192.0.2.10 → demo1.example.com.", for
	// logs and vmprov explain.
	By string
}

// Policy identifies clients and decides what they get.
//
// Decide is called several times per boot (DHCP discover and request, TFTP,
// each HTTP request), possibly concurrently; it must be idempotent, cheap
// when repeated (answers are cached for their DNS TTL) and safe for
// concurrent use. It returns ErrUnknown (wrapped, with the reason) for
// clients DNS does not know, and another error when DNS cannot be asked:
// then the caller gives no answer, never a guess. Decide does not log: its
// callers log the request once, with the reason.
type Policy interface {
	Decide(ctx context.Context, c Client) (Decision, error)
}
