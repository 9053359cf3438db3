package httpboot_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// BenchmarkPxedust measures /pxedust for a client whose decision is cached
// (the boot-storm case): through the handler, and over loopback TCP with
// the client named by X-Forwarded-For from a trusted 127.0.0.1 (the source
// address of a loopback connection has no PTR in the test zones).
func BenchmarkPxedust(b *testing.B) {
	for bname, mk := range backends() {
		b.Run(bname, func(b *testing.B) {
			dnsb := mk(b)
			cfg, err := config.Parse([]byte(testConfigYAML))
			if err != nil {
				b.Fatal(err)
			}
			load(b, dnsb, records...)
			srv := httpboot.New(httpboot.Config{
				Policy:         netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), dnsb),
				Booter:         serveconfig.Booter(cfg),
				Dir:            b.TempDir(),
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			})
			b.Run("handler", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r := httptest.NewRequest("GET", "/pxedust", nil)
						r.RemoteAddr = centosIP + ":40000"
						w := httptest.NewRecorder()
						srv.ServeHTTP(w, r)
						if w.Code != 200 {
							b.Fatalf("status %d", w.Code)
						}
					}
				})
			})
			b.Run("tcp", func(b *testing.B) {
				ts := httptest.NewServer(srv)
				defer ts.Close()
				tr := &http.Transport{MaxIdleConnsPerHost: 64}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest("GET", ts.URL+"/pxedust", nil)
						req.Header.Set("X-Forwarded-For", centosIP)
						resp, err := c.Do(req)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Fatalf("status %d", resp.StatusCode)
						}
					}
				})
			})
		})
	}
}

// BenchmarkAssets downloads a 64 MiB installer image over loopback TCP,
// whole and as 1 MiB ranges.
func BenchmarkAssets(b *testing.B) {
	dir := b.TempDir()
	const size = 64 << 20
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "assets", "initrd.img"), bytes.Repeat([]byte("vmprov-asset-"), size/13+1)[:size], 0o644); err != nil {
		b.Fatal(err)
	}
	srv := httpboot.New(httpboot.Config{Policy: netboot.NewDNSPolicy(serveconfig.Policy(mustConfig(b), nil), backends()["fake"](b)), Dir: dir,
		Booter: netboot.Booter{URL: "http://boot.example.com", Site: "example"}})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	fetch := func(b *testing.B, rng string, want int64) {
		req, _ := http.NewRequest("GET", ts.URL+"/assets/initrd.img", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != want {
			b.Fatalf("%d bytes, %v; want %d", n, err, want)
		}
	}
	b.Run("whole", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			fetch(b, "", size)
		}
	})
	b.Run("range-1MiB", func(b *testing.B) {
		b.SetBytes(1 << 20)
		i := 0
		for b.Loop() {
			off := (i % 63) << 20
			fetch(b, fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1), 1<<20)
			i++
		}
	})
}

func mustConfig(tb testing.TB) *config.Config {
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
