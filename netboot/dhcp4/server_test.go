package dhcp4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/test/lab"
)

// TestServeBurst sends a burst of relayed DISCOVERs from 120 clients at
// once, more than an interface's workers (and few enough for the socket
// buffer), to Serve on one end of a veth pair: each
// client gets exactly one OFFER, byte for byte the one Handle gives for its
// request, whichever worker read it.
func TestServeBurst(t *testing.T) {
	lab.RequireRoot(t, "ip")
	srv, cli := lab.NamespaceForTest(t), lab.NamespaceForTest(t)
	serverAddr := netip.MustParsePrefix("192.0.2.1/24")
	relayAddr := netip.MustParsePrefix("192.0.2.2/24")
	if err := lab.AddVeth(t.Context(),
		lab.VethEnd{Netns: srv.Name, Name: "burst0", Addrs: []netip.Prefix{serverAddr}},
		lab.VethEnd{Netns: cli.Name, Name: "burst1", Addrs: []netip.Prefix{relayAddr}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Serve.Interfaces = []string{"burst0"}
	p := &fakePolicy{cfg: cfg, hosts: map[string]inventory.Host{}}
	const n = 120
	var hosts []inventory.Host
	for i := range n {
		h := strictHost(t, fmt.Sprintf("burst%d", i), netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 10)}).String())
		p.hosts[h.MAC.String()] = h
		hosts = append(hosts, h)
	}
	s, err := New(testServerConfig(cfg, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := New(testServerConfig(cfg, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Do(func() error { return s.Serve(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	var conn *net.UDPConn
	if err := cli.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: relayAddr.Addr().AsSlice(), Port: dhcpv4.ServerPort})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: serverAddr.Addr().AsSlice(), Port: dhcpv4.ServerPort}
	in := Ingress{Interface: "burst0", VLAN: 135, ServerIP: serverAddr.Addr()}
	want := map[dhcpv4.TransactionID][]byte{}
	var reqs [][]byte
	for i, h := range hosts {
		req, err := dhcpv4.NewDiscovery(h.MAC, dhcpv4.WithRelay(relayAddr.Addr().AsSlice()),
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{0xb0, 0x05, byte(i >> 8), byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		offer, err := ref.Handle(t.Context(), req, in)
		if err != nil || offer == nil {
			t.Fatalf("Handle %s: %v, %v", h.MAC, offer, err)
		}
		want[req.TransactionID] = offer.ToBytes()
		reqs = append(reqs, req.ToBytes())
	}

	// Wait until Serve answers, then send the burst.
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 65535)
	for {
		if _, err := conn.WriteToUDP(reqs[0], dst); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := conn.ReadFromUDP(buf); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Serve did not answer within 10s")
		}
	}
	for _, r := range reqs {
		if _, err := conn.WriteToUDP(r, dst); err != nil {
			t.Fatal(err)
		}
	}
	got := map[dhcpv4.TransactionID]int{}
	for { // until 2 s of silence
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, _, err := conn.ReadFromUDP(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		reply, err := dhcpv4.FromBytes(buf[:m])
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		w, ok := want[reply.TransactionID]
		if !ok {
			t.Errorf("reply with unknown xid %s", reply.TransactionID)
			continue
		}
		if !bytes.Equal(buf[:m], w) {
			t.Errorf("xid %s: reply differs from Handle's:\n got %x\nwant %x", reply.TransactionID, buf[:m], w)
		}
		got[reply.TransactionID]++
	}
	// The first client's DISCOVER was also sent while waiting for Serve.
	first := dhcpv4.TransactionID{0xb0, 0x05, 0, 0}
	for xid := range want {
		c := got[xid]
		if xid == first {
			c = min(c, 1)
		}
		if c != 1 {
			t.Errorf("xid %s: %d replies, want 1", xid, c)
		}
	}
}
