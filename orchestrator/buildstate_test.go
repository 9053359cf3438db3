package orchestrator_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
)

// zeros is a Rand that makes every build id 00000000, for tests that compare whole records.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestBuildStateWriters checks that host add writes state=install with a build id, that
// reinstall of an installed host writes state=install with a new build id (which revokes
// the installer's old callback token), that list and show report the state, and that
// --txt cannot set the build keys.
func TestBuildStateWriters(t *testing.T) {
	cfg, err := config.Parse([]byte("dns: {zone: example.com.}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fake := dnstestFake()
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: fake})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	p, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm1", MAC: mac, Distro: "bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	if p.State != "install" {
		t.Errorf("host add: state %q, want install", p.State)
	}
	first := txtOf(t, fake, "sm1.example.com.")
	id, _ := first.Get(inventory.KeyBuildID)
	if first.State() != inventory.StateInstall || len(id) != 8 {
		t.Fatalf("TXT after host add = %v, want state=install and an 8-digit build_id", first.TXT())
	}

	// serve marks it installed.
	hdr := dns.RR_Header{Name: "sm1.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}
	installed := first.With(inventory.KeyState, string(inventory.StateInstalled))
	if err := fake.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.com.",
		RemoveRRset: []dnsupdate.RRKey{{Name: hdr.Name, Type: dns.TypeTXT}}, Add: []dns.RR{&dns.TXT{Hdr: hdr, Txt: installed.TXT()}}}); err != nil {
		t.Fatal(err)
	}
	shown, err := o.ShowHost(t.Context(), "sm1")
	if err != nil || shown.State != "installed" {
		t.Errorf("host show: state %q, %v; want installed", shown.State, err)
	}
	list, err := o.ListHosts(t.Context())
	if err != nil || len(list) != 1 || list[0].State != "installed" {
		t.Errorf("host list = %+v, %v; want sm1 installed", list, err)
	}

	p, err = o.Reinstall(t.Context(), "sm1", "bookworm", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	again := txtOf(t, fake, "sm1.example.com.")
	newID, _ := again.Get(inventory.KeyBuildID)
	if again.State() != inventory.StateInstall || p.State != "install" || newID == id || len(newID) != 8 {
		t.Errorf("TXT after reinstall = %v (plan state %q), want state=install and a build_id other than %s", again.TXT(), p.State, id)
	}
	if diff := cmp.Diff(first.Without(inventory.KeyBuildID), again.Without(inventory.KeyBuildID)); diff != "" {
		t.Errorf("reinstall with the same distribution changed more than the build id (-want +got):\n%s", diff)
	}

	applied := fake.Applied()
	for _, kv := range []inventory.Var{{Key: "state", Value: "installed"}, {Key: "build_id", Value: "0123abcd"}} {
		_, err := o.Reinstall(t.Context(), "sm1", "bookworm", "", []inventory.Var{kv})
		if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), kv.Key+"="+kv.Value) {
			t.Errorf("reinstall --txt %s=%s: %v, want ErrInvalid naming it", kv.Key, kv.Value, err)
		}
	}
	if fake.Applied() != applied {
		t.Error("a refused reinstall wrote to DNS")
	}
}

func txtOf(t *testing.T, d interface {
	Lookup(context.Context, string, uint16) (dnsupdate.Answer, error)
}, name string) inventory.Intent {
	t.Helper()
	a, err := d.Lookup(t.Context(), name, dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	var txt []string
	for _, rr := range a.Records {
		txt = append(txt, rr.(*dns.TXT).Txt...)
	}
	in, err := inventory.ParseIntent(txt)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestReinstallNow: a network-first VM is reinstalled and power-cycled; a
// bare-metal host (no domain) is refused before anything changes.
func TestReinstallNow(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:53", "default")
	fake := dnstestFake()
	hv := hvtest.NewFake()
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: fake, Hypervisor: hv})
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.Create(t.Context(), orchestrator.Request{Name: "web1", IPv4: netip.MustParseAddr("192.0.2.30"), Distro: "bookworm",
		Boot: []string{"network", "hd"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"network", "hd"}, p.Boot); diff != "" {
		t.Errorf("plan boot order (-want +got):\n%s", diff)
	}
	if i, j := strings.Index(p.DomainXML, `<boot dev="network">`), strings.Index(p.DomainXML, `<boot dev="hd">`); i < 0 || j < i {
		t.Errorf("domain XML does not boot from the network first:\n%s", p.DomainXML)
	}
	before := txtOf(t, fake, "web1.example.com.")
	calls := len(hv.Calls())
	p, err = o.ReinstallNow(t.Context(), "web1", "trixie", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []hvtest.Call
	for _, c := range hv.Calls()[calls:] {
		if c.Op == hvtest.OpDestroy || c.Op == hvtest.OpStart {
			got = append(got, c)
		}
	}
	if diff := cmp.Diff([]hvtest.Call{{Op: hvtest.OpDestroy, Name: "web1"}, {Op: hvtest.OpStart, Name: "web1"}}, got); diff != "" {
		t.Errorf("power cycle (-want +got):\n%s", diff)
	}
	after := txtOf(t, fake, "web1.example.com.")
	if d, _ := after.Get("distribution"); d != "trixie" || after.State() != inventory.StateInstall || p.Power != "running" || p.State != "install" {
		t.Errorf("after reinstall --now: TXT %v, plan %+v", after.TXT(), p)
	}
	if a, b := after.Get(inventory.KeyBuildID); a == mustGet(before, inventory.KeyBuildID) || !b {
		t.Errorf("build id kept: %v → %v", before.TXT(), after.TXT())
	}

	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	if _, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm1", MAC: mac, Distro: "bookworm"}); err != nil {
		t.Fatal(err)
	}
	applied, calls := fake.Applied(), len(hv.Calls())
	_, err = o.ReinstallNow(t.Context(), "sm1", "trixie", "", nil)
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "sm1 has no domain") || !strings.Contains(err.Error(), "power control") {
		t.Errorf("reinstall --now of bare metal: %v, want ErrInvalid saying sm1 has no domain and power control is not configured", err)
	}
	if fake.Applied() != applied {
		t.Error("a refused reinstall --now wrote to DNS")
	}
	for _, c := range hv.Calls()[calls:] {
		if c.Op != hvtest.OpGet {
			t.Errorf("a refused reinstall --now called %v", c)
		}
	}
}

func mustGet(in inventory.Intent, key string) string {
	v, _ := in.Get(key)
	return v
}
