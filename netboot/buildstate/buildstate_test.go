package buildstate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/test/lab"
)

var secret = []byte("a secret all serve instances share")

func intent(t *testing.T, txt ...string) inventory.Intent {
	t.Helper()
	in, err := inventory.ParseIntent(txt)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestToken(t *testing.T) {
	in := intent(t, "distribution=bookworm", "state=install", "build_id=0123abcd")
	tok := buildstate.Token(secret, "Web1.Example.com.", in)
	if !strings.HasPrefix(tok, "web1.example.com:") || len(tok) != len("web1.example.com:")+64 {
		t.Fatalf("Token = %q, want web1.example.com: and 64 hex digits", tok)
	}
	name, sum, err := buildstate.ParseToken(tok)
	if err != nil || name != "web1.example.com." {
		t.Fatalf("ParseToken(%q) = %q, %v", tok, name, err)
	}
	for _, tt := range []struct {
		name string
		fqdn string
		in   inventory.Intent
		want bool
	}{
		{"same intent", "web1.example.com.", in, true},
		{"state changed", "web1.example.com.", in.With("state", "installing"), true},
		{"installed", "web1.example.com.", in.With("state", "installed"), true},
		{"record without state", "web1.example.com.", in.Without("state"), true},
		{"reinstalled: new build id", "web1.example.com.", in.With("build_id", "89abcdef"), false},
		{"other distribution", "web1.example.com.", in.With("distribution", "trixie"), false},
		{"variable added", "web1.example.com.", in.With("role", "web"), false},
		{"other host", "web2.example.com.", in, false},
	} {
		if got := buildstate.Verify(secret, tt.fqdn, tt.in, sum); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
	if buildstate.Verify([]byte("another secret"), "web1.example.com.", in, sum) {
		t.Error("a token verifies under another secret")
	}

	hex := strings.Repeat("ab", 32)
	for _, tt := range []struct{ tok, want string }{
		{"", "empty"},
		{hex, "no ':'"},
		{"web1.example.com:abc", "3 characters"},
		{"web1.example.com:" + strings.Repeat("zz", 32), "hex"},
		{"web1.example.com:" + strings.ToUpper(hex), "lower-case"},
		{"web1:" + hex, `"web1" is not a host name`},
		{"web 1.example.com:" + hex, "not a host name"},
		{"web1.example.com.:" + hex, "not a host name"},
	} {
		_, _, err := buildstate.ParseToken(tt.tok)
		if !errors.Is(err, buildstate.ErrMalformedToken) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseToken(%q) = %v, want ErrMalformedToken saying %q", tt.tok, err, tt.want)
		}
	}
}

// backends are the DNS servers the writer runs against: a real BIND and the
// conformance-tested fake.
func backends() map[string]func(t *testing.T) buildstate.DNS {
	return map[string]func(t *testing.T) buildstate.DNS{
		"bind": func(t *testing.T) buildstate.DNS {
			b := lab.BINDForTest(t)
			name, alg, s := b.TSIG()
			c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: s})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"fake": func(*testing.T) buildstate.DNS { return dnstest.NewFake(lab.TestZone) },
	}
}

const host = "web1.example.com."

func setTXT(t *testing.T, d buildstate.DNS, txt ...string) {
	t.Helper()
	hdr := dns.RR_Header{Name: host, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}
	err := d.Apply(t.Context(), dnsupdate.ChangeSet{Zone: lab.TestZone,
		RemoveRRset: []dnsupdate.RRKey{{Name: host, Type: dns.TypeTXT}}, Add: []dns.RR{&dns.TXT{Hdr: hdr, Txt: txt}}})
	if err != nil {
		t.Fatal(err)
	}
}

func getTXT(t *testing.T, d buildstate.DNS) string { return dnstest.TXT(t, d, host) }

func serial(t *testing.T, d buildstate.DNS) uint32 { return dnstest.Serial(t, d, lab.TestZone) }

// TestWriter walks a host through its states and checks what is written
// and what is left alone.
func TestWriter(t *testing.T) {
	for name, start := range backends() {
		t.Run(name, func(t *testing.T) {
			d := start(t)
			w := buildstate.NewWriter(d, lab.TestZone)
			setTXT(t, d, "distribution=bookworm", "build_id=0123abcd")
			installing := buildstate.Change{FQDN: host, To: inventory.StateInstalling, From: []inventory.State{inventory.StateInstall}}
			installed := buildstate.Change{FQDN: host, To: inventory.StateInstalled, From: []inventory.State{inventory.StateInstall, inventory.StateInstalling}}

			res, err := w.Apply(t.Context(), installing)
			if err != nil || !res.Changed || res.From != inventory.StateInstall || res.To != inventory.StateInstalling {
				t.Fatalf("install → installing: %+v, %v", res, err)
			}
			if got, want := getTXT(t, d), "distribution=bookworm build_id=0123abcd state=installing"; got != want {
				t.Errorf("TXT = %q, want %q", got, want)
			}
			// The installer fetches its answer file again: nothing to do.
			before := serial(t, d)
			if res, err := w.Apply(t.Context(), installing); err != nil || res.Changed || res.To != inventory.StateInstalling {
				t.Errorf("installing again: %+v, %v; want unchanged", res, err)
			}
			refused := errors.New("refused by Check")
			res, err = w.Apply(t.Context(), buildstate.Change{FQDN: host, To: inventory.StateInstalled, From: installed.From,
				Check: func(inventory.Intent) error { return refused }})
			if !errors.Is(err, refused) || res.Changed {
				t.Errorf("refused by Check: %+v, %v", res, err)
			}
			if s := serial(t, d); s != before {
				t.Errorf("serial %d → %d: unchanged and refused changes wrote", before, s)
			}
			res, err = w.Apply(t.Context(), installed)
			if err != nil || !res.Changed || res.From != inventory.StateInstalling || res.To != inventory.StateInstalled {
				t.Fatalf("installing → installed: %+v, %v", res, err)
			}
			if res, err := w.Apply(t.Context(), installed); err != nil || res.Changed || res.To != inventory.StateInstalled {
				t.Errorf("installed again: %+v, %v; want unchanged", res, err)
			}
			// An installed host that fetches an answer file stays installed.
			if res, err := w.Apply(t.Context(), installing); err != nil || res.Changed || res.To != inventory.StateInstalled {
				t.Errorf("installing an installed host: %+v, %v; want unchanged", res, err)
			}
			if got, want := getTXT(t, d), "distribution=bookworm build_id=0123abcd state=installed"; got != want {
				t.Errorf("TXT = %q, want %q", got, want)
			}

			// No intent, or one serve would not render: nothing written.
			setTXT(t, d, "distribution=plan9")
			if _, err := w.Apply(t.Context(), installed); !errors.Is(err, buildstate.ErrNoIntent) || !strings.Contains(err.Error(), "plan9") {
				t.Errorf("invalid intent: %v, want ErrNoIntent naming plan9", err)
			}
			if _, err := w.Apply(t.Context(), buildstate.Change{FQDN: "nosuch.example.com.", To: inventory.StateInstalled, From: installed.From}); !errors.Is(err, buildstate.ErrNoIntent) || !strings.Contains(err.Error(), "nosuch.example.com.") {
				t.Errorf("unknown host: %v, want ErrNoIntent naming it", err)
			}
		})
	}
}

// reinstaller rewrites the TXT record (a vmprov reinstall) between the
// writer's read and its update, once.
type reinstaller struct {
	buildstate.DNS
	t    *testing.T
	once sync.Once
}

func (r *reinstaller) Apply(ctx context.Context, cs dnsupdate.ChangeSet) error {
	r.once.Do(func() { setTXT(r.t, r.DNS, "distribution=trixie", "state=install", "build_id=89abcdef") })
	return r.DNS.Apply(ctx, cs)
}

// TestReinstallWins: a callback whose read precedes a reinstall fails its
// prerequisite, reads the new intent, and its token no longer holds it.
func TestReinstallWins(t *testing.T) {
	for name, start := range backends() {
		t.Run(name, func(t *testing.T) {
			d := start(t)
			setTXT(t, d, "distribution=bookworm", "state=installing", "build_id=0123abcd")
			tok := buildstate.Token(secret, host, intent(t, "distribution=bookworm", "build_id=0123abcd"))
			_, sum, err := buildstate.ParseToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			w := buildstate.NewWriter(&reinstaller{DNS: d, t: t}, lab.TestZone)
			revoked := errors.New("revoked")
			res, err := w.Apply(t.Context(), buildstate.Change{FQDN: host, To: inventory.StateInstalled,
				From: []inventory.State{inventory.StateInstall, inventory.StateInstalling},
				Check: func(in inventory.Intent) error {
					if !buildstate.Verify(secret, host, in, sum) {
						return revoked
					}
					return nil
				}})
			if !errors.Is(err, revoked) || res.Changed {
				t.Errorf("late callback: %+v, %v; want the reinstall's intent to revoke its token", res, err)
			}
			if got, want := getTXT(t, d), "distribution=trixie state=install build_id=89abcdef"; got != want {
				t.Errorf("TXT = %q, want the reinstall's %q", got, want)
			}
		})
	}
}

// TestRace: writers with their own DNS clients (serve instances) apply one
// change at once: exactly one writes it, the others find it done.
func TestRace(t *testing.T) {
	b := lab.BINDForTest(t)
	name, alg, s := b.TSIG()
	var ws []*buildstate.Writer
	var first buildstate.DNS
	for range 3 {
		c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: s})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = c
		}
		ws = append(ws, buildstate.NewWriter(c, lab.TestZone))
	}
	setTXT(t, first, "distribution=bookworm", "state=installing", "build_id=0123abcd")
	before := serial(t, first)
	results := make([]buildstate.Result, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			results[i], errs[i] = w.Apply(t.Context(), buildstate.Change{FQDN: host, To: inventory.StateInstalled,
				From: []inventory.State{inventory.StateInstall, inventory.StateInstalling}})
		})
	}
	wg.Wait()
	changed := 0
	for i := range ws {
		if errs[i] != nil || results[i].To != inventory.StateInstalled {
			t.Errorf("writer %d: %+v, %v", i, results[i], errs[i])
		}
		if results[i].Changed {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d writers report the change, want 1", changed)
	}
	if s := serial(t, first); s != before+1 {
		t.Errorf("SOA serial %d → %d: want exactly one update", before, s)
	}
}
