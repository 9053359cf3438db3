package httpboot_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

// TestRealClients serves HTTP in a network namespace whose loopback holds
// the boot service's and the clients' addresses, and asks from each client
// address over real TCP, so the policy sees the source address the kernel
// reports, through real BIND.
func TestRealClients(t *testing.T) {
	ns := lab.NamespaceForTest(t)
	e := newEnv(t, backends()["bind"](t), nil)
	ctx := t.Context()
	for _, a := range []string{"192.0.2.1/32", centosIP + "/32", rockyIP + "/32", strayIP + "/32", "2001:db8:135::1/128", v6onlyIP + "/128"} {
		if _, err := ns.IP(ctx, "addr", "add", a, "dev", "lo"); err != nil {
			t.Fatal(err)
		}
	}
	var l net.Listener
	if err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", "[::]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(sctx, l, 5*time.Second) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	// get fetches path from the service's address of from's family, with
	// from as the source address.
	get := func(t *testing.T, from, path string, hdr map[string]string) (int, []byte, http.Header) {
		t.Helper()
		src := netip.MustParseAddr(from)
		server := "192.0.2.1"
		if src.Is6() {
			server = "[2001:db8:135::1]"
		}
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 5 * time.Second}
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s:%d%s", server, port, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b, resp.Header
	}

	tests := []struct {
		name, from, path string
		status           int
		golden           string
	}{
		{"seed 000 pxedust over IPv4", centosIP, "/pxedust", 200, "pxedust-test-centos7"},
		{"pxedust over IPv6", v6onlyIP, "/pxedust", 200, "pxedust-v6only"},
		{"pxedust for a stranger", strayIP, "/pxedust", 404, ""},
		{"kickstart for its host", centosIP, "/bootstrap/install/core/x86_64/ks.cfg", 200, "ks-test-centos7"},
		{"kickstart for another host", rockyIP, "/bootstrap/install/core/x86_64/ks.cfg", 404, ""},
		{"kickstart for a stranger", strayIP, "/bootstrap/install/core/x86_64/ks.cfg", 404, ""},
		{"user-data over IPv6", v6onlyIP, "/bootstrap/install/noble/x86_64/user-data", 200, "user-data-v6only"},
		{"install dispatch", centosIP, "/bootstrap/install/default.ipxe", 200, "install-default-test-centos7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := get(t, tt.from, tt.path, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body:\n%s", status, tt.status, body)
			}
			if tt.golden != "" {
				checkGolden(t, tt.golden, body)
			} else if string(body) != "not found\n" {
				t.Errorf("body %q", body)
			}
		})
	}
	t.Run("seed 000 exact", func(t *testing.T) {
		if _, body, _ := get(t, centosIP, "/pxedust", nil); string(body) != seedPXEDust {
			t.Errorf("pxedust %q, want %q", body, seedPXEDust)
		}
	})
	t.Run("range over TCP", func(t *testing.T) {
		status, body, h := get(t, strayIP, "/assets/big.bin", map[string]string{"Range": "bytes=1000000-1999999"})
		if status != 206 || string(body) != string(e.big[1000000:2000000]) || h.Get("Content-Range") != fmt.Sprintf("bytes 1000000-1999999/%d", len(e.big)) {
			t.Errorf("status %d, %d bytes, Content-Range %q", status, len(body), h.Get("Content-Range"))
		}
	})
	t.Run("whole asset over TCP", func(t *testing.T) {
		status, body, _ := get(t, v6onlyIP, "/assets/big.bin", nil)
		if status != 200 || string(body) != string(e.big) {
			t.Errorf("status %d, %d bytes of %d", status, len(body), len(e.big))
		}
	})
}
