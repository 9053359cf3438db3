package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/sys/unix"
)

// The UDP ceiling of the bench segment: a responder that answers
// perfdhcp's exchanges with the least work a DHCP server can do, so that
// perfdhcp counts them. It decides nothing and asks no DNS: an OFFER or ACK
// is the request with its op and message type swapped, a yiaddr taken from
// the MAC, and the few options perfdhcp reads (RFC 2131 section 4.3.1
// table 3: message type, server identifier, lease time); an Advertise or
// Reply is the client's DUID, a fixed server DUID and the client's IA_NA
// with one address (RFC 8415 section 21.4). Its sustained rate bounds what
// any server can reach on this veth with this load generator and kernel.

// echoReply4 writes into out the reply to the DHCPv4 request req and
// returns its length, or 0 when req is not a DISCOVER or REQUEST. It
// allocates nothing.
func echoReply4(out, req []byte, server [4]byte) int {
	const fixed = 236 // BOOTP header up to the options' magic cookie
	if len(req) < fixed+4 || req[0] != 1 || len(out) < fixed+4+32 {
		return 0
	}
	var mt byte
	var requested []byte
	opts := req[fixed+4:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == 255 {
			break
		}
		if code == 0 {
			i++
			continue
		}
		if i+1 >= len(opts) || i+2+int(opts[i+1]) > len(opts) {
			return 0
		}
		val := opts[i+2 : i+2+int(opts[i+1])]
		switch {
		case code == 53 && len(val) == 1:
			mt = val[0]
		case code == 50 && len(val) == 4:
			requested = val
		}
		i += 2 + len(val)
	}
	var reply byte
	switch mt {
	case 1: // DISCOVER
		reply = 2 // OFFER
	case 3: // REQUEST
		reply = 5 // ACK
	default:
		return 0
	}
	n := copy(out, req[:fixed+4])
	out[0] = 2 // BOOTREPLY
	yiaddr := out[16:20]
	if requested != nil {
		copy(yiaddr, requested)
	} else {
		// 198.18.x.y from the MAC's last two bytes: any address will do.
		yiaddr[0], yiaddr[1], yiaddr[2], yiaddr[3] = 198, 18, req[28+4]|0x10, req[28+5]
	}
	o := out[n:]
	o = append(o[:0], 53, 1, reply, 54, 4, server[0], server[1], server[2], server[3], 51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 255, 240, 0, 255)
	return n + len(o)
}

// echoReply6 writes into out the reply to the DHCPv6 client message req
// and returns its length, or 0 when req is not a Solicit or Request with a
// Client Identifier. It allocates nothing.
func echoReply6(out, req []byte, serverDUID []byte) int {
	if len(req) < 4 || len(out) < 4+4+130+4+len(serverDUID)+4+12+4+24 {
		return 0
	}
	var reply byte
	switch req[0] {
	case 1: // Solicit
		reply = 2 // Advertise
	case 3: // Request
		reply = 7 // Reply
	default:
		return 0
	}
	var clientID, iaid []byte
	for opts := req[4:]; len(opts) >= 4; {
		code, l := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if 4+l > len(opts) {
			return 0
		}
		val := opts[4 : 4+l]
		switch {
		case code == 1 && l <= 130:
			clientID = val
		case code == 3 && l >= 12 && iaid == nil:
			iaid = val[:4]
		}
		opts = opts[4+l:]
	}
	if clientID == nil {
		return 0
	}
	b := append(out[:0], reply, req[1], req[2], req[3])
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, uint16(len(serverDUID)))
	b = append(b, serverDUID...)
	if iaid != nil {
		b = binary.BigEndian.AppendUint16(b, 3)
		b = binary.BigEndian.AppendUint16(b, 12+4+24)
		b = append(b, iaid...)
		b = binary.BigEndian.AppendUint32(b, 1800) // T1
		b = binary.BigEndian.AppendUint32(b, 2880) // T2
		b = binary.BigEndian.AppendUint16(b, 5)    // IA Address
		b = binary.BigEndian.AppendUint16(b, 24)
		addr := serverPrefix6.Masked().Addr().As16()
		// The address from the DUID's last two bytes: any address will do.
		addr[13], addr[14], addr[15] = 1, clientID[len(clientID)-2], clientID[len(clientID)-1]
		b = append(b, addr[:]...)
		b = binary.BigEndian.AppendUint32(b, 3600) // preferred lifetime
		b = binary.BigEndian.AppendUint32(b, 3600) // valid lifetime
	}
	return len(b)
}

// startEcho runs the responder for family 4 or 6 in the server namespace
// on the bench veth, with one reading goroutine per CPU, until the
// returned function or the end of tb stops it.
func (e *env) startEcho(family int) (stop func()) {
	e.tb.Helper()
	var conn *net.UDPConn
	err := e.srv.Do(func() error {
		var err error
		if family == 4 {
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: serverPrefix.Addr().AsSlice(), Port: 67})
			return err
		}
		ifi, err := net.InterfaceByName(serverIf)
		if err != nil {
			return err
		}
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: 547})
		if err != nil {
			return err
		}
		raw, err := conn.SyscallConn()
		if err != nil {
			return err
		}
		mreq := &unix.IPv6Mreq{Interface: uint32(ifi.Index)}
		copy(mreq.Multiaddr[:], net.ParseIP("ff02::1:2").To16())
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
		}); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		e.tb.Fatalf("echo responder: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	duid := []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 1} // DUID-LL 02:00:00:00:00:01
	server := serverPrefix.Addr().As4()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, out := make([]byte, 65535), make([]byte, 1500)
			for {
				n, peer, err := conn.ReadFromUDPAddrPort(in)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
						e.tb.Errorf("echo responder: %v", err)
					}
					return
				}
				var m int
				if family == 4 {
					m = echoReply4(out, in[:n], server)
				} else {
					m = echoReply6(out, in[:n], duid)
				}
				if m > 0 {
					_, _ = conn.WriteToUDPAddrPort(out[:m], peer)
				}
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			conn.Close()
			wg.Wait()
		})
	}
	e.tb.Cleanup(stop)
	e.waitEcho(family)
	return stop
}

// waitEcho waits, at most 30 s, until the responder answers a DISCOVER or
// Solicit from the client namespace.
func (e *env) waitEcho(family int) {
	e.tb.Helper()
	mac := e.hosts[0].MAC
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if family == 6 {
			var c *client6
			if c, err = e.newClient6(); err == nil {
				var sol *dhcpv6.Message
				if sol, err = newSolicit(mac); err == nil && c.exchange([]*dhcpv6.Message{sol}, 1, 300*time.Millisecond)[sol.TransactionID] == nil {
					err = errors.New("no Advertise")
				}
				c.close()
			}
		} else {
			var r *relay
			if r, err = e.newRelay(); err == nil {
				if len(r.exchange([]*dhcpv4.DHCPv4{r.discover(e.tb, mac)}, 1, 300*time.Millisecond)) == 0 {
					err = errors.New("no OFFER")
				}
				r.close()
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("echo responder: not ready within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEchoReply checks the responder's packets against what perfdhcp reads
// from them: a DISCOVER gets an OFFER and a REQUEST an ACK for the address
// it asked for, with the server identifier; a Solicit gets an Advertise and
// a Request a Reply, each echoing the client's DUID and IAID.
func TestEchoReply(t *testing.T) {
	r := &relay{giaddr: clientPrefix.Addr().AsSlice()}
	hs := makeHosts(t, 1)
	d := r.discover(t, hs[0].MAC)
	out := make([]byte, 1500)
	n := echoReply4(out, d.ToBytes(), serverPrefix.Addr().As4())
	if n == 0 {
		t.Fatal("no OFFER to a DISCOVER")
	}
	offer, err := parseDHCPv4(out[:n])
	if err != nil {
		t.Fatal(err)
	}
	if offer.MessageType().String() != "OFFER" || offer.TransactionID != d.TransactionID || offer.ServerIdentifier().String() != serverPrefix.Addr().String() || offer.YourIPAddr.IsUnspecified() {
		t.Errorf("OFFER to a DISCOVER: %v", offer)
	}
	req := r.request(t, offer)
	n = echoReply4(out, req.ToBytes(), serverPrefix.Addr().As4())
	ack, err := parseDHCPv4(out[:n])
	if err != nil {
		t.Fatal(err)
	}
	if ack.MessageType().String() != "ACK" || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Errorf("ACK to a REQUEST for %s: %v", offer.YourIPAddr, ack)
	}
	if n := echoReply4(out, ack.ToBytes(), serverPrefix.Addr().As4()); n != 0 {
		t.Errorf("a reply answered with %d bytes", n)
	}

	sol, err := newSolicit(hs[0].MAC)
	if err != nil {
		t.Fatal(err)
	}
	duid := []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 1}
	adv, err := dhcpv6.MessageFromBytes(out[:echoReply6(out, sol.ToBytes(), duid)])
	if err != nil {
		t.Fatalf("advertise: %v", err)
	}
	for _, tt := range []struct {
		req  []byte
		want string
	}{
		{sol.ToBytes(), "ADVERTISE"},
		{requestFrom(t, adv).ToBytes(), "REPLY"},
	} {
		n := echoReply6(out, tt.req, duid)
		got, err := parseLease6(out[:n])
		if err != nil {
			t.Fatalf("%s: %v", tt.want, err)
		}
		if got.Type != tt.want || got.ClientID != fmt.Sprintf("%x", append([]byte{0, 3, 0, 1}, hs[0].MAC...)) || got.IP == "" {
			t.Errorf("%s: %+v", tt.want, got)
		}
	}
	if n := echoReply6(out, []byte{2, 1, 2, 3}, duid); n != 0 {
		t.Errorf("an Advertise answered with %d bytes", n)
	}
}
