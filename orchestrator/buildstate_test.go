package orchestrator_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
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

func txtOf(t *testing.T, d *dnstest.Fake, name string) inventory.Intent {
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
