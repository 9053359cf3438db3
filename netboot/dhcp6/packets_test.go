package dhcp6_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"

	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/netboot/dhcp6"
)

var capture = flag.Bool("capture", false, "capture fresh nclient6 packets into testdata (new transaction IDs: run with -update after)")

// opt encodes one DHCPv6 option (RFC 8415 section 21.1) by hand, so that
// testdata does not depend on the library under test.
func opt(code uint16, data ...[]byte) []byte {
	body := bytes.Join(data, nil)
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// lv is a 2-byte length and data (user and vendor class instances).
func lv(s string) []byte { return append(u16(uint16(len(s))), s...) }

// handBuilt are the testdata packets assembled byte by byte after the
// firmware that sends them.
func handBuilt() []struct {
	name, comment string
	b             []byte
} {
	uuid, _ := hex.DecodeString("4c4c4544004b10388031b2c04f4b3332")
	duidUUID := append(u16(4), uuid...)
	// iPXE src/net/udp/dhcpv6.c dhcpv6_tx: client ID (DUID-UUID from the
	// SMBIOS UUID), IA_NA (IAID = CRC32 of the MAC, T1 = T2 = 0) when
	// stateful, then dhcpv6_request_options_data: ORO (23, 24, 59, 60),
	// vendor class 343 "PXEClient:Arch:00007:UNDI:003010", client
	// architecture 7, client NDI 1.3.10; then user class "iPXE" and
	// elapsed time.
	ipxeTail := bytes.Join([][]byte{
		opt(6, u16(23), u16(24), u16(59), u16(60)),
		opt(16, u32(343), lv("PXEClient:Arch:00007:UNDI:003010")),
		opt(61, u16(7)),
		opt(62, []byte{1, 3, 10}),
		opt(15, lv("iPXE")),
		opt(8, u16(0)),
	}, nil)
	ipxeSolicit := bytes.Join([][]byte{{1, 0xfd, 0x3d, 0x03}, opt(1, duidUUID), opt(3, u32(0x5d3c41f9), u32(0), u32(0)), ipxeTail}, nil)
	ipxeInfo := bytes.Join([][]byte{{11, 0x8a, 0x11, 0x07}, opt(1, duidUUID), ipxeTail}, nil)
	// EDK2 UEFI PXE over IPv6 (NetworkPkg UefiPxeBcDxe PxeBcDhcp6.c
	// PxeBcDhcp6Sarr): client ID DUID-UUID, IA_NA, ORO (59, 60, 23, 24),
	// client architecture 7, NDI, vendor class 343
	// "PXEClient:Arch:00007:UNDI:003016", elapsed time. No user class.
	edk2 := bytes.Join([][]byte{{1, 0x42, 0x07, 0x99},
		opt(8, u16(0)),
		opt(1, duidUUID),
		opt(3, u32(0x96c49a01), u32(0), u32(0)),
		opt(6, u16(59), u16(60), u16(23), u16(24)),
		opt(61, u16(7)),
		opt(62, []byte{1, 3, 16}),
		opt(16, u32(343), lv("PXEClient:Arch:00007:UNDI:003016")),
	}, nil)
	// A Solicit from a client with a DUID-EN (systemd-networkd's default)
	// relayed by a router on VLAN 136 that adds Interface-ID and the
	// client's link-layer address (RFC 6939 option 79).
	duidEN := append(u16(2), append(u32(43793), 0x9d, 0x2e, 0x01, 0x77, 0x42, 0x10, 0xaa, 0x01)...)
	inner := bytes.Join([][]byte{{1, 0x0c, 0xa1, 0x7e}, opt(1, duidEN), opt(3, u32(1), u32(0), u32(0)), opt(6, u16(23), u16(24)), opt(8, u16(0))}, nil)
	link, peer := net.ParseIP("2001:db8:136::1"), net.ParseIP("fe80::9c1a:3bff:1e42:77d1")
	relayed := bytes.Join([][]byte{{12, 0}, link, peer,
		opt(18, []byte("ge-0/0/1.136")),
		opt(79, u16(1), farMAC),
		opt(9, inner),
	}, nil)
	return []struct {
		name, comment string
		b             []byte
	}{
		{"ipxe_solicit.hex", "iPXE (current dhcpv6.c) Solicit, stateful: DUID-UUID, arch 7, user class iPXE.", ipxeSolicit},
		{"ipxe_inforeq.hex", "iPXE (current dhcpv6.c) Information-request after SLAAC with the O flag.", ipxeInfo},
		{"edk2_pxe_solicit.hex", "EDK2 UEFI PXE (arch 7) Solicit: DUID-UUID, PXEClient vendor class, no user class.", edk2},
		{"relay_solicit_opt79.hex", "Relay-forward (VLAN 136) with Interface-ID and option 79 around a DUID-EN Solicit.", relayed},
	}
}

// recorder is a net.PacketConn that keeps what nclient6 sends and never
// receives anything.
type recorder struct {
	mu   sync.Mutex
	sent [][]byte
	done chan struct{}
	once sync.Once
}

func (r *recorder) ReadFrom([]byte) (int, net.Addr, error) {
	<-r.done
	return 0, nil, errors.New("use of closed network connection")
}

func (r *recorder) WriteTo(b []byte, _ net.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, append([]byte(nil), b...))
	return len(b), nil
}

func (r *recorder) Close() error { r.once.Do(func() { close(r.done) }); return nil }
func (r *recorder) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv6linklocalallnodes, Port: 546}
}
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

// captureNclient6 returns the first packet nclient6 sends for do.
func captureNclient6(t *testing.T, mac net.HardwareAddr, do func(ctx context.Context, c *nclient6.Client)) []byte {
	t.Helper()
	r := &recorder{done: make(chan struct{})}
	c, err := nclient6.NewWithConn(r, mac, nclient6.WithRetry(1), nclient6.WithTimeout(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	do(t.Context(), c)
	c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		t.Fatal("nclient6 sent nothing")
	}
	return r.sent[0]
}

// TestTestdataPackets checks that the hand-built testdata is what the
// builders above make (-update rewrites it) and, with -capture, records
// what nclient6 sends.
func TestTestdataPackets(t *testing.T) {
	for _, p := range handBuilt() {
		if golden.Update() {
			writePacket(t, p.name, p.comment, p.b)
			continue
		}
		if got := readPacket(t, p.name); !bytes.Equal(got, p.b) {
			t.Errorf("testdata/%s differs from its builder: run go test -update", p.name)
		}
	}
	if *capture {
		b := captureNclient6(t, v6onlyMAC, func(ctx context.Context, c *nclient6.Client) {
			_, _ = c.Solicit(ctx, dhcpv6.WithClientID(duidLL(v6onlyMAC)))
		})
		writePacket(t, "nclient6_solicit_duid_ll.hex", "nclient6 Solicit with a DUID-LL client identifier (v6only's MAC).", b)
		b = captureNclient6(t, sm1MAC, func(ctx context.Context, c *nclient6.Client) { _, _ = c.Solicit(ctx) })
		writePacket(t, "nclient6_solicit_duid_llt.hex", "nclient6 Solicit with its default DUID-LLT (sm1's MAC).", b)
		adv := goldenReply(t, "nclient6_solicit_duid_ll.hex", direct(linkLocal(v6onlyMAC)), false)
		b = captureNclient6(t, v6onlyMAC, func(ctx context.Context, c *nclient6.Client) {
			if _, err := c.Request(ctx, adv.(*dhcpv6.Message)); err != nil && !errors.Is(err, nclient6.ErrNoResponse) {
				t.Fatal(err)
			}
		})
		writePacket(t, "nclient6_request.hex", "nclient6 Request answering the Advertise of advertise_duid_ll.golden.", b)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata packets: %v", err)
	}
	for _, f := range files {
		if _, err := dhcpv6.FromBytes(readPacket(t, filepath.Base(f))); err != nil {
			t.Errorf("%s does not decode: %v", f, err)
		}
	}
}

// goldenReply handles a testdata packet with a server over the fake DNS.
func goldenReply(t *testing.T, name string, in dhcp6.Ingress, unidentified bool) dhcpv6.DHCPv6 {
	t.Helper()
	b := fakeBackend(t)
	load(t, b, records()...)
	s := newServer(t, b, unidentified)
	m, err := dhcpv6.FromBytes(readPacket(t, name))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Handle(t.Context(), m, in)
	if err != nil {
		t.Fatalf("Handle(%s): %v", name, err)
	}
	return resp
}

// TestGolden compares the bytes of replies to real packets with
// testdata/golden (-update rewrites them). Each golden file is the hex
// dump of the reply followed by its decoded form.
func TestGolden(t *testing.T) {
	tests := []struct {
		golden, packet string
		in             dhcp6.Ingress
		unidentified   bool
	}{
		{"advertise_duid_ll", "nclient6_solicit_duid_ll.hex", direct(linkLocal(v6onlyMAC)), false},
		{"reply_ipxe_inforeq", "ipxe_inforeq.hex", direct(linkLocal(v6onlyMAC)), false},
		{"advertise_ipxe_solicit", "ipxe_solicit.hex", direct(linkLocal(fcMAC)), false},
		{"advertise_pxe_arch7", "edk2_pxe_solicit.hex", direct(linkLocal(sm1MAC)), false},
		{"reply_uuid_stateless", "ipxe_inforeq.hex", direct(privacyLL), true},
		{"advertise_uuid_noaddrs", "ipxe_solicit.hex", direct(privacyLL), true},
		{"relayrepl_opt79", "relay_solicit_opt79.hex", relayed(), false},
		{"reply_request", "nclient6_request.hex", direct(linkLocal(v6onlyMAC)), false},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			resp := goldenReply(t, tt.packet, tt.in, tt.unidentified)
			if resp == nil {
				t.Fatal("no reply")
			}
			got := hex.Dump(resp.ToBytes()) + "\n" + printable(resp.Summary()) + "\n"
			path := filepath.Join("testdata", "golden", tt.golden+".golden")
			if golden.Update() {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
	// Without AnswerUnidentified the MAC-less client gets nothing.
	if resp := goldenReply(t, "ipxe_inforeq.hex", direct(privacyLL), false); resp != nil {
		t.Errorf("MAC-less client answered by default: %s", resp.Summary())
	}
}

// printable replaces what is not printable ASCII (opaque DUID bytes in the
// library's rendering) with '.', as hex.Dump does.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r >= ' ' && r < 0x7f {
			return r
		}
		return '.'
	}, s)
}

// FuzzHandle: no input makes Handle panic; it either answers, stays
// silent, or fails with ErrMalformed (the fake DNS never fails); and what
// it answers is a Reply, Advertise or Relay-reply that decodes again.
func FuzzHandle(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus in testdata: %v", err)
	}
	for _, file := range files {
		f.Add(readPacket(f, filepath.Base(file)), true)
	}
	b := fakeBackend(f)
	load(f, b, records()...)
	servers := map[bool]*dhcp6.Server{false: newServer(f, b, false), true: newServer(f, b, true)}
	f.Fuzz(func(t *testing.T, pkt []byte, unidentified bool) {
		m, err := dhcpv6.FromBytes(pkt)
		if err != nil {
			return
		}
		for _, in := range []dhcp6.Ingress{direct(linkLocal(v6onlyMAC)), direct(privacyLL), relayed()} {
			resp, err := servers[unidentified].Handle(context.Background(), m, in)
			if err != nil {
				if !errors.Is(err, dhcp6.ErrMalformed) {
					t.Fatalf("Handle: %v does not wrap ErrMalformed", err)
				}
				continue
			}
			if resp == nil {
				continue
			}
			switch resp.Type() {
			case dhcpv6.MessageTypeReply, dhcpv6.MessageTypeAdvertise, dhcpv6.MessageTypeRelayReply:
			default:
				t.Fatalf("answer of type %s", resp.Type())
			}
			if resp.IsRelay() != m.IsRelay() {
				t.Fatalf("relayed %v, answer relayed %v", m.IsRelay(), resp.IsRelay())
			}
			if _, err := dhcpv6.FromBytes(resp.ToBytes()); err != nil {
				t.Fatalf("answer does not decode: %v\n%s", err, resp.Summary())
			}
			if !strings.Contains(resp.Summary(), "Server ID") {
				t.Fatalf("answer without server identifier:\n%s", resp.Summary())
			}
		}
	})
}
