package httpboot_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// requestLogs is a slog.Handler that sends each request's log line to a
// channel.
type requestLogs chan<- slog.Record

func (h requestLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h requestLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h requestLogs) WithGroup(string) slog.Handler            { return h }
func (h requestLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "http request" {
		h <- r
	}
	return nil
}

// attr returns the value of key in r.
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// limitServer serves cfg's Dir (given, with the server's logs, to cfg) on
// a 127.0.0.1 port until the test ends; assets/huge.bin is a sparse 1 GiB
// file, assets/big.bin 8 MiB of data.
func limitServer(t *testing.T, cfg httpboot.Config) (addr string, big []byte, logs <-chan slog.Record, reg *prometheus.Registry) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "assets", "huge.bin"))
	if err == nil {
		err = f.Truncate(1 << 30)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	big = []byte(strings.Repeat("vmprov slow reader ", (8<<20)/19+1))[:8<<20]
	if err := os.WriteFile(filepath.Join(dir, "assets", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan slog.Record, 100)
	cfg.Dir = dir
	cfg.Log = slog.New(requestLogs(ch))
	cfg.Policy = netboot.NewDNSPolicy(serveconfig.Policy(c, nil), dnstest.NewFake("example.com."))
	cfg.Booter = serveconfig.Booter(c)
	srv := httpboot.New(cfg)
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(srv.Collector())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l, time.Second) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), big, ch, reg
}

// dial connects with a receive buffer of rcvbuf bytes, so that little of a
// response waits in the client's kernel.
func dial(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStalledReader: a client that asks for 1 GiB and reads nothing is cut
// off once the response has made no progress for StallTimeout; the
// request is logged with the bytes sent, and the connection ends.
func TestStalledReader(t *testing.T) {
	addr, _, logs, _ := limitServer(t, httpboot.Config{StallTimeout: 300 * time.Millisecond})
	c := dial(t, addr, 4096)
	if _, err := io.WriteString(c, "GET /assets/huge.bin HTTP/1.1\r\nHost: boot\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var rec slog.Record
	select {
	case rec = <-logs:
	case <-time.After(60 * time.Second):
		t.Fatal("the server still sends to a client that has read nothing for 60 s")
	}
	if sent := attr(rec, "bytes").Int64(); sent >= 1<<30 {
		t.Errorf("the request log says %d bytes went to a client that read nothing, want fewer than 1 GiB", sent)
	}
	// What the kernel buffered arrives, then the connection ends.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %d bytes", n)
	}
	if n >= 1<<30 {
		t.Errorf("received %d bytes, want fewer than 1 GiB", n)
	}
}

// TestStalledBody: a request whose declared body stops arriving holds its
// connection no longer than StallTimeout (net/http reads what is left of a
// body after the handler).
func TestStalledBody(t *testing.T) {
	addr, _, _, _ := limitServer(t, httpboot.Config{StallTimeout: 300 * time.Millisecond})
	c := dial(t, addr, 4096)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: boot\r\nContent-Length: 1000\r\n\r\nten bytes."); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection is still open 60 s after its request body stopped")
	}
}

// TestSlowReader: a client that reads 8 MiB in 64 KiB steps, slowly but
// steadily, gets the whole file. The file is larger than the kernel's
// buffers on both ends (at most 4 MiB and 64 KiB), so the server waits on
// the client for several StallTimeouts in all, and at times for longer
// than one at once: a blocked writer wakes only when a third of its send
// buffer has drained.
func TestSlowReader(t *testing.T) {
	addr, big, _, _ := limitServer(t, httpboot.Config{StallTimeout: 300 * time.Millisecond})
	c := dial(t, addr, 64<<10)
	if _, err := io.WriteString(c, "GET /assets/big.bin HTTP/1.1\r\nHost: boot\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	steps := 0
	for {
		m, err := io.ReadFull(resp.Body, buf)
		h.Write(buf[:m])
		n += int64(m)
		if err != nil {
			break
		}
		steps++
		time.Sleep(20 * time.Millisecond) // 128 steps: about 9 StallTimeouts in all
	}
	if n != int64(len(big)) || [32]byte(h.Sum(nil)) != sha256.Sum256(big) {
		t.Errorf("a slow reader got %d bytes (in %d steps) of the %d-byte file, or other bytes", n, steps, len(big))
	}
}

// TestConnectionLimit: with MaxConnections open, a further connection
// waits, unanswered, until one closes; the server counts that it was at
// its limit.
func TestConnectionLimit(t *testing.T) {
	addr, _, _, reg := limitServer(t, httpboot.Config{MaxConnections: 2})
	// get sends a request on c and returns the response's status line.
	get := func(c net.Conn, r *bufio.Reader) string {
		t.Helper()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: boot\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Status
	}
	var held []net.Conn
	for range 2 { // open and idle (keep-alive): each holds a slot
		c := dial(t, addr, 4096)
		if s := get(c, bufio.NewReader(c)); s != "200 OK" {
			t.Fatalf("GET /healthz: %s", s)
		}
		held = append(held, c)
	}
	third := dial(t, addr, 4096) // the kernel completes the handshake
	if _, err := io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: boot\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, reg, "vmprov_http_connections_limited_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("vmprov_http_connections_limited_total stayed 0 with 2 of 2 connections open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := metric(t, reg, "vmprov_http_connections_open"); v != 2 {
		t.Errorf("vmprov_http_connections_open = %v, want 2", v)
	}
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := third.Read(make([]byte, 1)); n > 0 || err == nil {
		t.Fatal("a third connection was answered while 2 of 2 were open")
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("the waiting connection got no answer after a slot was freed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the waiting connection got %s", resp.Status)
	}
}

// metric returns the value of the counter or gauge name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
