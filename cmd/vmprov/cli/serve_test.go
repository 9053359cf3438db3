package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
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
	// /metrics carries the HTTP routes, every server's metrics (the
	// policy's DNS cache: the /pxedust above queried DNS; TFTP), the
	// decision that /pxedust took, and the Go runtime and the process.
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d\n%s", code, body)
	}
	m := parseMetrics(t, body)
	for _, tt := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"vmprov_http_requests_total", []string{"route", "/pxedust", "code", "404"}, 1},
		{"vmprov_decision_duration_seconds", []string{"proto", "http"}, 1},
		{"vmprov_dns_queries_total", nil, 1},
		{"vmprov_tftp_transfers_total", nil, 0},
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	} {
		if v, ok := m.value(tt.name, tt.labels...); !ok || v < tt.min {
			t.Errorf("/metrics %s%v = %v (present %v), want at least %v:\n%s", tt.name, tt.labels, v, ok, tt.min, body)
		}
	}
}

// metrics is a /metrics body parsed by expfmt, keyed by family name.
type metrics map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, body string) metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the first series of family name with the
// labels given in pairs: a counter's or gauge's value, a histogram's
// count; false when there is none.
func (m metrics) value(name string, labels ...string) (float64, bool) {
	for _, s := range m[name].GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		switch {
		case !match:
		case s.Counter != nil:
			return s.GetCounter().GetValue(), true
		case s.Gauge != nil:
			return s.GetGauge().GetValue(), true
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
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
	_, body := get("/metrics")
	m := parseMetrics(t, body)
	for name := range m {
		if strings.HasPrefix(name, "vmprov_tftp_") {
			t.Errorf("/metrics has %s with serve.tftp: off:\n%s", name, body)
		}
	}
	if _, ok := m.value("vmprov_decision_duration_seconds", "proto", "tftp"); ok {
		t.Errorf("/metrics has TFTP decisions with serve.tftp: off:\n%s", body)
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

// TestBootServiceMetrics: each boot service has a registry of its own, so
// two of them in one process (vmprov explain beside serve, tests) do not
// collide, and nothing is registered globally.
func TestBootServiceMetrics(t *testing.T) {
	c, err := config.Parse([]byte("dns: {zone: example.com.}\nboot: {url: 'http://192.0.2.1'}\nserve: {tftp: off}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var regs []*prometheus.Registry
	for range 2 {
		b, err := newBootService(c, dnstest.NewFake("example.com."), slog.New(slog.DiscardHandler), serviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		regs = append(regs, b.metrics)
	}
	if regs[0] == regs[1] {
		t.Fatal("two boot services share a registry")
	}
	for _, name := range []string{"vmprov_dns_queries_total", "vmprov_dns_cache_entries", "go_goroutines", "process_resident_memory_bytes"} {
		if n, err := testutil.GatherAndCount(regs[1], name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1", name, n, err)
		}
	}
	if n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "vmprov_dns_queries_total"); err != nil || n != 0 {
		t.Errorf("the default registry has %d vmprov_dns_queries_total series (%v), want none", n, err)
	}
}

// TestServeLogsMissingLoaders: serve logs an error at start for each loader of
// serve.loaders and serve.secure_boot.loaders that TFTP finds neither in
// serve.dir/tftp nor in serve.loader_dirs, naming the file, its architectures and
// the fix; the loaders it finds are not logged.
func TestServeLogsMissingLoaders(t *testing.T) {
	dir, loaderDir := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(dir, "tftp", "undionly.kpxe"), filepath.Join(loaderDir, "snponly.efi"), filepath.Join(dir, "tftp", "arm", "own.efi")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("loader"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := labConfig(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("serve: {dir: %s, loader_dirs: [%s], loaders: {0: undionly.kpxe, 6: ipxe-i386.efi, 7: snponly.efi, 10: arm/own.efi, 11: bootnetaa64.efi, 12: arm/snponly.efi}}\n", dir, loaderDir)
	if err := os.WriteFile(cfg, append(b, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tftpAddr := u.LocalAddr().String()
	u.Close()
	_, log := serveForTest(t, cfg, "--tftp", tftpAddr)
	var errs []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "loader file found neither") {
			errs = append(errs, l)
		}
	}
	want := []struct{ file, arch, config, fix string }{
		{"ipxe-i386.efi", "arch=6", "config=serve.loaders[6]", "no Debian package ships it: put ipxe-i386.efi in " + filepath.Join(dir, "tftp")},
		{"bootnetaa64.efi", "arch=11", "config=serve.loaders[11],serve.secure_boot.loaders[11]", "install the Debian package debian-installer-12-netboot-arm64, or put bootnetaa64.efi in"},
		{"arm/snponly.efi", "arch=12", "config=serve.loaders[12]", "put arm/snponly.efi in"}, // a folder: not looked for in serve.loader_dirs
		{"bootnetx64.efi", "arch=7,9", "config=serve.secure_boot.loaders[7],serve.secure_boot.loaders[9]", "install the Debian package debian-installer-12-netboot-amd64"},
	}
	if len(errs) != len(want) {
		t.Errorf("%d missing-loader errors, want %d:\n%s", len(errs), len(want), log.String())
	}
	for i, w := range want {
		if i >= len(errs) {
			break
		}
		for _, s := range []string{"file=" + w.file, w.arch, w.config, w.fix} {
			if !strings.Contains(errs[i], s) {
				t.Errorf("error %d lacks %q:\n%s", i, s, errs[i])
			}
		}
	}
	for _, found := range []string{"undionly.kpxe", "file=snponly.efi", "own.efi"} {
		if strings.Contains(strings.Join(errs, "\n"), found) {
			t.Errorf("found loader %s logged missing:\n%s", found, strings.Join(errs, "\n"))
		}
	}
}
