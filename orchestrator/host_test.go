package orchestrator_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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

// TestDestroyBareMetal: destroy of a host made with host add removes all of
// it, its _mac CNAME included, so that its MAC can be registered again; and
// a _mac CNAME left alone is found by destroy and host remove and removed.
func TestDestroyBareMetal(t *testing.T) {
	e := newEnv(t, "default")
	hv := hvtest.NewFake()
	o := e.orchestrator(t, hv)
	ctx := t.Context()
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	add := func(name string) {
		t.Helper()
		_, err := o.AddHost(ctx, orchestrator.HostRequest{Name: name, MAC: mac, IPv4: netip.MustParseAddr("192.0.2.55"),
			IPv6: netip.MustParseAddr("2001:db8:135::55"), Distro: "core", Script: "test.ipxe"})
		if err != nil {
			t.Fatalf("host add %s: %v", name, err)
		}
	}
	before := zoneContents(t, e.dns)

	add("sm1")
	if err := o.Destroy(ctx, "sm1"); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if diff := cmp.Diff(before, zoneContents(t, e.dns)); diff != "" {
		t.Errorf("destroy left records (-before +after):\n%s", diff)
	}
	if calls := hv.Calls(); slices.ContainsFunc(calls, func(c hvtest.Call) bool { return c.Op != hvtest.OpGet }) {
		t.Errorf("destroy of a bare-metal host changed the hypervisor: %v", calls)
	}
	// The MAC is free again, under any name.
	add("sm2")
	if err := o.RemoveHost(ctx, "sm2"); err != nil {
		t.Fatal(err)
	}

	// A _mac CNAME whose host records are gone (what destroy used to
	// leave) is found by name and removed by either command.
	for _, remove := range []struct {
		name string
		run  func(name string) error
	}{
		{"destroy", func(name string) error { return o.Destroy(ctx, name) }},
		{"host remove", func(name string) error { return o.RemoveHost(ctx, name) }},
	} {
		t.Run(remove.name, func(t *testing.T) {
			cname := &dns.CNAME{Hdr: dns.RR_Header{Name: "00-25-90-96-c4-9a._mac.example.com.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "sm3.example.com."}
			if err := e.dns.Apply(ctx, dnsupdate.ChangeSet{Zone: "example.com.", Add: []dns.RR{cname}}); err != nil {
				t.Fatal(err)
			}
			if err := remove.run("sm3"); err != nil {
				t.Fatalf("%s of a lone _mac CNAME: %v", remove.name, err)
			}
			if diff := cmp.Diff(before, zoneContents(t, e.dns)); diff != "" {
				t.Errorf("%s left records (-before +after):\n%s", remove.name, diff)
			}
			if err := remove.run("sm3"); !errors.Is(err, orchestrator.ErrNotFound) {
				t.Errorf("second %s = %v, want ErrNotFound", remove.name, err)
			}
		})
	}
}

// TestShowHost: host show gives the MAC and the _mac CNAME that host add
// printed, in the same records, and nothing for a name DNS does not hold.
func TestShowHost(t *testing.T) {
	e := newEnv(t, "default")
	o := e.orchestrator(t, nil)
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	added, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm1", MAC: mac, IPv4: netip.MustParseAddr("192.0.2.55"),
		Distro: "core", Script: "test.ipxe"})
	if err != nil {
		t.Fatal(err)
	}
	shown, err := o.ShowHost(t.Context(), "sm1")
	if err != nil {
		t.Fatal(err)
	}
	// The JSON form holds every field shown.
	jsonOf := func(p *orchestrator.Plan) string {
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if diff := cmp.Diff(jsonOf(added), jsonOf(shown)); diff != "" {
		t.Errorf("host show differs from host add (-add +show):\n%s", diff)
	}
	cname := inventory.Record{Name: "00-25-90-96-c4-9a._mac.example.com.", Type: "CNAME", Data: "sm1.example.com."}
	if shown.MAC != "00:25:90:96:c4:9a" || !slices.Contains(shown.Records, cname) {
		t.Errorf("host show = %+v, want the MAC and its CNAME", shown)
	}
	if _, err := o.ShowHost(t.Context(), "sm9"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("host show of an unknown name = %v, want ErrNotFound", err)
	}
}

// TestHostAddVLANs: host add checks the host itself, whatever VLANs are
// configured: an IPv4 address is accepted when the first VLAN is IPv4-only
// (the check once rewrote the request into an IPv6-only VM on the first
// VLAN), and with no VLAN at all an invalid name or distribution is refused
// (the check once dropped its errors then) and nothing is written.
func TestHostAddVLANs(t *testing.T) {
	e := newEnv(t, "default")
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	for _, tt := range []struct {
		name  string
		vlans string
		r     orchestrator.HostRequest
		want  []string // the error says these; nil: added
	}{
		{"--ip, first VLAN IPv4-only", "vlans: [{id: 140, ipv4: 198.51.100.0/24}, {id: 135, ipv4: 192.0.2.0/24, ipv6: '2001:db8:135::/64'}]",
			orchestrator.HostRequest{Name: "sm1", IPv4: netip.MustParseAddr("192.0.2.55"), Distro: "core"}, nil},
		{"--ip and --ipv6, first VLAN IPv4-only", "vlans: [{id: 140, ipv4: 198.51.100.0/24}]",
			orchestrator.HostRequest{Name: "sm1", IPv4: netip.MustParseAddr("192.0.2.55"), IPv6: netip.MustParseAddr("2001:db8:135::55"), Distro: "core"}, nil},
		{"--ipv6 only, first VLAN IPv4-only", "vlans: [{id: 140, ipv4: 198.51.100.0/24}]",
			orchestrator.HostRequest{Name: "sm1", IPv6: netip.MustParseAddr("2001:db8:135::55"), Distro: "core"}, nil},
		{"no VLANs", "", orchestrator.HostRequest{Name: "sm1", IPv4: netip.MustParseAddr("192.0.2.55"), Distro: "core"}, nil},
		{"no VLANs, invalid name", "", orchestrator.HostRequest{Name: "Bad_Name", IPv4: netip.MustParseAddr("192.0.2.55"), Distro: "core"}, []string{"Bad_Name"}},
		{"no VLANs, unknown distribution", "", orchestrator.HostRequest{Name: "sm1", IPv4: netip.MustParseAddr("192.0.2.55"), Distro: "plan9"}, []string{"--distro", `"plan9"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(fmt.Sprintf("dns: {server: %q, zone: example.com., ttl: 60}\n%s\n", e.bind.Addr(), tt.vlans)))
			if err != nil {
				t.Fatal(err)
			}
			o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: e.dns, Rand: zeros{}})
			if err != nil {
				t.Fatal(err)
			}
			before := zoneContents(t, e.dns)
			tt.r.MAC = mac
			p, err := o.AddHost(t.Context(), tt.r)
			if tt.want != nil {
				if !errors.Is(err, orchestrator.ErrInvalid) {
					t.Fatalf("host add = %v, want ErrInvalid", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if diff := cmp.Diff(before, zoneContents(t, e.dns)); diff != "" {
					t.Errorf("a refused host add changed DNS (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("host add: %v", err)
			}
			if p.IPv4 != nil && *p.IPv4 != tt.r.IPv4 || p.MAC != mac.String() {
				t.Errorf("host add = %+v", p)
			}
			if got := e.records(t, "sm1.example.com.", dns.TypeTXT); !slices.Equal(got, []string{`"distribution=core" "state=install" "build_id=00000000"`}) {
				t.Errorf("TXT = %v", got)
			}
			if err := o.RemoveHost(t.Context(), "sm1"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, zoneContents(t, e.dns)); diff != "" {
				t.Errorf("host remove left records (-before +after):\n%s", diff)
			}
		})
	}
}
