package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

// buildLabConfig is a config for a real BIND that also serves
// 0.0.127.in-addr.arpa., with VLAN 127 on 127.0.0.0/24: hosts there are
// loopback addresses a test can send HTTP requests from.
func buildLabConfig(t *testing.T) string {
	t.Helper()
	b := lab.BINDForTest(t, func(c *lab.BINDConfig) { c.ReverseZones = append(c.ReverseZones, "0.0.127.in-addr.arpa.") })
	return configFor(t, b, `boot: {url: "http://127.0.0.1"}
vlans:
  - {id: 127, bridge: lo, ipv4: 127.0.0.0/24}
`)
}

// from returns a GET function whose requests come from the local address src.
func from(base, src string) func(path string) (int, string) {
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
	return func(path string) (int, string) {
		resp, err := c.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

var stateLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ web1 (install|installing|installed)$`)

// TestBuildStateCLI is a host's build as a user sees it: host add writes
// install, the installer's answer file fetch makes it installing, its
// callback installed, which vmprov wait sees and host list shows; another
// address's callback is refused; reinstall starts over and revokes the
// token; the bad inputs fail with the value named and change nothing.
func TestBuildStateCLI(t *testing.T) {
	cfg := buildLabConfig(t)
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := vmprov(t, append([]string{"--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("vmprov %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	if out := run("host", "add", "--name", "web1", "--mac", "00:25:90:96:c4:9a", "--ip", "127.0.0.30", "--distro", "bookworm"); !strings.Contains(out, "state:  install\n") {
		t.Errorf("host add prints no state install:\n%s", out)
	}
	if out := run("host", "list"); !regexp.MustCompile(`(?m)^NAME +STATE +MAC.*\nweb1 +install +00:25:90:96:c4:9a`).MatchString(out) {
		t.Errorf("host list:\n%s", out)
	}

	_, log := serveForTest(t, cfg, "--tftp", "off")
	m := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", log)
	}
	base := "http://" + m[1]
	web1, other := from(base, "127.0.0.30"), from(base, "127.0.0.1")

	type result struct {
		code     int
		out, err string
	}
	waited := make(chan result, 1)
	go func() {
		code, out, errs := vmprov(t, "--config", cfg, "wait", "web1", "--for", "installed", "--timeout", "60s", "--interval", "50ms")
		waited <- result{code, out, errs}
	}()

	code, body := web1("/bootstrap/install/bookworm/x86_64/preseed.cfg")
	tok := regexp.MustCompile(`/done\?token=([a-z0-9.:-]+)`).FindStringSubmatch(body)
	if code != 200 || tok == nil {
		t.Fatalf("preseed.cfg: %d, no callback:\n%s", code, body)
	}
	if out := run("host", "show", "web1"); !strings.Contains(out, "state:  installing\n") {
		t.Errorf("host show after the answer file fetch:\n%s", out)
	}
	if code, body := other("/done?token=" + tok[1]); code != 403 || !strings.Contains(body, "127.0.0.1") {
		t.Errorf("callback from 127.0.0.1: %d %q, want 403 naming the address", code, body)
	}
	if code, body := web1("/done?token=" + tok[1]); code != 200 || body != "web1.example.com installed\n" {
		t.Fatalf("callback: %d %q", code, body)
	}
	select {
	case r := <-waited:
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if r.code != 0 || !strings.HasSuffix(lines[0], " web1 install") || !strings.HasSuffix(lines[len(lines)-1], " web1 installed") {
			t.Errorf("wait: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
		}
		for _, l := range lines {
			if !stateLine.MatchString(l) {
				t.Errorf("wait printed %q, want TIME NAME STATE", l)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return after the callback")
	}
	var hosts []map[string]any
	if err := json.Unmarshal([]byte(run("host", "list", "-o", "json")), &hosts); err != nil || len(hosts) != 1 || hosts[0]["state"] != "installed" {
		t.Errorf("host list -o json = %v, %v; want web1 installed", hosts, err)
	}
	if code, body := web1("/metrics"); !strings.Contains(body, `vmprov_build_transitions_total{to="installed"} 1`) || !strings.Contains(body, `vmprov_build_transitions_total{to="installing"} 1`) {
		t.Errorf("/metrics (%d) lacks the transitions:\n%s", code, body)
	}
	for _, want := range []string{`msg="build state changed" host=web1.example.com from=install to=installing`, `msg="build state changed" host=web1.example.com from=installing to=installed by="installer callback from 127.0.0.30"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("serve's log lacks %s:\n%s", want, log)
		}
	}

	// A reinstall starts over and revokes the callback token.
	if out := run("reinstall", "web1", "--distro", "trixie"); !strings.Contains(out, "state:  install\n") {
		t.Errorf("reinstall:\n%s", out)
	}
	if code, body := web1("/done?token=" + tok[1]); code != 403 || !strings.Contains(body, "revoked") {
		t.Errorf("callback with the token of the previous build: %d %q", code, body)
	}

	// Bad input: the value is named, the exit is not 0, nothing changes.
	before := run("host", "show", "web1", "-o", "json")
	for _, tt := range []struct {
		args []string
		code int
		says []string
	}{
		{[]string{"reinstall", "web1", "--distro", "bookworm", "--now"}, 1, []string{"web1 has no domain", "power control of bare metal is not configured"}},
		{[]string{"wait", "nosuch", "--for", "installed"}, 2, []string{"no such host: nosuch in DNS zone example.com."}},
		{[]string{"wait", "web1", "--for", "done"}, 2, []string{`"done"`, "install, installing or installed"}},
		{[]string{"wait", "web1", "--for", "installed", "--timeout", "200ms", "--interval", "50ms"}, 1, []string{"still install after 200ms, not installed"}},
		{[]string{"create", "--name", "web2", "--ip", "127.0.0.31", "--distro", "bookworm", "--boot", "cdrom,hd"}, 1, []string{"--boot cdrom,hd", `"cdrom"`}},
	} {
		code, _, errs := vmprov(t, append([]string{"--config", cfg}, tt.args...)...)
		if code != tt.code {
			t.Errorf("vmprov %s: exit %d, want %d: %s", strings.Join(tt.args, " "), code, tt.code, errs)
		}
		for _, s := range tt.says {
			if !strings.Contains(errs, s) {
				t.Errorf("vmprov %s: stderr %q does not say %q", strings.Join(tt.args, " "), errs, s)
			}
		}
	}
	if after := run("host", "show", "web1", "-o", "json"); after != before {
		t.Errorf("bad input changed web1:\n%s\n→\n%s", before, after)
	}
	if code, _, _ := vmprov(t, "--config", cfg, "show", "web2"); code == 0 {
		t.Error("a refused create made web2")
	}
}
