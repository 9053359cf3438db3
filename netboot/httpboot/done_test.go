package httpboot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

var doneSecret = []byte("the secret every serve instance shares")

// buildDNS is a backend serve can also write build states with.
type buildDNS interface {
	backend
	buildstate.DNS
}

// newBuildServer is a serve instance's HTTP server tracking build states
// through d, with its own policy (cache) and metrics.
func newBuildServer(t testing.TB, resolver netboot.Resolver, d buildstate.DNS, log *bytes.Buffer) (*httpboot.Server, *prometheus.Registry) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	var w = new(bytes.Buffer)
	if log != nil {
		w = log
	}
	logger := slogFor(w)
	pol := netboot.NewDNSPolicy(serveconfig.Policy(cfg, logger), resolver)
	reg := prometheus.NewPedanticRegistry()
	build := buildstate.NewWriter(d, lab.TestZone)
	srv := httpboot.New(httpboot.Config{Policy: pol, Booter: serveconfig.Booter(cfg), Dir: t.TempDir(), Log: logger, Metrics: reg,
		Build: build, DoneSecret: doneSecret})
	reg.MustRegister(srv.Collector(), build.Collector())
	return srv, reg
}

func call(srv http.Handler, method, target, remote string, form url.Values) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.RemoteAddr = net.JoinHostPort(remote, "40000")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

func txtOf(t *testing.T, d netboot.Resolver, name string) string { return dnstest.TXT(t, d, name) }

func soaSerial(t *testing.T, d netboot.Resolver) uint32 { return dnstest.Serial(t, d, lab.TestZone) }

var tokenRE = regexp.MustCompile(`(http://[^' ]+)/done\?token=([a-z0-9.:-]+)`)

// TestDone walks bare-metal sm1 through its build over HTTP: its installer
// fetches its preseed (installing), which hands it its callback; every
// caller and token but its own is refused without a change; its own call
// marks it installed, again and again; a reinstall revokes the token.
func TestDone(t *testing.T) {
	for name, start := range backends() {
		t.Run(name, func(t *testing.T) {
			b := start(t).(buildDNS)
			load(t, b, records...)
			var log bytes.Buffer
			srv, reg := newBuildServer(t, b, b, &log)
			const sm1 = "sm1.example.com."

			w := call(srv, "GET", "/bootstrap/install/bookworm/x86_64/preseed.cfg", metalIP, nil)
			if w.Code != 200 {
				t.Fatalf("preseed.cfg: %d %s", w.Code, w.Body)
			}
			m := tokenRE.FindStringSubmatch(w.Body.String())
			if m == nil || m[1] != "http://boot.example.com" {
				t.Fatalf("preseed.cfg has no callback to http://boot.example.com/done:\n%s", w.Body)
			}
			tok := m[2]
			if !strings.HasPrefix(tok, "sm1.example.com:") {
				t.Errorf("token %q does not name sm1.example.com", tok)
			}
			want := "filename=metal.ipxe distribution=bookworm puppet_server=puppet.example.com state=installing"
			if got := txtOf(t, b, sm1); got != want {
				t.Fatalf("TXT after the preseed fetch = %q, want %q", got, want)
			}
			// meta-data, firstboot and HEAD requests mark nothing; the
			// second fetch finds it installing.
			call(srv, "HEAD", "/bootstrap/install/bookworm/x86_64/preseed.cfg", metalIP, nil)
			call(srv, "GET", "/bootstrap/install/bookworm/x86_64/preseed.cfg", metalIP, nil)

			before := soaSerial(t, b)
			forged := "sm1.example.com:" + strings.Repeat("0", 64)
			rockyTok := "rocky.example.com:" + strings.Repeat("ab", 32)
			for _, tt := range []struct {
				name, remote, token string
				code                int
				says                []string
			}{
				{"token replayed by another confirmed host", rockyIP, tok, 403, []string{"sm1.example.com", "rocky.example.com", rockyIP}},
				{"forged token", metalIP, forged, 403, []string{"revoked", "never issued"}},
				{"token for another host", metalIP, rockyTok, 403, []string{"rocky.example.com", "sm1.example.com"}},
				{"token for an unknown host", metalIP, "nosuch.example.com:" + strings.Repeat("ab", 32), 403, []string{"nosuch.example.com"}},
				{"caller without DNS", strayIP, tok, 403, []string{strayIP, "not a host in DNS"}},
				{"caller whose reverse DNS is not confirmed", liarIP, tok, 403, []string{liarIP, "not a host in DNS"}},
				{"malformed token", metalIP, "sm1-done", 400, []string{`"sm1-done"`, "malformed token", "64 hex digits"}},
				{"no token", metalIP, "", 400, []string{"empty"}},
				{"HEAD", metalIP, tok, 405, nil},
			} {
				method := "GET"
				if tt.name == "HEAD" {
					method = "HEAD"
				}
				w := call(srv, method, "/done?token="+url.QueryEscape(tt.token), tt.remote, nil)
				if w.Code != tt.code {
					t.Errorf("%s: status %d, want %d: %s", tt.name, w.Code, tt.code, w.Body)
				}
				for _, s := range tt.says {
					if !strings.Contains(w.Body.String(), s) {
						t.Errorf("%s: answer %q does not say %q", tt.name, w.Body, s)
					}
				}
			}
			if got := txtOf(t, b, sm1); got != want {
				t.Errorf("TXT after refused callbacks = %q, want %q", got, want)
			}
			if s := soaSerial(t, b); s != before {
				t.Errorf("refused callbacks changed the zone: serial %d → %d", before, s)
			}

			w = call(srv, "GET", "/done?token="+tok, metalIP, nil)
			if w.Code != 200 || w.Body.String() != "sm1.example.com installed\n" {
				t.Fatalf("callback: %d %q", w.Code, w.Body)
			}
			installed := strings.Replace(want, "state=installing", "state=installed", 1)
			if got := txtOf(t, b, sm1); got != installed {
				t.Errorf("TXT after the callback = %q, want %q", got, installed)
			}
			// Repeated calls, GET and POST, answer 200 and write nothing.
			done := soaSerial(t, b)
			for _, w := range []*httptest.ResponseRecorder{
				call(srv, "GET", "/done?token="+tok, metalIP, nil),
				call(srv, "POST", "/done", metalIP, url.Values{"token": {tok}}),
				call(srv, "POST", "/done?token="+tok, metalIP, nil),
			} {
				if w.Code != 200 || w.Body.String() != "sm1.example.com installed\n" {
					t.Errorf("repeated callback: %d %q", w.Code, w.Body)
				}
			}
			if s := soaSerial(t, b); s != done {
				t.Errorf("repeated callbacks wrote: serial %d → %d", done, s)
			}

			// A reinstall (new build_id) revokes the token.
			hdr := dns.RR_Header{Name: sm1, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}
			reinstalled := []string{"filename=metal.ipxe", "distribution=bookworm", "puppet_server=puppet.example.com", "state=install", "build_id=89abcdef"}
			if err := b.Apply(t.Context(), dnsupdate.ChangeSet{Zone: lab.TestZone, RemoveRRset: []dnsupdate.RRKey{{Name: sm1, Type: dns.TypeTXT}},
				Add: []dns.RR{&dns.TXT{Hdr: hdr, Txt: reinstalled}}}); err != nil {
				t.Fatal(err)
			}
			w = call(srv, "GET", "/done?token="+tok, metalIP, nil)
			if w.Code != 403 || !strings.Contains(w.Body.String(), "revoked") {
				t.Errorf("token of the previous intent: %d %q, want 403", w.Code, w.Body)
			}
			if got := txtOf(t, b, sm1); got != strings.Join(reinstalled, " ") {
				t.Errorf("TXT after the revoked callback = %q", got)
			}

			metrics := `
# HELP vmprov_build_transitions_total Build state changes this server wrote to DNS, by the state entered.
# TYPE vmprov_build_transitions_total counter
vmprov_build_transitions_total{to="installed"} 1
vmprov_build_transitions_total{to="installing"} 1
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(metrics), "vmprov_build_transitions_total"); err != nil {
				t.Error(err)
			}
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "build state changed" {
					delete(m, "time")
					lines = append(lines, m)
				}
			}
			wantLines := []map[string]any{
				{"level": "INFO", "msg": "build state changed", "host": "sm1.example.com", "from": "install", "to": "installing", "by": "answer file preseed.cfg fetched by " + metalIP},
				{"level": "INFO", "msg": "build state changed", "host": "sm1.example.com", "from": "installing", "to": "installed", "by": "installer callback from " + metalIP},
			}
			if len(lines) != len(wantLines) {
				t.Fatalf("build state log lines = %v, want %v", lines, wantLines)
			}
			for i := range lines {
				for k, v := range wantLines[i] {
					if lines[i][k] != v {
						t.Errorf("log line %d: %s = %v, want %v", i, k, lines[i][k], v)
					}
				}
			}
		})
	}
}

// TestDoneIPv6: an IPv6-only host's user-data calls back at boot.url_v6,
// and the call over IPv6 marks it installed.
func TestDoneIPv6(t *testing.T) {
	b := backends()["bind"](t).(buildDNS)
	load(t, b, records...)
	srv, _ := newBuildServer(t, b, b, nil)
	w := call(srv, "GET", "/bootstrap/install/noble/x86_64/user-data", v6onlyIP, nil)
	m := tokenRE.FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil || m[1] != "http://[2001:db8:135::1]" {
		t.Fatalf("user-data: %d, no callback to boot.url_v6:\n%s", w.Code, w.Body)
	}
	if w := call(srv, "POST", "/done?token="+m[2], v6onlyIP, nil); w.Code != 200 {
		t.Fatalf("callback over IPv6: %d %s", w.Code, w.Body)
	}
	if got := txtOf(t, b, "v6only.example.com."); got != "distribution=noble state=installed" {
		t.Errorf("TXT = %q", got)
	}
}

// refusing sends updates with a key BIND does not know: every write is
// refused, reads go through.
type refusing struct {
	buildstate.DNS
	bad *dnsupdate.Client
}

func (r refusing) Apply(ctx context.Context, cs dnsupdate.ChangeSet) error {
	return r.bad.Apply(ctx, cs)
}

// TestDoneDNSRefuses: when DNS refuses the write, the callback gets 503
// with Retry-After and nothing changes; the answer file is still served.
func TestDoneDNSRefuses(t *testing.T) {
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	good, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: "vmprov-serve.", Algorithm: alg, Secret: lab.GenerateSecret()})
	if err != nil {
		t.Fatal(err)
	}
	load(t, good, records...)
	var log bytes.Buffer
	srv, _ := newBuildServer(t, good, refusing{DNS: good, bad: bad}, &log)
	w := call(srv, "GET", "/bootstrap/install/bookworm/x86_64/preseed.cfg", metalIP, nil)
	m := tokenRE.FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil {
		t.Fatalf("preseed.cfg while DNS refuses: %d\n%s", w.Code, w.Body)
	}
	if !strings.Contains(log.String(), "build state not marked installing") {
		t.Errorf("the refused mark is not logged:\n%s", log.String())
	}
	w = call(srv, "GET", "/done?token="+m[2], metalIP, nil)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("callback while DNS refuses: %d, Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if got := txtOf(t, good, "sm1.example.com."); got != "filename=metal.ipxe distribution=bookworm puppet_server=puppet.example.com" {
		t.Errorf("TXT = %q, want it unchanged", got)
	}
}

// TestDoneRace: three serve instances, each with its own DNS client and
// cache, get the same callback at once: all answer 200 and exactly one
// writes.
func TestDoneRace(t *testing.T) {
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	var srvs []*httpboot.Server
	var regs []*prometheus.Registry
	var first *dnsupdate.Client
	for range 3 {
		c, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = c
			load(t, c, records...)
		}
		srv, reg := newBuildServer(t, c, c, nil)
		srvs, regs = append(srvs, srv), append(regs, reg)
	}
	w := call(srvs[0], "GET", "/bootstrap/install/rocky9/x86_64/ks.cfg", rockyIP, nil)
	m := tokenRE.FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil {
		t.Fatalf("ks.cfg: %d\n%s", w.Code, w.Body)
	}
	before := soaSerial(t, first)
	codes := make([]int, len(srvs))
	var wg sync.WaitGroup
	for i, srv := range srvs {
		wg.Go(func() { codes[i] = call(srv, "GET", "/done?token="+m[2], rockyIP, nil).Code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("instance %d answered %d", i, c)
		}
	}
	if s := soaSerial(t, first); s != before+1 {
		t.Errorf("SOA serial %d → %d: want exactly one write", before, s)
	}
	if got := txtOf(t, first, "rocky.example.com."); got != "distribution=rocky9 state=installed" {
		t.Errorf("TXT = %q", got)
	}
	var total float64
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "vmprov_build_transitions_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "installed" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	if total != 1 {
		t.Errorf("instances counted %v transitions to installed, want 1", total)
	}
}

// TestPXEDustLeavesBuildRecordOut: state, build_id, firmware and hypervisor are not iPXE
// variables.
func TestPXEDustLeavesBuildRecordOut(t *testing.T) {
	b := backends()["fake"](t).(buildDNS)
	load(t, b, `built.example.com. 300 A 192.0.2.90`, `90.2.0.192.in-addr.arpa. 300 PTR built.example.com.`,
		`built.example.com. 300 TXT "distribution=core" "role=web" "state=installing" "build_id=0123abcd" "firmware=efi-secure" "hypervisor=hv2"`)
	srv, _ := newBuildServer(t, b, b, nil)
	w := call(srv, "GET", "/pxedust", "192.0.2.90", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "set role web\n") || strings.Contains(w.Body.String(), "state") || strings.Contains(w.Body.String(), "build_id") || strings.Contains(w.Body.String(), "firmware") || strings.Contains(w.Body.String(), "hypervisor") {
		t.Errorf("/pxedust: %d\n%s", w.Code, w.Body)
	}
	w = call(srv, "GET", "/bootstrap/install/default.ipxe", "192.0.2.90", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "role=${role}") || strings.Contains(w.Body.String(), "state=") || strings.Contains(w.Body.String(), "build_id") || strings.Contains(w.Body.String(), "firmware") || strings.Contains(w.Body.String(), "hypervisor") {
		t.Errorf("install/default.ipxe: %d\n%s", w.Code, w.Body)
	}
}
