package orchestrator

import (
	"context"
	"net"
	"net/netip"
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
