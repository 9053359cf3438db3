package tftp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Bounds of vmprov serve's TFTP server (docs/design.md). Every transfer
// holds one goroutine, its own UDP socket (its TID, RFC 1350 section 4) and
// at most one open file, so MaxTransfers×FilesPerTransfer bounds the file
// descriptors TFTP holds; deploy/vmprov-serve.service's LimitNOFILE counts
// on it.
const (
	// MaxTransfers is how many transfers run at once. Read and write
	// requests beyond it are dropped without an answer.
	MaxTransfers = 256
	// MaxTransfersPerClient is how many transfers one source address runs
	// at once. A PXE client, GRUB or PXELINUX reads one file at a time;
	// the slack covers a retransmitted request and an EDK2 size probe.
	MaxTransfersPerClient = 8
	// FilesPerTransfer is the file descriptors one transfer holds: its
	// socket and the file it sends.
	FilesPerTransfer = 2
)

// Before the client has acknowledged anything, its address is unverified:
// a read request's source can be forged, and each answer to it would go to
// the forged address. So the first packet (OACK or DATA 1) is sent at most
// unverifiedSends times, waiting at most unverifiedTimeout for the ACK, and
// a transfer that never hears back sends no ERROR. A client whose first
// answer is lost retransmits its request (RFC 1350 section 2, "the
// intended recipient will timeout and may retransmit his last packet"), as
// PXE ROMs, iPXE, GRUB and tftp-hpa do. Once the client has acknowledged a
// packet, Config.Retries and Config.Timeout apply.
const (
	unverifiedSends   = 2
	unverifiedTimeout = time.Second
)

// TFTP opcodes (RFC 1350 section 5, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// TFTP error codes (RFC 1350 appendix, RFC 2347).
const (
	codeUndefined  = 0
	codeNotFound   = 1
	codeAccess     = 2
	codeIllegal    = 4
	codeUnknownTID = 5
	codeOptions    = 8
)

// Block sizes (RFC 1350, RFC 2348).
const (
	defaultBlockSize = 512
	maxBlockSize     = 65464
)

// Window sizes (RFC 7440). A client may ask for 1 to 65535 blocks a
// window; the server grants at most maxWindowSize, and fewer when the
// window would hold more than maxWindowBytes: a transfer keeps its window
// in memory to resend it, so MaxTransfers windows bound what TFTP holds
// (64 MiB, and readAhead each), and a window must fit the receiver's
// socket buffer (Linux's default is 208 KiB) or its tail is dropped there.
// Without the option, a transfer is lockstep, a window of 1 (RFC 1350).
const (
	maxWindowSize  = 64
	maxWindowBytes = 256 << 10
)

// readAhead is what a transfer reads from its file at once; a block of
// that size or more is read straight into its packet.
const readAhead = 32 << 10

// request is a read or write request as it arrived on the server port.
type request struct {
	op    uint16
	name  string
	mode  string
	opts  map[string]string // option names in lower case
	peer  netip.AddrPort    // unmapped, without zone
	local netip.Addr        // the address it was sent to; invalid: unknown
	mtu   int               // of the interface it arrived on; 0: unknown
}

// parseRequest parses an RRQ or WRQ: opcode, file name, mode and RFC 2347
// options, each NUL-terminated. ok is false for anything else.
func parseRequest(b []byte) (request, bool) {
	if len(b) < 2 {
		return request{}, false
	}
	r := request{op: binary.BigEndian.Uint16(b)}
	if r.op != opRRQ && r.op != opWRQ {
		return request{}, false
	}
	fields := strings.Split(string(b[2:]), "\x00")
	// A well-formed request ends with a NUL, so the last field is empty.
	if len(fields) < 3 || fields[len(fields)-1] != "" {
		return request{}, false
	}
	fields = fields[:len(fields)-1]
	r.name, r.mode = fields[0], strings.ToLower(fields[1])
	for i := 2; i+1 < len(fields); i += 2 {
		if r.opts == nil {
			r.opts = map[string]string{}
		}
		r.opts[strings.ToLower(fields[i])] = fields[i+1]
	}
	return r, true
}

// packetConn reads requests with the address they were sent to and the
// interface they arrived on, so that each transfer answers from that
// address (a client accepts DATA only from the server it asked) and sizes
// its blocks to that interface's MTU.
type packetConn struct {
	conn *net.UDPConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	ip   netip.Addr // the listening address
}

func newPacketConn(conn *net.UDPConn) *packetConn {
	pc := &packetConn{conn: conn}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		pc.ip, _ = netip.AddrFromSlice(ua.IP)
		pc.ip = pc.ip.Unmap()
	}
	if pc.ip.Is4() {
		p := ipv4.NewPacketConn(conn)
		if p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) == nil {
			pc.p4 = p
		}
	} else {
		p := ipv6.NewPacketConn(conn)
		if p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) == nil {
			pc.p6 = p
		}
	}
	return pc
}

// read returns the next datagram, its source, the address it was sent to
// (invalid when unknown) and the index of the interface it arrived on.
func (pc *packetConn) read(buf []byte) (n int, from netip.AddrPort, dst netip.Addr, ifIndex int, err error) {
	var src net.Addr
	switch {
	case pc.p4 != nil:
		var cm *ipv4.ControlMessage
		n, cm, src, err = pc.p4.ReadFrom(buf)
		if cm != nil {
			dst, _ = netip.AddrFromSlice(cm.Dst)
			ifIndex = cm.IfIndex
		}
	case pc.p6 != nil:
		var cm *ipv6.ControlMessage
		n, cm, src, err = pc.p6.ReadFrom(buf)
		if cm != nil {
			dst, _ = netip.AddrFromSlice(cm.Dst)
			ifIndex = cm.IfIndex
		}
	default:
		n, src, err = pc.conn.ReadFrom(buf)
	}
	if err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, 0, err
	}
	if ua, ok := src.(*net.UDPAddr); ok {
		from = ua.AddrPort()
		from = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
	}
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// Broadcast and multicast cannot be a source address; the listening
		// address, or the kernel's choice when that is a wildcard, answers.
		dst = pc.ip
	}
	return n, from, dst, ifIndex, nil
}

// transfer is one request being answered from its own socket, the
// server's TID for it.
type transfer struct {
	conn    *net.UDPConn
	peer    netip.AddrPort
	timeout time.Duration
	retries int
	buf     []byte // receive buffer
	// verified: the peer has acknowledged a packet, so it receives what
	// is sent to its address.
	verified bool
	batch    batchWriter    // writes a window; nil until the first
	msgs     []ipv4.Message // a window's packets for batch
}

// errTimeout ends a transfer whose packet was not acknowledged.
var errTimeout = errors.New("no acknowledgement")

// peerError is an ERROR packet from the client.
type peerError struct {
	code uint16
	msg  string
}

func (e *peerError) Error() string {
	return fmt.Sprintf("client sent error %d: %s", e.code, e.msg)
}

// send sends pkt until the peer acknowledges block, and returns nil then,
// a *peerError when the peer sends an error, or errTimeout.
func (t *transfer) send(pkt []byte, block uint16) error {
	sends, timeout := t.sends()
	for range sends {
		if _, err := t.conn.WriteToUDPAddrPort(pkt, t.peer); err != nil {
			return err
		}
		_, err := t.await(int64(block), int64(block), time.Now().Add(timeout))
		if err == nil {
			t.verified = true
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return errTimeout
}

// sends returns how often a packet (or a window) is sent without an
// acknowledgement, and how long each send waits for it.
func (t *transfer) sends() (int, time.Duration) {
	if !t.verified {
		return unverifiedSends, min(t.timeout, unverifiedTimeout)
	}
	return 1 + t.retries, t.timeout
}

// sendBlocks sends rd in DATA blocks of blksize, window blocks at a time,
// and returns the bytes the client acknowledged. A window of 1 is RFC
// 1350's lockstep. With a larger one (RFC 7440 section 4) the blocks of a
// window go out back to back and the client acknowledges the last; an ACK
// of an earlier block k of the window means the client missed k+1, and
// the next window starts there. A window without an acknowledgement
// within the timeout is sent again, at most 1+Retries times. An ACK of the
// block before the window, a duplicate of the ACK that started it, is not
// answered, as in lockstep: answering duplicates is the Sorcerer's
// Apprentice Syndrome (RFC 1123 section 4.2.3.1), and EDK2 acknowledges
// every block it did not expect, atftp the first of a window, so each
// resent window would draw more. The cost is that a window whose first
// block is lost waits for the timeout. A block shorter than blksize ends
// the transfer (RFC 1350 section 6).
//
// Block numbers are 16 bits and wrap from 65535 to 0, as tftpd-hpa and
// iPXE do for files over 32 MiB at blksize 512; the transfer counts
// blocks in 64 bits and matches an ACK to the window by its distance from
// the window's first block.
func (t *transfer) sendBlocks(rd io.Reader, blksize, window int) (int64, error) {
	if _, ok := rd.(*strings.Reader); !ok {
		// One read(2) for many blocks.
		rd = bufio.NewReaderSize(rd, readAhead)
	}
	w := int64(window)
	size := 4 + blksize
	buf := make([]byte, window*size)
	pkts := make([][]byte, window) // block b's packet, once read: pkts[b%w]
	out := make([][]byte, 0, window)
	var (
		base  int64 = 1  // the first block not acknowledged
		read  int64      // blocks read from rd: 1..read
		last  int64 = -1 // the short block that ends the file, once read
		n     int64      // bytes acknowledged
		tries int        // sends of the window since base moved
	)
	for {
		for read-base+1 < w && last < 0 {
			b := read + 1
			pkt := buf[(b%w)*int64(size):][:size]
			m, err := io.ReadFull(rd, pkt[4:])
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.fail(errRead)
				return n, fmt.Errorf("read: %w", err)
			}
			binary.BigEndian.PutUint16(pkt, opDATA)
			binary.BigEndian.PutUint16(pkt[2:], uint16(b))
			pkts[b%w] = pkt[:4+m]
			read = b
			if m < blksize {
				last = b
			}
		}
		sends, timeout := t.sends()
		if tries >= sends {
			return n, errTimeout
		}
		tries++
		out = out[:0]
		for b := base; b <= read; b++ {
			out = append(out, pkts[b%w])
		}
		if err := t.write(out); err != nil {
			return n, err
		}
		acked, err := t.await(base, read, time.Now().Add(timeout))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return n, err
		}
		t.verified = true
		tries = 0
		for b := base; b <= acked; b++ {
			n += int64(len(pkts[b%w]) - 4)
		}
		if acked == last {
			return n, nil
		}
		base = acked + 1
	}
}

// write sends pkts to the peer, several in one sendmmsg(2).
func (t *transfer) write(pkts [][]byte) error {
	if len(pkts) == 1 {
		_, err := t.conn.WriteToUDPAddrPort(pkts[0], t.peer)
		return err
	}
	if t.batch == nil {
		t.batch = ipv4.NewPacketConn(t.conn)
		if t.peer.Addr().Is6() {
			t.batch = ipv6.NewPacketConn(t.conn)
		}
		t.msgs = make([]ipv4.Message, 0, len(pkts))
	}
	to := net.UDPAddrFromAddrPort(t.peer)
	t.msgs = t.msgs[:0]
	for _, p := range pkts {
		t.msgs = append(t.msgs, ipv4.Message{Buffers: [][]byte{p}, Addr: to})
	}
	for ms := t.msgs; len(ms) > 0; {
		n, err := t.batch.WriteBatch(ms, 0)
		if err != nil {
			return err
		}
		ms = ms[n:]
	}
	return nil
}

// batchWriter is an ipv4.PacketConn or ipv6.PacketConn, whose WriteBatch
// is sendmmsg(2) on Linux.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// await reads until an ACK of a block from first to last arrives, and
// returns that block; or until the peer sends an error or the deadline
// passes. Block numbers on the wire are the low 16 bits of first..last.
func (t *transfer) await(first, last int64, deadline time.Time) (int64, error) {
	if err := t.conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(t.buf)
		if err != nil {
			return 0, err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
		if from != t.peer {
			// RFC 1350 section 4: a packet from another TID gets error 5
			// and leaves the transfer alone.
			_, _ = t.conn.WriteToUDPAddrPort(errorPacket(codeUnknownTID, "unknown transfer ID"), from)
			continue
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(t.buf) {
		case opACK:
			// The distance from the block before first, modulo 2^16: 1 is
			// first, last-first+1 is last.
			d := binary.BigEndian.Uint16(t.buf[2:]) - uint16(first-1)
			if d >= 1 && int64(d) <= last-first+1 {
				return first - 1 + int64(d), nil
			}
			// An earlier block's ACK, duplicated or delayed: not answered,
			// which avoids the Sorcerer's Apprentice Syndrome (RFC 1123
			// section 4.2.3.1).
		case opERROR:
			return 0, &peerError{code: binary.BigEndian.Uint16(t.buf[2:]), msg: strings.TrimRight(string(t.buf[4:n]), "\x00")}
		}
	}
}

// fail sends an ERROR packet for err once; a lost one is not repeated
// (RFC 1350 section 7).
func (t *transfer) fail(err error) {
	_, _ = t.conn.WriteToUDPAddrPort(errorPacket(errorCode(err), err.Error()), t.peer)
}

// errorCode is the RFC 1350 code of an error sent to a client.
func errorCode(err error) uint16 {
	switch {
	case errors.Is(err, errNotFound):
		return codeNotFound
	case errors.Is(err, errAccess):
		return codeAccess
	case errors.Is(err, errIllegal):
		return codeIllegal
	}
	return codeUndefined
}

func errorPacket(code uint16, msg string) []byte {
	b := make([]byte, 4, 5+len(msg))
	binary.BigEndian.PutUint16(b, opERROR)
	binary.BigEndian.PutUint16(b[2:], code)
	b = append(b, msg...)
	return append(b, 0)
}

// negotiate picks the options of RFC 2347 that the server acknowledges:
// blksize (RFC 2348), capped so that a DATA packet fits the interface's
// MTU, tsize (RFC 2349) and windowsize (RFC 7440), capped by
// maxWindowSize and maxWindowBytes. Others are left out of the OACK. A
// blksize under 512 is ignored (the transfer uses 512), as no boot loader
// asks for one; so is a windowsize outside 1..65535, the range of RFC 7440
// section 2. blksize and window are what the transfer uses: window is 1,
// lockstep, unless the client asked for more.
func negotiate(r request, size int64) (oack []string, blksize, window int) {
	blksize, window = defaultBlockSize, 1
	if v, ok := r.opts["blksize"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= defaultBlockSize {
			limit := maxBlockSize
			if r.mtu > 0 {
				// IP header, UDP header (8) and TFTP header (4).
				hdr := 20 + 8 + 4
				if r.peer.Addr().Is6() {
					hdr = 40 + 8 + 4
				}
				limit = min(limit, max(r.mtu-hdr, defaultBlockSize))
			}
			blksize = min(n, limit)
			oack = append(oack, "blksize", strconv.Itoa(blksize))
		}
	}
	if _, ok := r.opts["tsize"]; ok && size >= 0 {
		oack = append(oack, "tsize", strconv.FormatInt(size, 10))
	}
	if v, ok := r.opts["windowsize"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 65535 {
			// RFC 7440 section 3: the OACK's value is at most the client's.
			window = min(n, maxWindowSize, max(1, maxWindowBytes/blksize))
			oack = append(oack, "windowsize", strconv.Itoa(window))
		}
	}
	return oack, blksize, window
}

func oackPacket(opts []string) []byte {
	b := []byte{0, opOACK}
	for _, o := range opts {
		b = append(b, o...)
		b = append(b, 0)
	}
	return b
}
