package tftp

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// rawClient is a UDP socket on a loopback address that speaks TFTP by hand.
type rawClient struct {
	t      testing.TB
	conn   *net.UDPConn
	server *net.UDPAddr
	tid    *net.UDPAddr // the transfer's port, once it answered
}

func newRawClient(t testing.TB, server string, ip net.IP) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ua, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, conn: conn, server: ua}
}

// rrq sends a read request without options.
func (c *rawClient) rrq(name string) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP([]byte("\x00\x01"+name+"\x00octet\x00"), c.server); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next packet to arrive within wait, or nil.
func (c *rawClient) next(wait time.Duration) []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 70000)
	n, from, err := c.conn.ReadFromUDP(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.tid = from
	return buf[:n]
}

// data waits for a DATA packet of block and acknowledges it.
func (c *rawClient) data(block uint16) {
	c.t.Helper()
	p := c.next(5 * time.Second)
	if len(p) < 4 || binary.BigEndian.Uint16(p) != opDATA || binary.BigEndian.Uint16(p[2:]) != block {
		c.t.Fatalf("got %q, want DATA %d", p, block)
	}
	ack := []byte{0, opACK, 0, 0}
	binary.BigEndian.PutUint16(ack[2:], block)
	if _, err := c.conn.WriteToUDP(ack, c.tid); err != nil {
		c.t.Fatal(err)
	}
}

// abort ends the client's transfer with an ERROR packet.
func (c *rawClient) abort() {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP([]byte("\x00\x05\x00\x00done\x00"), c.tid); err != nil {
		c.t.Fatal(err)
	}
}

// drain counts the packets and bytes that arrive until none has for
// 300 ms.
func (c *rawClient) drain() (packets, bytes int) {
	for p := c.next(300 * time.Millisecond); p != nil; p = c.next(300 * time.Millisecond) {
		packets++
		bytes += len(p)
	}
	return packets, bytes
}

// waitFor waits up to 30 s for the server's counters to satisfy ok.
func waitFor(t testing.TB, s *Server, want string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %s", s.Stats(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSilentClient: a read request from a client that never acknowledges,
// as a request with a forged source looks, draws at most two packets of at
// most 516 bytes, however many retries the server makes for a client that
// does acknowledge. Such a client's unacknowledged block is sent 1+Retries
// times.
func TestSilentClient(t *testing.T) {
	root, _ := testRoot(t)
	const retries = 5
	s, addr := startServer(t, Config{Root: root, Timeout: 200 * time.Millisecond, Retries: retries})

	t.Run("never acknowledges", func(t *testing.T) {
		before := s.Stats()
		c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
		c.rrq("ipxe.efi") // 22 bytes
		waitFor(t, s, "one more failed transfer", func(st Stats) bool { return st.Failed == before.Failed+1 })
		packets, bytes := c.drain()
		if packets == 0 || packets > unverifiedSends || bytes > unverifiedSends*(4+defaultBlockSize) {
			t.Errorf("a 22-byte request drew %d packets, %d bytes; want 1 to %d packets, at most %d bytes",
				packets, bytes, unverifiedSends, unverifiedSends*(4+defaultBlockSize))
		}
	})
	t.Run("acknowledges block 1 only", func(t *testing.T) {
		before := s.Stats()
		c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
		c.rrq("ipxe.efi")
		c.data(1)
		waitFor(t, s, "one more failed transfer", func(st Stats) bool { return st.Failed == before.Failed+1 })
		if packets, _ := c.drain(); packets != 1+retries {
			t.Errorf("block 2 was sent %d times to a client that acknowledged block 1, want %d (1+Retries)", packets, 1+retries)
		}
	})
}

// TestLimits: requests beyond MaxTransfersPerClient from one address, or
// beyond MaxTransfers in all, are dropped unanswered and counted; a slot
// freed by a finished transfer serves the next request.
func TestLimits(t *testing.T) {
	root, files := testRoot(t)
	s, addr := startServer(t, Config{Root: root, Timeout: 5 * time.Second, Retries: 2, MaxTransfers: 30, MaxTransfersPerClient: 20})
	s.SetLimits(3, 2) // as vmprov serve sets serve.limits
	// hold starts a transfer from ip that waits for the ACK of block 2.
	hold := func(ip net.IP) *rawClient {
		c := newRawClient(t, addr, ip)
		c.rrq("ipxe.efi")
		c.data(1)
		return c
	}
	one, two, three := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	h1, h2 := hold(one), hold(one)

	extra := newRawClient(t, addr, one)
	extra.rrq("ipxe.efi")
	waitFor(t, s, "1 request dropped at the client's limit", func(st Stats) bool { return st.ClientBusy == 1 })
	if p := extra.next(300 * time.Millisecond); p != nil {
		t.Errorf("a third request from %s got a packet (% x ...), want no answer", one, p[:min(len(p), 4)])
	}

	h3 := hold(two)
	extra = newRawClient(t, addr, three)
	extra.rrq("ipxe.efi")
	waitFor(t, s, "1 request dropped at the server's limit", func(st Stats) bool { return st.Busy == 1 })
	if p := extra.next(300 * time.Millisecond); p != nil {
		t.Errorf("a fourth transfer got a packet (% x ...), want no answer", p[:min(len(p), 4)])
	}

	h1.abort()
	waitFor(t, s, "the aborted transfer ended", func(st Stats) bool { return st.Failed == 1 })
	body, _, err := get(t, addr, "undionly.kpxe", 1428)
	if err != nil || len(body) != len(files["undionly.kpxe"]) {
		t.Errorf("after a transfer ended: %d bytes, %v; want the %d-byte file", len(body), err, len(files["undionly.kpxe"]))
	}
	h2.abort()
	h3.abort()
	waitFor(t, s, "all transfers ended", func(st Stats) bool { return st.Failed == 3 })
}

// TestFlood sends 1000 read requests from 40 loopback addresses that never
// acknowledge, and checks what an operator would: the server holds at most
// MaxTransfers transfers, their file descriptors and goroutines, and
// counts the requests it dropped.
func TestFlood(t *testing.T) {
	root, _ := testRoot(t)
	s, addr := startServer(t, Config{Root: root, Timeout: 5 * time.Second, Retries: 5})
	const sources, rounds = 40, 25
	var clients []*rawClient
	for i := range sources {
		clients = append(clients, newRawClient(t, addr, net.IPv4(127, 0, 1, byte(i+1))))
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	baseFDs, baseGoroutines := fds(), runtime.NumGoroutine()
	maxFDs, maxGoroutines := 0, 0
	sample := func() {
		maxFDs, maxGoroutines = max(maxFDs, fds()), max(maxGoroutines, runtime.NumGoroutine())
	}
	for range rounds {
		for _, c := range clients {
			c.rrq("ipxe.efi")
		}
		sample()
		time.Sleep(5 * time.Millisecond) // lets the server read the round before the next one fills its socket buffer
	}
	waitFor(t, s, "requests dropped at the server's limit", func(st Stats) bool { return st.Busy > 0 })
	for range 20 {
		sample()
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Stats()
	t.Logf("1000 requests: %d dropped at the server's limit, %d at the clients'; at most %d file descriptors (%d before), %d goroutines (%d before)",
		st.Busy, st.ClientBusy, maxFDs, baseFDs, maxGoroutines, baseGoroutines)
	if maxFDs > baseFDs+MaxTransfers*FilesPerTransfer {
		t.Errorf("the server held %d file descriptors, want at most %d more than the %d before", maxFDs, MaxTransfers*FilesPerTransfer, baseFDs)
	}
	if maxGoroutines > baseGoroutines+MaxTransfers+10 {
		t.Errorf("%d goroutines, want at most %d more than the %d before", maxGoroutines, MaxTransfers+10, baseGoroutines)
	}
	// Each transfer ends after its two unacknowledged sends.
	waitFor(t, s, "every transfer ended", func(st Stats) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.active == 0
	})
}
