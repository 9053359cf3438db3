package e2e

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab/demo"
)

// TestNetbootIPv6Only creates a VM without --ip on VLAN 136, which has an
// IPv6 prefix and no IPv4 subnet (the lab's br136: radvd with the O flag,
// no DHCPv4 answers), and follows it: Debian's iPXE ROM takes a SLAAC
// address, asks `vmprov serve` over DHCPv6 for its boot file, chains
// /boot.ipxe, which goes on with the configuration iPXE has (no second
// DHCPv4 attempt), and reaches /pxedust from its SLAAC address, which the
// lab BIND confirms with AAAA and PTR records; then the bootstrap and
// install scripts and the kernel command line, with IPv6 URLs.
func TestNetbootIPv6Only(t *testing.T) {
	e := startDemo(t)
	b := boot(t, e, "demo6", "--vlan", "136", "--distro", "core",
		"--txt", "puppet_environment=e2e", "--memory", "256", "--vcpus", "1", "--disk-size", "1")
	h := b.Host

	// The plan: a random 2a:4a:6a MAC and prefix + modified EUI-64.
	mac, err := net.ParseMAC(h.MAC)
	if err != nil || len(mac) != 6 || mac[0] != 0x2a || mac[1] != 0x4a || mac[2] != 0x6a {
		t.Fatalf("MAC %q: want 2a:4a:6a:xx:xx:xx (%v)", h.MAC, err)
	}
	eui := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x36, 0, 0,
		mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	if h.IPv4.IsValid() || h.IPv6 != eui {
		t.Fatalf("created host IPv4 %v IPv6 %v, want no IPv4 and %v", h.IPv4, h.IPv6, eui)
	}
	if got := dig(t, e, "A", h.FQDN); len(got) != 0 {
		t.Errorf("A %s = %q, want none", h.FQDN, got)
	}
	if got, want := dig(t, e, "AAAA", h.FQDN), []string{eui.String()}; !cmp.Equal(got, want) {
		t.Errorf("AAAA %s = %q, want %q", h.FQDN, got, want)
	}
	if got, want := dig(t, e, "-x", eui.String()), []string{h.FQDN}; !cmp.Equal(got, want) {
		t.Errorf("PTR of %s = %q, want %q", eui, got, want)
	}

	// DHCP: DHCPv6 only, with the IPv6 boot URL; DHCPv4 never answered.
	const boot = "http://[2001:db8:136::1]:8080"
	if ev, ok := b.Timeline.First(demo.DHCP4, ""); ok {
		t.Errorf("DHCPv4 answered the IPv6-only VM: %s", ev)
	}
	reply, ok := b.Timeline.First(demo.DHCP6, "dhcp6 REPLY")
	if !ok {
		t.Fatalf("no DHCPv6 Reply logged for %s", h.MAC)
	}
	if reply.Line.Type != "INFORMATION-REQUEST" && reply.Line.Type != "REQUEST" {
		t.Errorf("DHCPv6 Reply to %q, want to an Information-request (O flag) or a Request (M flag)", reply.Line.Type)
	}
	if want := boot + "/boot.ipxe"; reply.Line.File != want || reply.Line.Class != "ipxe" {
		t.Errorf("DHCPv6 Reply boot file %q class %q, want %q class ipxe", reply.Line.File, reply.Line.Class, want)
	}
	// One DHCPv6 exchange, iPXE's own: /boot.ipxe goes on with the
	// address and boot URL iPXE has, without DHCPv4 again (a whole timeout
	// on this link) nor another round of router solicitation and DHCPv6.
	checkOneDHCP(t, b.Timeline, demo.DHCP6, "dhcp6 REPLY")
	logDHCPToPXEDust(t, b.Timeline, demo.DHCP6)

	// HTTP: every request from the SLAAC address, after the DHCPv6 Reply.
	var got []demo.Request
	for _, ev := range b.Timeline.Events {
		if ev.Kind != demo.HTTP {
			continue
		}
		if a, err := netip.ParseAddr(ev.Line.IP); err != nil || a != eui {
			t.Errorf("%s from %q, want %v", ev.Line.File, ev.Line.IP, eui)
		}
		if ev.At < reply.At {
			t.Errorf("%s requested before the DHCPv6 Reply", ev.Line.File)
		}
		got = append(got, demo.Request{Kind: ev.Kind, File: ev.Line.File, Status: ev.Line.Status})
	}
	want := []demo.Request{
		{Kind: demo.HTTP, File: "/boot.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/pxedust", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/example/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/install/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz", Status: 200},
		{Kind: demo.HTTP, File: "/assets/centos/7/os/x86_64/images/pxeboot/initrd.img", Status: 200},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HTTP requests of %v (-want +got):\n%s", eui, diff)
	}
	if !slices.ContainsFunc(b.Timeline.Events, func(ev demo.Event) bool {
		return ev.Kind == demo.HTTP && ev.Line.File == "/pxedust" && ev.Line.Host == "demo6.example.com"
	}) {
		t.Errorf("/pxedust was not answered for host demo6.example.com (FCrDNS of %v)", eui)
	}

	checkCmdline(t, b, boot, map[string]string{"puppet_environment": "e2e"})

	// vmprov explain predicts what serve answered this VM, byte for byte.
	checkExplain(t, e, b)
	if v := metric(t, e, "vmprov_dhcp6_replies_total", "type", "reply"); v < 1 {
		t.Errorf("/metrics vmprov_dhcp6_replies_total{type=\"reply\"} = %v after a DHCPv6 boot, want at least 1", v)
	}
}
