package dhcp4

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

const testConfigYAML = `
dns: {zone: example.com.}
boot: {url: "http://boot.example.com"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, dns_servers: [192.0.2.1, "2001:db8:135::1"]}
  - {id: 136, ipv4: 198.51.100.0/24, gateway: 198.51.100.1, dns_servers: [198.51.100.53]}
serve: {lease_time: 3600}
bsdp: {images: [{id: 0x81000089, name: The-Image, bootfile: mactel64.efi}]}
`

// testServerConfig maps cfg onto a Config as vmprov serve does.
func testServerConfig(cfg *config.Config, p netboot.Policy, log *slog.Logger) Config {
	return Config{DHCPConfig: serveconfig.DHCP(cfg, p, log), ServerIPv4: cfg.Serve.ServerIPv4,
		BSDPPriority: cfg.BSDP.Priority, BSDPImages: serveconfig.BSDPImages(cfg)}
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakePolicy is the netboot.Policy of these tests: a table of hosts by MAC,
// with each host's VLAN found from its address as the DNS policy does.
type fakePolicy struct {
	cfg   *config.Config
	hosts map[string]inventory.Host
	err   error // returned for every client when set

	mu      sync.Mutex
	clients []netboot.Client
}

func (p *fakePolicy) Decide(_ context.Context, c netboot.Client) (netboot.Decision, error) {
	p.mu.Lock()
	p.clients = append(p.clients, c)
	p.mu.Unlock()
	if p.err != nil {
		return netboot.Decision{}, p.err
	}
	h, ok := p.hosts[c.MAC.String()]
	if !ok {
		return netboot.Decision{}, fmt.Errorf("fake policy: %s: %w", c.MAC, netboot.ErrUnknown)
	}
	v, _ := serveconfig.VLANs(p.cfg).Of(h.IPv4)
	return netboot.Decision{Host: h, VLAN: v, TTL: time.Minute}, nil
}

// strictHost is a VM on VLAN 135 with the strict MAC of its address.
func strictHost(t testing.TB, name string, ip string) inventory.Host {
	t.Helper()
	a := netip.MustParseAddr(ip)
	v, _ := testConfig(t).VLANOf(a)
	mac, err := inventory.DefaultScheme().StrictMAC(v.ID, a)
	if err != nil {
		t.Fatal(err)
	}
	return inventory.Host{Name: name, FQDN: name + ".example.com.", MAC: mac, IPv4: a}
}

func newTestPolicy(t testing.TB, cfg *config.Config) *fakePolicy {
	p := &fakePolicy{cfg: cfg, hosts: map[string]inventory.Host{}}
	for i, name := range []string{"pxe10", "pxe11", "http12", "efi13", "nc14", "mac15"} {
		h := strictHost(t, name, fmt.Sprintf("192.0.2.%d", 10+i))
		p.hosts[h.MAC.String()] = h
	}
	h := strictHost(t, "other", "198.51.100.20")
	p.hosts[h.MAC.String()] = h
	return p
}

func newTestServer(t testing.TB) (*Server, *fakePolicy) {
	t.Helper()
	cfg := testConfig(t)
	p := newTestPolicy(t, cfg)
	s, err := New(testServerConfig(cfg, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// hostRecords returns the DNS records of the hosts a fakePolicy knows: A,
// PTR and a TXT boot intent, as vmprov create writes them.
func hostRecords(p *fakePolicy) []dns.RR {
	var rrs []dns.RR
	for _, h := range p.hosts {
		for _, s := range []string{
			fmt.Sprintf("%s 300 IN A %s", h.FQDN, h.IPv4),
			fmt.Sprintf("%s 300 IN PTR %s", inventory.ReverseName(h.IPv4), h.FQDN),
			fmt.Sprintf(`%s 300 IN TXT "filename=test.ipxe" "distribution=core"`, h.FQDN),
		} {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			rrs = append(rrs, rr)
		}
	}
	return rrs
}

// loadRecords adds rrs to u, one UPDATE per zone.
func loadRecords(t testing.TB, u dnsupdate.Updater, zones []string, rrs []dns.RR) {
	t.Helper()
	byZone := map[string][]dns.RR{}
	for _, rr := range rrs {
		z := ""
		for _, c := range zones {
			if dns.IsSubDomain(c, rr.Header().Name) && len(c) > len(z) {
				z = c
			}
		}
		if z == "" {
			t.Fatalf("no zone for %s", rr)
		}
		byZone[z] = append(byZone[z], rr)
	}
	for z, rrs := range byZone {
		if err := u.Apply(context.Background(), dnsupdate.ChangeSet{Zone: z, Add: rrs}); err != nil {
			t.Fatalf("load %s: %v", z, err)
		}
	}
}

// policies are the netboot.Policy implementations the protocol tests run
// against: the in-test table, and vmprov's DNS policy reading the same
// hosts from dnstest.Fake (the DNS fake that passes dnsupdate's
// conformance suite).
func policies() map[string]func(t testing.TB, cfg *config.Config) netboot.Policy {
	return map[string]func(t testing.TB, cfg *config.Config) netboot.Policy{
		"table": func(t testing.TB, cfg *config.Config) netboot.Policy { return newTestPolicy(t, cfg) },
		"dns": func(t testing.TB, cfg *config.Config) netboot.Policy {
			zones := []string{"example.com.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa."}
			f := dnstest.NewFake(zones...)
			loadRecords(t, f, zones, hostRecords(newTestPolicy(t, cfg)))
			return netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), f)
		},
	}
}

// forEachPolicy runs fn with a Server for each of policies().
func forEachPolicy(t *testing.T, fn func(t *testing.T, s *Server)) {
	for name, newPolicy := range policies() {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			s, err := New(testServerConfig(cfg, newPolicy(t, cfg), nil))
			if err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

var (
	serverIP = netip.MustParseAddr("192.0.2.1")
	ingress  = Ingress{Interface: "br135", VLAN: 135, ServerIP: serverIP}
	// serverLink is an interface of no VLAN that relays and the VLANs'
	// routers reach.
	serverLink = Ingress{Interface: "eth9", ServerIP: netip.MustParseAddr("203.0.113.1")}
)

// macOf returns the strict MAC of 192.0.2.x on VLAN 135.
func macOf(x byte) net.HardwareAddr { return net.HardwareAddr{2, 4, 6, 8, 0x72, x} }

// summary is what tests compare of a reply.
type summary struct {
	Type                         string
	YIAddr, CIAddr, SIAddr       string
	GIAddr                       string
	Broadcast                    bool
	File                         string
	Mask, Router, DNS            string
	Domain, Host, ServerID, TFTP string
	Lease                        string
	VendorClass                  string
	Options                      []uint8
}

func summarize(r *dhcpv4.DHCPv4) *summary {
	if r == nil {
		return nil
	}
	s := &summary{
		Type:        r.MessageType().String(),
		YIAddr:      r.YourIPAddr.String(),
		CIAddr:      r.ClientIPAddr.String(),
		SIAddr:      r.ServerIPAddr.String(),
		GIAddr:      r.GatewayIPAddr.String(),
		Broadcast:   r.IsBroadcast(),
		File:        r.BootFileName,
		Domain:      r.DomainName(),
		Host:        r.HostName(),
		TFTP:        r.TFTPServerName(),
		VendorClass: r.ClassIdentifier(),
	}
	if m := r.SubnetMask(); m != nil {
		s.Mask = net.IP(m).String()
	}
	s.Router = fmt.Sprint(r.Router())
	s.DNS = fmt.Sprint(r.DNS())
	if id := r.ServerIdentifier(); id != nil {
		s.ServerID = id.String()
	}
	if r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		s.Lease = r.IPAddressLeaseTime(0).String()
	}
	for code := range 256 {
		if r.Options.Has(dhcpv4.GenericOptionCode(code)) {
			s.Options = append(s.Options, uint8(code))
		}
	}
	return s
}

// request builds a request from mac with a fixed xid.
func request(t testing.TB, mt dhcpv4.MessageType, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{0xde, 0xad, 0xbe, 0xef}),
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(mt),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fromTestdata(t testing.TB, name string) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := dhcpv4.FromBytes(readTestdata(t, name))
	if err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return r
}

// pxeBIOSFirmware is the discover of a BIOS PXE ROM that is not iPXE: the
// recorded iPXE BIOS discover (vendor class PXEClient:Arch:00000:UNDI:002001)
// without iPXE's own options 77 (user class) and 175.
func pxeBIOSFirmware(t testing.TB) *dhcpv4.DHCPv4 {
	r := fromTestdata(t, "ipxe-bios-discover.bin")
	r.Options.Del(dhcpv4.OptionUserClassInformation)
	r.Options.Del(dhcpv4.GenericOptionCode(175))
	return r
}

func TestHandle(t *testing.T) {
	want := func(s summary) *summary {
		// Defaults of an answer to a known client on VLAN 135.
		if s.Mask == "" {
			s.Mask = "255.255.255.0"
		}
		if s.Router == "" {
			s.Router = "[192.0.2.1]"
		}
		if s.DNS == "" {
			s.DNS = "[192.0.2.1]"
		}
		if s.Domain == "" {
			s.Domain = "example.com"
		}
		if s.ServerID == "" {
			s.ServerID = "192.0.2.1"
		}
		for _, f := range []*string{&s.YIAddr, &s.CIAddr, &s.SIAddr, &s.GIAddr} {
			if *f == "" {
				*f = "0.0.0.0"
			}
		}
		return &s
	}
	relay := netip.MustParseAddr("198.51.100.1")
	opt82 := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("port7")))
	tests := []struct {
		name string
		req  func(t testing.TB) *dhcpv4.DHCPv4
		in   Ingress
		want *summary
	}{
		{
			name: "ipxe bios discover gets the boot script URL",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-bios-discover.bin") },
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.10", File: "http://boot.example.com/boot.ipxe", Host: "pxe10", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 61, 175}}),
		},
		{
			name: "pxe bios firmware gets undionly.kpxe over TFTP",
			req:  pxeBIOSFirmware,
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.10", SIAddr: "192.0.2.1", TFTP: "192.0.2.1", File: "undionly.kpxe", Host: "pxe10", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 61, 66}}),
		},
		{
			name: "uefi x64 pxe firmware gets snponly.efi over TFTP, no PXEClient echo",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-pxe-discover.bin") },
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.11", SIAddr: "192.0.2.1", Broadcast: true, TFTP: "192.0.2.1", File: "snponly.efi", Host: "pxe11", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 66}}),
		},
		{
			name: "uefi http boot gets the loader URL and HTTPClient",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-http-discover.bin") },
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.12", Broadcast: true, File: "http://boot.example.com/ipxe/snponly.efi", Host: "http12", Lease: "1h0m0s", VendorClass: "HTTPClient", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 60}}),
		},
		{
			name: "ipxe efi discover gets the boot script URL",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-efi-discover.bin") },
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.13", File: "http://boot.example.com/boot.ipxe", Host: "efi13", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 61, 175}}),
		},
		{
			name: "plain client gets an address only",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "nclient4-discover.bin") },
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.14", Host: "nc14", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}}),
		},
		{
			name: "unknown MAC gets nothing",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return request(t, dhcpv4.MessageTypeDiscover, macOf(99)) },
		},
		{
			name: "pxe firmware of an unlisted architecture gets an address only",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, macOf(10), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00002:UNDI:002001")))
			},
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.10", Host: "pxe10", Lease: "1h0m0s", VendorClass: "", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}}),
		},
		{
			name: "arch from the vendor class when option 93 is missing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, macOf(10), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")))
			},
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.10", SIAddr: "192.0.2.1", TFTP: "192.0.2.1", File: "snponly.efi", Host: "pxe10", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 66}}),
		},
		{
			name: "RFC 3004 user class iPXE",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, macOf(10), dhcpv4.WithUserClass("iPXE", true), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")))
			},
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.10", File: "http://boot.example.com/boot.ipxe", Host: "pxe10", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 175}}),
		},
		{
			name: "request selecting this server gets an ACK",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14),
					dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
					dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14))))
			},
			want: want(summary{Type: "ACK", YIAddr: "192.0.2.14", Host: "nc14", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}}),
		},
		{
			name: "request selecting another server gets nothing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14),
					dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 2))),
					dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14))))
			},
		},
		{
			name: "request selecting another address gets a NAK",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14),
					dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
					dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 99))))
			},
			want: &summary{Type: "NAK", YIAddr: "0.0.0.0", CIAddr: "0.0.0.0", SIAddr: "0.0.0.0", GIAddr: "0.0.0.0", ServerID: "192.0.2.1", Router: "[]", DNS: "[]", Options: []uint8{53, 54, 56}},
		},
		{
			name: "init-reboot with the DNS address gets an ACK",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14))))
			},
			want: want(summary{Type: "ACK", YIAddr: "192.0.2.14", Host: "nc14", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}}),
		},
		{
			name: "init-reboot with an old address gets a NAK",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 200))))
			},
			want: &summary{Type: "NAK", YIAddr: "0.0.0.0", CIAddr: "0.0.0.0", SIAddr: "0.0.0.0", GIAddr: "0.0.0.0", ServerID: "192.0.2.1", Router: "[]", DNS: "[]", Options: []uint8{53, 54, 56}},
		},
		{
			name: "init-reboot of an unknown client gets nothing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(99), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 200))))
			},
		},
		{
			name: "renewing with ciaddr gets an ACK with ciaddr",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 14)))
			},
			want: want(summary{Type: "ACK", YIAddr: "192.0.2.14", CIAddr: "192.0.2.14", Host: "nc14", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}}),
		},
		{
			name: "inform gets an ACK without yiaddr and lease time",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeInform, macOf(14), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 14)))
			},
			want: want(summary{Type: "ACK", CIAddr: "192.0.2.14", Host: "nc14", Options: []uint8{1, 3, 6, 12, 15, 53, 54}}),
		},
		{
			name: "inform from another address gets nothing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeInform, macOf(14), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 77)))
			},
		},
		{
			name: "release is only logged",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRelease, macOf(14), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 14)))
			},
		},
		{
			name: "decline is only logged",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDecline, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14))))
			},
		},
		{
			name: "relayed discover: VLAN from giaddr, giaddr and option 82 kept",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithGatewayIP(ip4(relay)), dhcpv4.WithOption(opt82))
			},
			want: &summary{Type: "OFFER", YIAddr: "198.51.100.20", CIAddr: "0.0.0.0", SIAddr: "0.0.0.0", GIAddr: "198.51.100.1", Mask: "255.255.255.0",
				Router: "[198.51.100.1]", DNS: "[198.51.100.53]", Domain: "example.com", Host: "other", ServerID: "192.0.2.1", Lease: "1h0m0s",
				Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 82}},
		},
		{
			name: "relayed request for an unconfigured network gets nothing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, macOf(14), dhcpv4.WithGatewayIP(net.IPv4(203, 0, 113, 1)))
			},
		},
		{
			name: "client of another VLAN on this interface gets no offer",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, net.HardwareAddr{2, 4, 6, 8, 0x84, 20})
			},
		},
		{
			name: "interface without a VLAN answers nothing",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return request(t, dhcpv4.MessageTypeDiscover, macOf(14)) },
			in:   Ingress{Interface: "eth9", ServerIP: serverIP},
		},
		{
			name: "renewal unicast past the relay to an interface without a VLAN: VLAN from ciaddr",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 20)))
			},
			in: serverLink,
			want: &summary{Type: "ACK", YIAddr: "198.51.100.20", CIAddr: "198.51.100.20", SIAddr: "0.0.0.0", GIAddr: "0.0.0.0", Mask: "255.255.255.0",
				Router: "[198.51.100.1]", DNS: "[198.51.100.53]", Domain: "example.com", Host: "other", ServerID: "203.0.113.1", Lease: "1h0m0s",
				Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54}},
		},
		{
			name: "inform unicast past the relay to an interface without a VLAN: VLAN from ciaddr",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeInform, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 20)))
			},
			in: serverLink,
			want: &summary{Type: "ACK", YIAddr: "0.0.0.0", CIAddr: "198.51.100.20", SIAddr: "0.0.0.0", GIAddr: "0.0.0.0", Mask: "255.255.255.0",
				Router: "[198.51.100.1]", DNS: "[198.51.100.53]", Domain: "example.com", Host: "other", ServerID: "203.0.113.1",
				Options: []uint8{1, 3, 6, 12, 15, 53, 54}},
		},
		{
			name: "renewal to an interface without a VLAN from the address of another host gets a NAK",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 21)))
			},
			in:   serverLink,
			want: &summary{Type: "NAK", YIAddr: "0.0.0.0", CIAddr: "0.0.0.0", SIAddr: "0.0.0.0", GIAddr: "0.0.0.0", ServerID: "203.0.113.1", Router: "[]", DNS: "[]", Options: []uint8{53, 54, 56}},
		},
		{
			name: "renewal to an interface without a VLAN from an address of no VLAN gets nothing",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeRequest, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithClientIP(net.IPv4(203, 0, 113, 20)))
			},
			in: serverLink,
		},
		{
			name: "discover with ciaddr on an interface without a VLAN gets nothing (ciaddr is 0 in a DISCOVER)",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, net.HardwareAddr{2, 4, 6, 8, 0x84, 20},
					dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 20)))
			},
			in: serverLink,
		},
		{
			name: "offer is not served by a server",
			req:  func(t testing.TB) *dhcpv4.DHCPv4 { return request(t, dhcpv4.MessageTypeOffer, macOf(14)) },
		},
		{
			name: "client identifier is echoed (RFC 6842)",
			req: func(t testing.TB) *dhcpv4.DHCPv4 {
				return request(t, dhcpv4.MessageTypeDiscover, macOf(14), dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 4, 6, 8, 0x72, 14})))
			},
			want: want(summary{Type: "OFFER", YIAddr: "192.0.2.14", Host: "nc14", Lease: "1h0m0s", Options: []uint8{1, 3, 6, 12, 15, 51, 53, 54, 61}}),
		},
	}
	forEachPolicy(t, func(t *testing.T, s *Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := tt.in
				if in == (Ingress{}) {
					in = ingress
				}
				resp, err := s.Handle(t.Context(), tt.req(t), in)
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				if diff := cmp.Diff(tt.want, summarize(resp)); diff != "" {
					t.Errorf("reply (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// TestHandleLogsRelay checks that the log line of an answer names the relay
// that forwarded the request (giaddr), and that a renewal a bound client
// unicast past its relay names none.
func TestHandleLogsRelay(t *testing.T) {
	cfg := testConfig(t)
	logs := newLogRecorder(t)
	s, err := New(testServerConfig(cfg, newTestPolicy(t, cfg), slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{2, 4, 6, 8, 0x84, 20}
	for _, req := range []*dhcpv4.DHCPv4{
		request(t, dhcpv4.MessageTypeDiscover, mac, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))),
		request(t, dhcpv4.MessageTypeRequest, mac, dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 20))),
	} {
		if resp, err := s.Handle(t.Context(), req, serverLink); err != nil || resp == nil {
			t.Fatalf("Handle %s: reply %v, error %v", req.MessageType(), resp, err)
		}
	}
	logs.wait(t, "dhcp4 OFFER", "vlan=136", "giaddr=198.51.100.1")
	if line := logs.wait(t, "dhcp4 ACK", "vlan=136", "state=renewing"); strings.Contains(line, "giaddr") {
		t.Errorf("log of the answer to a renewal without giaddr names a relay: %s", line)
	}
}

// TestHandleClient checks what the policy is told about the client (its
// identity only) and the firmware the captured requests are classified as.
func TestHandleClient(t *testing.T) {
	s, p := newTestServer(t)
	captures := []struct {
		file string
		want netboot.Firmware
	}{
		{"ovmf-http-discover.bin", netboot.Firmware{Kind: netboot.KindHTTP, Arch: netboot.ArchHTTPx64, HasArch: true}},
		{"ipxe-bios-discover.bin", netboot.Firmware{Kind: netboot.KindIPXE, Arch: netboot.ArchBIOS, HasArch: true}},
		{"ovmf-pxe-discover.bin", netboot.Firmware{Kind: netboot.KindPXE, Arch: netboot.ArchUEFIx64, HasArch: true}},
		{"ipxe-efi-discover.bin", netboot.Firmware{Kind: netboot.KindIPXE, Arch: netboot.ArchUEFIx64, HasArch: true}},
		{"nclient4-discover.bin", netboot.Firmware{Kind: netboot.KindNone}},
	}
	for _, c := range captures {
		req := fromTestdata(t, c.file)
		if got := Firmware(req); got != c.want {
			t.Errorf("Firmware(%s) = %+v (%s), want %+v (%s)", c.file, got, got, c.want, c.want)
		}
	}
	if _, err := s.Handle(t.Context(), fromTestdata(t, "ovmf-http-discover.bin"), ingress); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(t.Context(), fromTestdata(t, "ipxe-bios-discover.bin"), ingress); err != nil {
		t.Fatal(err)
	}
	want := []netboot.Client{{MAC: macOf(12), VLAN: 135}, {MAC: macOf(10), VLAN: 135}}
	if diff := cmp.Diff(want, p.clients, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("clients (-want +got):\n%s", diff)
	}
}

// TestNoProxyDHCP checks that iPXE, and only iPXE, is told in its OFFER and
// ACK not to wait for ProxyDHCP offers: option 175 holding sub-option 176
// (no-pxedhcp) = 1. PXE firmware, UEFI HTTP boot and plain clients, which
// do not read iPXE's options, never get option 175.
func TestNoProxyDHCP(t *testing.T) {
	captures := []struct {
		name string
		req  func(t testing.TB) *dhcpv4.DHCPv4
		ipxe bool
	}{
		{"ipxe bios", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-bios-discover.bin") }, true},
		{"ipxe efi", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-efi-discover.bin") }, true},
		{"pxe bios firmware", pxeBIOSFirmware, false},
		{"ovmf pxe", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-pxe-discover.bin") }, false},
		{"ovmf http boot", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-http-discover.bin") }, false},
		{"plain client", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "nclient4-discover.bin") }, false},
	}
	forEachPolicy(t, func(t *testing.T, s *Server) {
		for _, c := range captures {
			t.Run(c.name, func(t *testing.T) {
				discover := c.req(t)
				offer, err := s.Handle(t.Context(), discover, ingress)
				if err != nil || offer == nil {
					t.Fatalf("DISCOVER: reply %v, error %v", offer, err)
				}
				req := c.req(t)
				req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
				req.UpdateOption(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))
				req.UpdateOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
				ack, err := s.Handle(t.Context(), req, ingress)
				if err != nil || ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
					t.Fatalf("REQUEST: reply %v, error %v", ack, err)
				}
				var want []byte
				if c.ipxe {
					want = []byte{176, 1, 1}
				}
				for _, r := range []*dhcpv4.DHCPv4{offer, ack} {
					if got := r.Options.Get(dhcpv4.GenericOptionCode(175)); !bytes.Equal(got, want) {
						t.Errorf("%s option 175 = % x, want % x", r.MessageType(), got, want)
					}
				}
			})
		}
	})
}

func TestHandleErrors(t *testing.T) {
	dnsDown := errors.New("dns 127.0.0.1:53: i/o timeout")
	tests := []struct {
		name      string
		req       func(t testing.TB) *dhcpv4.DHCPv4
		policyErr error
		in        Ingress
		want      error
	}{
		{"policy failure", func(t testing.TB) *dhcpv4.DHCPv4 { return request(t, dhcpv4.MessageTypeDiscover, macOf(14)) }, dnsDown, ingress, dnsDown},
		{"nil request", func(testing.TB) *dhcpv4.DHCPv4 { return nil }, nil, ingress, ErrMalformed},
		{"reply opcode", func(t testing.TB) *dhcpv4.DHCPv4 {
			r := request(t, dhcpv4.MessageTypeDiscover, macOf(14))
			r.OpCode = dhcpv4.OpcodeBootReply
			return r
		}, nil, ingress, ErrMalformed},
		{"no message type", func(t testing.TB) *dhcpv4.DHCPv4 {
			r := request(t, dhcpv4.MessageTypeDiscover, macOf(14))
			r.Options.Del(dhcpv4.OptionDHCPMessageType)
			return r
		}, nil, ingress, ErrMalformed},
		{"not ethernet", func(t testing.TB) *dhcpv4.DHCPv4 {
			return request(t, dhcpv4.MessageTypeDiscover, net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8})
		}, nil, ingress, ErrMalformed},
		{"bad server identifier", func(t testing.TB) *dhcpv4.DHCPv4 {
			return request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithGeneric(dhcpv4.OptionServerIdentifier, []byte{192, 0, 2}))
		}, nil, ingress, ErrMalformed},
		{"request without any address", func(t testing.TB) *dhcpv4.DHCPv4 { return request(t, dhcpv4.MessageTypeRequest, macOf(14)) }, nil, ingress, ErrMalformed},
		{"selecting without requested address", func(t testing.TB) *dhcpv4.DHCPv4 {
			return request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))))
		}, nil, ingress, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := newTestServer(t)
			p.err = tt.policyErr
			resp, err := s.Handle(t.Context(), tt.req(t), tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("Handle error = %v, want %v", err, tt.want)
			}
			if resp != nil {
				t.Errorf("Handle replied %s despite the error", resp.Summary())
			}
		})
	}
	t.Run("ingress without server address", func(t *testing.T) {
		s, _ := newTestServer(t)
		if _, err := s.Handle(t.Context(), request(t, dhcpv4.MessageTypeDiscover, macOf(14)), Ingress{VLAN: 135}); err == nil {
			t.Error("Handle accepted an ingress without server address")
		}
	})
}

// TestGolden compares the reply bytes for each kind of booting client with
// testdata/golden.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		req  func(t testing.TB) *dhcpv4.DHCPv4
	}{
		{"pxe-bios-offer", pxeBIOSFirmware},
		{"uefi-x64-pxe-offer", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-pxe-discover.bin") }},
		{"ipxe-offer", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-bios-discover.bin") }},
		{"ipxe-efi-offer", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-efi-discover.bin") }},
		{"http-offer", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-http-discover.bin") }},
		{"nclient4-offer", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "nclient4-discover.bin") }},
		{"unknown-mac", func(t testing.TB) *dhcpv4.DHCPv4 {
			r := fromTestdata(t, "ipxe-bios-discover.bin")
			r.ClientHWAddr = macOf(99)
			return r
		}},
	}
	forEachPolicy(t, func(t *testing.T, s *Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := s.Handle(t.Context(), tt.req(t), ingress)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, tt.name+".golden", dump(resp))
			})
		}
	})
}

// dump renders a reply for a golden file: a summary line, then the bytes.
func dump(r *dhcpv4.DHCPv4) []byte {
	if r == nil {
		return []byte("no reply\n")
	}
	return []byte(r.Summary() + "\n" + hex.Dump(r.ToBytes()))
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name), got)
}

// TestIdenticalInstances is the active-active property: two servers with
// the same configuration answer the same request with the same bytes.
func TestIdenticalInstances(t *testing.T) {
	a, _ := newTestServer(t)
	b, _ := newTestServer(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded packets in testdata: %v", err)
	}
	reqs := map[string]*dhcpv4.DHCPv4{
		"request": request(t, dhcpv4.MessageTypeRequest, macOf(14),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14)))),
		"nak": request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 200)))),
	}
	for _, f := range files {
		reqs[filepath.Base(f)] = fromTestdata(t, filepath.Base(f))
	}
	for name, req := range reqs {
		ra, err := a.Handle(t.Context(), req, ingress)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond) // a clock in the answer would show
		rb, err := b.Handle(t.Context(), req, ingress)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ra == nil || rb == nil {
			t.Fatalf("%s: no reply (%v, %v)", name, ra, rb)
		}
		if !bytes.Equal(ra.ToBytes(), rb.ToBytes()) {
			t.Errorf("%s: instances differ:\n%s\n%s", name, ra.Summary(), rb.Summary())
		}
	}
}

func TestBSDP(t *testing.T) {
	inform := func(t testing.TB, m bsdp.Message) *dhcpv4.DHCPv4 {
		return request(t, dhcpv4.MessageTypeInform, macOf(15),
			dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 15)),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("AAPLBSDPC/i386/MacBookPro11,1")),
			dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, m.Encode()))
	}
	decode := func(t *testing.T, r *dhcpv4.DHCPv4) *bsdp.Message {
		t.Helper()
		if r == nil {
			t.Fatal("no reply")
		}
		m, err := bsdp.Decode(r.Options.Get(dhcpv4.OptionVendorSpecificInformation))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	s, _ := newTestServer(t)
	image := bsdp.ImageID(0x81000089)

	t.Run("list", func(t *testing.T) {
		req := inform(t, bsdp.Message{Type: bsdp.MessageTypeList, Version: bsdp.Version1_1, ReplyPort: 1020})
		resp, err := s.Handle(t.Context(), req, ingress)
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, resp)
		want := &bsdp.Message{Type: bsdp.MessageTypeList, ServerPriority: 32768, DefaultImage: image,
			Images: []bsdp.BootImage{{ID: image, Name: "The-Image"}}}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("ACK[LIST] (-want +got):\n%s", diff)
		}
		if got, want := ReplyAddr(req, resp), netip.MustParseAddrPort("192.0.2.15:1020"); got != want {
			t.Errorf("reply goes to %s, want %s", got, want)
		}
	})
	t.Run("select", func(t *testing.T) {
		req := inform(t, bsdp.Message{Type: bsdp.MessageTypeSelect, Version: bsdp.Version1_1, ServerID: serverIP, SelectedImage: image})
		resp, err := s.Handle(t.Context(), req, ingress)
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, resp)
		want := &bsdp.Message{Type: bsdp.MessageTypeSelect, SelectedImage: image, MachineName: "mac15"}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("ACK[SELECT] (-want +got):\n%s", diff)
		}
		if resp.BootFileName != "mactel64.efi" || !resp.ServerIPAddr.Equal(net.IPv4(192, 0, 2, 1)) {
			t.Errorf("file %q siaddr %s, want mactel64.efi from 192.0.2.1", resp.BootFileName, resp.ServerIPAddr)
		}
	})
	t.Run("unknown mac", func(t *testing.T) {
		req := inform(t, bsdp.Message{Type: bsdp.MessageTypeList, Version: bsdp.Version1_1})
		req.ClientHWAddr = macOf(99)
		if resp, err := s.Handle(t.Context(), req, ingress); err != nil || resp != nil {
			t.Errorf("unknown Mac: reply %v, error %v; want neither", resp, err)
		}
	})
	t.Run("discover with the N key", func(t *testing.T) {
		req := request(t, dhcpv4.MessageTypeDiscover, macOf(15),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("AAPLBSDPC/i386/MacBookPro11,1")),
			dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, (&bsdp.Message{Version: bsdp.Version1_1}).Encode()))
		resp, err := s.Handle(t.Context(), req, ingress)
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(t, resp); got.SelectedImage != image {
			t.Errorf("selected image %s, want %s", got.SelectedImage, image)
		}
		if resp.YourIPAddr.String() != "192.0.2.15" || resp.BootFileName != "mactel64.efi" || resp.ClassIdentifier() != "AAPLBSDPC" {
			t.Errorf("offer %s", resp.Summary())
		}
	})
}

func TestReplyAddr(t *testing.T) {
	mk := func(mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		return request(t, mt, macOf(14), mods...)
	}
	offer := mk(dhcpv4.MessageTypeOffer)
	tests := []struct {
		name      string
		req, resp *dhcpv4.DHCPv4
		want      string
	}{
		{"no address: broadcast", mk(dhcpv4.MessageTypeDiscover), offer, "255.255.255.255:68"},
		{"broadcast flag: broadcast", mk(dhcpv4.MessageTypeDiscover, dhcpv4.WithBroadcast(true)), offer, "255.255.255.255:68"},
		{"ciaddr: unicast", mk(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 14))), offer, "192.0.2.14:68"},
		{"relayed: to the relay", mk(dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))), offer, "198.51.100.1:67"},
		{"nak: broadcast", mk(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 14))), mk(dhcpv4.MessageTypeNak), "255.255.255.255:68"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReplyAddr(tt.req, tt.resp).String(); got != tt.want {
				t.Errorf("ReplyAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHasUserClass(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"iPXE", true},
		{"\x04iPXE", true},
		{"\x03foo\x04iPXE", true},
		{"\x04iPXF", false},
		{"\x05iPXE", false},
		{"", false},
		{"\x00", false},
		{"gPXE", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.raw), func(t *testing.T) {
			if got := hasUserClass([]byte(tt.raw), "iPXE"); got != tt.want {
				t.Errorf("hasUserClass(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}

// FuzzHandle feeds raw packets through the decoder and Handle: neither may
// panic, and a reply must encode and decode again.
func FuzzHandle(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed packets in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		resp, err := s.Handle(context.Background(), req, ingress)
		if err != nil {
			if resp != nil {
				t.Fatalf("reply with error %v", err)
			}
			return
		}
		if resp == nil {
			return
		}
		if _, err := dhcpv4.FromBytes(resp.ToBytes()); err != nil {
			t.Fatalf("reply does not decode: %v\n%s", err, resp.Summary())
		}
		if resp.TransactionID != req.TransactionID || !bytes.Equal(resp.ClientHWAddr, req.ClientHWAddr) || resp.OpCode != dhcpv4.OpcodeBootReply {
			t.Fatalf("reply does not answer the request: %s", resp.Summary())
		}
	})
}

func TestMetrics(t *testing.T) {
	s, p := newTestServer(t)
	for _, req := range []*dhcpv4.DHCPv4{
		fromTestdata(t, "ipxe-bios-discover.bin"),
		fromTestdata(t, "ovmf-pxe-discover.bin"),
		request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 14)))),
		request(t, dhcpv4.MessageTypeRequest, macOf(14), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 99)))),
		request(t, dhcpv4.MessageTypeDiscover, macOf(99)),
		request(t, dhcpv4.MessageTypeRequest, macOf(14)),
	} {
		_, _ = s.Handle(t.Context(), req, ingress)
	}
	p.err = errors.New("dns down")
	_, _ = s.Handle(t.Context(), request(t, dhcpv4.MessageTypeDiscover, macOf(14)), ingress)
	if diff := cmp.Diff(Stats{Offers: 2, Acks: 1, Naks: 1, Silent: 1, Malformed: 1, Errors: 1}, s.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	// What /metrics shows of them.
	want := `
# HELP vmprov_dhcp4_errors_total DHCPv4 requests not answered because DNS failed, and replies not sent.
# TYPE vmprov_dhcp4_errors_total counter
vmprov_dhcp4_errors_total 1
# HELP vmprov_dhcp4_malformed_total DHCPv4 packets dropped as malformed.
# TYPE vmprov_dhcp4_malformed_total counter
vmprov_dhcp4_malformed_total 1
# HELP vmprov_dhcp4_replies_total DHCPv4 replies sent, by message type.
# TYPE vmprov_dhcp4_replies_total counter
vmprov_dhcp4_replies_total{type="ack"} 1
vmprov_dhcp4_replies_total{type="nak"} 1
vmprov_dhcp4_replies_total{type="offer"} 2
# HELP vmprov_dhcp4_silent_total DHCPv4 requests not answered: unknown clients, another server's, RELEASE, DECLINE.
# TYPE vmprov_dhcp4_silent_total counter
vmprov_dhcp4_silent_total 1
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"vmprov_dhcp4_errors_total", "vmprov_dhcp4_malformed_total", "vmprov_dhcp4_replies_total", "vmprov_dhcp4_silent_total"); err != nil {
		t.Error(err)
	}
	// Every call of the policy is timed, DNS failure included.
	text, err := testutil.CollectAndFormat(s.Collector(), expfmt.TypeTextPlain, netboot.DecisionDurationName)
	if err != nil {
		t.Fatal(err)
	}
	count := fmt.Sprintf(`vmprov_decision_duration_seconds_count{proto="dhcp4"} %d`, len(p.clients))
	if len(p.clients) == 0 || !strings.Contains(string(text), count+"\n") {
		t.Errorf("decision histogram lacks %q (the policy decided %d times):\n%s", count, len(p.clients), text)
	}
}
