package bench

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// dhcp6Servers are the DHCPv6 servers under comparison: vmprov and Kea
// DHCPv6 with the same reservations.
func dhcp6Servers() []dhcpServer {
	return []dhcpServer{
		{"vmprov", (*env).startVmprovDHCP6},
		{"kea", (*env).startKea6},
	}
}

// startVmprovDHCP6 starts vmprov serve and waits for its DHCPv6 service.
func (e *env) startVmprovDHCP6() *proc {
	e.tb.Helper()
	p := e.startVmprov()
	e.waitDHCP6(p)
	return p
}

// duidLL is the DUID-LL (RFC 8415 section 11.4) perfdhcp -6 -M makes of
// a MAC, and the identifier Kea's reservations name.
func duidLL(mac net.HardwareAddr) []byte {
	return append([]byte{0, 3, 0, byte(iana.HWTypeEthernet)}, mac...)
}

// startKea6 runs kea-dhcp6 with a memfile lease database and every host's
// AAAA address reserved for its DUID-LL, with vmprov's DNS servers, domain
// search list and lifetimes (T1 and T2 at 0.5 and 0.8 of serve.lease_time).
func (e *env) startKea6() *proc {
	e.tb.Helper()
	var res []map[string]any
	for _, h := range e.hosts {
		var duid []string
		for _, b := range duidLL(h.MAC) {
			duid = append(duid, fmt.Sprintf("%02x", b))
		}
		res = append(res, map[string]any{"duid": strings.Join(duid, ":"), "ip-addresses": []string{h.IP6.String()}, "hostname": h.Name})
	}
	p := e.runKea("kea-dhcp6", "kea6", "Dhcp6", map[string]any{
		"interfaces-config":            map[string]any{"interfaces": []string{serverIf}},
		"lease-database":               map[string]any{"type": "memfile", "persist": false},
		"server-id":                    map[string]any{"type": "LL", "persist": false},
		"host-reservation-identifiers": []string{"duid"},
		"preferred-lifetime":           3600,
		"valid-lifetime":               3600,
		"renew-timer":                  1800,
		"rebind-timer":                 2880,
		"multi-threading":              map[string]any{"enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 64},
		"option-data": []map[string]any{
			{"name": "dns-servers", "data": serverPrefix6.Addr().String()},
			{"name": "domain-search", "data": strings.TrimSuffix(zone, ".")},
		},
		"subnet6": []map[string]any{{
			"id": 1, "subnet": serverPrefix6.Masked().String(), "interface": serverIf,
			"reservations": res,
		}},
	})
	e.waitDHCP6(p)
	return p
}

// waitDHCP6 waits until the server advertises the first host its address.
func (e *env) waitDHCP6(p *proc) {
	e.tb.Helper()
	waitReady(e.tb, p, p.name, func() error {
		c, err := e.newClient6()
		if err != nil {
			return err
		}
		defer c.close()
		sol, err := newSolicit(e.hosts[0].MAC)
		if err != nil {
			return err
		}
		got := c.exchange([]*dhcpv6.Message{sol}, 1, 300*time.Millisecond)
		if l, err := lease6Of(got[sol.TransactionID]); err != nil || l.IP == "" {
			return fmt.Errorf("no Advertise with an address: %v", err)
		}
		return nil
	})
}

// client6 is a DHCPv6 client in the client namespace, the way perfdhcp -6
// -l talks to a server: from the link-local address, port 546, to
// All_DHCP_Relay_Agents_and_Servers (RFC 8415 section 7.1).
type client6 struct {
	conn *net.UDPConn
	dst  *net.UDPAddr
}

func (e *env) newClient6() (*client6, error) {
	c := &client6{}
	err := e.cli.Do(func() error {
		ifi, err := net.InterfaceByName(clientIf)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		var ll net.IP
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
				ll = n.IP
			}
		}
		if ll == nil {
			return fmt.Errorf("%s has no link-local address", clientIf)
		}
		// A numeric zone: Go's cache of interface names knows one
		// network namespace only.
		z := strconv.Itoa(ifi.Index)
		c.dst = &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: z}
		c.conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: ll, Port: dhcpv6.DefaultClientPort, Zone: z})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 client: %w", err)
	}
	return c, nil
}

func (c *client6) close() { c.conn.Close() }

// exchange sends msgs, keeping at most window of them unanswered, and
// returns the replies by transaction ID. It stops timeout after the last
// send or the last reply, whichever is later.
func (c *client6) exchange(msgs []*dhcpv6.Message, window int, timeout time.Duration) map[dhcpv6.TransactionID]*dhcpv6.Message {
	pkts := make([][]byte, len(msgs))
	keys := make([]dhcpv6.TransactionID, len(msgs))
	for i, m := range msgs {
		pkts[i], keys[i] = m.ToBytes(), m.TransactionID
	}
	return exchange(c.conn, c.dst, pkts, keys, func(b []byte) (dhcpv6.TransactionID, *dhcpv6.Message, bool) {
		m, err := dhcpv6.MessageFromBytes(b)
		if err != nil {
			return dhcpv6.TransactionID{}, nil, false
		}
		return m.TransactionID, m, true
	}, window, timeout)
}

// newSolicit is the Solicit perfdhcp -6 -M sends for mac: its DUID-LL and
// one IA_NA.
func newSolicit(mac net.HardwareAddr) (*dhcpv6.Message, error) {
	return dhcpv6.NewSolicit(mac, dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}))
}

// requestFrom is the Request that follows the Advertise adv.
func requestFrom(tb testing.TB, adv *dhcpv6.Message) *dhcpv6.Message {
	tb.Helper()
	r, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		tb.Fatalf("request from advertise %s: %v", adv.Summary(), err)
	}
	return r
}

func parseDHCPv4(b []byte) (*dhcpv4.DHCPv4, error) { return dhcpv4.FromBytes(b) }

// lease6 is what a DHCPv6 client learns from an Advertise or Reply: the
// fields every server under comparison must agree on.
type lease6 struct {
	Type      string
	ClientID  string // hex
	IP        string // of the first IA_NA; empty without one
	Preferred time.Duration
	Valid     time.Duration
	T1, T2    time.Duration
	DNS       string
	Domain    string
}

// parseLease6 decodes a client message's reply from its wire bytes.
func parseLease6(b []byte) (lease6, error) {
	m, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		return lease6{}, err
	}
	return lease6Of(m)
}

// lease6Of reads m's lease; a nil m has none.
func lease6Of(m *dhcpv6.Message) (lease6, error) {
	if m == nil {
		return lease6{}, errors.New("no reply")
	}
	l := lease6{Type: strings.ToUpper(m.MessageType.String())}
	if cid := m.Options.ClientID(); cid != nil {
		l.ClientID = fmt.Sprintf("%x", cid.ToBytes())
	}
	if ia := m.Options.OneIANA(); ia != nil {
		l.T1, l.T2 = ia.T1, ia.T2
		if a := ia.Options.OneAddress(); a != nil {
			l.IP = a.IPv6Addr.String()
			l.Preferred, l.Valid = a.PreferredLifetime, a.ValidLifetime
		}
	}
	var dns []string
	for _, ip := range m.Options.DNS() {
		dns = append(dns, ip.String())
	}
	l.DNS = strings.Join(dns, ",")
	if d := m.Options.DomainSearchList(); d != nil {
		l.Domain = strings.Join(d.Labels, ",")
	}
	return l, nil
}

// wantLease6 is the lease every server must give h.
func wantLease6(h host, typ string) lease6 {
	return lease6{
		Type: typ, ClientID: fmt.Sprintf("%x", duidLL(h.MAC)), IP: h.IP6.String(),
		Preferred: time.Hour, Valid: time.Hour, T1: 30 * time.Minute, T2: 48 * time.Minute,
		DNS: serverPrefix6.Addr().String(), Domain: strings.TrimSuffix(zone, "."),
	}
}

// sarr runs Solicit-Advertise-Request-Reply for every host in hs and
// returns the leases advertised and replied, by host name; a host without
// an answer is missing, one without an address has an empty IP.
func (e *env) sarr(tb testing.TB, hs []host) (adverts, replies map[string]lease6) {
	tb.Helper()
	c, err := e.newClient6()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.close()
	byXID := map[dhcpv6.TransactionID]string{}
	var sols []*dhcpv6.Message
	for _, h := range hs {
		s, err := newSolicit(h.MAC)
		if err != nil {
			tb.Fatal(err)
		}
		byXID[s.TransactionID] = h.Name
		sols = append(sols, s)
	}
	adverts, replies = map[string]lease6{}, map[string]lease6{}
	var reqs []*dhcpv6.Message
	for xid, a := range c.exchange(sols, 16, 2*time.Second) {
		l, err := lease6Of(a)
		if err != nil {
			tb.Fatal(err)
		}
		adverts[byXID[xid]] = l
		if a.MessageType == dhcpv6.MessageTypeAdvertise && l.IP != "" {
			r := requestFrom(tb, a)
			byXID[r.TransactionID] = byXID[xid]
			reqs = append(reqs, r)
		}
	}
	for xid, r := range c.exchange(reqs, 16, 2*time.Second) {
		l, err := lease6Of(r)
		if err != nil {
			tb.Fatal(err)
		}
		replies[byXID[xid]] = l
	}
	return adverts, replies
}

// sweep6 sends a Solicit for every host and fails tb unless each one is
// advertised its reservation. For vmprov this also fills the DNS cache.
func (e *env) sweep6(tb testing.TB, server string) {
	tb.Helper()
	c, err := e.newClient6()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.close()
	want := map[dhcpv6.TransactionID]host{}
	var sols []*dhcpv6.Message
	for _, h := range e.hosts {
		s, err := newSolicit(h.MAC)
		// Transaction IDs are 3 random bytes: among 1000 Solicits two
		// share one about once in 30 runs, and the replies would be
		// matched to the wrong host.
		for err == nil && want[s.TransactionID].MAC != nil {
			s, err = newSolicit(h.MAC)
		}
		if err != nil {
			tb.Fatal(err)
		}
		want[s.TransactionID] = h
		sols = append(sols, s)
	}
	got := c.exchange(sols, 32, 3*time.Second)
	bad := 0
	for xid, h := range want {
		l, err := lease6Of(got[xid])
		if err != nil || l.IP != h.IP6.String() {
			if bad < 5 {
				tb.Errorf("%s: %s (%s) not advertised %s: %+v %v", server, h.Name, h.MAC, h.IP6, l, err)
			}
			bad++
		}
	}
	if bad > 0 {
		tb.Fatalf("%s: %d of %d hosts not advertised their reservation", server, bad, len(e.hosts))
	}
}
