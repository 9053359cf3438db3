package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
)

// ErrMalformed is wrapped by Handle's errors about requests that break the
// protocol; such requests are dropped and logged at Warn.
var ErrMalformed = errors.New("malformed DHCPv4 request")

// Ingress is where a request arrived. Relay information is not part of it:
// it travels in the request (giaddr, and option 82, which replies echo as
// RFC 3046 section 2.2 asks).
type Ingress struct {
	// Interface names the receiving interface, for logs.
	Interface string
	// VLAN is the id of the configured VLAN the interface is on; 0 means
	// none, and then only routed requests are answered: relayed ones, and
	// those bound clients of a VLAN unicast past their relay (ciaddr set).
	VLAN int
	// ServerIP is the server's address on that interface: the server
	// identifier (option 54) and the PXE next-server. Required.
	ServerIP netip.Addr
}

// maxFileField is what the BOOTP file field holds before its NUL.
const maxFileField = 127

// iPXE's encapsulated options: option 175 holds sub-options in the usual
// code-length-value form, and sub-option 176 (DHCP_EB_NO_PXEDHCP,
// "no-pxedhcp") set to 1 makes iPXE take a DHCPOFFER without waiting for
// ProxyDHCP offers and ignore PXE options. iPXE reads it from the offer it
// selects; the ACK carries it too, as the record of the settings iPXE got.
const (
	optionIPXEEncap        = 175
	ipxeSubOptionNoPXEDHCP = 176
)

// Handle decides the reply to req, which came in at in. A nil reply with a
// nil error means no answer is due: the client is unknown to DNS, the
// request is a RELEASE or DECLINE (logged only), or it is addressed to
// another server. Errors wrap ErrMalformed for requests that break the
// protocol, and otherwise mean the policy could not decide (DNS failed):
// then too nothing is sent. Handle logs its decisions (Info) and ignored
// traffic (Debug); it neither logs nor sends its errors.
//
// Handle reads no clock and keeps no state, so equal requests get
// byte-identical replies from any Server with the same configuration.
func (s *Server) Handle(ctx context.Context, req *dhcpv4.DHCPv4, in Ingress) (*dhcpv4.DHCPv4, error) {
	resp, err := s.handle(ctx, req, in)
	s.count(resp, err)
	return resp, err
}

func (s *Server) handle(ctx context.Context, req *dhcpv4.DHCPv4, in Ingress) (*dhcpv4.DHCPv4, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	if !in.ServerIP.Is4() {
		return nil, fmt.Errorf("dhcp4: handle: ingress %q has no IPv4 server address", in.Interface)
	}
	mt := req.MessageType()
	log := netboot.NewRequestLog(s.log, "mac", req.ClientHWAddr.String(), "xid", req.TransactionID.String(), "iface", in.Interface, "type", mt.String())
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
	default:
		log.Debug("message type not served by a DHCP server: ignored")
		return nil, nil
	}

	vlan, ok := s.vlanOf(req, in)
	if !ok {
		log.Debug("request from a network without a configured IPv4 VLAN: ignored", "giaddr", addr4(req.GatewayIPAddr).String(), "ciaddr", addr4(req.ClientIPAddr).String())
		return nil, nil
	}
	log = log.With("vlan", vlan.ID)
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() && !gi.IsUnspecified() {
		log = log.With("giaddr", gi.String()) // the relay that forwarded it
	}
	fw := Firmware(req)
	d, err := s.policy.Decide(ctx, netboot.Client{MAC: slices.Clone(req.ClientHWAddr), VLAN: vlan.ID})
	if errors.Is(err, netboot.ErrUnknown) {
		log.Debug("client unknown to DNS: no answer", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp4: %s from %s: %w", mt, req.ClientHWAddr, err)
	}
	// A local-boot answer rests on the build state, which a cached answer
	// may hold from before a reinstall: it is confirmed past the cache.
	if _, d, err = s.booter.Confirmed(ctx, s.policy, d, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv4, Server: in.ServerIP}); err != nil {
		return nil, fmt.Errorf("dhcp4: %s from %s: %w", mt, req.ClientHWAddr, err)
	}
	ip := d.Host.IPv4.Unmap()
	log = log.With("host", d.Host.FQDN)
	if !ip.Is4() {
		log.Debug("host has no IPv4 address in DNS: no answer")
		return nil, nil
	}
	log = log.With("ip", ip.String())
	wrongNet := d.VLAN.ID != vlan.ID || !vlan.IPv4.Contains(ip)

	switch mt {
	case dhcpv4.MessageTypeRelease:
		log.Info("client released its address")
		return nil, nil
	case dhcpv4.MessageTypeDecline:
		log.Error("client declined its address: another machine uses it", "err", fmt.Sprintf("address %s of %s is in use", ip, d.Host.FQDN))
		return nil, nil
	case dhcpv4.MessageTypeDiscover:
		if wrongNet {
			log.Info("client is not on the VLAN of its DNS address: no offer", "want", d.VLAN.ID)
			return nil, nil
		}
		return s.reply(log, req, in, fw, d, dhcpv4.MessageTypeOffer)
	case dhcpv4.MessageTypeInform:
		if wrongNet || addr4(req.ClientIPAddr) != ip {
			log.Info("inform from an address DNS does not give this client: no answer", "ciaddr", addr4(req.ClientIPAddr).String())
			return nil, nil
		}
		if fw.Kind == netboot.KindBSDP {
			// An installed Mac is offered no image: it boots its own disk
			// (docs/design.md, "A host's life").
			if a := s.booter.Answer(d, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv4, Server: in.ServerIP}); a.Action == netboot.ActionLocal {
				log.Info("BSDP INFORM of an installed host: no image offered, no answer", "class", fw.Kind.String(), "boot", "local")
				return nil, nil
			}
			return s.bsdpInform(log, req, in, d)
		}
		return s.reply(log, req, in, fw, d, dhcpv4.MessageTypeAck)
	}

	// DHCPREQUEST: which state the client is in decides what it asks for
	// (RFC 2131 section 4.3.2).
	var asked netip.Addr
	var state string
	serverID := addr4(req.ServerIdentifier())
	requested := addr4(req.RequestedIPAddress())
	switch {
	case serverID.IsValid() && !serverID.IsUnspecified():
		if serverID != in.ServerIP.Unmap() {
			log.Debug("client selected another server")
			return nil, nil
		}
		if !requested.IsValid() {
			return nil, fmt.Errorf("%w: REQUEST (SELECTING) from %s without requested address (option 50)", ErrMalformed, req.ClientHWAddr)
		}
		state, asked = "selecting", requested
	case requested.IsValid():
		state, asked = "init-reboot", requested
	case addr4(req.ClientIPAddr).IsValid() && !addr4(req.ClientIPAddr).IsUnspecified():
		state, asked = "renewing", addr4(req.ClientIPAddr)
	default:
		return nil, fmt.Errorf("%w: REQUEST from %s with neither server identifier, requested address nor ciaddr", ErrMalformed, req.ClientHWAddr)
	}
	log = log.With("state", state)
	if wrongNet || asked != ip {
		log.Info("client asks for an address DNS does not give it: NAK", "requested", asked.String())
		return nak(req, in), nil
	}
	return s.reply(log, req, in, fw, d, dhcpv4.MessageTypeAck)
}

// validate checks what every request must have.
func validate(req *dhcpv4.DHCPv4) error {
	switch {
	case req == nil:
		return fmt.Errorf("%w: no packet", ErrMalformed)
	case req.OpCode != dhcpv4.OpcodeBootRequest:
		return fmt.Errorf("%w: op %s is not BOOTREQUEST", ErrMalformed, req.OpCode)
	case req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6:
		return fmt.Errorf("%w: hardware type %s with a %d-byte address is not Ethernet", ErrMalformed, req.HWType, len(req.ClientHWAddr))
	case len(req.Options.Get(dhcpv4.OptionDHCPMessageType)) != 1:
		return fmt.Errorf("%w: no DHCP message type (option 53)", ErrMalformed)
	}
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionServerIdentifier, dhcpv4.OptionRequestedIPAddress} {
		if v := req.Options.Get(code); v != nil && len(v) != 4 {
			return fmt.Errorf("%w: option %d has %d bytes, not an IPv4 address", ErrMalformed, code.Code(), len(v))
		}
	}
	return nil
}

// vlanOf returns the VLAN a request comes from: the one holding the
// address routedFrom finds, else the ingress interface's.
func (s *Server) vlanOf(req *dhcpv4.DHCPv4, in Ingress) (netboot.VLAN, bool) {
	id := in.VLAN
	if from := routedFrom(req, in); from.IsValid() {
		v, ok := s.vlans.Of(from)
		if !ok || !v.IPv4.Contains(from) {
			return netboot.VLAN{}, false
		}
		id = v.ID
	}
	v, ok := s.vlans.ByID(id)
	if !ok || !v.IPv4.IsValid() {
		return netboot.VLAN{}, false
	}
	return v, true
}

// routedFrom returns the address that places a request routed to the
// server, or the zero Addr for a request from the ingress interface's own
// link. That address is giaddr for a relayed request. A bound client
// unicasts its REQUEST (RENEWING, RFC 2131 section 4.4.5), INFORM and
// RELEASE straight to the server, past its relay, so on an interface of
// no VLAN, which only routed traffic reaches, such a request is placed by
// ciaddr (sections 4.3.2 and 4.3.5: the server trusts it and answers it).
// A DISCOVER or DECLINE there is never placed by ciaddr, which RFC 2131
// table 5 has the client set to 0.
func routedFrom(req *dhcpv4.DHCPv4, in Ingress) netip.Addr {
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() && !gi.IsUnspecified() {
		return gi
	}
	if in.VLAN != 0 {
		return netip.Addr{}
	}
	switch req.MessageType() {
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform, dhcpv4.MessageTypeRelease:
		if ci := addr4(req.ClientIPAddr); ci.IsValid() && !ci.IsUnspecified() {
			return ci
		}
	}
	return netip.Addr{}
}

// newReply starts a reply to req: header fields per RFC 2131 section 4.3.1
// table 3, the message type, the server identifier, and the relay agent
// information (RFC 3046 section 2.2) and client identifier (RFC 6842) copied
// from the request.
func newReply(req *dhcpv4.DHCPv4, in Ingress, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	resp := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  slices.Clone(req.ClientHWAddr),
		Options:       make(dhcpv4.Options),
	}
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() {
		resp.GatewayIPAddr = ip4(gi)
	}
	resp.UpdateOption(dhcpv4.OptMessageType(mt))
	resp.UpdateOption(dhcpv4.OptServerIdentifier(ip4(in.ServerIP)))
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(code); v != nil {
			resp.UpdateOption(dhcpv4.OptGeneric(code, slices.Clone(v)))
		}
	}
	return resp
}

// nak builds a DHCPNAK: no address, no parameters (RFC 2131 table 3). The
// broadcast flag makes a relay broadcast it (section 4.1).
func nak(req *dhcpv4.DHCPv4, in Ingress) *dhcpv4.DHCPv4 {
	resp := newReply(req, in, dhcpv4.MessageTypeNak)
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() && !gi.IsUnspecified() {
		resp.SetBroadcast()
	}
	resp.UpdateOption(dhcpv4.OptMessage("requested address is not assigned to this client"))
	return resp
}

// reply builds an OFFER or ACK for a known client on its VLAN.
func (s *Server) reply(log netboot.RequestLog, req *dhcpv4.DHCPv4, in Ingress, fw netboot.Firmware, d netboot.Decision, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	resp := newReply(req, in, mt)
	inform := req.MessageType() == dhcpv4.MessageTypeInform
	if ci := addr4(req.ClientIPAddr); ci.IsValid() && mt == dhcpv4.MessageTypeAck {
		resp.ClientIPAddr = ip4(ci)
	}
	// RFC 2131 section 4.3.5: an ACK to an INFORM has no yiaddr and no
	// lease time.
	if !inform {
		resp.YourIPAddr = ip4(d.Host.IPv4)
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(s.lease))
	}
	v := d.VLAN
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(v.IPv4.Bits(), 32)))
	if v.Gateway.Is4() {
		resp.UpdateOption(dhcpv4.OptRouter(ip4(v.Gateway)))
	}
	var dns []net.IP
	for _, a := range v.DNSServers {
		if a.Unmap().Is4() {
			dns = append(dns, ip4(a))
		}
	}
	if len(dns) > 0 {
		resp.UpdateOption(dhcpv4.OptDNS(dns...))
	}
	if s.domain != "" {
		resp.UpdateOption(dhcpv4.OptDomainName(s.domain))
	}
	if d.Host.Name != "" {
		resp.UpdateOption(dhcpv4.OptHostName(d.Host.Name))
	}
	a := s.booter.Answer(d, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv4, Server: in.ServerIP})
	file := s.boot(log, resp, req, in, a, d)
	if a.Action == netboot.ActionLocal {
		// An installed host: its address, no boot file; the firmware
		// boots its disk (docs/design.md, "A host's life").
		log = log.With("boot", "local")
	}
	log.Info("dhcp4 "+mt.String(), "file", file, "arch", fw.ArchString(), "class", fw.Kind.String())
	if file == "" && a.Why != "" {
		log.Debug("no boot file", "err", a.Why)
	}
	return resp, nil
}

// boot writes the boot answer a into resp and returns the file it names
// (empty for none). The decision is netboot.Booter's; this is its DHCPv4
// form:
//
//   - a TFTP loader goes in the file field with siaddr and option 66 set to
//     the TFTP server. The reply carries neither vendor class "PXEClient"
//     nor PXE vendor options (43): EDK2 (UefiPxeBcDxe PxeBcDhcp4.c
//     PxeBcParseDhcp4Packet) classes an offer with "PXEClient" but no
//     discovery options as a BINL offer and asks a boot server on UDP 4011
//     for the file, which vmprov does not run; an offer without it is
//     "DHCP only" and boots the file it names (PxeBcSelectDhcp4Offer). BIOS
//     PXE ROMs boot such offers too (docs/design.md, "The boot decision").
//   - a URL goes in the file field, or in option 67 when it is longer than
//     the field (RFC 2132 section 9.5), with the vendor class the answer
//     asks to echo ("HTTPClient" for UEFI HTTP boot).
//   - an answer with NoProxyDHCP (iPXE given its script) carries iPXE's
//     no-pxedhcp flag: without it iPXE waits for ProxyDHCP offers after
//     the OFFER (two seconds or more, in every DHCP exchange of a boot).
//   - an Intel Mac gets BSDP's selected image (package bsdp).
func (s *Server) boot(log netboot.RequestLog, resp, req *dhcpv4.DHCPv4, in Ingress, a netboot.Answer, d netboot.Decision) string {
	switch a.Action {
	case netboot.ActionBSDP:
		return s.bsdpBoot(log, resp, req, in, d)
	case netboot.ActionFile:
	default:
		return ""
	}
	if a.TFTPServer.IsValid() {
		resp.ServerIPAddr = ip4(a.TFTPServer)
		resp.UpdateOption(dhcpv4.OptTFTPServerName(a.TFTPServer.String()))
	}
	if a.VendorClass != "" {
		resp.UpdateOption(dhcpv4.OptClassIdentifier(a.VendorClass))
	}
	if a.NoProxyDHCP {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(optionIPXEEncap), []byte{ipxeSubOptionNoPXEDHCP, 1, 1}))
	}
	if len(a.File) <= maxFileField {
		resp.BootFileName = a.File
	} else {
		resp.UpdateOption(dhcpv4.OptBootFileName(a.File))
	}
	return a.File
}

// bsdpConfig is the BSDP server configuration for one client.
func (s *Server) bsdpConfig(in Ingress, d netboot.Decision) bsdp.ServerConfig {
	return bsdp.ServerConfig{
		ServerID:    in.ServerIP,
		Priority:    s.bsdpPriority,
		Images:      s.bsdpImages,
		MachineName: d.Host.Name,
	}
}

// bsdpBoot applies BSDP's answer to a DISCOVER or REQUEST of a Mac started
// with the N key: the default image and its booter. A BSDP request BSDP
// does not answer gets plain DHCP.
func (s *Server) bsdpBoot(log netboot.RequestLog, resp, req *dhcpv4.DHCPv4, in Ingress, d netboot.Decision) string {
	if len(s.bsdpImages) == 0 {
		log.Debug("BSDP client, but no bsdp.images configured: address only")
		return ""
	}
	r, err := bsdp.ParseRequest(req)
	if err != nil {
		log.Warn("BSDP options not understood: address only", "err", err)
		return ""
	}
	a, err := bsdp.Respond(r, s.bsdpConfig(in, d))
	if err != nil {
		log.Debug("BSDP does not answer: address only", "err", err)
		return ""
	}
	a.Apply(resp)
	return a.BootFile
}

// bsdpInform answers a Mac's INFORM[LIST] or INFORM[SELECT] (package bsdp).
func (s *Server) bsdpInform(log netboot.RequestLog, req *dhcpv4.DHCPv4, in Ingress, d netboot.Decision) (*dhcpv4.DHCPv4, error) {
	if len(s.bsdpImages) == 0 {
		log.Debug("BSDP INFORM, but no bsdp.images configured: no answer")
		return nil, nil
	}
	resp, err := bsdp.Reply(req, s.bsdpConfig(in, d))
	switch {
	case errors.Is(err, bsdp.ErrIgnore):
		log.Debug("BSDP does not answer", "err", err)
		return nil, nil
	case errors.Is(err, bsdp.ErrMalformed):
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	case err != nil:
		return nil, fmt.Errorf("dhcp4: bsdp: %w", err)
	}
	log.Info("dhcp4 BSDP ACK", "file", resp.BootFileName, "class", "bsdp")
	return resp, nil
}
