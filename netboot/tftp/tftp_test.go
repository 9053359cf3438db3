package tftp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

const testConfigYAML = `
dns: {zone: example.com.}
boot: {url: "http://192.0.2.1:8080"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, dns_servers: [192.0.2.1]}
`

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addrPolicy is the netboot.Policy of the unit tests: hosts by source
// address, as forward-confirmed reverse DNS would find them.
type addrPolicy struct {
	hosts map[netip.Addr]netboot.Decision
	err   error
}

func (p *addrPolicy) Decide(_ context.Context, c netboot.Client) (netboot.Decision, error) {
	if p.err != nil {
		return netboot.Decision{}, p.err
	}
	if len(c.MAC) > 0 {
		return netboot.Decision{}, errors.New("addrPolicy: a TFTP request has no MAC to identify by")
	}
	d, ok := p.hosts[c.Addr]
	if !ok {
		return netboot.Decision{}, fmt.Errorf("addrPolicy: %s: %w", c.Addr, netboot.ErrUnknown)
	}
	return d, nil
}

var (
	hostMAC  = net.HardwareAddr{0x02, 0x04, 0x06, 0x08, 0x72, 0x0a}
	otherMAC = net.HardwareAddr{0x02, 0x04, 0x06, 0x08, 0x72, 0x0b}
)

// web10 is the host the unit tests' requester (127.0.0.1) is.
func web10(t testing.TB) netboot.Decision {
	cfg := testConfig(t)
	v, _ := serveconfig.VLANs(cfg).ByID(135)
	in, err := inventory.ParseIntent([]string{"filename=test.ipxe", "distribution=core"})
	if err != nil {
		t.Fatal(err)
	}
	return netboot.Decision{
		Host: inventory.Host{Name: "web10", FQDN: "web10.example.com.", MAC: hostMAC, IPv4: netip.MustParseAddr("192.0.2.10"), Intent: in},
		VLAN: v,
	}
}

// testRoot makes a TFTP root: loaders, a static GRUB config, a directory,
// a link inside the root and links out of it.
func testRoot(t testing.TB) (dir string, files map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	files = map[string][]byte{
		"ipxe.efi":                      random(1<<20 + 1234),
		"undionly.kpxe":                 random(70000),
		"empty":                         {},
		"exact-block":                   random(1428 * 3),
		"boot/grub/x86_64-efi/grub.cfg": []byte("configfile (tftp)/boot/grub/x86_64-efi/grub.cfg-01-$net_efinet0_mac\n"),
		"pxelinux.cfg/01-" + inventory.HexHyp(otherMAC): []byte("DEFAULT local\n"),
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"passwd":        "/etc/passwd",
		"etc":           "/etc",
		"boot/up":       "../..",
		"boot/loader":   "../ipxe.efi",
		"boot/outside":  "../../outside",
		"boot/grub/top": "../../boot",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// startServer serves cfg on a free 127.0.0.1 port until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	return startServerAt(t, cfg, net.IPv4(127, 0, 0, 1))
}

// startServerAt is startServer listening on ip (::1 for an IPv6 requester).
func startServerAt(t testing.TB, cfg Config, ip net.IP) (*Server, string) {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout, cfg.Retries = time.Second, 2 // abandoned test transfers end soon
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(ctx, conn) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeConn: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("ServeConn did not return within 30 s of its context ending")
		}
		s.Close()
	})
	return s, conn.LocalAddr().String()
}

// get downloads name with pin/tftp's client; size is the tsize the server
// announced (-1 when none).
func get(t testing.TB, addr, name string, blksize int) (body []byte, size int64, err error) {
	t.Helper()
	c, err := pintftp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(time.Second)
	c.SetRetries(3)
	if blksize > 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(true)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, 0, err
	}
	size = -1
	if it, ok := wt.(pintftp.IncomingTransfer); ok {
		if n, ok := it.Size(); ok {
			size = n
		}
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, size, err
	}
	return b.Bytes(), size, nil
}

func TestPinClient(t *testing.T) {
	root, files := testRoot(t)
	s, addr := startServer(t, Config{Root: root})
	for _, name := range []string{"ipxe.efi", "undionly.kpxe", "empty", "exact-block", "boot/grub/x86_64-efi/grub.cfg", "/boot/grub/x86_64-efi/grub.cfg", "boot/loader"} {
		t.Run(name, func(t *testing.T) {
			want := files[strings.TrimPrefix(name, "/")]
			if name == "boot/loader" {
				want = files["ipxe.efi"] // a link that stays inside the root
			}
			got, size, err := get(t, addr, name, 1428)
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Errorf("got %d bytes with another sha256 than the %d-byte file", len(got), len(want))
			}
			// pin/tftp leaves tsize 0 out of its OACK (it takes 0 for
			// "not known"), so an empty file has none.
			if size != int64(len(want)) && !(len(want) == 0 && size == -1) {
				t.Errorf("tsize %d, want %d", size, len(want))
			}
		})
	}
	// The server counts a transfer when the client's last ACK arrives,
	// just after the client has its file.
	waitStats(t, s, "7 transfers, none failed", func(st Stats) bool { return st.Transfers == 7 && st.Failed == 0 && st.Bytes > 1<<20 })
}

// rrq sends a raw read request and returns the server's first answer as
// "DATA n", "OACK ..." or "ERROR code: message".
func rrq(t testing.TB, addr string, name, mode string, opts ...string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := []byte{0, 1}
	pkt = append(pkt, name...)
	pkt = append(pkt, 0)
	pkt = append(pkt, mode...)
	pkt = append(pkt, 0)
	for _, o := range opts {
		pkt = append(pkt, o...)
		pkt = append(pkt, 0)
	}
	// The answer comes from another port (the transfer's TID), so read
	// from an unconnected socket on the same local port.
	local := c.LocalAddr().(*net.UDPAddr)
	c.Close()
	l, err := net.ListenUDP("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	if _, err := l.WriteToUDP(pkt, ua); err != nil {
		t.Fatal(err)
	}
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	n, from, err := l.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer to RRQ %q: %v", name, err)
	}
	b := buf[:n]
	switch binary.BigEndian.Uint16(b) {
	case 3:
		// Acknowledge nothing: the transfer times out on the server.
		return fmt.Sprintf("DATA %d", binary.BigEndian.Uint16(b[2:]))
	case 5:
		return fmt.Sprintf("ERROR %d: %s", binary.BigEndian.Uint16(b[2:]), strings.TrimRight(string(b[4:]), "\x00"))
	case 6:
		_, _ = l.WriteToUDP([]byte{0, 5, 0, 0, 0}, from) // abort
		return "OACK " + strings.ReplaceAll(strings.TrimRight(string(b[2:]), "\x00"), "\x00", " ")
	}
	return fmt.Sprintf("opcode %d", binary.BigEndian.Uint16(b))
}

// waitStats waits up to 5 s for the server's counters to satisfy ok.
func waitStats(t testing.TB, s *Server, want string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(s.Stats()) {
		if time.Now().After(deadline) {
			t.Errorf("stats %+v, want %s", s.Stats(), want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSizeProbe is what EDK2 does before a download: it asks for tsize
// and ends the transfer with error 8 (RFC 2347) after the OACK. That is not
// a failed transfer.
func TestSizeProbe(t *testing.T) {
	root, _ := testRoot(t)
	msgs := make(chan string, 16)
	s, addr := startServer(t, Config{Root: root, Log: slog.New(msgHandler(msgs))})
	before := s.Stats()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ua, _ := net.ResolveUDPAddr("udp", addr)
	if _, err := c.WriteToUDP([]byte("\x00\x01undionly.kpxe\x00octet\x00tsize\x000\x00"), ua); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDP(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("\x00\x06tsize\x0070000\x00")) {
		t.Fatalf("OACK %q, %v", buf[:n], err)
	}
	if _, err := c.WriteToUDP([]byte("\x00\x05\x00\x08tsize only\x00"), from); err != nil {
		t.Fatal(err)
	}
	for msg := ""; msg != "tftp size probe"; {
		select {
		case msg = <-msgs:
		case <-time.After(5 * time.Second):
			t.Fatal("no size probe logged within 5 s")
		}
	}
	if after := s.Stats(); after.Failed != before.Failed || after.Transfers != before.Transfers {
		t.Errorf("a size probe changed the stats: %+v -> %+v", before, after)
	}
}

// msgHandler is a slog.Handler that sends each message to ch.
type msgHandler chan<- string

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h msgHandler) WithGroup(string) slog.Handler            { return h }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}

func TestRefused(t *testing.T) {
	root, _ := testRoot(t)
	s, addr := startServer(t, Config{Root: root})
	tests := []struct {
		name string
		want string
	}{
		{"../etc/passwd", "ERROR 2: access violation: \"..\" in name"},
		{"boot/../../etc/passwd", "ERROR 2: access violation: \"..\" in name"},
		{"/etc/passwd", "ERROR 2: access violation"}, // the root's etc, a link out of it
		{"//etc//passwd", "ERROR 2: access violation"},
		{"/etc/shadow", "ERROR 2: access violation"},
		{"passwd", "ERROR 2: access violation"},
		{"boot/up/passwd", "ERROR 2: access violation"},
		{"boot/outside", "ERROR 2: access violation"},
		{"missing.efi", "ERROR 1: file not found"},
		{"boot/grub/missing.cfg", "ERROR 1: file not found"},
		{"ipxe.efi/x", "ERROR 1: file not found"},
		{"boot", "ERROR 1: file not found: not a regular file"},
		{"boot/grub/top", "ERROR 1: file not found: not a regular file"}, // a link to a directory inside
		{"/", "ERROR 2: access violation: name names no file"},
		{strings.Repeat("a", 256), fmt.Sprintf("ERROR 2: access violation: name longer than %d bytes", maxNameLen)},
		{"bad\x01name", "ERROR 2: access violation: control character in name"},
		{"ipxe.efi", "DATA 1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			if got := rrq(t, addr, tt.name, "octet"); got != tt.want {
				t.Errorf("RRQ %q: %s, want %s", tt.name, got, tt.want)
			}
		})
	}
	t.Run("options", func(t *testing.T) {
		got := rrq(t, addr, "undionly.kpxe", "octet", "blksize", "1428", "tsize", "0")
		if got != "OACK blksize 1428 tsize 70000" && got != "OACK tsize 70000 blksize 1428" {
			t.Errorf("OACK: %s", got)
		}
	})
	t.Run("write", func(t *testing.T) {
		c, err := pintftp.NewClient(addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(time.Second)
		rf, err := c.Send("new.efi", "octet")
		if err == nil {
			_, err = rf.ReadFrom(strings.NewReader("payload"))
		}
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("write: %v, want a read-only error", err)
		}
		if _, err := os.Stat(filepath.Join(root, "new.efi")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused write left a file: %v", err)
		}
	})
	waitStats(t, s, "10 refused, 4 not found", func(st Stats) bool { return st.Refused >= 10 && st.NotFound >= 4 })
}

// TestDebianClients downloads with atftp (blksize 1428 and tsize
// negotiated) and tftp-hpa (plain RFC 1350), and tries to write with both.
func TestDebianClients(t *testing.T) {
	root, files := testRoot(t)
	_, addr := startServer(t, Config{Root: root})
	host, port, _ := net.SplitHostPort(addr)
	want := sha256.Sum256(files["ipxe.efi"])
	run := func(t *testing.T, name string, args ...string) (string, error) {
		t.Helper()
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("needs %s (Debian package %s)", name, map[string]string{"atftp": "atftp", "tftp": "tftp-hpa"}[name])
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), err
	}
	check := func(t *testing.T, path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(b) != want {
			t.Errorf("downloaded %d bytes with another sha256 than the %d-byte file", len(b), len(files["ipxe.efi"]))
		}
	}
	t.Run("atftp get", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "ipxe.efi")
		log, err := run(t, "atftp", "--trace", "--option", "blksize 1428", "--option", "tsize 0", "-g", "-r", "ipxe.efi", "-l", out, host, port)
		if err != nil {
			t.Fatalf("atftp: %v\n%s", err, log)
		}
		check(t, out)
		for _, w := range []string{
			fmt.Sprintf("received OACK <tsize: %d, blksize: 1428", len(files["ipxe.efi"])),
			"received 1. DATA <block: 1, size 1428>",
		} {
			if !strings.Contains(log, w) {
				t.Errorf("atftp --trace has no %q:\n%.1000s", w, log)
			}
		}
	})
	t.Run("atftp put", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "up")
		if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
			t.Fatal(err)
		}
		log, err := run(t, "atftp", "-p", "-l", src, "-r", "up", host, port)
		if err == nil && !strings.Contains(log, "read-only") {
			t.Errorf("atftp put succeeded:\n%s", log)
		}
		if !strings.Contains(log, "read-only") {
			t.Errorf("atftp put: no read-only error:\n%s", log)
		}
	})
	t.Run("tftp-hpa get", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "ipxe.efi")
		log, err := run(t, "tftp", "-m", "binary", host, port, "-c", "get", "ipxe.efi", out)
		if err != nil || strings.Contains(log, "Error") {
			t.Fatalf("tftp: %v\n%s", err, log)
		}
		check(t, out)
	})
	t.Run("tftp-hpa get traversal", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "passwd")
		log, _ := run(t, "tftp", "-m", "binary", host, port, "-c", "get", "../etc/passwd", out)
		if !strings.Contains(log, "Error code 2: access violation") {
			t.Errorf("tftp ../etc/passwd: %s", log)
		}
		if b, _ := os.ReadFile(out); len(b) > 0 {
			t.Errorf("received %d bytes of ../etc/passwd", len(b))
		}
	})
	t.Run("tftp-hpa put", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "up")
		if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
			t.Fatal(err)
		}
		log, _ := run(t, "tftp", "-m", "binary", host, port, "-c", "put", src, "up")
		if !strings.Contains(log, "read-only") {
			t.Errorf("tftp put: %s", log)
		}
		if _, err := os.Stat(filepath.Join(root, "up")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused write left a file: %v", err)
		}
	})
}

func TestPerHostFiles(t *testing.T) {
	root, files := testRoot(t)
	cfg := testConfig(t)
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): web10(t)}}
	s, addr := startServer(t, Config{Root: root, Policy: pol, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
	mac := inventory.HexHyp(hostMAC)
	tests := []struct {
		name   string
		golden string // the body, else the error
		err    string
	}{
		{name: "grub.cfg-01-" + mac, golden: "grub.cfg-web10"},
		{name: "/boot/grub/x86_64-efi/grub.cfg-01-" + hostMAC.String(), golden: "grub.cfg-web10"},
		{name: "boot/grub/i386-pc/grub.cfg-01-" + strings.ToUpper(mac), golden: "grub.cfg-web10"},
		{name: "pxelinux.cfg/01-" + mac, golden: "pxelinux.cfg-web10"},
		{name: "/pxelinux.cfg/01-" + mac, golden: "pxelinux.cfg-web10"},
		{name: "grub.cfg-01-" + inventory.HexHyp(otherMAC), err: "file not found"},
		{name: "pxelinux.cfg/01-" + hostMAC.String(), err: "file not found"}, // PXELINUX writes hyphens only
		{name: "01-" + mac, err: "file not found"},
		{name: "grub.cfg-01-02-04-06-08-72", err: "file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, size, err := get(t, addr, tt.name, 0)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want error %q", body, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(body)) {
				t.Errorf("tsize %d for %d bytes", size, len(body))
			}
			checkGolden(t, tt.golden, body)
		})
	}
	t.Run("a file in the root wins", func(t *testing.T) {
		name := "pxelinux.cfg/01-" + inventory.HexHyp(otherMAC)
		body, _, err := get(t, addr, name, 0)
		if err != nil || !bytes.Equal(body, files[name]) {
			t.Errorf("got %q, %v; want the root's %q", body, err, files[name])
		}
	})
	waitStats(t, s, "5 generated", func(st Stats) bool { return st.Generated == 5 })
	// Each per-host file rested on a timed decision of the policy.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if n := decisions(t, reg); n < 5 {
		t.Errorf("vmprov_decision_duration_seconds{proto=\"tftp\"} counts %d decisions, want at least 5", n)
	}

	t.Run("unknown requester", func(t *testing.T) {
		_, addr := startServer(t, Config{Root: root, Policy: &addrPolicy{}, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
		if _, _, err := get(t, addr, "grub.cfg-01-"+mac, 0); err == nil || !strings.Contains(err.Error(), "file not found") {
			t.Errorf("unknown requester: %v, want file not found", err)
		}
	})
	t.Run("dns failure", func(t *testing.T) {
		s, addr := startServer(t, Config{Root: root, Policy: &addrPolicy{err: errors.New("dns: i/o timeout")}, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
		if _, _, err := get(t, addr, "grub.cfg-01-"+mac, 0); err == nil || !strings.Contains(err.Error(), "try again") {
			t.Errorf("DNS down: %v, want a try-again error", err)
		}
		if st := s.Stats(); st.Errors != 1 {
			t.Errorf("stats %+v, want 1 error", st)
		}
	})
	t.Run("no intent", func(t *testing.T) {
		d := web10(t)
		d.Host.Intent = nil // templates need a distribution
		_, addr := startServer(t, Config{Root: root, Policy: &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d}}, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
		if _, _, err := get(t, addr, "grub.cfg-01-"+mac, 0); err == nil || !strings.Contains(err.Error(), "file not found") {
			t.Errorf("host without distribution: %v, want file not found", err)
		}
	})
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name+".golden"), got)
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"ipxe.efi", "ipxe.efi", nil},
		{"/ipxe.efi", "ipxe.efi", nil},
		{"/boot/grub//x86_64-efi/./grub.cfg", "boot/grub/x86_64-efi/grub.cfg", nil},
		{"pxelinux.cfg/01-02-04-06-08-72-0a", "pxelinux.cfg/01-02-04-06-08-72-0a", nil},
		{"boot\\x64\\wdsnbp.com", "boot\\x64\\wdsnbp.com", nil},
		{"a..b", "a..b", nil},
		{"...", "...", nil},
		{"", "", errNameEmpty},
		{"/", "", errNameNoFile},
		{"./.", "", errNameNoFile},
		{"..", "", errNameParent},
		{"../etc/passwd", "", errNameParent},
		{"a/../b", "", errNameParent},
		{"a/..", "", errNameParent},
		{"a\x00b", "", errNameControl},
		{"a\nb", "", errNameControl},
		{"a\x7fb", "", errNameControl},
		{"caf\xc3\xa9", "", errNameByte},
		{strings.Repeat("x", 255), strings.Repeat("x", 255), nil},
		{strings.Repeat("x", 256), "", errNameTooLong},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.in), func(t *testing.T) {
			got, err := CleanName(tt.in)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("CleanName(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestPerHostName(t *testing.T) {
	tests := []struct {
		in   string
		kind File
		mac  string
	}{
		{"grub.cfg-01-02-04-06-08-72-0a", GrubConfig, "02:04:06:08:72:0a"},
		{"boot/grub/x86_64-efi/grub.cfg-01-02:04:06:08:72:0a", GrubConfig, "02:04:06:08:72:0a"},
		{"grub.cfg-01-02-04-06-08-72-0A", GrubConfig, "02:04:06:08:72:0a"},
		{"pxelinux.cfg/01-02-04-06-08-72-0a", PXELinuxConfig, "02:04:06:08:72:0a"},
		{"boot/pxelinux.cfg/01-00-25-90-96-c4-9a", PXELinuxConfig, "00:25:90:96:c4:9a"},
		{"pxelinux.cfg/01-02:04:06:08:72:0a", 0, ""},
		{"pxelinux.cfg/C000020A", 0, ""},
		{"pxelinux.cfg/default", 0, ""},
		{"01-02-04-06-08-72-0a", 0, ""},
		{"grub.cfg-01-02-04-06-08-72", 0, ""},
		{"grub.cfg-01-02-04-06-08-72-0a-", 0, ""},
		{"grub.cfg-01-zz-04-06-08-72-0a", 0, ""},
		{"grub.cfg-02-04-06-08-72-0a-ff", 0, ""},
		{"grub.cfg", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			kind, mac, ok := perHostName(tt.in)
			if kind != tt.kind || ok != (tt.kind != 0) || (ok && mac.String() != tt.mac) {
				t.Errorf("perHostName(%q) = %v, %v, %v; want %v, %s", tt.in, kind, mac, ok, tt.kind, tt.mac)
			}
		})
	}
}

// FuzzCleanName checks the confinement rules on any name: a cleaned name
// is relative, has no empty, "." or ".." element, no control or non-ASCII
// byte, fits 255 bytes, and cleans to itself.
func FuzzCleanName(f *testing.F) {
	fh, err := os.Open(filepath.Join("testdata", "names.txt"))
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	fh.Close()
	f.Add("a\x00b")
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := CleanName(name)
		if err != nil {
			if clean != "" {
				t.Fatalf("CleanName(%q) = %q with error %v", name, clean, err)
			}
			return
		}
		if clean == "" || len(clean) > maxNameLen || strings.HasPrefix(clean, "/") {
			t.Fatalf("CleanName(%q) = %q", name, clean)
		}
		for _, el := range strings.Split(clean, "/") {
			if el == "" || el == "." || el == ".." {
				t.Fatalf("CleanName(%q) = %q has element %q", name, clean, el)
			}
		}
		for i := 0; i < len(clean); i++ {
			if clean[i] < 0x20 || clean[i] >= 0x7f {
				t.Fatalf("CleanName(%q) = %q has byte %#x", name, clean, clean[i])
			}
		}
		if again, err := CleanName(clean); again != clean || err != nil {
			t.Fatalf("CleanName(%q) = %q, but CleanName(%q) = %q, %v", name, clean, clean, again, err)
		}
		perHostName(clean) // must not panic
	})
}

// BenchmarkTFTP measures 100 concurrent downloads of a 1 MiB file over
// loopback with pin/tftp's client (blksize 1428, as PXE clients on Ethernet
// ask). make bench runs tftpd-hpa on the same file beside it.
func BenchmarkTFTP(b *testing.B) {
	dir := b.TempDir()
	file := bytes.Repeat([]byte("vmprov-tftp-bench"), (1<<20)/17+1)[:1<<20]
	if err := os.WriteFile(filepath.Join(dir, "bench.bin"), file, 0o644); err != nil {
		b.Fatal(err)
	}
	const clients = 100
	// All clients are 127.0.0.1: let each have a transfer.
	_, addr := startServer(b, Config{Root: dir, MaxTransfersPerClient: clients})
	b.SetBytes(clients << 20)
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				body, _, err := get(b, addr, "bench.bin", 1428)
				if err == nil && len(body) != len(file) {
					err = fmt.Errorf("got %d bytes", len(body))
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty root")
	}
	if _, err := New(Config{Root: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("New accepted a missing root")
	}
}

// TestServe runs Serve on an address and stops it with its context.
func TestServe(t *testing.T) {
	root, files := testRoot(t)
	s, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A free port: taken and given back; nothing else binds on 127.0.0.2.
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, addr) }()
	var body []byte
	for range 50 { // until the server is listening
		if body, _, err = get(t, addr, "undionly.kpxe", 0); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !bytes.Equal(body, files["undionly.kpxe"]) {
		t.Fatalf("download: %d bytes, %v", len(body), err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30 s of its context ending")
	}
	if err := s.Serve(t.Context(), "not-an-address"); err == nil {
		t.Error("Serve accepted a bad address")
	}
}

func TestMetrics(t *testing.T) {
	root, _ := testRoot(t)
	s, addr := startServer(t, Config{Root: root})
	if _, _, err := get(t, addr, "undionly.kpxe", 0); err != nil {
		t.Fatal(err)
	}
	_, _, _ = get(t, addr, "missing", 0)
	_, _, _ = get(t, addr, "../x", 0)
	waitStats(t, s, "1 transfer", func(st Stats) bool { return st.Transfers == 1 })
	// What /metrics shows of them; no policy, so no decisions.
	want := `
# HELP vmprov_tftp_bytes_total Bytes of completed TFTP transfers.
# TYPE vmprov_tftp_bytes_total counter
vmprov_tftp_bytes_total 70000
# HELP vmprov_tftp_errors_total TFTP requests not served because DNS or rendering failed.
# TYPE vmprov_tftp_errors_total counter
vmprov_tftp_errors_total 0
# HELP vmprov_tftp_failed_total TFTP transfers that did not complete.
# TYPE vmprov_tftp_failed_total counter
vmprov_tftp_failed_total 0
# HELP vmprov_tftp_generated_total Per-host TFTP files rendered and sent.
# TYPE vmprov_tftp_generated_total counter
vmprov_tftp_generated_total 0
# HELP vmprov_tftp_not_found_total TFTP read requests for files not found.
# TYPE vmprov_tftp_not_found_total counter
vmprov_tftp_not_found_total 1
# HELP vmprov_tftp_refused_total TFTP write requests and names outside the root.
# TYPE vmprov_tftp_refused_total counter
vmprov_tftp_refused_total 1
# HELP vmprov_tftp_transfers_total TFTP files sent completely.
# TYPE vmprov_tftp_transfers_total counter
vmprov_tftp_transfers_total 1
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"vmprov_tftp_bytes_total", "vmprov_tftp_errors_total", "vmprov_tftp_failed_total", "vmprov_tftp_generated_total",
		"vmprov_tftp_not_found_total", "vmprov_tftp_refused_total", "vmprov_tftp_transfers_total"); err != nil {
		t.Error(err)
	}
	if n := decisions(t, reg); n != 0 {
		t.Errorf("%d decisions without a policy", n)
	}
}

// decisions returns the count of vmprov_decision_duration_seconds in g.
func decisions(t testing.TB, g prometheus.Gatherer) uint64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == netboot.DecisionDurationName {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// TestIPv6 downloads over IPv6 loopback: the transfer answers from the
// address the request was sent to, with blksize capped by the MTU.
func TestIPv6(t *testing.T) {
	root, files := testRoot(t)
	s, err := New(Config{Root: root, Timeout: time.Second, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatalf("no IPv6 loopback: %v", err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(ctx, conn) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	}()
	body, size, err := get(t, conn.LocalAddr().String(), "undionly.kpxe", 1428)
	if err != nil || !bytes.Equal(body, files["undionly.kpxe"]) || size != int64(len(body)) {
		t.Errorf("download over IPv6: %d bytes (tsize %d), %v; want the %d-byte file", len(body), size, err, len(files["undionly.kpxe"]))
	}
}

// TestLoaderDirs: a plain name the root lacks comes from the loader
// folders (serve.loader_dirs); the root's file and the generated per-host
// files win over a loader folder's, and names with a folder are looked up
// in the root only.
func TestLoaderDirs(t *testing.T) {
	root, files := testRoot(t)
	loaders := t.TempDir()
	mac := inventory.HexHyp(hostMAC)
	inLoaders := map[string][]byte{
		"snponly.efi":        []byte("snponly from a loader folder"),
		"ipxe.efi":           []byte("not the root's ipxe.efi"),
		"grub.cfg-01-" + mac: []byte("not web10's generated grub.cfg"),
		"grub.cfg-01-" + inventory.HexHyp(otherMAC): []byte("another host's grub.cfg"),
	}
	for name, b := range inLoaders {
		if err := os.WriteFile(filepath.Join(loaders, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t)
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): web10(t)}}
	s, addr := startServer(t, Config{Root: root, LoaderDirs: netboot.LoaderDirs{loaders}, Policy: pol,
		Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
	for _, tt := range []struct {
		name string
		want []byte // nil: file not found
	}{
		{"snponly.efi", inLoaders["snponly.efi"]},
		{"/snponly.efi", inLoaders["snponly.efi"]},
		{"ipxe.efi", files["ipxe.efi"]},
		{"boot/snponly.efi", nil},
		{"grub.cfg-01-" + inventory.HexHyp(otherMAC), nil},
	} {
		body, _, err := get(t, addr, tt.name, 0)
		switch {
		case tt.want == nil && (err == nil || !strings.Contains(err.Error(), "file not found")):
			t.Errorf("%s: got %d bytes, %v; want file not found", tt.name, len(body), err)
		case tt.want != nil && (err != nil || !bytes.Equal(body, tt.want)):
			t.Errorf("%s: got %.40q, %v; want %.40q", tt.name, body, err, tt.want)
		}
	}
	body, _, err := get(t, addr, "grub.cfg-01-"+mac, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "grub.cfg-web10", body)
	if b, err := s.Read(t.Context(), "snponly.efi", netip.MustParseAddr("127.0.0.1")); err != nil || !bytes.Equal(b, inLoaders["snponly.efi"]) {
		t.Errorf("Read(snponly.efi) = %q, %v; want the loader folder's", b, err)
	}
}
