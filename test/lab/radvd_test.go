package lab_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

func TestRadvdSLAAC(t *testing.T) {
	lab.RequireRoot(t, "ip", "radvd")
	router := lab.NamespaceForTest(t)
	br := lab.Bridge{Name: "br135", IPv6: netip.MustParsePrefix("2001:db8:135::1/64")}
	if err := router.AddBridge(t.Context(), br); err != nil {
		t.Fatal(err)
	}
	host := lab.NamespaceForTest(t)
	mac, _ := net.ParseMAC("2a:4a:6a:74:55:06")
	if err := lab.AddVeth(t.Context(),
		lab.VethEnd{Netns: router.Name, Name: "vr0", Master: "br135"},
		lab.VethEnd{Netns: host.Name, Name: "eth0", MAC: mac}); err != nil {
		t.Fatal(err)
	}
	r, err := lab.StartRadvd(t.Context(), lab.RadvdConfig{
		Dir: t.TempDir(), Netns: router.Name, Interface: "br135", Prefix: netip.MustParsePrefix("2001:db8:135::/64"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })

	// docs/design.md, "Addressing": 2a:4a:6a:74:55:06 → ::284a:6aff:fe74:5506.
	const want = "2001:db8:135:0:284a:6aff:fe74:5506/64"
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err = host.IP(t.Context(), "-6", "addr", "show", "dev", "eth0"); err == nil && strings.Contains(out, want) {
			break
		}
	}
	if !strings.Contains(out, want) {
		t.Errorf("host did not configure %s by SLAAC:\n%s", want, out)
	}
	// The router's own bridge keeps only its static address.
	out, err = router.IP(t.Context(), "-6", "-o", "addr", "show", "dev", "br135", "scope", "global")
	if err != nil || strings.Count(out, "inet6") != 1 {
		t.Errorf("br135 global addresses: want only 2001:db8:135::1/64, got %v\n%s", err, out)
	}
}
