package tftp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// TestPerHostFilesInstalled: an installed host's GRUB and PXELINUX get
// their per-host files, which boot the local disk, and nothing is written.
func TestPerHostFilesInstalled(t *testing.T) {
	root, _ := testRoot(t)
	cfg := testConfig(t)
	d := web10(t)
	d.Host.Intent = d.Host.Intent.With(inventory.KeyState, string(inventory.StateInstalled)).With(inventory.KeyBuildID, "38b6bf72")
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d}}
	s, addr := startServer(t, Config{Root: root, Policy: pol, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg))})
	mac := inventory.HexHyp(hostMAC)
	for name, golden := range map[string]string{
		"boot/grub/x86_64-efi/grub.cfg-01-" + mac: "grub.cfg-web10-installed",
		"pxelinux.cfg/01-" + mac:                  "pxelinux.cfg-web10-installed",
	} {
		t.Run(golden, func(t *testing.T) {
			body, _, err := get(t, addr, name, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, golden, body)
		})
	}
	waitStats(t, s, "2 generated", func(st Stats) bool { return st.Generated == 2 })
}

// TestPerHostFileMarksInstalling: sending a host's installing grub.cfg or
// pxelinux.cfg moves its build state from install to installing in real
// BIND, as its answer file's fetch does (docs/design.md, "A host's life");
// reading it for vmprov explain (Read) changes nothing.
func TestPerHostFileMarksInstalling(t *testing.T) {
	lab.RequireRoot(t, "named")
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	dnsc, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	d := web10(t)
	d.Host.Intent = d.Host.Intent.With(inventory.KeyState, string(inventory.StateInstall)).With(inventory.KeyBuildID, "38b6bf72")
	txt := func() []string {
		t.Helper()
		a, err := dnsc.Lookup(t.Context(), d.Host.FQDN, dns.TypeTXT)
		if err != nil || len(a.Records) != 1 {
			t.Fatalf("TXT of %s: %+v, %v", d.Host.FQDN, a, err)
		}
		return a.Records[0].(*dns.TXT).Txt
	}
	root, _ := testRoot(t)
	cfg := testConfig(t)
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d}}
	build := buildstate.NewWriter(dnsc, lab.TestZone)
	s, addr := startServer(t, Config{Root: root, Policy: pol, Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg)),
		Build: build})
	mac := inventory.HexHyp(hostMAC)
	for _, file := range []string{"grub.cfg-01-" + mac, "pxelinux.cfg/01-" + mac} {
		t.Run(file, func(t *testing.T) {
			rr, err := dns.NewRR(d.Host.FQDN + ` 300 IN TXT "` + strings.Join(d.Host.Intent.TXT(), `" "`) + `"`)
			if err != nil {
				t.Fatal(err)
			}
			if err := dnsc.Apply(t.Context(), dnsupdate.ChangeSet{Zone: lab.TestZone,
				RemoveRRset: []dnsupdate.RRKey{{Name: d.Host.FQDN, Type: dns.TypeTXT}}, Add: []dns.RR{rr}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Read(t.Context(), file, netip.MustParseAddr("127.0.0.1")); err != nil {
				t.Fatal(err)
			}
			if got := txt(); !slices.Contains(got, "state=install") {
				t.Fatalf("after Read (vmprov explain): TXT %q, want state=install unchanged", got)
			}
			body, _, err := get(t, addr, file, 0)
			if err != nil || !strings.Contains(string(body), d.Host.FQDN[:len(d.Host.FQDN)-1]) {
				t.Fatalf("%s: %q, %v", file, body, err)
			}
			if got := txt(); !slices.Contains(got, "state=installing") || !slices.Contains(got, "build_id=38b6bf72") {
				t.Errorf("after the transfer: TXT %q, want state=installing and the same build_id", got)
			}
		})
	}
	// Both transfers are counted with the HTTP server's transitions.
	want := `
# HELP vmprov_build_transitions_total Build state changes this server wrote to DNS, by the state entered.
# TYPE vmprov_build_transitions_total counter
vmprov_build_transitions_total{to="installing"} 2
`
	if err := testutil.CollectAndCompare(build.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
