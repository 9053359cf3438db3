package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/vmprov/vmprov/config"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveForTest runs `vmprov --config cfg serve --no-dhcp --http ADDR
// args...` in the test process until t ends, waits for /healthz and
// returns a GET function for its HTTP service and the log. When t ends it
// stops serve as SIGTERM would and checks that it exited 0.
func serveForTest(t *testing.T, cfg string, args ...string) (get func(path string) (int, string), log *syncBuffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	log = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		argv := append([]string{"--config", cfg, "serve", "--no-dhcp", "--http", addr}, args...)
		done <- Run(ctx, argv, strings.NewReader(""), io.Discard, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d after shutdown: %s", code, log.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	get = func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d: %s", code, log.String())
		default:
		}
		if code, _ := get("/healthz"); code == http.StatusOK {
			return get, log
		}
	}
	t.Fatalf("serve did not answer /healthz: %s", log.String())
	return nil, nil
}

// TestServeHTTP runs `vmprov serve` against real BIND, asks it over HTTP
// and stops it as SIGTERM would.
func TestServeHTTP(t *testing.T) {
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tftpAddr := u.LocalAddr().String()
	u.Close()
	get, _ := serveForTest(t, labConfig(t), "--tftp", tftpAddr)
	if code, body := get("/boot.ipxe"); code != http.StatusOK || !strings.HasPrefix(body, "#!ipxe") || !strings.Contains(body, "http://192.0.2.1/pxedust") {
		t.Errorf("/boot.ipxe = %d\n%s", code, body)
	}
	// 127.0.0.1 is on no VLAN and in no zone the DNS server serves (BIND
	// refuses the PTR query): an unknown client, nothing revealed.
	if code, body := get("/pxedust"); code != http.StatusNotFound || strings.Contains(body, "example.com") {
		t.Errorf("/pxedust for an unknown client = %d %q", code, body)
	}
	// /metrics carries the HTTP routes and every server's counters: the
	// policy's DNS cache (the /pxedust above queried DNS) and TFTP.
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Errorf("/metrics = %d\n%s", code, body)
	}
	for _, want := range []string{"pxedust", "vmprov_dns_queries_total", "vmprov_tftp_transfers_total 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestServeTFTPOff: serve.tftp: off runs no TFTP server.
func TestServeTFTPOff(t *testing.T) {
	cfg := labConfig(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, "serve: {tftp: off}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	get, log := serveForTest(t, cfg)
	if _, body := get("/metrics"); strings.Contains(body, "vmprov_tftp_") {
		t.Errorf("/metrics has TFTP counters with serve.tftp: off:\n%s", body)
	}
	if !strings.Contains(log.String(), "tftp=off") {
		t.Errorf("serve's start line does not say tftp=off:\n%s", log.String())
	}
}

// TestServerDUID: serve.dhcp6.server_duid becomes the DHCPv6 server's DUID.
func TestServerDUID(t *testing.T) {
	c, err := config.Parse([]byte("dns: {zone: example.com.}\nserve: {dhcp6: {server_duid: '00:03:00:01:02:00:5e:00:53:01'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := serverDUID(c)
	if err != nil {
		t.Fatal(err)
	}
	if ll, ok := d.(*dhcpv6.DUIDLL); !ok || ll.LinkLayerAddr.String() != "02:00:5e:00:53:01" {
		t.Errorf("serverDUID = %#v, want DUID-LL 02:00:5e:00:53:01", d)
	}
	c.Serve.DHCPv6.ServerDUID = ""
	if d, err := serverDUID(c); d != nil || err != nil {
		t.Errorf("empty server_duid: serverDUID = %v, %v; want nil, nil (a DUID-LL from the interface)", d, err)
	}
	c.Serve.DHCPv6.ServerDUID = "00:03:00" // DUID-LL type without a hardware type
	if _, err := serverDUID(c); err == nil || !strings.Contains(err.Error(), "serve.dhcp6.server_duid") {
		t.Errorf("truncated DUID-LL: err = %v, want one naming serve.dhcp6.server_duid", err)
	}
}
