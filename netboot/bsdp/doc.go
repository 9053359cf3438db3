// Package bsdp encodes, decodes and answers Apple's Boot Server Discovery
// Protocol (BSDP), the NetBoot protocol Intel Macs speak inside DHCP.
//
// BSDP rides in DHCPv4 packets: a client marks itself with vendor class
// identifier (option 60) "AAPLBSDPC/<arch>/<model>", e.g.
// "AAPLBSDPC/i386/MacBookPro11,1", and carries its BSDP message as TLVs in
// the vendor-specific information (option 43); the server answers with
// vendor class "AAPLBSDPC" and its own option 43. A boot is:
//
//	INFORM[LIST]   client asks which images the servers offer
//	ACK[LIST]      server: priority, default image, image list
//	INFORM[SELECT] client picks an image from a server (BSDP server identifier)
//	ACK[SELECT]    server: selected image, file (the booter), siaddr
//
// A Mac started with the N key sends a DHCPDISCOVER with BSDP options
// instead; the offer then names the default image as the selected one.
//
// The TLV codes and their formats follow Apple's BSDP specification
// (bootp-268 Documentation/BSDP.doc) and Apple's reference server in the same
// bootp project (bsdp.h, bsdpd.c), which also decides what is answered when:
// see Respond. The bytes vmprov sends for one image are exactly those of
// seed 001's ISC dhcpd configuration (testdata/seed001_*.txt), which netboots
// Intel Macs into GRUB (mactel64.efi) over TFTP.
//
// The package has no sockets and no state: the DHCPv4 server calls
// ParseRequest and Respond (or Reply for a complete ACK to an INFORM) and
// sends the answer to the client's reply port itself.
package bsdp
