package dhcp6

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
)

// ErrMalformed is wrapped by Handle's errors about messages that break the
// protocol; such messages are dropped and logged at Warn.
var ErrMalformed = errors.New("malformed DHCPv6 message")

// Ingress is where a message arrived.
type Ingress struct {
	// Interface names the receiving interface, for logs.
	Interface string
	// VLAN is the id of the configured VLAN the interface is on; 0 means
	// none, and then only relayed messages are answered.
	VLAN int
	// ServerIP is the server's global IPv6 address on that interface, the
	// host of tftp:// boot file URLs for PXE firmware. Zero means PXE
	// firmware gets no boot file.
	ServerIP netip.Addr
	// Source is the source address of the packet: the client's link-local
	// address for a direct message, the relay agent's address otherwise.
	Source netip.Addr
}

// maxRelays bounds nested Relay-forward messages. Relay agents discard a
// Relay-forward whose hop-count is HOP_COUNT_LIMIT (8) or more (RFC 8415
// sections 7.6 and 19.1.2), so a real chain holds at most 9 of them.
const maxRelays = 9

// request is a client message with the relays it came through.
type request struct {
	msg    *dhcpv6.Message
	relays []*dhcpv6.RelayMessage // outermost first
	client dhcpv6.DUID            // nil when the message has no Client Identifier
}

// inner returns the relay next to the client, nil for a direct message.
func (r *request) inner() *dhcpv6.RelayMessage {
	if len(r.relays) == 0 {
		return nil
	}
	return r.relays[len(r.relays)-1]
}

// errNotOurs marks a message meant for another server; it is ignored
// silently (RFC 8415 section 16).
var errNotOurs = errors.New("message for another server")

// Handle decides the reply to msg, which came in at in. msg is a client
// message or a Relay-forward (nested relays too); the reply to a relayed
// message is the matching Relay-reply chain, each level echoing its
// Interface-ID (RFC 8415 section 19.3).
//
// A nil reply with a nil error means no answer is due: the client is
// unknown to DNS or cannot be identified, the message is meant for another
// server, or it is not one a server answers. Errors wrap ErrMalformed for
// messages that break the protocol, and otherwise mean the policy could not
// decide (DNS failed): then too nothing is sent. Handle logs its decisions
// (Info) and ignored traffic (Debug); it neither logs nor sends its errors.
//
// Handle reads no clock and keeps no state: the reply depends on the
// message, the configuration, the ingress and DNS only.
func (s *Server) Handle(ctx context.Context, msg dhcpv6.DHCPv6, in Ingress) (dhcpv6.DHCPv6, error) {
	req, err := unwrap(msg)
	if err != nil {
		return nil, err
	}
	if req == nil {
		s.log.Debug("not a client or Relay-forward message: ignored", "iface", in.Interface, "type", msg.Type().String())
		return nil, nil
	}
	m := req.msg
	log := netboot.NewRequestLog(s.log, "xid", m.TransactionID.String(), "iface", in.Interface, "type", m.MessageType.String())
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeConfirm,
		dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease,
		dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest:
	default:
		log.Debug("message type not served by a DHCPv6 server: ignored")
		return nil, nil
	}
	if err := s.validate(req); errors.Is(err, errNotOurs) {
		log.Debug("message for another server: ignored", "err", err)
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if req.client != nil {
		log = log.With("duid", fmt.Sprintf("%x", req.client.ToBytes()))
	}

	vlan, ok := s.vlanOf(req, in)
	if !ok {
		log.Debug("message from a link without a configured IPv6 VLAN: ignored", "ip", linkAddr(req))
		return nil, nil
	}
	log = log.With("vlan", vlan.ID)
	fw := Firmware(m)
	mac, from := macOf(req, in)
	var d netboot.Decision
	if mac != nil {
		log = log.With("mac", mac.String(), "from", from)
		dec, err := s.policy.Decide(ctx, netboot.Client{MAC: mac, VLAN: vlan.ID})
		if errors.Is(err, netboot.ErrUnknown) {
			log.Debug("client unknown to DNS: no answer", "err", err)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dhcp6: %s from %s: %w", m.MessageType, mac, err)
		}
		// A local-boot answer rests on the build state, which a cached
		// answer may hold from before a reinstall: it is confirmed past
		// the cache.
		if _, dec, err = s.booter.Confirmed(ctx, s.policy, dec, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv6, Server: in.ServerIP, IPv6: true}); err != nil {
			return nil, fmt.Errorf("dhcp6: %s from %s: %w", m.MessageType, mac, err)
		}
		if dec.VLAN.ID != vlan.ID {
			log.Info("client is not on the VLAN of its DNS records: no answer", "host", dec.Host.FQDN, "want", dec.VLAN.ID)
			return nil, nil
		}
		d = dec
		log = log.With("host", d.Host.FQDN)
	} else if !s.answerUnidentified {
		log.Debug("no MAC in the client's DUID, a relay's link-layer address option or an EUI-64 link-local address: no answer")
		return nil, nil
	}

	// The address a known host gets: its AAAA record, if it is on the link.
	var addr netip.Addr
	if d.Host.IPv6.Is6() && vlan.IPv6.Contains(d.Host.IPv6) {
		addr = d.Host.IPv6
	}
	a := s.booter.Answer(d, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv6, Server: in.ServerIP, IPv6: true})
	resp, err := s.reply(log, req, vlan, a, addr)
	if resp == nil || err != nil {
		return nil, err
	}
	return wrap(resp, req.relays), nil
}

// unwrap peels Relay-forward messages off msg. It returns nil without an
// error for messages a server never answers (a Relay-reply).
func unwrap(msg dhcpv6.DHCPv6) (*request, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: no message", ErrMalformed)
	}
	req := &request{}
	cur := msg
	for cur.IsRelay() {
		r, ok := cur.(*dhcpv6.RelayMessage)
		if !ok || r == nil {
			return nil, fmt.Errorf("%w: relay message of unknown form", ErrMalformed)
		}
		if r.MessageType != dhcpv6.MessageTypeRelayForward {
			if len(req.relays) == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: %s inside a Relay-forward", ErrMalformed, r.MessageType)
		}
		if len(req.relays) == maxRelays {
			return nil, fmt.Errorf("%w: more than %d nested Relay-forward messages", ErrMalformed, maxRelays)
		}
		if len(r.LinkAddr) != net.IPv6len || len(r.PeerAddr) != net.IPv6len {
			return nil, fmt.Errorf("%w: Relay-forward with a short link or peer address", ErrMalformed)
		}
		next := r.Options.RelayMessage()
		if next == nil {
			return nil, fmt.Errorf("%w: Relay-forward without a Relay Message option", ErrMalformed)
		}
		req.relays = append(req.relays, r)
		cur = next
	}
	m, ok := cur.(*dhcpv6.Message)
	if !ok || m == nil {
		return nil, fmt.Errorf("%w: message of unknown form", ErrMalformed)
	}
	req.msg = m
	return req, nil
}

// validate applies the server-side checks of RFC 8415 section 16 and reads
// the client's DUID. It returns errNotOurs for messages that name another
// server.
func (s *Server) validate(req *request) error {
	m := req.msg
	if o := m.GetOneOption(dhcpv6.OptionClientID); o != nil {
		d, err := dhcpv6.DUIDFromBytes(o.ToBytes())
		if err != nil {
			return fmt.Errorf("%w: %s with an unreadable Client Identifier: %v", ErrMalformed, m.MessageType, err)
		}
		req.client = d
	}
	var sid []byte
	hasSID := false
	if o := m.GetOneOption(dhcpv6.OptionServerID); o != nil {
		sid, hasSID = o.ToBytes(), true
	}
	ours := hasSID && bytes.Equal(sid, s.duid.ToBytes())

	if m.MessageType != dhcpv6.MessageTypeInformationRequest && req.client == nil {
		return fmt.Errorf("%w: %s without Client Identifier (RFC 8415 section 16)", ErrMalformed, m.MessageType)
	}
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		if hasSID {
			return fmt.Errorf("%w: %s with a Server Identifier (RFC 8415 section 16)", ErrMalformed, m.MessageType)
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if !hasSID {
			return fmt.Errorf("%w: %s without Server Identifier (RFC 8415 section 16)", ErrMalformed, m.MessageType)
		}
		if !ours {
			return fmt.Errorf("%w: server %x", errNotOurs, sid)
		}
	case dhcpv6.MessageTypeInformationRequest:
		if hasSID && !ours {
			return fmt.Errorf("%w: server %x", errNotOurs, sid)
		}
		for _, code := range []dhcpv6.OptionCode{dhcpv6.OptionIANA, dhcpv6.OptionIATA, dhcpv6.OptionIAPD} {
			if m.GetOneOption(code) != nil {
				return fmt.Errorf("%w: Information-request with an IA option (RFC 8415 section 16.12)", ErrMalformed)
			}
		}
	}
	return nil
}

// vlanOf returns the VLAN the client is on: the one whose IPv6 prefix holds
// the link-address of the relay next to the client (RFC 8415 section
// 19.1.1), else the ingress interface's. A relay that leaves link-address
// unspecified (identifying the link by Interface-ID alone) is not served:
// the Interface-ID is the relay's private name for its port.
func (s *Server) vlanOf(req *request, in Ingress) (netboot.VLAN, bool) {
	if r := req.inner(); r != nil {
		la := linkAddr(req)
		v, ok := s.vlans.Of(la)
		if !ok || !v.IPv6.IsValid() || !v.IPv6.Contains(la) {
			return netboot.VLAN{}, false
		}
		return v, true
	}
	v, ok := s.vlans.ByID(in.VLAN)
	if !ok || !v.IPv6.IsValid() {
		return netboot.VLAN{}, false
	}
	return v, true
}

// linkAddr is the link-address of the relay next to the client; zero for
// direct messages.
func linkAddr(req *request) netip.Addr {
	if r := req.inner(); r != nil {
		return addr16(r.LinkAddr)
	}
	return netip.Addr{}
}

// macOf finds the client's MAC, in this order:
//
//  1. the link-layer address of a DUID-LL or DUID-LLT (RFC 8415 sections
//     11.2, 11.4) of hardware type Ethernet: the MAC the host chose to be
//     known by, which is what vmprov's MAC-derived addressing assumes;
//  2. the Client Link-Layer Address option (79, RFC 6939) of the relay next
//     to the client, which the relay read off the wire;
//  3. the modified EUI-64 interface identifier of the client's link-local
//     address (the packet's source, or that relay's peer-address), which
//     iPXE and most firmware form from their MAC. This is what identifies
//     clients that send a DUID-UUID or DUID-EN (seed 004).
//
// from names the source, for logs. A nil MAC means none of them gave one.
func macOf(req *request, in Ingress) (mac net.HardwareAddr, from string) {
	switch d := req.client.(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return slices.Clone(d.LinkLayerAddr), "duid-ll"
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return slices.Clone(d.LinkLayerAddr), "duid-llt"
		}
	}
	src := in.Source
	if r := req.inner(); r != nil {
		if o := r.GetOneOption(dhcpv6.OptionClientLinkLayerAddr); o != nil {
			b := o.ToBytes()
			if len(b) == 8 && iana.HWType(uint16(b[0])<<8|uint16(b[1])) == iana.HWTypeEthernet {
				return net.HardwareAddr(slices.Clone(b[2:])), "relay-lla"
			}
		}
		src = addr16(r.PeerAddr)
	}
	if src.Is6() && src.IsLinkLocalUnicast() {
		if mac, ok := inventory.MACFromEUI64(src.WithZone("")); ok {
			return mac, "link-local"
		}
	}
	return nil, ""
}

// reply builds the answer to a validated message from a client the server
// answers. a is its boot answer, addr its address on the link, zero for
// none.
func (s *Server) reply(log netboot.RequestLog, req *request, vlan netboot.VLAN, a netboot.Answer, addr netip.Addr) (*dhcpv6.Message, error) {
	m := req.msg
	if addr.IsValid() {
		log = log.With("ip", addr.String())
	}
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit:
		// RFC 8415 section 18.3.1: Rapid Commit is honoured only when the
		// reply commits an address; otherwise the client gets an Advertise
		// and may still choose another server.
		typ := dhcpv6.MessageTypeAdvertise
		rapid := m.GetOneOption(dhcpv6.OptionRapidCommit) != nil && addr.IsValid()
		if rapid {
			typ = dhcpv6.MessageTypeReply
		}
		resp := s.newReply(req, typ)
		if rapid {
			resp.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		}
		if !rapid && addr.IsValid() {
			// Preference 255: the client requests at once instead of
			// waiting a second for other servers (RFC 8415 section 18.2.1).
			resp.AddOption(dhcpv6.OptPreference(255))
		}
		if err := s.addIAs(resp, m, addr, false, iana.StatusNoAddrsAvail, iana.StatusNoPrefixAvail); err != nil {
			return nil, err
		}
		return s.finish(log, resp, vlan, a), nil
	case dhcpv6.MessageTypeRequest:
		resp := s.newReply(req, dhcpv6.MessageTypeReply)
		if err := s.addIAs(resp, m, addr, true, iana.StatusNoAddrsAvail, iana.StatusNoPrefixAvail); err != nil {
			return nil, err
		}
		return s.finish(log, resp, vlan, a), nil
	case dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		resp := s.newReply(req, dhcpv6.MessageTypeReply)
		if err := s.addIAs(resp, m, addr, true, iana.StatusNoBinding, iana.StatusNoBinding); err != nil {
			return nil, err
		}
		return s.finish(log, resp, vlan, a), nil
	case dhcpv6.MessageTypeInformationRequest:
		resp := s.newReply(req, dhcpv6.MessageTypeReply)
		return s.finish(log, resp, vlan, a), nil
	case dhcpv6.MessageTypeConfirm:
		return s.confirm(log, req, vlan)
	case dhcpv6.MessageTypeRelease:
		log.Info("client released its addresses")
		return s.status(req, iana.StatusSuccess, "released"), nil
	case dhcpv6.MessageTypeDecline:
		addrs, err := iaAddrs(m)
		if err != nil {
			return nil, err
		}
		log.Error("client declined addresses: another machine uses them", "err", fmt.Sprintf("addresses %v are in use on VLAN %d", addrs, vlan.ID))
		return s.status(req, iana.StatusSuccess, "declined"), nil
	}
	return nil, nil
}

// newReply starts an Advertise or Reply to req: transaction ID, the client's
// DUID and the server's.
func (s *Server) newReply(req *request, typ dhcpv6.MessageType) *dhcpv6.Message {
	resp := &dhcpv6.Message{MessageType: typ, TransactionID: req.msg.TransactionID}
	if req.client != nil {
		resp.AddOption(dhcpv6.OptClientID(req.client))
	}
	resp.AddOption(dhcpv6.OptServerID(s.duid))
	return resp
}

// status is a Reply carrying only a status code (Confirm, Release,
// Decline: RFC 8415 sections 18.3.3, 18.3.7, 18.3.8).
func (s *Server) status(req *request, code iana.StatusCode, text string) *dhcpv6.Message {
	resp := s.newReply(req, dhcpv6.MessageTypeReply)
	resp.AddOption(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: text})
	return resp
}

// finish adds the configuration options and logs the answer: DNS servers
// (option 23: the VLAN's IPv6 dns_servers; none configured, none sent, as a
// router is not assumed to resolve), the domain search list (option 24:
// dns.zone) and the boot answer: the boot file URL (option 59, RFC 5970
// section 3.1) and the vendor class it asks to echo. The boot file is sent
// whether or not the client's Option Request lists it: iPXE used it for
// years without asking for it (dhcpv6.c before 2016 requested only options
// 23 and 24).
func (s *Server) finish(log netboot.RequestLog, resp *dhcpv6.Message, vlan netboot.VLAN, a netboot.Answer) *dhcpv6.Message {
	var dns []net.IP
	for _, a := range vlan.DNSServers {
		if a.Is6() && !a.Is4In6() {
			dns = append(dns, ip16(a))
		}
	}
	if len(dns) > 0 {
		resp.AddOption(dhcpv6.OptDNS(dns...))
	}
	if s.domain != "" {
		resp.AddOption(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: []string{s.domain}}))
	}
	var file string
	if a.Action == netboot.ActionFile {
		file = a.File
		resp.AddOption(dhcpv6.OptBootFileURL(file))
		if a.VendorClass != "" {
			resp.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterpriseEDK2, Data: [][]byte{[]byte(a.VendorClass)}})
		}
	}
	if a.Action == netboot.ActionLocal {
		// An installed host: its address, no boot file (docs/design.md,
		// "A host's life").
		log = log.With("boot", "local")
	}
	log.Info("dhcp6 "+resp.MessageType.String(), "file", file, "arch", a.Firmware.ArchString(), "class", a.Firmware.Kind.String())
	if file == "" && a.Why != "" {
		log.Debug("no boot file", "err", a.Why)
	}
	return resp
}

// addIAs answers each IA of m: the first IA_NA gets addr (if valid) with
// lifetimes of serve.lease_time and T1/T2 at 0.5 and 0.8 of it (RFC 8415
// section 21.4); an IA_NA without an address carries noAddr. With
// staleZero, addresses the client lists that are not addr come back with
// lifetimes 0, so it stops using them (RFC 8415 sections 18.3.4, 18.3.5).
// vmprov gives no temporary addresses and delegates no prefixes: IA_TA
// carries noAddr, IA_PD noPrefix.
func (s *Server) addIAs(resp, m *dhcpv6.Message, addr netip.Addr, staleZero bool, noAddr, noPrefix iana.StatusCode) error {
	given := false
	for _, o := range m.GetOption(dhcpv6.OptionIANA) {
		var ia dhcpv6.OptIANA
		if err := ia.FromBytes(o.ToBytes()); err != nil {
			return fmt.Errorf("%w: IA_NA: %v", ErrMalformed, err)
		}
		out := &dhcpv6.OptIANA{IaId: ia.IaId}
		mine := false
		if addr.IsValid() && !given {
			out.T1, out.T2 = s.t1, s.t2
			out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ip16(addr), PreferredLifetime: s.lease, ValidLifetime: s.lease})
			given, mine = true, true
		}
		if staleZero {
			for _, a := range ia.Options.Get(dhcpv6.OptionIAAddr) {
				ad, ok := a.(*dhcpv6.OptIAAddress)
				if !ok {
					continue
				}
				if x := addr16(ad.IPv6Addr); x.IsValid() && (x != addr || !mine) {
					out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ip16(x)})
				}
			}
		}
		if !mine {
			out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: noAddr, StatusMessage: "no address for this client"})
		}
		resp.AddOption(out)
	}
	for _, o := range m.GetOption(dhcpv6.OptionIATA) {
		var ia dhcpv6.OptIATA
		if err := ia.FromBytes(o.ToBytes()); err != nil {
			return fmt.Errorf("%w: IA_TA: %v", ErrMalformed, err)
		}
		out := &dhcpv6.OptIATA{IaId: ia.IaId}
		out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: noAddr, StatusMessage: "no temporary addresses"})
		resp.AddOption(out)
	}
	for _, o := range m.GetOption(dhcpv6.OptionIAPD) {
		var ia dhcpv6.OptIAPD
		if err := ia.FromBytes(o.ToBytes()); err != nil {
			return fmt.Errorf("%w: IA_PD: %v", ErrMalformed, err)
		}
		out := &dhcpv6.OptIAPD{IaId: ia.IaId}
		out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: noPrefix, StatusMessage: "no prefixes delegated"})
		resp.AddOption(out)
	}
	return nil
}

// confirm answers a Confirm (RFC 8415 section 18.3.3): Success when every
// address the client lists is on the link (inside the VLAN's IPv6 prefix),
// NotOnLink otherwise, and no reply when it lists none.
func (s *Server) confirm(log netboot.RequestLog, req *request, vlan netboot.VLAN) (*dhcpv6.Message, error) {
	addrs, err := iaAddrs(req.msg)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		log.Debug("Confirm without addresses: no answer")
		return nil, nil
	}
	for _, a := range addrs {
		if !vlan.IPv6.Contains(a) {
			log.Info("dhcp6 REPLY to Confirm: not on link", "addr", a.String())
			return s.status(req, iana.StatusNotOnLink, "not on link"), nil
		}
	}
	log.Info("dhcp6 REPLY to Confirm: on link", "addr", addrs[0].String())
	return s.status(req, iana.StatusSuccess, "on link"), nil
}

// iaAddrs lists the addresses in the IA_NA and IA_TA options of m.
func iaAddrs(m *dhcpv6.Message) ([]netip.Addr, error) {
	var out []netip.Addr
	add := func(opts dhcpv6.Options) {
		for _, a := range opts.Get(dhcpv6.OptionIAAddr) {
			if ia, ok := a.(*dhcpv6.OptIAAddress); ok {
				if x := addr16(ia.IPv6Addr); x.IsValid() {
					out = append(out, x)
				}
			}
		}
	}
	for _, o := range m.GetOption(dhcpv6.OptionIANA) {
		var ia dhcpv6.OptIANA
		if err := ia.FromBytes(o.ToBytes()); err != nil {
			return nil, fmt.Errorf("%w: IA_NA: %v", ErrMalformed, err)
		}
		add(ia.Options.Options)
	}
	for _, o := range m.GetOption(dhcpv6.OptionIATA) {
		var ia dhcpv6.OptIATA
		if err := ia.FromBytes(o.ToBytes()); err != nil {
			return nil, fmt.Errorf("%w: IA_TA: %v", ErrMalformed, err)
		}
		add(ia.Options.Options)
	}
	return out, nil
}

// wrap puts resp into the Relay-reply chain that mirrors relays (outermost
// first): each level copies hop-count, link-address and peer-address of its
// Relay-forward and echoes its Interface-ID (RFC 8415 section 19.3).
func wrap(resp *dhcpv6.Message, relays []*dhcpv6.RelayMessage) dhcpv6.DHCPv6 {
	var out dhcpv6.DHCPv6 = resp
	for i := len(relays) - 1; i >= 0; i-- {
		r := relays[i]
		rr := &dhcpv6.RelayMessage{
			MessageType: dhcpv6.MessageTypeRelayReply,
			HopCount:    r.HopCount,
			LinkAddr:    slices.Clone(r.LinkAddr),
			PeerAddr:    slices.Clone(r.PeerAddr),
		}
		if iid := r.GetOneOption(dhcpv6.OptionInterfaceID); iid != nil {
			rr.AddOption(dhcpv6.OptInterfaceID(slices.Clone(iid.ToBytes())))
		}
		rr.AddOption(dhcpv6.OptRelayMessage(out))
		out = rr
	}
	return out
}

// addr16 converts a wire address; invalid unless ip has 16 bytes.
func addr16(ip net.IP) netip.Addr {
	if len(ip) != net.IPv6len {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(ip))
}

// ip16 converts an IPv6 address for the wire library.
func ip16(a netip.Addr) net.IP {
	b := a.As16()
	return net.IP(b[:])
}
