package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestServeHTTP runs `vmprov serve` against real BIND, asks it over HTTP
// and stops it as SIGTERM would.
func TestServeHTTP(t *testing.T) {
	cfg := labConfig(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tftpAddr := u.LocalAddr().String()
	u.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--config", cfg, "serve", "--no-dhcp", "--tftp", tftpAddr, "--http", addr}, strings.NewReader(""), io.Discard, &stderr)
	}()
	base := "http://" + addr
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ready := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if code, _ := get("/healthz"); code == http.StatusOK {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("serve did not answer /healthz: %s", stderr.String())
	}
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
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after shutdown: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
