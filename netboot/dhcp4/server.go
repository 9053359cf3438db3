// Package dhcp4 is vmprov's DHCPv4 server: it answers only clients that DNS
// identifies (through a netboot.Policy), gives each its DNS address with the
// options of its VLAN, and points booting firmware at the right loader by
// client class (docs/design.md, "The boot decision").
//
// The server keeps no lease state and reads no clock: the answer to a
// request depends on the request, the configuration, the interface it came
// in on and DNS only, so any number of instances on a VLAN answer
// byte-identically (active-active, no lease sync). Handle is that decision
// without sockets; Serve reads requests from the configured interfaces and
// sends Handle's replies where RFC 2131 section 4.1 says.
package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
)

// RequestTimeout bounds the handling of one request, DNS included. PXE
// firmware retransmits after 4 s (PXE 2.1 spec, DHCPDISCOVER timeouts 4, 8,
// 16, 32 s); an answer later than that is wasted.
const RequestTimeout = 2 * time.Second

// maxInFlight is the number of workers of each interface, and so bounds the
// requests it handles concurrently; further packets wait in the socket
// buffer.
const maxInFlight = 64

// maxPacket is the largest request read: a DHCP message fits one Ethernet
// frame (RFC 2131 section 2: at least 576 bytes must be accepted; a jumbo
// frame holds 9000). A longer datagram is truncated and dropped as
// malformed.
const maxPacket = 9216

// Config configures a Server.
type Config struct {
	netboot.DHCPConfig
	// ServerIPv4, when valid, is the server identifier and next-server of
	// every answer (serve.server_ipv4); else each interface's address.
	ServerIPv4 netip.Addr
	// BSDPPriority and BSDPImages are what Intel Macs are offered (bsdp:);
	// no images, no BSDP.
	BSDPPriority uint16
	BSDPImages   []bsdp.Image
}

// Server answers DHCPv4 requests. It is safe for concurrent use.
type Server struct {
	policy       netboot.Policy
	booter       netboot.Booter
	vlans        netboot.VLANs
	interfaces   []string
	log          *slog.Logger
	lease        time.Duration
	domain       string
	serverIPv4   netip.Addr
	bsdpPriority uint16
	bsdpImages   []bsdp.Image

	offers, acks, naks, silent, malformed, errs atomic.Uint64
	// decisions times policy's decisions (policy is a netboot.TimedPolicy).
	decisions prometheus.Histogram
}

// Stats are the server's counters since New, which Collector exports.
type Stats struct {
	Offers    uint64 // DHCPOFFERs
	Acks      uint64 // DHCPACKs, to REQUESTs and INFORMs
	Naks      uint64 // DHCPNAKs
	Silent    uint64 // requests not answered: unknown clients, another server's, RELEASE, DECLINE
	Malformed uint64 // packets dropped as malformed
	Errors    uint64 // requests not answered because DNS failed, and replies not sent
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Offers:    s.offers.Load(),
		Acks:      s.acks.Load(),
		Naks:      s.naks.Load(),
		Silent:    s.silent.Load(),
		Malformed: s.malformed.Load(),
		Errors:    s.errs.Load(),
	}
}

// Collector returns the server's metrics for a prometheus.Registerer: the
// Stats counters as vmprov_dhcp4_replies_total{type="offer|ack|nak"},
// vmprov_dhcp4_silent_total, vmprov_dhcp4_malformed_total and
// vmprov_dhcp4_errors_total, and vmprov_decision_duration_seconds{proto="dhcp4"}.
func (s *Server) Collector() prometheus.Collector {
	const replies, repliesHelp = "vmprov_dhcp4_replies_total", "DHCPv4 replies sent, by message type."
	return netboot.CounterCollectors([]netboot.Counter{
		{Name: replies, Help: repliesHelp, Labels: prometheus.Labels{"type": "offer"}, Value: &s.offers},
		{Name: replies, Help: repliesHelp, Labels: prometheus.Labels{"type": "ack"}, Value: &s.acks},
		{Name: replies, Help: repliesHelp, Labels: prometheus.Labels{"type": "nak"}, Value: &s.naks},
		{Name: "vmprov_dhcp4_silent_total", Help: "DHCPv4 requests not answered: unknown clients, another server's, RELEASE, DECLINE.", Value: &s.silent},
		{Name: "vmprov_dhcp4_malformed_total", Help: "DHCPv4 packets dropped as malformed.", Value: &s.malformed},
		{Name: "vmprov_dhcp4_errors_total", Help: "DHCPv4 requests not answered because DNS failed, and replies not sent.", Value: &s.errs},
	}, s.decisions)
}

// count records the outcome of one request.
func (s *Server) count(resp *dhcpv4.DHCPv4, err error) {
	switch {
	case errors.Is(err, ErrMalformed):
		s.malformed.Add(1)
	case err != nil:
		s.errs.Add(1)
	case resp == nil:
		s.silent.Add(1)
	case resp.MessageType() == dhcpv4.MessageTypeOffer:
		s.offers.Add(1)
	case resp.MessageType() == dhcpv4.MessageTypeAck:
		s.acks.Add(1)
	case resp.MessageType() == dhcpv4.MessageTypeNak:
		s.naks.Add(1)
	}
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil {
		return nil, errors.New("dhcp4: new server: no policy")
	}
	if cfg.LeaseTime <= 0 {
		return nil, errors.New("dhcp4: new server: lease time is 0: set serve.lease_time")
	}
	decisions := netboot.NewDecisionHistogram("dhcp4")
	s := &Server{
		policy:       netboot.TimedPolicy(cfg.Policy, decisions),
		decisions:    decisions,
		booter:       cfg.Booter,
		vlans:        cfg.VLANs,
		interfaces:   cfg.Interfaces,
		log:          cfg.Log,
		lease:        cfg.LeaseTime,
		domain:       trimDot(cfg.Domain),
		serverIPv4:   cfg.ServerIPv4,
		bsdpPriority: cfg.BSDPPriority,
		bsdpImages:   cfg.BSDPImages,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("proto", "dhcp4")
	return s, nil
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// listener is one interface's socket and what requests on it share.
type listener struct {
	conn *net.UDPConn
	in   Ingress
}

// Serve listens on port 67 of every interface (the socket is bound to the
// interface, so broadcasts go out where the request came in) and answers
// until ctx ends; then it returns nil once in-flight requests are done.
//
// The sockets are opened, and the interfaces' addresses read, in the calling
// goroutine before Serve starts any other, so a caller that runs Serve on a
// thread inside a network namespace serves that namespace.
//
// Each interface must have an IPv4 address: it is the server identifier
// (option 54) and PXE next-server unless serve.server_ipv4 is set. The
// address's configured VLAN subnet says which VLAN local requests come from;
// relayed requests (giaddr set) belong to the VLAN holding giaddr, and on
// an interface of no VLAN, the requests bound clients of routed VLANs
// unicast past their relay (no giaddr) to the VLAN holding ciaddr. An
// interface without IPv4 address that is the bridge of a VLAN without ipv4
// is skipped (DHCPv6 serves it); with none left, Serve waits for ctx.
func (s *Server) Serve(ctx context.Context) error {
	if len(s.interfaces) == 0 {
		return errors.New("dhcp4: serve: no interfaces: set serve.interfaces")
	}
	var ls []listener
	closeAll := func() {
		for _, l := range ls {
			l.conn.Close()
		}
	}
	for _, name := range s.interfaces {
		in, err := s.ingress(name)
		if errors.Is(err, errIPv6Only) {
			s.log.Info("dhcp4 not listening: IPv6-only VLAN", "iface", name, "vlan", in.VLAN)
			continue
		}
		if err != nil {
			closeAll()
			return err
		}
		conn, err := server4.NewIPv4UDPConn(name, &net.UDPAddr{Port: dhcpv4.ServerPort})
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp4: listen on %s port %d: %w", name, dhcpv4.ServerPort, err)
		}
		ls = append(ls, listener{conn: conn, in: in})
		s.log.Info("dhcp4 listening", "iface", name, "ip", in.ServerIP, "vlan", in.VLAN)
	}

	if len(ls) == 0 {
		<-ctx.Done()
		return nil
	}
	return s.serveWorkers(ctx, ls)
}

// serveWorkers serves ls with maxInFlight workers each
// (netboot.ServeUDP) until ctx ends.
func (s *Server) serveWorkers(ctx context.Context, ls []listener) error {
	us := make([]netboot.UDPListener, len(ls))
	for i, l := range ls {
		us[i] = netboot.UDPListener{Conn: l.conn, Name: l.in.Interface}
	}
	return netboot.ServeUDP(ctx, "dhcp4", us, maxInFlight, maxPacket, func(ctx context.Context, i int, peer netip.AddrPort, pkt []byte) {
		s.serveOne(ctx, ls[i], peer, pkt)
	})
}

// serveOne decodes, handles and answers one packet.
func (s *Server) serveOne(ctx context.Context, l listener, peer netip.AddrPort, pkt []byte) {
	req, err := dhcpv4.FromBytes(pkt)
	if err != nil {
		s.malformed.Add(1)
		s.log.Warn("malformed DHCPv4 packet dropped", "iface", l.in.Interface, "ip", peer.Addr(), "bytes", len(pkt), "err", err)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	resp, err := s.Handle(hctx, req, l.in)
	switch {
	case errors.Is(err, ErrMalformed):
		s.log.Warn("malformed DHCPv4 request dropped", "iface", l.in.Interface, "ip", peer.Addr(), "mac", req.ClientHWAddr.String(), "xid", req.TransactionID.String(), "err", err)
		return
	case err != nil:
		s.log.Error("DHCPv4 request not answered", "iface", l.in.Interface, "mac", req.ClientHWAddr.String(), "xid", req.TransactionID.String(), "err", err)
		return
	case resp == nil:
		return
	}
	dst := ReplyAddr(req, resp)
	if _, err := l.conn.WriteToUDPAddrPort(resp.ToBytes(), dst); err != nil {
		if ctx.Err() != nil {
			return // shutting down: the socket is closed
		}
		s.errs.Add(1)
		s.log.Error("DHCPv4 reply not sent", "iface", l.in.Interface, "mac", req.ClientHWAddr.String(), "xid", req.TransactionID.String(), "ip", dst.Addr(), "err", err)
	}
}

// ingress reads the addresses of the interface called name.
func (s *Server) ingress(name string) (Ingress, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return Ingress{}, fmt.Errorf("dhcp4: interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return Ingress{}, fmt.Errorf("dhcp4: interface %s: %w", name, err)
	}
	in := Ingress{Interface: name}
	var first netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		ip = ip.Unmap()
		if !first.IsValid() {
			first = ip
		}
		if v, ok := s.vlans.Of(ip); ok && v.IPv4.Contains(ip) && in.VLAN == 0 {
			in.VLAN, in.ServerIP = v.ID, ip
		}
	}
	if !in.ServerIP.IsValid() {
		in.ServerIP = first
	}
	if !first.IsValid() {
		for _, v := range s.vlans {
			if v.Bridge == name && !v.IPv4.IsValid() {
				in.VLAN = v.ID
				return in, errIPv6Only
			}
		}
	}
	if s.serverIPv4.Is4() {
		in.ServerIP = s.serverIPv4
	}
	if !in.ServerIP.IsValid() {
		return Ingress{}, fmt.Errorf("dhcp4: interface %s has no IPv4 address: give it one inside a configured VLAN subnet (vlans[].ipv4)", name)
	}
	return in, nil
}

// errIPv6Only: an interface without IPv4 address is the bridge of a VLAN
// without IPv4 subnet; DHCPv6 serves it, DHCPv4 leaves it alone.
var errIPv6Only = errors.New("interface of an IPv6-only VLAN")

// ReplyAddr is where a reply to req goes (RFC 2131 section 4.1): to the
// relay's server port when giaddr is set; else unicast to ciaddr on the
// client port when the client has an address (RENEWING, INFORM); else, and
// for every DHCPNAK, to 255.255.255.255. A client without an address that
// did not set the broadcast flag would take a unicast to yiaddr, but that
// needs an ARP entry the server cannot add through a UDP socket, and every
// client accepts the broadcast. An ACK to a BSDP INFORM goes to the port the
// Mac asked for (BSDP code 5).
func ReplyAddr(req, resp *dhcpv4.DHCPv4) netip.AddrPort {
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() && !gi.IsUnspecified() {
		return netip.AddrPortFrom(gi, dhcpv4.ServerPort)
	}
	port := uint16(dhcpv4.ClientPort)
	if req.MessageType() == dhcpv4.MessageTypeInform && bsdp.IsBSDP(req) {
		port = bsdp.ReplyPort(req)
	}
	ci := addr4(req.ClientIPAddr)
	if resp.MessageType() == dhcpv4.MessageTypeNak || !ci.IsValid() || ci.IsUnspecified() {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), port)
	}
	return netip.AddrPortFrom(ci, port)
}

// addr4 converts a wire address; invalid when ip is not IPv4.
func addr4(ip net.IP) netip.Addr {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4))
	}
	return netip.Addr{}
}

// ip4 converts an IPv4 address for the wire library.
func ip4(a netip.Addr) net.IP {
	b := a.Unmap().As4()
	return net.IP(b[:])
}
