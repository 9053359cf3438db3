// Package dhcp6 is vmprov's DHCPv6 server (RFC 8415) for IPv6 netboot
// (seeds 003 and 004): it answers only clients that DNS identifies (through
// a netboot.Policy), gives each its AAAA address in an IA_NA, DNS servers
// and the domain search list, and points booting clients at a boot file URL
// (option 59) chosen by user class and client architecture.
//
// # Identifying clients
//
// DNS knows hosts by MAC, so the server needs the client's MAC. It takes
// the link-layer address of a DUID-LL or DUID-LLT, else the Client
// Link-Layer Address option (79, RFC 6939) of a relay next to the client,
// else the modified EUI-64 identifier of the client's link-local address.
// The last one is what identifies iPXE and Mellanox FlexBoot, which send a
// DUID-UUID (seed 004) but form their link-local address from their MAC.
//
// A client whose MAC is known but not in DNS gets no answer: DHCPv6 on a
// shared VLAN must not disturb other servers' clients (docs/design.md). A
// client that gives no MAC at all (a DUID-UUID or DUID-EN with a
// stable-privacy link-local address, not relayed with option 79) gets no
// answer either by default, for the same reason: nothing shows it belongs
// to vmprov, and an Information-request answer would hand it our DNS
// servers. Config.AnswerUnidentified opts in, on provisioning VLANs that
// vmprov serves alone, to giving such clients the stateless boot answer
// (DNS servers, domain search list, boot file URL) to an
// Information-request and an Advertise or Reply whose IA_NA holds no
// address (status NoAddrsAvail) to a Solicit or Request. That answer names
// no host: the HTTP boot service then identifies the client by
// forward-confirmed reverse DNS of its SLAAC address.
//
// # Statelessness and the server DUID
//
// The server keeps no lease state and reads no clock: an address is the
// host's AAAA record, lifetimes come from serve.lease_time, and any number
// of instances on a VLAN give the same answers apart from their Server
// Identifier. A server DUID must identify one server (RFC 8415 section 11),
// so each instance has its own: Config.ServerDUID when set, else a DUID-LL
// built from the MAC of the first listed interface that has one, else (a
// bridge without ports has no MAC) a DUID-UUID derived from the machine id.
// It is read once, in New, so it is stable for the life of the process; it
// differs between machines. A client that renews with an instance that is
// gone gets no answer from the others (they discard a Renew naming another
// server) and rebinds at T2, which any instance answers.
//
// Handle is the decision without sockets; Serve reads messages from the
// configured interfaces and sends Handle's replies.
package dhcp6

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/vmprov/vmprov/netboot"
)

// RequestTimeout bounds the handling of one message, DNS included. DHCPv6
// clients retransmit after 1 s (SOL_TIMEOUT, REQ_TIMEOUT, INF_TIMEOUT of
// RFC 8415 section 7.6) with the same transaction ID, so an answer to the
// first transmission is still taken a little later.
const RequestTimeout = 2 * time.Second

// maxInFlight is the number of workers of each interface, and so bounds
// the messages it handles concurrently; further packets wait in the socket
// buffer.
const maxInFlight = 64

// maxPacket is the largest message read: a client's message, even wrapped
// in a few Relay-forwards, fits a jumbo frame. A longer datagram is
// truncated and dropped as malformed.
const maxPacket = 9216

// Config configures a Server.
type Config struct {
	netboot.DHCPConfig
	// ServerDUID identifies this server. Nil derives a DUID-LL from the MAC
	// of the first interface in Interfaces that has one (see the package
	// documentation).
	ServerDUID dhcpv6.DUID
	// AnswerUnidentified gives clients whose MAC cannot be learnt the
	// stateless boot answer instead of silence (see the package
	// documentation). Only for VLANs no other DHCPv6 server serves.
	AnswerUnidentified bool
}

// Server answers DHCPv6 messages. It is safe for concurrent use.
type Server struct {
	policy             netboot.Policy
	booter             netboot.Booter
	vlans              netboot.VLANs
	interfaces         []string
	log                *slog.Logger
	duid               dhcpv6.DUID
	answerUnidentified bool
	domain             string // dns.zone without the root dot
	lease, t1, t2      time.Duration

	advertises, replies, silent, malformed, errs atomic.Uint64
	// decisions times policy's decisions (policy is a netboot.TimedPolicy).
	decisions prometheus.Histogram
}

// Stats are the server's counters since New, which Collector exports.
type Stats struct {
	Advertises uint64 // Advertise messages
	Replies    uint64 // Reply messages, to Request, Renew, Rebind, Confirm, Release, Information-Request and Rapid Commit Solicit
	Silent     uint64 // messages not answered: unidentified clients, another server's
	Malformed  uint64 // packets dropped as malformed
	Errors     uint64 // messages not answered because DNS failed, and replies not sent
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Advertises: s.advertises.Load(),
		Replies:    s.replies.Load(),
		Silent:     s.silent.Load(),
		Malformed:  s.malformed.Load(),
		Errors:     s.errs.Load(),
	}
}

// Collector returns the server's metrics for a prometheus.Registerer: the
// Stats counters as vmprov_dhcp6_replies_total{type="advertise|reply"},
// vmprov_dhcp6_silent_total, vmprov_dhcp6_malformed_total and
// vmprov_dhcp6_errors_total, and vmprov_decision_duration_seconds{proto="dhcp6"}.
func (s *Server) Collector() prometheus.Collector {
	const replies, repliesHelp = "vmprov_dhcp6_replies_total", "DHCPv6 answers sent, by message type."
	return netboot.CounterCollectors([]netboot.Counter{
		{Name: replies, Help: repliesHelp, Labels: prometheus.Labels{"type": "advertise"}, Value: &s.advertises},
		{Name: replies, Help: repliesHelp, Labels: prometheus.Labels{"type": "reply"}, Value: &s.replies},
		{Name: "vmprov_dhcp6_silent_total", Help: "DHCPv6 messages not answered: unidentified clients, another server's.", Value: &s.silent},
		{Name: "vmprov_dhcp6_malformed_total", Help: "DHCPv6 packets dropped as malformed.", Value: &s.malformed},
		{Name: "vmprov_dhcp6_errors_total", Help: "DHCPv6 messages not answered because DNS failed, and replies not sent.", Value: &s.errs},
	}, s.decisions)
}

// count records the answer to one message.
func (s *Server) count(resp dhcpv6.DHCPv6) {
	if r, ok := resp.(*dhcpv6.RelayMessage); ok {
		inner, err := r.GetInnerMessage()
		if err != nil {
			return
		}
		resp = inner
	}
	if m, ok := resp.(*dhcpv6.Message); ok && m.MessageType == dhcpv6.MessageTypeAdvertise {
		s.advertises.Add(1)
	} else {
		s.replies.Add(1)
	}
}

// New checks cfg and returns a Server. Without cfg.ServerDUID it reads the
// MACs of the interfaces, so call it in the network namespace Serve will
// run in.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil {
		return nil, errors.New("dhcp6: new server: no policy")
	}
	decisions := netboot.NewDecisionHistogram("dhcp6")
	s := &Server{
		policy:             netboot.TimedPolicy(cfg.Policy, decisions),
		decisions:          decisions,
		booter:             cfg.Booter,
		vlans:              cfg.VLANs,
		interfaces:         cfg.Interfaces,
		log:                cfg.Log,
		duid:               cfg.ServerDUID,
		answerUnidentified: cfg.AnswerUnidentified,
		domain:             strings.TrimSuffix(cfg.Domain, "."),
		lease:              cfg.LeaseTime,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("proto", "dhcp6")
	if s.lease <= 0 {
		return nil, errors.New("dhcp6: new server: lease time is 0: set serve.lease_time")
	}
	s.t1, s.t2 = s.lease/2, s.lease*4/5
	if s.duid == nil {
		d, err := duidFromInterfaces(s.interfaces, systemMachineID)
		if err != nil {
			return nil, err
		}
		s.duid = d
	}
	if len(s.duid.ToBytes()) < 3 || len(s.duid.ToBytes()) > 130 {
		return nil, fmt.Errorf("dhcp6: new server: server DUID %x is not 1 to 128 bytes after its type (RFC 8415 section 11.1)", s.duid.ToBytes())
	}
	return s, nil
}

// ServerDUID returns the DUID the server identifies itself with.
func (s *Server) ServerDUID() dhcpv6.DUID { return s.duid }

// duidFromInterfaces builds a DUID-LL (RFC 8415 section 11.4) from the MAC
// of the first interface that has one. A bridge whose last port has left
// may have none (all zeros); then the DUID is a DUID-UUID (RFC 6355) derived
// from the machine id (machineID, e.g. /etc/machine-id), which stays the
// same across restarts and differs between machines, as instances on one
// VLAN need. The machine id is hashed, not sent as it is (machine-id(5)
// asks applications not to expose it).
func duidFromInterfaces(names []string, machineID func() ([]byte, error)) (dhcpv6.DUID, error) {
	for _, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("dhcp6: new server: interface %s: %w", name, err)
		}
		if len(ifi.HardwareAddr) == 6 && !bytes.Equal(ifi.HardwareAddr, make(net.HardwareAddr, 6)) {
			return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: slices.Clone(ifi.HardwareAddr)}, nil
		}
	}
	id, err := machineID()
	if id = bytes.TrimSpace(id); err != nil || len(id) == 0 {
		return nil, fmt.Errorf("dhcp6: new server: none of the interfaces %v has a MAC to build the server DUID from, and there is no machine id to build a DUID-UUID from (%v): set serve.dhcp6.server_duid", names, err)
	}
	mac := hmac.New(sha256.New, id)
	mac.Write([]byte("vmprov dhcp6 server duid"))
	d := &dhcpv6.DUIDUUID{}
	copy(d.UUID[:], mac.Sum(nil))
	d.UUID[6] = d.UUID[6]&0x0f | 0x40 // version 4 (RFC 9562 section 5.4): no meaning to read into it
	d.UUID[8] = d.UUID[8]&0x3f | 0x80
	return d, nil
}

// systemMachineID reads the machine id systemd and dbus keep.
func systemMachineID() ([]byte, error) { return os.ReadFile("/etc/machine-id") }

// listener is one interface's socket and what messages on it share.
type listener struct {
	conn    *net.UDPConn
	ifindex int
	in      Ingress
}

// Serve listens on UDP port 547 of every interface, joined to
// All_DHCP_Relay_Agents_and_Servers (ff02::1:2) and All_DHCP_Servers
// (ff05::1:3), and answers until ctx ends; then it returns nil once
// in-flight messages are done. Each socket is bound to its interface, so
// relays must send to an address that arrives on a listed interface.
//
// The sockets are opened, and the interfaces' addresses read, in the calling
// goroutine before Serve starts any other, so a caller that runs Serve on a
// thread inside a network namespace serves that namespace.
//
// An interface's VLAN is the configured VLAN whose IPv6 prefix holds one of
// its addresses, else the VLAN whose bridge has its name; that address is
// the host of tftp:// boot file URLs. An interface on no VLAN serves only
// relayed messages, whose VLAN is the one holding the relay's link-address.
func (s *Server) Serve(ctx context.Context) error {
	if len(s.interfaces) == 0 {
		return errors.New("dhcp6: serve: no interfaces: set serve.interfaces")
	}
	var ls []listener
	closeAll := func() {
		for _, l := range ls {
			l.conn.Close()
		}
	}
	for _, name := range s.interfaces {
		l, err := s.listen(name)
		if err != nil {
			closeAll()
			return err
		}
		ls = append(ls, l)
		s.log.Info("dhcp6 listening", "iface", name, "ip", l.in.ServerIP, "vlan", l.in.VLAN, "duid", fmt.Sprintf("%x", s.duid.ToBytes()))
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
	return netboot.ServeUDP(ctx, "dhcp6", us, maxInFlight, maxPacket, func(ctx context.Context, i int, peer netip.AddrPort, pkt []byte) {
		s.serveOne(ctx, ls[i], peer, pkt)
	})
}

// listen opens the server socket of one interface.
func (s *Server) listen(name string) (listener, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return listener{}, fmt.Errorf("dhcp6: interface %s: %w", name, err)
	}
	in, err := s.ingress(ifi)
	if err != nil {
		return listener{}, err
	}
	conn, err := server6.NewIPv6UDPConn(name, &net.UDPAddr{IP: net.IPv6unspecified, Port: dhcpv6.DefaultServerPort})
	if err != nil {
		return listener{}, fmt.Errorf("dhcp6: listen on %s port %d: %w", name, dhcpv6.DefaultServerPort, err)
	}
	for _, group := range []net.IP{dhcpv6.AllDHCPRelayAgentsAndServers, dhcpv6.AllDHCPServers} {
		if err := joinGroup(conn, ifi.Index, group); err != nil {
			conn.Close()
			return listener{}, fmt.Errorf("dhcp6: join %s on %s: %w", group, name, err)
		}
	}
	return listener{conn: conn, ifindex: ifi.Index, in: in}, nil
}

// joinGroup joins the multicast group on the interface with that index.
func joinGroup(conn *net.UDPConn, ifindex int, group net.IP) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	mreq := &unix.IPv6Mreq{Interface: uint32(ifindex)}
	copy(mreq.Multiaddr[:], group.To16())
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
	}); err != nil {
		return err
	}
	return serr
}

// ingress reads the VLAN and server address of an interface.
func (s *Server) ingress(ifi *net.Interface) (Ingress, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return Ingress{}, fmt.Errorf("dhcp6: interface %s: %w", ifi.Name, err)
	}
	in := Ingress{Interface: ifi.Name}
	var first netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.Is6() || ip.Is4In6() || !ip.IsGlobalUnicast() {
			continue
		}
		if !first.IsValid() {
			first = ip
		}
		if v, ok := s.vlans.Of(ip); ok && v.IPv6.Contains(ip) && in.VLAN == 0 {
			in.VLAN, in.ServerIP = v.ID, ip
		}
	}
	if !in.ServerIP.IsValid() {
		in.ServerIP = first
	}
	if in.VLAN == 0 {
		for _, v := range s.vlans {
			if v.Bridge == ifi.Name && v.IPv6.IsValid() {
				in.VLAN = v.ID
				break
			}
		}
	}
	return in, nil
}

// serveOne decodes, handles and answers one packet.
func (s *Server) serveOne(ctx context.Context, l listener, peer netip.AddrPort, pkt []byte) {
	msg, err := dhcpv6.FromBytes(pkt)
	if err != nil {
		s.malformed.Add(1)
		s.log.Warn("malformed DHCPv6 packet dropped", "iface", l.in.Interface, "ip", peer.Addr(), "bytes", len(pkt), "err", err)
		return
	}
	if a := peer.Addr(); a.IsLinkLocalUnicast() {
		// A numeric zone: Go maps zone names to indexes through a
		// process-wide cache that knows only one network namespace.
		peer = netip.AddrPortFrom(a.WithZone(strconv.Itoa(l.ifindex)), peer.Port())
	}
	in := l.in
	in.Source = peer.Addr()
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	resp, err := s.Handle(ctx, msg, in)
	switch {
	case errors.Is(err, ErrMalformed):
		s.malformed.Add(1)
		s.log.Warn("malformed DHCPv6 message dropped", "iface", l.in.Interface, "ip", peer.Addr(), "bytes", len(pkt), "err", err)
		return
	case err != nil:
		s.errs.Add(1)
		s.log.Error("DHCPv6 message not answered", "iface", l.in.Interface, "ip", peer.Addr(), "err", err)
		return
	case resp == nil:
		s.silent.Add(1)
		return
	}
	dst := ReplyAddr(peer, msg)
	if _, err := l.conn.WriteToUDPAddrPort(resp.ToBytes(), dst); err != nil {
		s.errs.Add(1)
		s.log.Error("DHCPv6 reply not sent", "iface", l.in.Interface, "ip", dst.Addr(), "err", err)
		return
	}
	s.count(resp)
}

// ReplyAddr is where the reply to msg, received from peer, goes: back to
// the client's address and port for a direct message (RFC 8415 section
// 18.3); for a Relay-forward to the relay's address on port 547 (section
// 19.3), or on the port it sent from when it included a Relay Source Port
// option (RFC 8357).
func ReplyAddr(peer netip.AddrPort, msg dhcpv6.DHCPv6) netip.AddrPort {
	r, ok := msg.(*dhcpv6.RelayMessage)
	if !ok {
		return peer
	}
	if r.Options.RelayPort() != nil {
		return peer
	}
	return netip.AddrPortFrom(peer.Addr(), dhcpv6.DefaultServerPort)
}
