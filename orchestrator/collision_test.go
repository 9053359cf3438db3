package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
)

// TestSLAACCollision: a random MAC whose address is already in DNS is
// replaced by a new one, both when the check sees it and when another
// create takes the reverse name between check and claim.
func TestSLAACCollision(t *testing.T) {
	cfg, err := config.Parse([]byte("dns: {zone: example.com.}\nvlans: [{id: 135, ipv6: '2001:db8:135::/64'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix("2001:db8:135::/64")
	macs := []string{"2a:4a:6a:00:00:01", "2a:4a:6a:00:00:02", "2a:4a:6a:00:00:03"}
	ptr := func(mac string) *dns.PTR {
		m, _ := net.ParseMAC(mac)
		a, _ := inventory.EUI64(prefix, m)
		return &dns.PTR{Hdr: dns.RR_Header{Name: inventory.ReverseName(a), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "other.example.com."}
	}
	const revZone = "5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
	fake := dnstest.NewFake("example.com.", revZone)
	// The first MAC's address is taken before we look.
	if err := fake.Apply(t.Context(), dnsupdate.ChangeSet{Zone: revZone, Add: []dns.RR{ptr(macs[0])}}); err != nil {
		t.Fatal(err)
	}
	// The second MAC's address is taken after the check, before the claim.
	fake.SetApplyHook(func(ctx2 context.Context, cs dnsupdate.ChangeSet) error {
		if cs.Zone == revZone && len(cs.Add) == 1 && cs.Add[0].Header().Name == ptr(macs[1]).Hdr.Name {
			fake.SetApplyHook(nil)
			return fake.Apply(ctx2, dnsupdate.ChangeSet{Zone: revZone, Add: []dns.RR{ptr(macs[1])}})
		}
		return nil
	})
	o, err := New(Config{Config: cfg, DNS: fake, Hypervisor: hvtest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	o.randMAC = func() (net.HardwareAddr, error) {
		m, _ := net.ParseMAC(macs[i%len(macs)])
		i++
		return m, nil
	}
	p, err := o.Create(t.Context(), Request{Name: "web6", VLAN: 135, Distro: "xenial"})
	if err != nil {
		t.Fatal(err)
	}
	if p.MAC != macs[2] {
		t.Errorf("MAC = %s, want %s after two collisions", p.MAC, macs[2])
	}
	ans, err := fake.Lookup(t.Context(), "web6.example.com.", dns.TypeAAAA)
	if err != nil || len(ans.Records) != 1 {
		t.Fatalf("AAAA = %v, %v", ans.Records, err)
	}
}

// TestReverseNameTaken: a PTR owner name taken when the claim runs fails it
// with a *ReverseNameError that names the owner, in the message create has
// always printed. An IPv6-only create retries with another MAC, except when
// removing its forward records failed too: a retry would then only find its
// own name taken.
func TestReverseNameTaken(t *testing.T) {
	cfg, err := config.Parse([]byte("dns: {zone: example.com.}\nvlans: [{id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: '2001:db8:135::/64'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	const rev4, rev6 = "2.0.192.in-addr.arpa.", "5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
	macs := []string{"2a:4a:6a:00:00:01", "2a:4a:6a:00:00:02"}
	owner6 := func(mac string) string {
		m, _ := net.ParseMAC(mac)
		a, _ := inventory.EUI64(netip.MustParsePrefix("2001:db8:135::/64"), m)
		return inventory.ReverseName(a)
	}
	owner4 := inventory.ReverseName(netip.MustParseAddr("192.0.2.9"))
	undoErr := errors.New("undo refused")
	for _, tt := range []struct {
		name      string
		ipv4      string
		owner     string // taken just before the claim writes it
		zone      string
		undoFails bool
		wantMAC   string // "": create fails
		claims    int    // forward claims
	}{
		{"ipv4", "192.0.2.9", owner4, rev4, false, "", 1},
		{"ipv6-only retries", "", owner6(macs[0]), rev6, false, macs[1], 2},
		{"ipv6-only undo fails", "", owner6(macs[0]), rev6, true, "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := dnstest.NewFake("example.com.", rev4, rev6)
			claims := 0
			fake.SetApplyHook(func(ctx context.Context, cs dnsupdate.ChangeSet) error {
				switch {
				case cs.Zone == "example.com." && len(cs.NameNotInUse) > 0:
					claims++
				case len(cs.NameNotInUse) == 1 && cs.NameNotInUse[0] == tt.owner:
					// Another host takes the address between check and claim.
					taken := &dns.PTR{Hdr: dns.RR_Header{Name: tt.owner, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "other.example.com."}
					return fake.Apply(ctx, dnsupdate.ChangeSet{Zone: tt.zone, Add: []dns.RR{taken}})
				case tt.undoFails && len(cs.Remove) > 0:
					return undoErr
				}
				return nil
			})
			o, err := New(Config{Config: cfg, DNS: fake, Hypervisor: hvtest.NewFake()})
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			o.randMAC = func() (net.HardwareAddr, error) {
				m, _ := net.ParseMAC(macs[i%len(macs)])
				i++
				return m, nil
			}
			r := Request{Name: "web9", VLAN: 135, Distro: "core"}
			if tt.ipv4 != "" {
				r.IPv4 = netip.MustParseAddr(tt.ipv4)
			}
			p, err := o.Create(t.Context(), r)
			if claims != tt.claims {
				t.Errorf("%d forward claims, want %d", claims, tt.claims)
			}
			if tt.wantMAC != "" {
				if err != nil || p.MAC != tt.wantMAC {
					t.Fatalf("Create = %v, %v; want MAC %s", p, err, tt.wantMAC)
				}
				return
			}
			want := "name exists: reverse name " + tt.owner + " already exists in zone " + tt.zone + ": the address is in use by another host"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to contain %q", err, want)
			}
			var rn *ReverseNameError
			if got := errors.As(err, &rn); got == tt.undoFails {
				t.Errorf("errors.As(*ReverseNameError) = %v, undo failing %v: %v", got, tt.undoFails, err)
			}
			if rn != nil && (rn.Name != tt.owner || rn.Zone != tt.zone || !errors.Is(err, ErrNameExists)) {
				t.Errorf("ReverseNameError = %+v, Is(ErrNameExists) = %v", rn, errors.Is(err, ErrNameExists))
			}
			if tt.undoFails != errors.Is(err, undoErr) {
				t.Errorf("err = %v: wraps the undo's failure = %v, want %v", err, !tt.undoFails, tt.undoFails)
			}
		})
	}
}

// TestClaimOutcomeUnknown: a claim that the server applied, whose answer
// was lost, and whose records cannot be read back either. A forward claim
// says so and how to look and clean up; a reverse claim is undone, its own
// PTR included, and leaves nothing.
func TestClaimOutcomeUnknown(t *testing.T) {
	cfg, err := config.Parse([]byte("dns: {zone: example.com.}\nvlans: [{id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	const rev4 = "2.0.192.in-addr.arpa."
	lost := fmt.Errorf("dns update for zone X: i/o timeout (after 3 attempts): %w", dnsupdate.ErrMaybeApplied)
	for _, tt := range []struct {
		zone string // whose first UPDATE is applied and its answer lost
		want []string
		left bool // the host's records are left, for destroy
	}{
		{"example.com.", []string{"may be in DNS now: look with `vmprov show web9`", "`vmprov destroy web9`", "reading the records back to tell also failed"}, true},
		{rev4, []string{"dns update of 9.2.0.192.in-addr.arpa. in zone " + rev4, "reading the records back to tell also failed"}, false},
	} {
		t.Run(tt.zone, func(t *testing.T) {
			fake := dnstest.NewFake("example.com.", rev4)
			done := false
			fake.SetApplyHook(func(ctx context.Context, cs dnsupdate.ChangeSet) error {
				if done || cs.Zone != tt.zone {
					return nil
				}
				done = true
				if err := fake.Apply(ctx, cs); err != nil {
					t.Errorf("apply: %v", err)
				}
				fake.FailNextLookup(dns.RcodeServerFailure) // the read-back
				return lost
			})
			o, err := New(Config{Config: cfg, DNS: fake, Hypervisor: hvtest.NewFake()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = o.Create(t.Context(), Request{Name: "web9", IPv4: netip.MustParseAddr("192.0.2.9"), Distro: "core"})
			if err == nil || errors.Is(err, ErrNameExists) {
				t.Fatalf("Create = %v, want an unknown outcome", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if err := o.Destroy(t.Context(), "web9"); tt.left != (err == nil) {
				t.Errorf("destroy = %v, want records left: %v", err, tt.left)
			}
			for _, q := range []struct {
				name  string
				qtype uint16
			}{{"web9.example.com.", dns.TypeA}, {"web9.example.com.", dns.TypeTXT}, {"9.2.0.192.in-addr.arpa.", dns.TypePTR}} {
				if ans, err := fake.Lookup(t.Context(), q.name, q.qtype); err != nil || len(ans.Records) > 0 {
					t.Errorf("%s %s left: %v, %v", q.name, dns.TypeToString[q.qtype], ans.Records, err)
				}
			}
		})
	}
}
