package tftp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rrqOpts sends a read request with RFC 2347 options (name, value, ...).
func (c *rawClient) rrqOpts(name string, opts ...string) {
	c.t.Helper()
	pkt := "\x00\x01" + name + "\x00octet\x00"
	for _, o := range opts {
		pkt += o + "\x00"
	}
	if _, err := c.conn.WriteToUDP([]byte(pkt), c.server); err != nil {
		c.t.Fatal(err)
	}
}

// ack acknowledges block.
func (c *rawClient) ack(block uint16) {
	c.t.Helper()
	ack := []byte{0, opACK, 0, 0}
	binary.BigEndian.PutUint16(ack[2:], block)
	if _, err := c.conn.WriteToUDP(ack, c.tid); err != nil {
		c.t.Fatal(err)
	}
}

// oack waits for the option acknowledgement and returns its options as
// "name value ...".
func (c *rawClient) oack() string {
	c.t.Helper()
	p := c.next(5 * time.Second)
	if len(p) < 2 || binary.BigEndian.Uint16(p) != opOACK {
		c.t.Fatalf("got %q, want an OACK", p)
	}
	return strings.ReplaceAll(strings.TrimRight(string(p[2:]), "\x00"), "\x00", " ")
}

// window receives the DATA packets of blocks first, first+1, ... (count
// of them, their numbers wrapping at 2^16) without acknowledging any, and
// returns their payloads.
func (c *rawClient) window(first uint16, count int) [][]byte {
	c.t.Helper()
	var got [][]byte
	for i := range count {
		want := first + uint16(i)
		p := c.next(5 * time.Second)
		if len(p) < 4 || binary.BigEndian.Uint16(p) != opDATA || binary.BigEndian.Uint16(p[2:]) != want {
			c.t.Fatalf("packet %d of the window from block %d: got %q, want DATA %d", i+1, first, p[:min(len(p), 8)], want)
		}
		got = append(got, p[4:])
	}
	return got
}

// quiet checks that no packet arrives for 300 ms: the server waits for an
// acknowledgement.
func (c *rawClient) quiet(why string) {
	c.t.Helper()
	if p := c.next(300 * time.Millisecond); p != nil {
		c.t.Fatalf("%s: got % x, want no packet until the client acknowledges", why, p[:min(len(p), 4)])
	}
}

func TestNegotiateWindowsize(t *testing.T) {
	v4 := netip.MustParseAddrPort("192.0.2.10:1024")
	tests := []struct {
		name        string
		opts        map[string]string
		mtu         int
		wantOACK    []string
		wantBlksize int
		wantWindow  int
	}{
		{"no options: lockstep", nil, 1500, nil, 512, 1},
		{"blksize only: lockstep", map[string]string{"blksize": "1468"}, 1500, []string{"blksize", "1468"}, 1468, 1},
		{"windowsize 16", map[string]string{"windowsize": "16"}, 1500, []string{"windowsize", "16"}, 512, 16},
		{"windowsize 1", map[string]string{"windowsize": "1"}, 1500, []string{"windowsize", "1"}, 512, 1},
		{"windowsize 65535 capped", map[string]string{"windowsize": "65535", "blksize": "1468"}, 1500, []string{"blksize", "1468", "windowsize", "64"}, 1468, 64},
		{"windowsize capped to 256 KiB", map[string]string{"windowsize": "64", "blksize": "65464"}, 65536, []string{"blksize", "65464", "windowsize", "4"}, 65464, 4},
		{"windowsize 0 ignored", map[string]string{"windowsize": "0"}, 1500, nil, 512, 1},
		{"windowsize 65536 ignored", map[string]string{"windowsize": "65536"}, 1500, nil, 512, 1},
		{"windowsize -1 ignored", map[string]string{"windowsize": "-1"}, 1500, nil, 512, 1},
		{"windowsize not a number ignored", map[string]string{"windowsize": "16x", "tsize": "0"}, 1500, []string{"tsize", "70000"}, 512, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oack, blksize, window := negotiate(request{opts: tt.opts, peer: v4, mtu: tt.mtu}, 70000)
			if diff := cmp.Diff(tt.wantOACK, oack); diff != "" {
				t.Errorf("OACK options (-want +got):\n%s", diff)
			}
			if blksize != tt.wantBlksize || window != tt.wantWindow {
				t.Errorf("blksize %d, window %d; want %d, %d", blksize, window, tt.wantBlksize, tt.wantWindow)
			}
		})
	}
}

// TestWindowsize follows a transfer of windowsize 4 (RFC 7440) packet by
// packet: the OACK grants it, each window of 4 blocks comes without
// waiting for acknowledgements, an ACK of a block inside the window makes
// the next window start after it (a lost block is resent at once), a
// duplicate ACK is not answered, a window without an answer is resent
// after the timeout, and the file arrives whole.
func TestWindowsize(t *testing.T) {
	root, files := testRoot(t)
	s, addr := startServer(t, Config{Root: root, Timeout: 2 * time.Second, Retries: 2})
	want := files["undionly.kpxe"] // 70000 bytes: 137 blocks of 512, the last 368 bytes
	c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
	c.rrqOpts("undionly.kpxe", "windowsize", "4", "tsize", "0")
	if got := c.oack(); got != "tsize 70000 windowsize 4" {
		t.Fatalf("OACK %q, want tsize 70000 windowsize 4", got)
	}
	blocks := map[uint16][]byte{}
	keep := func(first uint16, w [][]byte) {
		for i, p := range w {
			blocks[first+uint16(i)] = p
		}
	}
	c.ack(0)
	keep(1, c.window(1, 4))
	c.quiet("after a window of 4")

	c.ack(4)
	keep(5, c.window(5, 4))
	c.quiet("after the second window")

	// The client has 5 and 6, and missed 7: it acknowledges 6, and the
	// next window starts at 7.
	c.ack(6)
	keep(7, c.window(7, 4))
	c.quiet("after the window from 7")

	// DATA 12 of the next window is lost: the client acknowledges 11, the
	// last block it received in sequence (RFC 7440 section 4), and the
	// next window starts at 12.
	c.ack(10)
	keep(11, c.window(11, 4)[:1])
	c.ack(11)
	keep(12, c.window(12, 4))
	c.quiet("after the window from 12")

	// DATA 16, the first of the next window, is lost: the client's ACK of
	// 15 cannot be told from a duplicate of the ACK that started the
	// window, and is not answered. The window comes again when the timeout
	// (2 s) passes.
	c.ack(15)
	keep(17, c.window(16, 4)[1:])
	c.ack(15)
	c.quiet("after a duplicate ACK")
	keep(16, c.window(16, 4))

	for next := uint16(20); ; next += 4 {
		c.ack(next - 1)
		n := min(4, 137-int(next)+1)
		keep(next, c.window(next, n))
		if int(next)+n-1 == 137 {
			c.ack(137)
			break
		}
	}
	c.quiet("after the last block")
	var got []byte
	for b := uint16(1); b <= 137; b++ {
		got = append(got, blocks[b]...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("assembled %d bytes that differ from the %d-byte file", len(got), len(want))
	}
	waitFor(t, s, "1 transfer of 70000 bytes", func(st Stats) bool { return st.Transfers == 1 && st.Bytes == 70000 })
}

// TestWindowRetries: a window nobody acknowledges is sent 1+Retries times,
// then the transfer fails.
func TestWindowRetries(t *testing.T) {
	root, _ := testRoot(t)
	const retries = 2
	s, addr := startServer(t, Config{Root: root, Timeout: 200 * time.Millisecond, Retries: retries})
	c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
	c.rrqOpts("ipxe.efi", "windowsize", "8")
	if got := c.oack(); got != "windowsize 8" {
		t.Fatalf("OACK %q", got)
	}
	c.ack(0)
	waitFor(t, s, "1 failed transfer", func(st Stats) bool { return st.Failed == 1 })
	if packets, _ := c.drain(); packets != 8*(1+retries) {
		t.Errorf("%d DATA packets to a client that acknowledged only the OACK, want %d: a window of 8, 1+Retries times", packets, 8*(1+retries))
	}
}

// TestLockstep: a client that does not ask for windowsize gets one block
// at a time, each after the ACK of the one before, with options or
// without.
func TestLockstep(t *testing.T) {
	root, _ := testRoot(t)
	_, addr := startServer(t, Config{Root: root})
	for _, opts := range [][]string{nil, {"blksize", "1428", "tsize", "0"}, {"windowsize", "1"}} {
		t.Run(fmt.Sprint(opts), func(t *testing.T) {
			c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
			c.rrqOpts("ipxe.efi", opts...)
			if opts != nil {
				if got := c.oack(); strings.Contains(got, "windowsize") != (opts[0] == "windowsize") {
					t.Errorf("OACK %q", got)
				}
				c.ack(0)
			}
			for b := uint16(1); b <= 3; b++ {
				c.window(b, 1)
				c.quiet(fmt.Sprintf("after DATA %d", b))
				c.ack(b)
			}
			c.abort()
		})
	}
}

// TestRollover downloads a file of 65600 blocks of 512 bytes, lockstep and
// with windowsize 64: block numbers go from 65535 to 0 (RFC 1350's 16-bit
// numbers wrap, as tftpd-hpa and iPXE do), an ACK inside a window that
// spans the wrap is matched to the right block, and the file arrives
// whole.
func TestRollover(t *testing.T) {
	root := t.TempDir()
	const blocks = 65600
	file := make([]byte, blocks*512-100)
	for i := range file {
		file[i] = byte(i / 512) // each block's low byte of its number
	}
	if err := os.WriteFile(filepath.Join(root, "big.img"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	s, addr := startServer(t, Config{Root: root})
	for _, window := range []int{1, 64} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			before := s.Stats()
			c := newRawClient(t, addr, net.IPv4(127, 0, 0, 1))
			if window == 1 {
				c.rrqOpts("big.img")
			} else {
				c.rrqOpts("big.img", "windowsize", fmt.Sprint(window))
				if got := c.oack(); got != "windowsize 64" {
					t.Fatalf("OACK %q", got)
				}
				c.ack(0)
			}
			h := sha256.New()
			var wire []uint16 // block numbers around the wrap
			partial := false
			for next := int64(1); next <= blocks; {
				n := min(int64(window), blocks-next+1)
				w := c.window(uint16(next), int(n))
				for i := range w {
					if b := next + int64(i); b >= 65534 && b <= 65538 && b-65534 == int64(len(wire)) {
						wire = append(wire, uint16(b))
					}
				}
				if window > 1 && !partial && next+n-1 > 65536 {
					// Acknowledge block 65536, sent as 0, in the window
					// that spans the wrap: the next starts at 65537, sent as 1.
					partial = true
					k := 65536 - next + 1
					for _, p := range w[:k] {
						h.Write(p)
					}
					c.ack(0)
					next = 65537
					continue
				}
				for _, p := range w {
					h.Write(p)
				}
				next += n
				c.ack(uint16(next - 1))
			}
			if window > 1 && !partial {
				t.Error("no window spanned the wrap")
			}
			if diff := cmp.Diff([]uint16{65534, 65535, 0, 1, 2}, wire); diff != "" {
				t.Errorf("block numbers around the wrap (-want +got):\n%s", diff)
			}
			if sum := sha256.Sum256(file); !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Error("the blocks received differ from the file")
			}
			waitFor(t, s, "1 more transfer of the whole file", func(st Stats) bool {
				return st.Transfers == before.Transfers+1 && st.Bytes == before.Bytes+uint64(len(file))
			})
		})
	}
}

// TestWriteWindow: a window, written in one sendmmsg(2), reaches the peer
// whole and in order from an IPv4 socket, an IPv6 one, and a dual-stack
// one (a transfer whose request came to a wildcard address) to an IPv4
// peer.
func TestWriteWindow(t *testing.T) {
	tests := []struct {
		name        string
		local, peer net.IP
	}{
		{"IPv4", net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 1)},
		{"IPv6", net.IPv6loopback, net.IPv6loopback},
		{"dual-stack to IPv4", nil, net.IPv4(127, 0, 0, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: tt.local})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: tt.peer})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			tr := &transfer{conn: conn, peer: netip.AddrPortFrom(pa.Addr().Unmap(), pa.Port())}
			var sent [][]byte
			for i := range 16 {
				sent = append(sent, fmt.Appendf(nil, "packet %d", i))
			}
			if err := tr.write(sent); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			for i, want := range sent {
				_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := peer.Read(buf)
				if err != nil || !bytes.Equal(buf[:n], want) {
					t.Fatalf("packet %d: %q, %v; want %q", i, buf[:n], err, want)
				}
			}
		})
	}
}
