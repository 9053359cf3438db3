package httpboot_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/test/lab"
)

// installedIP is done.example.com., a host in build state installed.
const installedIP = "192.0.2.90"

var installedRecords = []string{
	"done.example.com. 300 A " + installedIP,
	`done.example.com. 300 TXT "filename=test.ipxe" "distribution=core" "state=installed" "build_id=38b6bf72"`,
	"90.2.0.192.in-addr.arpa. 300 PTR done.example.com.",
}

// TestLocalBoot: an installed host's iPXE gets the script that exits to the
// next boot device, from /pxedust and from /boot.ipxe alike; every other
// client's /boot.ipxe is the embedded boot script.
func TestLocalBoot(t *testing.T) {
	for name, mk := range backends() {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mk(t), nil)
			load(t, e.dns, installedRecords...)
			boot := e.do("GET", "/boot.ipxe", strayIP, nil)
			if boot.Code != http.StatusOK || !strings.Contains(boot.Body.String(), "/pxedust") {
				t.Fatalf("/boot.ipxe for an unknown client: %d %q", boot.Code, boot.Body.String())
			}
			for _, target := range []string{"/pxedust", "/boot.ipxe"} {
				w := e.do("GET", target, installedIP, nil)
				if w.Code != http.StatusOK {
					t.Fatalf("%s: status %d", target, w.Code)
				}
				golden.Check(t, filepath.Join("testdata", "local-done.golden"), w.Body.Bytes())
				if w.Header().Get("Cache-Control") != "no-store" {
					t.Errorf("%s: Cache-Control %q, want no-store", target, w.Header().Get("Cache-Control"))
				}
			}
			// A host that is still to install gets the boot script and the
			// chain.
			if w := e.do("GET", "/boot.ipxe", centosIP, nil); w.Body.String() != boot.Body.String() {
				t.Errorf("/boot.ipxe of a host in state install differs from the boot script:\n%s", w.Body.String())
			}
			if w := e.do("GET", "/pxedust", centosIP, nil); w.Body.String() != seedPXEDust {
				t.Errorf("/pxedust of a host in state install = %q, want %q", w.Body.String(), seedPXEDust)
			}
		})
	}
}

// TestPXEDustConfirmsState: /pxedust reads the build state past the cache
// before it hands out the chain. Another serve instance marked the host
// installed after this one cached its TXT record in state install; the
// next /pxedust exits to the disk all the same.
func TestPXEDustConfirmsState(t *testing.T) {
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, c, nil)
	if w := e.do("GET", "/pxedust", centosIP, nil); w.Body.String() != seedPXEDust {
		t.Fatalf("/pxedust in state install = %q", w.Body.String())
	}
	txt, err := dns.NewRR(`test-centos7.example.com. 300 TXT "filename=test.ipxe" "distribution=core" "state=installed" "build_id=38b6bf72"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(context.Background(), dnsupdate.ChangeSet{Zone: lab.TestZone,
		RemoveRRset: []dnsupdate.RRKey{{Name: "test-centos7.example.com.", Type: dns.TypeTXT}}, Add: []dns.RR{txt}}); err != nil {
		t.Fatal(err)
	}
	w := e.do("GET", "/pxedust", centosIP, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "\nexit 1\n") || strings.Contains(w.Body.String(), "chain") {
		t.Errorf("/pxedust after another instance wrote installed: %d %q, want the exit script", w.Code, w.Body.String())
	}
}
