package dhcp6_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// testConfig is the boot service configuration of the tests: seed 000's
// VLAN 135 renumbered into documentation ranges the lab's zones serve, and
// VLAN 136, reached through a relay.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
dns: {zone: example.com., server: "127.0.0.1:53"}
boot: {url: "http://boot.example.com", url_v6: "http://[2001:db8:135::1]", site: example}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64",
     dns_servers: [192.0.2.1, "2001:db8:135::53"]}
  - {id: 136, ipv6: "2001:db8:136::/64"}
serve: {interfaces: [br135], lease_time: 3600}
`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The hosts of the tests, as vmprov writes them.
var (
	// v6only is seed 000's IPv6-only host: SLAAC MAC, EUI-64 AAAA.
	v6onlyMAC  = mustMAC("2a:4a:6a:74:55:06")
	v6onlyAddr = netip.MustParseAddr("2001:db8:135::284a:6aff:fe74:5506")
	// sm1 is bare metal found by its _mac CNAME.
	sm1MAC  = mustMAC("00:25:90:96:c4:9a")
	sm1Addr = netip.MustParseAddr("2001:db8:135::50")
	// fc is a Mellanox FlexBoot server (seed 004's MAC), _mac CNAME.
	fcMAC  = mustMAC("00:02:c9:45:26:20")
	fcAddr = netip.MustParseAddr("2001:db8:135::60")
	// far is a bare-metal host on VLAN 136, behind a relay.
	farMAC  = mustMAC("00:25:90:01:02:03")
	farAddr = netip.MustParseAddr("2001:db8:136::10")
	// centos is an IPv4-only VM (strict MAC, no AAAA): known, no address.
	centosMAC = mustMAC("02:04:06:08:72:ac")
	// strangerMAC is in no DNS record.
	strangerMAC = mustMAC("02:00:5e:10:00:01")
)

// records are the DNS records of the test hosts (zone file syntax).
func records() []string {
	return []string{
		"v6only.example.com. 300 AAAA 2001:db8:135::284a:6aff:fe74:5506",
		`v6only.example.com. 300 TXT "distribution=noble"`,
		inventory.ReverseName(v6onlyAddr) + " 300 PTR v6only.example.com.",
		"sm1.example.com. 300 A 192.0.2.50",
		"sm1.example.com. 300 AAAA 2001:db8:135::50",
		`sm1.example.com. 300 TXT "filename=metal.ipxe" "distribution=bookworm"`,
		"00-25-90-96-c4-9a._mac.example.com. 300 CNAME sm1.example.com.",
		"fc.example.com. 300 AAAA 2001:db8:135::60",
		`fc.example.com. 300 TXT "distribution=rocky9"`,
		"00-02-c9-45-26-20._mac.example.com. 300 CNAME fc.example.com.",
		"far.example.com. 300 AAAA 2001:db8:136::10",
		"00-25-90-01-02-03._mac.example.com. 300 CNAME far.example.com.",
		"test-centos7.example.com. 300 A 192.0.2.172",
		`test-centos7.example.com. 300 TXT "filename=test.ipxe" "distribution=core"`,
		inventory.ReverseName(netip.MustParseAddr("192.0.2.172")) + " 300 PTR test-centos7.example.com.",
	}
}

// backend is DNS as the boot service sees it (dnsupdate seam).
type backend interface {
	netboot.Resolver
	dnsupdate.Updater
}

// backends are the DNS servers the tests run against: a real BIND (needs
// root and named; the test skips without them) and dnstest.Fake, which
// passes the same dnsupdate conformance suite.
func backends() map[string]func(t testing.TB) backend {
	return map[string]func(t testing.TB) backend{
		"bind": bindBackend,
		"fake": fakeBackend,
	}
}

func bindBackend(t testing.TB) backend {
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fakeBackend(testing.TB) backend {
	return dnstest.NewFake(append([]string{lab.TestZone}, lab.TestReverseZones()...)...)
}

// load adds records (zone file syntax), one UPDATE per lab zone.
func load(t testing.TB, u dnsupdate.Updater, rrs ...string) {
	t.Helper()
	zones := append([]string{lab.TestZone}, lab.TestReverseZones()...)
	byZone := map[string][]dns.RR{}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		z := ""
		for _, c := range zones {
			if dns.IsSubDomain(c, rr.Header().Name) && len(c) > len(z) {
				z = c
			}
		}
		if z == "" {
			t.Fatalf("record %q is in no lab zone", s)
		}
		byZone[z] = append(byZone[z], rr)
	}
	for _, z := range zones {
		if rrs := byZone[z]; len(rrs) > 0 {
			if err := u.Apply(context.Background(), dnsupdate.ChangeSet{Zone: z, Add: rrs}); err != nil {
				t.Fatalf("load %s: %v", z, err)
			}
		}
	}
}

// serverDUID is the DUID of the servers built by newServer.
var serverDUID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC("02:00:00:00:05:47")}

// newServer returns a Server over the real DNS policy reading b.
func newServer(t testing.TB, b backend, unidentified bool) *dhcp6.Server {
	t.Helper()
	cfg := testConfig(t)
	s, err := dhcp6.New(dhcp6.Config{
		DHCPConfig:         serveconfig.DHCP(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), b), nil),
		ServerDUID:         serverDUID,
		AnswerUnidentified: unidentified,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Ingresses of the tests: a direct message on br135 from a client's
// link-local address, and a relayed one from a relay's address.
var (
	serverIP = netip.MustParseAddr("2001:db8:135::1")
	relayIP  = netip.MustParseAddr("2001:db8:136::1")
)

func direct(src netip.Addr) dhcp6.Ingress {
	return dhcp6.Ingress{Interface: "br135", VLAN: 135, ServerIP: serverIP, Source: src}
}

func relayed() dhcp6.Ingress {
	return dhcp6.Ingress{Interface: "br135", VLAN: 135, ServerIP: serverIP, Source: relayIP}
}

// linkLocal returns the EUI-64 link-local address a client with mac forms.
func linkLocal(mac net.HardwareAddr) netip.Addr {
	b := [16]byte{0: 0xfe, 1: 0x80}
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

// privacyLL is a link-local address that is not EUI-64 (RFC 7217 style).
var privacyLL = netip.MustParseAddr("fe80::9c1a:3bff:1e42:77d1")

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// readPacket reads a testdata packet: hex bytes, whitespace ignored, and
// '#' comments to the end of a line.
func readPacket(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeHex(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func decodeHex(s string) ([]byte, error) {
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(sb.String())
}

// writePacket writes a testdata packet with a comment header, 16 bytes a
// line.
func writePacket(t testing.TB, name, comment string, b []byte) {
	t.Helper()
	var sb strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		sb.WriteString("# " + l + "\n")
	}
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		sb.WriteString(hex.EncodeToString(b[i:end]) + "\n")
	}
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// summary is what a test checks of a reply, decoded independently of the
// code under test.
type summary struct {
	Relays      []string // outermost first: "hop link peer iid"
	Type        string
	ClientID    string // hex
	ServerID    bool   // the reply carries serverDUID
	RapidCommit bool
	Preference  int // -1 when absent
	Status      string
	IAs         []string
	DNS         []string
	Domains     []string
	BootFile    string
	VendorClass string
}

// summarize decodes a reply for comparison.
func summarize(t testing.TB, d dhcpv6.DHCPv6) summary {
	t.Helper()
	var s summary
	// Decode the wire form, as a client would.
	d, err := dhcpv6.FromBytes(d.ToBytes())
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	for d.IsRelay() {
		r := d.(*dhcpv6.RelayMessage)
		if r.MessageType != dhcpv6.MessageTypeRelayReply {
			t.Fatalf("relay level is %s, want RELAY-REPLY", r.MessageType)
		}
		s.Relays = append(s.Relays, fmt.Sprintf("%d %s %s %q", r.HopCount, r.LinkAddr, r.PeerAddr, r.Options.InterfaceID()))
		d = r.Options.RelayMessage()
		if d == nil {
			t.Fatal("Relay-reply without a relay message")
		}
	}
	m := d.(*dhcpv6.Message)
	s.Type = m.MessageType.String()
	if cid := m.Options.ClientID(); cid != nil {
		s.ClientID = hex.EncodeToString(cid.ToBytes())
	}
	if sid := m.Options.ServerID(); sid != nil {
		s.ServerID = sid.Equal(serverDUID)
	}
	s.RapidCommit = m.GetOneOption(dhcpv6.OptionRapidCommit) != nil
	s.Preference = -1
	if m.GetOneOption(dhcpv6.OptionPreference) != nil {
		s.Preference = int(m.Options.Preference())
	}
	if st := m.Options.Status(); st != nil {
		s.Status = st.StatusCode.String()
	}
	for _, ia := range m.Options.IANA() {
		x := fmt.Sprintf("IA_NA %x T1=%v T2=%v", ia.IaId, ia.T1, ia.T2)
		for _, a := range ia.Options.Addresses() {
			x += fmt.Sprintf(" %s/%v/%v", a.IPv6Addr, a.PreferredLifetime, a.ValidLifetime)
		}
		if st := ia.Options.Status(); st != nil {
			x += " " + st.StatusCode.String()
		}
		s.IAs = append(s.IAs, x)
	}
	for _, ia := range m.Options.IATA() {
		x := fmt.Sprintf("IA_TA %x", ia.IaId)
		if st := ia.Options.Status(); st != nil {
			x += " " + st.StatusCode.String()
		}
		s.IAs = append(s.IAs, x)
	}
	for _, ia := range m.Options.IAPD() {
		x := fmt.Sprintf("IA_PD %x", ia.IaId)
		if st := ia.Options.Status(); st != nil {
			x += " " + st.StatusCode.String()
		}
		s.IAs = append(s.IAs, x)
	}
	for _, ip := range m.Options.DNS() {
		s.DNS = append(s.DNS, ip.String())
	}
	if l := m.Options.DomainSearchList(); l != nil {
		s.Domains = l.Labels
	}
	s.BootFile = m.Options.BootFileURL()
	for _, vc := range m.Options.VendorClasses() {
		for _, d := range vc.Data {
			s.VendorClass += fmt.Sprintf("%d:%s", vc.EnterpriseNumber, d)
		}
	}
	return s
}

// withInterfaces returns c listening on names.
func withInterfaces(c netboot.DHCPConfig, names ...string) netboot.DHCPConfig {
	c.Interfaces = names
	return c
}
