package netboot

import (
	"log/slog"
	"net/netip"
	"time"
)

// VLAN is one provisioning network as the boot service sees it.
type VLAN struct {
	ID     int
	Bridge string // the interface the VLAN is on (default br{ID})
	// IPv4 is the VLAN's IPv4 subnet (/20 or smaller: strict MACs carry 12
	// bits of the address); invalid for an IPv6-only VLAN.
	IPv4 netip.Prefix
	// Gateway is the DHCPv4 router option; invalid for none.
	Gateway netip.Addr
	// IPv6 is the VLAN's /64 (SLAAC); invalid for an IPv4-only VLAN.
	IPv6 netip.Prefix
	// DNSServers go to DHCPv4 (IPv4 ones) and DHCPv6 (IPv6 ones) clients.
	DNSServers []netip.Addr
}

// VLANs are the configured VLANs.
type VLANs []VLAN

// ByID returns the VLAN with that id.
func (vs VLANs) ByID(id int) (VLAN, bool) {
	for _, v := range vs {
		if v.ID == id {
			return v, true
		}
	}
	return VLAN{}, false
}

// Of returns the VLAN whose IPv4 or IPv6 subnet holds a.
func (vs VLANs) Of(a netip.Addr) (VLAN, bool) {
	a = a.Unmap().WithZone("")
	for _, v := range vs {
		if (v.IPv4.IsValid() && v.IPv4.Contains(a)) || (v.IPv6.IsValid() && v.IPv6.Contains(a)) {
			return v, true
		}
	}
	return VLAN{}, false
}

// DHCPConfig is what the DHCPv4 and DHCPv6 servers share.
type DHCPConfig struct {
	// Policy identifies clients from DNS. Required.
	Policy Policy
	// Booter decides the boot answer of an identified client.
	Booter Booter
	// VLANs are the networks served: a request is answered only on a VLAN
	// with a subnet of its family, with that VLAN's options.
	VLANs VLANs
	// Interfaces are where Serve listens (serve.interfaces).
	Interfaces []string
	// LeaseTime is the lease of every address (serve.lease_time). Required.
	LeaseTime time.Duration
	// Domain is the domain name (DHCPv4 option 15) and domain search list
	// (DHCPv6 option 24): dns.zone.
	Domain string
	// Log receives one Info line per answer and Debug lines for ignored
	// traffic; nil discards.
	Log *slog.Logger
}
