package httpboot_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// Per-MAC scripts of the test hosts: test-centos7's strict MAC (VLAN 135,
// 192.0.2.172), rocky's (192.0.2.20) and sm1's own MAC, published as its
// _mac CNAME.
const (
	centosMAC = "02-04-06-08-72-ac"
	rockyMAC  = "02-04-06-08-72-14"
	metalMAC  = "00-25-90-96-c4-9a"
)

var macScripts = map[string]string{
	centosMAC: perMACScript,
	rockyMAC:  "#!ipxe\necho rocky's own script\nexit 1\n",
	metalMAC:  "#!ipxe\necho sm1's own script\nexit 1\n",
}

// newMACEnv is newEnv with serve.public_mac_scripts set to public and a
// per-MAC script for each of macScripts' MACs.
func newMACEnv(t *testing.T, b backend, public bool) *env {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	load(t, b, records...)
	dir, big := serveDir(t)
	for mac, body := range macScripts {
		p := filepath.Join(dir, "mac", mac, "ipxe")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol := netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b)
	srv := httpboot.New(httpboot.Config{
		Policy:           pol,
		Booter:           serveconfig.Booter(cfg),
		Dir:              dir,
		PublicMACScripts: public,
	})
	return &env{srv: srv, dir: dir, big: big, dns: b, metrics: prometheus.NewRegistry()}
}

func macTarget(mac string) string { return "/mac/" + mac + "/ipxe" }

// TestMACScriptOwnerOnly: strict MACs follow from addresses, so a per-MAC
// script goes to the forward-confirmed host with that MAC only, and
// everyone else gets the 404 of a missing script.
func TestMACScriptOwnerOnly(t *testing.T) {
	nf := "not found\n"
	tests := []struct {
		name, mac, from string
		status          int
		body            string
	}{
		{"the host with the strict MAC", centosMAC, centosIP, 200, perMACScript},
		{"upper case", strings.ToUpper(centosMAC), centosIP, 200, perMACScript},
		{"IPv4-mapped peer", centosMAC, "::ffff:" + centosIP, 200, perMACScript},
		{"bare metal by its _mac CNAME", metalMAC, metalIP, 200, macScripts[metalMAC]},
		{"another confirmed host", centosMAC, rockyIP, 404, nf},
		{"another confirmed host asks for bare metal's", metalMAC, rockyIP, 404, nf},
		{"bare metal asks for a VM's", centosMAC, metalIP, 404, nf},
		{"an unknown address", centosMAC, strayIP, 404, nf},
		{"an address outside every VLAN", centosMAC, "203.0.113.9", 404, nf},
		{"the FCrDNS liar", centosMAC, liarIP, 404, nf},
		{"the liar's forward address", centosMAC, "192.0.2.67", 404, nf},
		{"X-Forwarded-For from an untrusted peer", centosMAC, strayIP, 404, nf},
		{"the host, no script", "02-04-06-08-72-ad", centosIP, 404, nf},
		{"the host, a MAC DNS does not know", "00-25-90-96-c4-9b", centosIP, 404, nf},
	}
	for bname, mk := range backends() {
		t.Run(bname, func(t *testing.T) {
			e := newMACEnv(t, mk(t), false)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					w := e.do("GET", macTarget(tt.mac), tt.from, map[string]string{"X-Forwarded-For": centosIP})
					if w.Code != tt.status {
						t.Fatalf("status %d, want %d; body %q", w.Code, tt.status, w.Body.String())
					}
					if diff := cmp.Diff(tt.body, w.Body.String()); diff != "" {
						t.Errorf("body (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestMACScriptNoOracle: a requester that may not have a script cannot tell
// an existing one from a missing one.
func TestMACScriptNoOracle(t *testing.T) {
	e := newMACEnv(t, dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...), false)
	for _, from := range []string{rockyIP, strayIP, liarIP} {
		for _, method := range []string{"GET", "HEAD"} {
			present := e.do(method, macTarget(centosMAC), from, nil)
			absent := e.do(method, macTarget("02-04-06-08-72-ad"), from, nil)
			if present.Code != http.StatusNotFound {
				t.Errorf("%s %s from %s: status %d, want 404", method, centosMAC, from, present.Code)
			}
			if diff := cmp.Diff(absent.Header(), present.Header()); diff != "" {
				t.Errorf("%s from %s: headers of a present script differ from a missing one's (-missing +present):\n%s", method, from, diff)
			}
			if diff := cmp.Diff(absent.Body.String(), present.Body.String()); diff != "" {
				t.Errorf("%s from %s: body of a present script differs from a missing one's (-missing +present):\n%s", method, from, diff)
			}
		}
	}
}

// TestMACScriptDNSDown: without DNS the owner cannot be confirmed, so the
// script is not served (503, as every client-specific route), whether the
// address or the _mac CNAME could not be read.
func TestMACScriptDNSDown(t *testing.T) {
	f := dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
	e := newMACEnv(t, f, false)

	f.FailNextLookup(dns.RcodeServerFailure)
	w := e.do("GET", macTarget(centosMAC), centosIP, nil)
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "ipxe") {
		t.Errorf("address lookup failed: status %d body %q, want 503 and not the script", w.Code, w.Body.String())
	}
	if w := e.do("GET", macTarget(centosMAC), centosIP, nil); w.Code != 200 || w.Body.String() != perMACScript {
		t.Errorf("after the outage: status %d body %q", w.Code, w.Body.String())
	}

	// sm1 is confirmed by address (and cached); its own MAC needs the
	// _mac CNAME, which DNS fails to give.
	if w := e.do("GET", "/pxedust", metalIP, nil); w.Code != 200 {
		t.Fatalf("pxedust for sm1: status %d", w.Code)
	}
	f.FailNextLookup(dns.RcodeServerFailure)
	w = e.do("GET", macTarget(metalMAC), metalIP, nil)
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "ipxe") {
		t.Errorf("_mac lookup failed: status %d body %q, want 503 and not the script", w.Code, w.Body.String())
	}
}

// TestMACScriptPublic: serve.public_mac_scripts serves them to anyone, as
// seed 000's web server of MAC folders did, and needs no DNS.
func TestMACScriptPublic(t *testing.T) {
	f := dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
	e := newMACEnv(t, f, true)
	for _, from := range []string{centosIP, rockyIP, metalIP, strayIP, liarIP, "203.0.113.9"} {
		for mac, body := range macScripts {
			w := e.do("GET", macTarget(mac), from, nil)
			if w.Code != 200 || w.Body.String() != body {
				t.Errorf("%s from %s: status %d body %q, want 200 %q", mac, from, w.Code, w.Body.String(), body)
			}
		}
		if w := e.do("GET", macTarget("02-04-06-08-72-ad"), from, nil); w.Code != 404 {
			t.Errorf("missing script from %s: status %d, want 404", from, w.Code)
		}
	}
	f.FailNextLookup(dns.RcodeServerFailure)
	if w := e.do("GET", macTarget(centosMAC), strayIP, nil); w.Code != 200 || w.Body.String() != perMACScript {
		t.Errorf("DNS down: status %d body %q, want the script", w.Code, w.Body.String())
	}
}
