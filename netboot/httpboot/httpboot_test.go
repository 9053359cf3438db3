package httpboot_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/templates"
	"github.com/vmprov/vmprov/test/lab"
)

// golden compares got with testdata/name.golden, rewriting it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// backend is DNS as the boot service sees it (dnsupdate seam).
type backend interface {
	netboot.Resolver
	dnsupdate.Updater
}

// backends are the DNS servers every HTTP test runs against: a real BIND
// (needs root and named) and dnstest.Fake.
func backends() map[string]func(t testing.TB) backend {
	return map[string]func(t testing.TB) backend{
		"bind": func(t testing.TB) backend {
			b := lab.BINDForTest(t)
			name, alg, secret := b.TSIG()
			c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"fake": func(testing.TB) backend {
			return dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
		},
	}
}

// load adds records (zone file syntax), one UPDATE per lab zone.
func load(t testing.TB, u dnsupdate.Updater, records ...string) {
	t.Helper()
	zones := append([]string{lab.TestZone}, lab.TestReverseZones()...)
	byZone := map[string][]dns.RR{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		z := ""
		for _, c := range zones {
			if dns.IsSubDomain(c, rr.Header().Name) && len(c) > len(z) {
				z = c
			}
		}
		byZone[z] = append(byZone[z], rr)
	}
	for _, z := range zones {
		if rrs := byZone[z]; len(rrs) > 0 {
			if err := u.Apply(context.Background(), dnsupdate.ChangeSet{Zone: z, Add: rrs}); err != nil {
				t.Fatalf("load %s: %v", z, err)
			}
		}
	}
}

// Client addresses of the tests (VLAN 135 is 192.0.2.0/24 and
// 2001:db8:135::/64 here; seed 000's 192.168.35.0/24 cannot be a source
// address on this machine).
const (
	centosIP = "192.0.2.172"                       // test-centos7: filename=test.ipxe distribution=core
	v6onlyIP = "2001:db8:135::284a:6aff:fe74:5506" // v6only: distribution=noble
	metalIP  = "192.0.2.50"                        // sm1: bare metal, bookworm, _mac CNAME
	rockyIP  = "192.0.2.20"                        // rocky: distribution=rocky9
	notxtIP  = "192.0.2.80"                        // notxt: no TXT
	liarIP   = "192.0.2.66"                        // PTR → liar, whose A is 192.0.2.67
	badIP    = "192.0.2.81"                        // bad: TXT key iPXE cannot set
	strayIP  = "192.0.2.99"                        // no records at all
)

var records = []string{
	"test-centos7.example.com. 300 A " + centosIP,
	`test-centos7.example.com. 300 TXT "filename=test.ipxe" "distribution=core"`,
	"172.2.0.192.in-addr.arpa. 300 PTR test-centos7.example.com.",
	"v6only.example.com. 300 AAAA " + v6onlyIP,
	`v6only.example.com. 300 TXT "distribution=noble"`,
	"6.0.5.5.4.7.e.f.f.f.a.6.a.4.8.2.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 PTR v6only.example.com.",
	"sm1.example.com. 300 A " + metalIP,
	`sm1.example.com. 300 TXT "filename=metal.ipxe" "distribution=bookworm" "puppet_server=puppet.example.com"`,
	"50.2.0.192.in-addr.arpa. 300 PTR sm1.example.com.",
	"00-25-90-96-c4-9a._mac.example.com. 300 CNAME sm1.example.com.",
	"rocky.example.com. 300 A " + rockyIP,
	`rocky.example.com. 300 TXT "distribution=rocky9"`,
	"20.2.0.192.in-addr.arpa. 300 PTR rocky.example.com.",
	"notxt.example.com. 300 A " + notxtIP,
	"80.2.0.192.in-addr.arpa. 300 PTR notxt.example.com.",
	"66.2.0.192.in-addr.arpa. 300 PTR liar.example.com.",
	"liar.example.com. 300 A 192.0.2.67",
	`liar.example.com. 300 TXT "distribution=core"`,
	"81.2.0.192.in-addr.arpa. 300 PTR bad.example.com.",
	"bad.example.com. 300 A " + badIP,
	`bad.example.com. 300 TXT "distribution=core" "ip=192.0.2.1"`,
}

const testConfigYAML = `
dns: {zone: example.com., server: "127.0.0.1:53"}
boot: {url: "http://boot.example.com", url_v6: "http://[2001:db8:135::1]", site: example}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64"}
  - {id: 136, ipv4: 198.51.100.0/24}
`

// seedTestIPXE is seed 000's site script test.ipxe.
const seedTestIPXE = `#!ipxe

set puppet_server puppet.example.com
set puppet_environment ipxe_test_master

chain --replace --autofree http://boot.example.com/bootstrap/install/default.ipxe
`

// seedPXEDust is seed 000's GET http://boot.example.com/pxedust, byte for byte.
const seedPXEDust = "#!ipxe\n\nset distribution core\nchain --replace --autofree http://boot.example.com/bootstrap/example/test.ipxe\n"

const perMACScript = "#!ipxe\necho a per-MAC script\nexit 1\n"

// secret is the content of a file beside the served folders that no
// request may reach.
const secret = "not for the network\n"

// serveDir builds serve.dir: seed 000's folders, binaries and assets, and
// traps (symbolic links out of assets/) next to a secret outside it.
func serveDir(t testing.TB) (dir string, big []byte) {
	t.Helper()
	top := t.TempDir()
	dir = filepath.Join(top, "serve")
	outside := filepath.Join(top, "outside")
	big = make([]byte, 3<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	files := map[string][]byte{
		"mac/02-04-06-08-72-ac/ipxe":   []byte(perMACScript),
		"bootstrap/example/test.ipxe":  []byte(seedTestIPXE),
		"bootstrap/example/metal.ipxe": []byte("#!ipxe\nchain --replace --autofree http://boot.example.com/bootstrap/install/default.ipxe\n"),
		"ipxe/undionly.kpxe":           big[:70000],
		"assets/big.bin":               big,
		"assets/debian/README":         []byte("mirror\n"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"assets/escape":           filepath.Join(outside, "secret.txt"),
		"assets/escdir":           "../../outside",
		"assets/debian/up":        "../../../outside/secret.txt",
		"mac/02-04-06-08-72-ff":   outside,
		"bootstrap/example/leak":  filepath.Join(outside, "secret.txt"),
		"bootstrap/example/inner": "test.ipxe", // inside the root: allowed
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, big
}

// slogFor logs JSON at Debug to w; nil w discards.
func slogFor(w io.Writer) *slog.Logger {
	if w == nil {
		return nil
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type env struct {
	srv     *httpboot.Server
	dir     string
	big     []byte
	dns     backend
	metrics *prometheus.Registry // what /metrics serves
}

func newEnv(t testing.TB, b backend, log io.Writer) *env {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	load(t, b, records...)
	dir, big := serveDir(t)
	var logger = slogFor(log)
	pol := netboot.NewDNSPolicy(serveconfig.Policy(cfg, logger), b)
	reg := prometheus.NewPedanticRegistry()
	srv := httpboot.New(httpboot.Config{
		Policy:  pol,
		Booter:  serveconfig.Booter(cfg),
		Dir:     dir,
		Log:     logger,
		Metrics: reg,
	})
	reg.MustRegister(srv.Collector(), pol.Cache().Collector()) // as vmprov serve does
	return &env{srv: srv, dir: dir, big: big, dns: b, metrics: reg}
}

// get runs one request from remote through the handler.
func (e *env) do(method, target, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = net.JoinHostPort(remote, "40000")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// TestRoutes is the boot chain of seed 000 through the handler, for each
// DNS backend. Rendered answers are golden files.
func TestRoutes(t *testing.T) {
	type tc struct {
		name, method, target, from string
		hdr                        map[string]string
		status                     int
		golden                     string // compare the body with testdata/GOLDEN.golden
		body                       string // or with this, when set
	}
	nf := "not found\n"
	tests := []tc{
		// /pxedust: seed 000's answer, IPv6, and everything that is not a confirmed host with an intent.
		{name: "pxedust seed 000 host", target: "/pxedust", from: centosIP, status: 200, golden: "pxedust-test-centos7", body: seedPXEDust},
		{name: "pxedust IPv6-only host", target: "/pxedust", from: v6onlyIP, status: 200, golden: "pxedust-v6only"},
		{name: "pxedust bare metal", target: "/pxedust", from: metalIP, status: 200, golden: "pxedust-sm1"},
		{name: "pxedust IPv4-mapped peer", target: "/pxedust", from: "::ffff:" + centosIP, status: 200, golden: "pxedust-test-centos7"},
		{name: "pxedust HEAD", method: "HEAD", target: "/pxedust", from: centosIP, status: 200, body: ""},
		{name: "pxedust unknown", target: "/pxedust", from: strayIP, status: 404, body: nf},
		{name: "pxedust FCrDNS mismatch", target: "/pxedust", from: liarIP, status: 404, body: nf},
		{name: "pxedust forward address of the liar", target: "/pxedust", from: "192.0.2.67", status: 404, body: nf},
		{name: "pxedust no TXT", target: "/pxedust", from: notxtIP, status: 404, body: nf},
		{name: "pxedust TXT iPXE cannot carry", target: "/pxedust", from: badIP, status: 404, body: nf},
		{name: "pxedust from no VLAN and no zone", target: "/pxedust", from: "203.0.113.9", status: 404, body: nf},
		{name: "pxedust from a VLAN whose reverse zone DNS lacks", target: "/pxedust", from: "198.51.100.9", status: 503, body: "service unavailable\n"},
		{name: "pxedust X-Forwarded-For not trusted", target: "/pxedust", from: strayIP, hdr: map[string]string{"X-Forwarded-For": centosIP}, status: 404, body: nf},

		// /mac/{hexhyp}/ipxe
		{name: "mac present", target: "/mac/02-04-06-08-72-ac/ipxe", from: centosIP, status: 200, body: perMACScript},
		{name: "mac upper case", target: "/mac/02-04-06-08-72-AC/ipxe", from: centosIP, status: 200, body: perMACScript},
		{name: "mac absent", target: "/mac/02-04-06-08-72-ad/ipxe", from: strayIP, status: 404, body: nf},
		{name: "mac not a MAC", target: "/mac/etc/ipxe", from: strayIP, status: 404, body: nf},
		{name: "mac with colons", target: "/mac/02:04:06:08:72:ac/ipxe", from: strayIP, status: 404, body: nf},
		{name: "mac symlink out of the root", target: "/mac/02-04-06-08-72-ff/secret.txt", from: strayIP, status: 404, body: nf},

		// /bootstrap/{site}/...
		{name: "site script", target: "/bootstrap/example/test.ipxe", from: centosIP, status: 200, body: seedTestIPXE},
		{name: "site script via a link inside the root", target: "/bootstrap/example/inner", from: centosIP, status: 200, body: seedTestIPXE},
		{name: "site script link out of the root", target: "/bootstrap/example/leak", from: centosIP, status: 404, body: nf},
		{name: "built-in default site script", target: "/bootstrap/example/default.ipxe", from: v6onlyIP, status: 200, golden: "bootstrap-default-v6"},
		{name: "no default for other sites", target: "/bootstrap/other/default.ipxe", from: centosIP, status: 404, body: nf},
		{name: "missing site script", target: "/bootstrap/example/nope.ipxe", from: centosIP, status: 404, body: nf},

		// /bootstrap/install/...
		{name: "install dispatch for the seed host", target: "/bootstrap/install/default.ipxe", from: centosIP, status: 200, golden: "install-default-test-centos7"},
		{name: "install dispatch for an unknown client", target: "/bootstrap/install/default.ipxe", from: strayIP, status: 200, golden: "install-default-generic"},
		{name: "install dispatch IPv6", target: "/bootstrap/install/default.ipxe", from: v6onlyIP, status: 200, golden: "install-default-v6only"},
		{name: "kickstart for its host", target: "/bootstrap/install/core/x86_64/ks.cfg", from: centosIP, status: 200, golden: "ks-test-centos7"},
		{name: "kickstart for another host", target: "/bootstrap/install/core/x86_64/ks.cfg", from: rockyIP, status: 404, body: nf},
		{name: "kickstart for a stranger", target: "/bootstrap/install/core/x86_64/ks.cfg", from: strayIP, status: 404, body: nf},
		{name: "kickstart for the FCrDNS liar", target: "/bootstrap/install/core/x86_64/ks.cfg", from: liarIP, status: 404, body: nf},
		{name: "kickstart of another arch", target: "/bootstrap/install/core/aarch64/ks.cfg", from: centosIP, status: 404, body: nf},
		{name: "kickstart rocky9", target: "/bootstrap/install/rocky9/x86_64/ks.cfg", from: rockyIP, status: 200, golden: "ks-rocky"},
		{name: "preseed for bare metal", target: "/bootstrap/install/bookworm/x86_64/preseed.cfg", from: metalIP, status: 200, golden: "preseed-sm1"},
		{name: "preseed is not an EL file", target: "/bootstrap/install/core/x86_64/preseed.cfg", from: centosIP, status: 404, body: nf},
		{name: "autoinstall user-data IPv6", target: "/bootstrap/install/noble/x86_64/user-data", from: v6onlyIP, status: 200, golden: "user-data-v6only"},
		{name: "autoinstall meta-data IPv6", target: "/bootstrap/install/noble/x86_64/meta-data", from: v6onlyIP, status: 200, golden: "meta-data-v6only"},
		{name: "firstboot for its host", target: "/bootstrap/install/core/firstboot", from: centosIP, status: 200, golden: "firstboot"},
		{name: "firstboot for a stranger", target: "/bootstrap/install/core/firstboot", from: strayIP, status: 404, body: nf},
		{name: "unknown install file", target: "/bootstrap/install/core/x86_64/passwd", from: centosIP, status: 404, body: nf},
		{name: "unknown distribution", target: "/bootstrap/install/plan9/x86_64/ks.cfg", from: centosIP, status: 404, body: nf},

		// /boot.ipxe, static files, health, refusals.
		{name: "boot script", target: "/boot.ipxe", from: strayIP, status: 200, golden: "boot"},
		{name: "asset", target: "/assets/debian/README", from: strayIP, status: 200, body: "mirror\n"},
		{name: "asset directory", target: "/assets/debian", from: strayIP, status: 404, body: nf},
		{name: "asset directory slash", target: "/assets/debian/", from: strayIP, status: 404, body: nf},
		{name: "asset missing", target: "/assets/nope", from: strayIP, status: 404, body: nf},
		{name: "traversal", target: "/assets/../../etc/passwd", from: strayIP, status: 400, body: "bad request\n"},
		{name: "encoded traversal", target: "/assets/%2e%2e/%2e%2e/etc/passwd", from: strayIP, status: 400, body: "bad request\n"},
		{name: "encoded slash traversal", target: "/assets/debian%2f..%2f..%2f..%2foutside%2fsecret.txt", from: strayIP, status: 400, body: "bad request\n"},
		{name: "dot segment", target: "/assets/./debian/README", from: strayIP, status: 400, body: "bad request\n"},
		{name: "double slash", target: "/assets//etc/passwd", from: strayIP, status: 400, body: "bad request\n"},
		{name: "backslash", target: `/assets/..\..\etc\passwd`, from: strayIP, status: 400, body: "bad request\n"},
		{name: "symlink to a file outside", target: "/assets/escape", from: strayIP, status: 404, body: nf},
		{name: "symlink to a folder outside", target: "/assets/escdir/secret.txt", from: strayIP, status: 404, body: nf},
		{name: "relative symlink climbing out", target: "/assets/debian/up", from: strayIP, status: 404, body: nf},
		{name: "ipxe binary", target: "/ipxe/nope.efi", from: strayIP, status: 404, body: nf},
		{name: "healthz", target: "/healthz", from: strayIP, status: 200, body: "ok\n"},
		{name: "root", target: "/", from: strayIP, status: 404, body: nf},
		{name: "POST", method: "POST", target: "/pxedust", from: centosIP, status: 405, body: "method not allowed\n"},
		{name: "PUT asset", method: "PUT", target: "/assets/x", from: centosIP, status: 405, body: "method not allowed\n"},
		{name: "long path", target: "/assets/" + strings.Repeat("a", 2000), from: strayIP, status: 414, body: "request URI too long\n"},
	}
	for bname, mk := range backends() {
		t.Run(bname, func(t *testing.T) {
			e := newEnv(t, mk(t), nil)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					method := tt.method
					if method == "" {
						method = "GET"
					}
					w := e.do(method, tt.target, tt.from, tt.hdr)
					got := w.Body.String()
					if w.Code != tt.status {
						t.Fatalf("status %d, want %d; body:\n%s", w.Code, tt.status, got)
					}
					if strings.Contains(got, strings.TrimSpace(secret)) {
						t.Fatalf("the secret outside serve.dir leaked")
					}
					if tt.status == 404 && (strings.Contains(got, "example") || strings.Contains(got, "192.0.2")) {
						t.Errorf("404 body names a host: %q", got)
					}
					if tt.golden != "" {
						checkGolden(t, tt.golden, w.Body.Bytes())
					}
					if tt.body != "" || tt.golden == "" {
						if diff := cmp.Diff(tt.body, got); diff != "" {
							t.Errorf("body (-want +got):\n%s", diff)
						}
					}
				})
			}
		})
	}
}

func TestStaticRange(t *testing.T) {
	e := newEnv(t, backends()["fake"](t), nil)
	tests := []struct {
		rng        string
		status     int
		start, end int // inclusive byte range of big expected
	}{
		{"bytes=100-199", 206, 100, 199},
		{"bytes=0-0", 206, 0, 0},
		{fmt.Sprintf("bytes=%d-", len(e.big)-10), 206, len(e.big) - 10, len(e.big) - 1},
		{"bytes=-5", 206, len(e.big) - 5, len(e.big) - 1},
		{"", 200, 0, len(e.big) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.rng != "" {
				hdr["Range"] = tt.rng
			}
			w := e.do("GET", "/assets/big.bin", strayIP, hdr)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if !bytes.Equal(w.Body.Bytes(), e.big[tt.start:tt.end+1]) {
				t.Errorf("body is %d bytes that differ from bytes %d-%d", w.Body.Len(), tt.start, tt.end)
			}
			if tt.status == 206 {
				want := fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end, len(e.big))
				if got := w.Header().Get("Content-Range"); got != want {
					t.Errorf("Content-Range %q, want %q", got, want)
				}
			}
		})
	}
	w := e.do("GET", "/assets/big.bin", strayIP, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(e.big)+5)})
	if w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", w.Code)
	}
	w = e.do("HEAD", "/ipxe/undionly.kpxe", strayIP, nil)
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "70000" {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// TestTrustedProxy: X-Forwarded-For counts only from a configured proxy.
func TestTrustedProxy(t *testing.T) {
	b := backends()["fake"](t)
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	load(t, b, records...)
	srv := httpboot.New(httpboot.Config{
		Policy:         netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b),
		Booter:         serveconfig.Booter(cfg),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	})
	for _, tt := range []struct {
		peer, xff string
		status    int
	}{
		{"198.51.100.7", "203.0.113.1, " + centosIP, 200},
		{"198.51.100.7", "garbage", 503}, // the proxy itself is on VLAN 136, whose reverse zone DNS lacks
		{strayIP, centosIP, 404},
	} {
		r := httptest.NewRequest("GET", "/pxedust", nil)
		r.RemoteAddr = net.JoinHostPort(tt.peer, "1234")
		r.Header.Set("X-Forwarded-For", tt.xff)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("peer %s X-Forwarded-For %q: status %d, want %d", tt.peer, tt.xff, w.Code, tt.status)
		}
	}
}

// TestDNSDown: no DNS answer is 503 for client-specific routes, and the
// static ones keep working.
func TestDNSDown(t *testing.T) {
	f := dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
	e := newEnv(t, f, nil)
	for _, target := range []string{"/pxedust", "/bootstrap/install/default.ipxe", "/bootstrap/install/core/x86_64/ks.cfg"} {
		f.FailNextLookup(dns.RcodeServerFailure)
		if w := e.do("GET", target, centosIP, nil); w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "example") {
			t.Errorf("%s: status %d body %q, want 503 naming nothing", target, w.Code, w.Body.String())
		}
	}
	if w := e.do("GET", "/pxedust", centosIP, nil); w.Code != 200 {
		t.Errorf("after the outage: status %d", w.Code)
	}
	if w := e.do("GET", "/boot.ipxe", centosIP, nil); w.Code != 200 {
		t.Errorf("boot.ipxe: status %d", w.Code)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, backends()["fake"](t), nil)
	e.do("GET", "/pxedust", centosIP, nil)
	e.do("GET", "/pxedust", centosIP, nil)
	e.do("GET", "/pxedust", strayIP, nil)
	e.do("GET", "/assets/../x", strayIP, nil)
	w := e.do("GET", "/metrics", strayIP, nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{
		"# TYPE vmprov_http_request_duration_seconds histogram\n",
		`vmprov_http_request_duration_seconds_count{route="/pxedust"} 3` + "\n",
		`vmprov_http_response_bytes_total{route="/pxedust"} `,
		// Three /pxedust decisions and two confirmations of the build
		// state before the chain is handed out; the refused request
		// needed none.
		`vmprov_decision_duration_seconds_count{proto="http"} 5` + "\n",
		"vmprov_dns_cache_hits_total ",
		// PTR 172, A, AAAA, TXT; TXT again for each chain; PTR 99
		"vmprov_dns_queries_total 7\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	// The request counters, /metrics's own request included.
	want := `
# HELP vmprov_http_requests_total HTTP requests by route and status code.
# TYPE vmprov_http_requests_total counter
vmprov_http_requests_total{code="200",route="/metrics"} 1
vmprov_http_requests_total{code="200",route="/pxedust"} 2
vmprov_http_requests_total{code="404",route="/pxedust"} 1
vmprov_http_requests_total{code="400",route="refused"} 1
`
	if err := testutil.GatherAndCompare(e.metrics, strings.NewReader(want), "vmprov_http_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestNoMetrics: without a registry the server answers as before, and
// /metrics is not a route.
func TestNoMetrics(t *testing.T) {
	b := backends()["fake"](t)
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	load(t, b, records...)
	srv := httpboot.New(httpboot.Config{Policy: netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), Booter: serveconfig.Booter(cfg)})
	for target, status := range map[string]int{"/pxedust": 200, "/metrics": 404} {
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = net.JoinHostPort(centosIP, "40000")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != status {
			t.Errorf("%s: status %d, want %d", target, w.Code, status)
		}
	}
}

// TestRequestLog: one structured line per request with the fixed keys.
func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(t, backends()["fake"](t), &buf)
	buf.Reset()
	e.do("GET", "/pxedust", centosIP, nil)
	line := buf.String()
	for _, want := range []string{`"msg":"http request"`, `"ip":"192.0.2.172"`, `"host":"test-centos7.example.com"`,
		`"file":"/pxedust"`, `"status":200`, fmt.Sprintf(`"bytes":%d`, len(seedPXEDust)), `"dur":`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s:\n%s", want, line)
		}
	}
	if n := strings.Count(line, `"msg":"http request"`); n != 1 {
		t.Errorf("%d request lines, want 1", n)
	}
}

// TestServe runs the server on a real socket and stops it with ctx.
func TestServe(t *testing.T) {
	e := newEnv(t, backends()["fake"](t), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, l, 5*time.Second) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}

// FuzzServeHTTP sends arbitrary request paths through the whole handler,
// with serve.dir full of symbolic links that point outside it: nothing
// outside serve.dir is ever served, and no path makes the server fail.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range []string{"/pxedust", "/assets/escape", "/assets/escdir/secret.txt", "/assets/debian/up",
		"/mac/02-04-06-08-72-ff/secret.txt", "/bootstrap/example/leak", "/bootstrap/install/core/x86_64/ks.cfg",
		"/assets/../outside/secret.txt", "/ipxe/../../outside/secret.txt", "/bootstrap/example/../../../outside/secret.txt"} {
		f.Add(s, centosIP)
	}
	e := newEnv(f, backends()["fake"](f), nil)
	f.Fuzz(func(t *testing.T, p, from string) {
		u, err := url.Parse(p)
		if err != nil || u.Path == "" {
			return
		}
		r := &http.Request{Method: "GET", URL: u, RequestURI: p, Header: http.Header{}, RemoteAddr: net.JoinHostPort(from, "1"), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		r = r.WithContext(t.Context())
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if strings.Contains(w.Body.String(), strings.TrimSpace(secret)) {
			t.Fatalf("%q from %q served the secret outside serve.dir", p, from)
		}
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%q from %q: status %d", p, from, w.Code)
		}
	})
}

// TestLoaderDirs: /ipxe/NAME comes from serve.dir/ipxe, else for a plain
// name from the first loader folder that has it (UEFI HTTP boot's loader,
// nothing copied), with Range; names with a folder or ".." never reach
// the loader folders.
func TestLoaderDirs(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	dir, big := serveDir(t)
	loaders := t.TempDir()
	inLoaders := map[string]string{
		"snponly.efi":   "snponly from a loader folder",
		"undionly.kpxe": "not serve.dir's undionly.kpxe",
		"sub/x.efi":     "in a sub-folder",
	}
	for name, b := range inLoaders {
		p := filepath.Join(loaders, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := backends()["fake"](t)
	srv := httpboot.New(httpboot.Config{Policy: netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), Booter: serveconfig.Booter(cfg),
		Dir: dir, LoaderDirs: netboot.LoaderDirs{loaders}})
	for _, tt := range []struct {
		target string
		status int
		body   string
	}{
		{"/ipxe/snponly.efi", 200, inLoaders["snponly.efi"]},
		{"/ipxe/undionly.kpxe", 200, string(big[:70000])},
		{"/ipxe/sub/x.efi", 404, ""},
		{"/ipxe/..%2fsecret.txt", 400, ""}, // refused before routing
		{"/ipxe/nothere.efi", 404, ""},
		{"/assets/snponly.efi", 404, ""},
	} {
		r := httptest.NewRequest("GET", tt.target, nil)
		r.RemoteAddr = net.JoinHostPort(strayIP, "40000")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != tt.status || tt.status == 200 && w.Body.String() != tt.body {
			t.Errorf("GET %s: %d %.40q, want %d %.40q", tt.target, w.Code, w.Body.String(), tt.status, tt.body)
		}
	}
	r := httptest.NewRequest("GET", "/ipxe/snponly.efi", nil)
	r.Header.Set("Range", "bytes=0-6")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != 206 || w.Body.String() != "snponly" {
		t.Errorf("Range of a loader folder's file: %d %q, want 206 \"snponly\"", w.Code, w.Body.String())
	}
}

// TestAssetDirs: /assets/PATH comes from serve.dir/assets, else from the
// folder of serve.asset_dirs whose prefix PATH is under, confined to it.
func TestAssetDirs(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := serveDir(t)
	const prefix = "debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64"
	pkg := t.TempDir()
	for name, b := range map[string]string{"linux": "packaged kernel", "sub/initrd.gz": "packaged initrd"} {
		p := filepath.Join(pkg, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "assets", "big.bin"), filepath.Join(pkg, "out")); err != nil {
		t.Fatal(err)
	}
	// serve.dir/assets overrides the packaged file of the same path.
	own := filepath.Join(dir, "assets", filepath.FromSlash(prefix), "initrd.gz")
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, []byte("own initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := backends()["fake"](t)
	srv := httpboot.New(httpboot.Config{Policy: netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), Booter: serveconfig.Booter(cfg),
		Dir: dir, AssetDirs: netboot.AssetDirs{{Prefix: prefix, Dir: pkg}, {Prefix: "missing", Dir: filepath.Join(pkg, "nothere")}}})
	for _, tt := range []struct {
		target string
		status int
		body   string
	}{
		{"/assets/" + prefix + "/linux", 200, "packaged kernel"},
		{"/assets/" + prefix + "/sub/initrd.gz", 200, "packaged initrd"},
		{"/assets/" + prefix + "/initrd.gz", 200, "own initrd"},
		{"/assets/debian/README", 200, "mirror\n"},
		{"/assets/" + prefix + "/out", 404, ""}, // a link out of the folder
		{"/assets/" + prefix, 404, ""},
		{"/assets/" + prefix + "/", 404, ""},
		{"/assets/linux", 404, ""},
		{"/assets/missing/linux", 404, ""},
	} {
		r := httptest.NewRequest("GET", tt.target, nil)
		r.RemoteAddr = net.JoinHostPort(strayIP, "40000")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != tt.status || tt.status == 200 && w.Body.String() != tt.body {
			t.Errorf("GET %s: %d %.40q, want %d %.40q", tt.target, w.Code, w.Body.String(), tt.status, tt.body)
		}
	}
}

// TestPackagedInstaller: with serve.asset_dirs' defaults and boot.assets at
// serve itself, the kernel and initrd a bookworm install boot names
// (templates.Install) are Debian's packaged installer, served byte for
// byte with nothing copied, for x86_64 and aarch64 hosts.
func TestPackagedInstaller(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := serveDir(t)
	b := backends()["fake"](t)
	srv := httpboot.New(httpboot.Config{Policy: netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), Booter: serveconfig.Booter(cfg),
		Dir: dir, AssetDirs: serveconfig.AssetDirs(cfg)})
	for arch, pkg := range map[string]string{
		"x86_64":  "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64",
		"aarch64": "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64",
	} {
		t.Run(arch, func(t *testing.T) {
			if _, err := os.Stat(pkg); err != nil {
				t.Skipf("needs %s (Debian package debian-installer-12-netboot-%s)", pkg, filepath.Base(pkg))
			}
			const base = "http://192.0.2.1:8080"
			boot, err := templates.Install(templates.Host{FQDN: "di1.example.com.", IPv4: netip.MustParseAddr("192.0.2.40"),
				MAC: net.HardwareAddr{2, 4, 6, 8, 0x72, 0x28}, Distribution: "bookworm", Arch: arch, BootURL: base, Site: "example"})
			if err != nil {
				t.Fatal(err)
			}
			for url, file := range map[string]string{boot.Kernel: "linux", boot.Initrd: "initrd.gz"} {
				path, ok := strings.CutPrefix(url, base)
				if !ok || !strings.HasPrefix(path, "/assets/") {
					t.Fatalf("%s is not under %s/assets", url, base)
				}
				want, err := os.ReadFile(filepath.Join(pkg, file))
				if err != nil {
					t.Fatal(err)
				}
				r := httptest.NewRequest("GET", path, nil)
				r.RemoteAddr = net.JoinHostPort(strayIP, "40000")
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), want) {
					t.Errorf("GET %s: %d, %d bytes; want 200 and the %d bytes of %s/%s", path, w.Code, w.Body.Len(), len(want), pkg, file)
				}
			}
		})
	}
}
