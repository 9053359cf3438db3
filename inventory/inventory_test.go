package inventory

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStrictMACSeedExample(t *testing.T) {
	s := DefaultScheme()
	tests := []struct {
		vlan int
		ip   string
		want string
	}{
		{135, "192.168.35.172", "02:04:06:08:73:ac"}, // seed 000
		{1, "10.0.0.1", "02:04:06:00:10:01"},
		{4094, "192.0.2.255", "02:04:06:ff:e2:ff"},
		{135, "198.51.100.7", "02:04:06:08:74:07"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			mac, err := s.StrictMAC(tt.vlan, netip.MustParseAddr(tt.ip))
			if err != nil {
				t.Fatal(err)
			}
			if mac.String() != tt.want {
				t.Errorf("StrictMAC(%d, %s) = %s, want %s", tt.vlan, tt.ip, mac, tt.want)
			}
			vlan, low, ok := s.DecodeStrict(mac)
			if !ok || vlan != tt.vlan {
				t.Fatalf("DecodeStrict(%s) = %d, %v", mac, vlan, ok)
			}
			a := netip.MustParseAddr(tt.ip).As4()
			if want := uint16(a[2]&0xf)<<8 | uint16(a[3]); low != want {
				t.Errorf("low12 = %#x, want %#x", low, want)
			}
		})
	}
}

func TestStrictMACRefuses(t *testing.T) {
	s := DefaultScheme()
	for _, tt := range []struct {
		vlan int
		ip   string
	}{{0, "192.0.2.1"}, {4095, "192.0.2.1"}, {135, "2001:db8::1"}} {
		if _, err := s.StrictMAC(tt.vlan, netip.MustParseAddr(tt.ip)); err == nil {
			t.Errorf("StrictMAC(%d, %s) succeeded", tt.vlan, tt.ip)
		}
	}
	if _, _, ok := s.DecodeStrict(net.HardwareAddr{0x2a, 0x4a, 0x6a, 1, 2, 3}); ok {
		t.Error("DecodeStrict accepted a SLAAC MAC")
	}
}

func TestIPv4InSubnetRoundTrip(t *testing.T) {
	s := DefaultScheme()
	for _, p := range []string{"192.168.35.0/24", "192.168.34.0/23", "172.22.0.0/20", "192.0.2.128/25"} {
		subnet := netip.MustParsePrefix(p)
		for a := subnet.Addr().Next(); subnet.Contains(a); a = a.Next() {
			mac, err := s.StrictMAC(135, a)
			if err != nil {
				t.Fatal(err)
			}
			_, low, _ := s.DecodeStrict(mac)
			got, err := IPv4InSubnet(subnet, low)
			if !subnet.Contains(a.Next()) { // broadcast
				if err == nil {
					t.Errorf("%s: broadcast %s accepted", p, a)
				}
				continue
			}
			if err != nil || got != a {
				t.Fatalf("%s: %s → %s → %v, %v", p, a, mac, got, err)
			}
		}
	}
	if _, err := IPv4InSubnet(netip.MustParsePrefix("192.0.2.0/25"), 0x2c8); err == nil {
		t.Error("address outside a /25 accepted")
	}
	if _, err := IPv4InSubnet(netip.MustParsePrefix("10.0.0.0/16"), 1); err == nil {
		t.Error("/16 accepted")
	}
}

func TestEUI64SeedExample(t *testing.T) {
	mac, _ := net.ParseMAC("2a:4a:6a:74:55:06")
	got, err := EUI64(netip.MustParsePrefix("2001:db8:135::/64"), mac)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("2001:db8:135::284a:6aff:fe74:5506"); got != want {
		t.Errorf("EUI64 = %s, want %s", got, want)
	}
	back, ok := MACFromEUI64(got)
	if !ok || back.String() != mac.String() {
		t.Errorf("MACFromEUI64(%s) = %s, %v", got, back, ok)
	}
	if _, ok := MACFromEUI64(netip.MustParseAddr("2001:db8::1")); ok {
		t.Error("MACFromEUI64 accepted a non-EUI-64 address")
	}
	// Dual-stack: the strict MAC's universal/local bit is set (02), so it flips to 00.
	strict, _ := DefaultScheme().StrictMAC(135, netip.MustParseAddr("192.168.35.172"))
	got, _ = EUI64(netip.MustParsePrefix("2001:db8:135::/64"), strict)
	if want := netip.MustParseAddr("2001:db8:135::4:6ff:fe08:73ac"); got != want {
		t.Errorf("dual-stack EUI64 = %s, want %s", got, want)
	}
}

func TestRandomSLAACMAC(t *testing.T) {
	s := DefaultScheme()
	mac, err := s.RandomSLAACMAC(bytes.NewReader([]byte{0x74, 0x55, 0x06}))
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != "2a:4a:6a:74:55:06" || !s.IsSLAAC(mac) {
		t.Errorf("RandomSLAACMAC = %s", mac)
	}
	a, _ := s.RandomSLAACMAC(nil)
	b, _ := s.RandomSLAACMAC(nil)
	if a.String() == b.String() {
		t.Errorf("two random MACs are equal: %s", a)
	}
	if _, err := s.RandomSLAACMAC(bytes.NewReader(nil)); err == nil {
		t.Error("short random source accepted")
	}
}

func TestNames(t *testing.T) {
	mac, _ := net.ParseMAC("00:25:90:96:C4:9A")
	if got := MACOwner(mac, "example.com"); got != "00-25-90-96-c4-9a._mac.example.com." {
		t.Errorf("MACOwner = %s", got)
	}
	if got, err := ParseHexHyp("00-25-90-96-c4-9a"); err != nil || got.String() != "00:25:90:96:c4:9a" {
		t.Errorf("ParseHexHyp = %v, %v", got, err)
	}
	if _, err := ParseHexHyp("../etc"); err == nil {
		t.Error("ParseHexHyp accepted ../etc")
	}
	if got := ReverseName(netip.MustParseAddr("192.168.35.172")); got != "172.35.168.192.in-addr.arpa." {
		t.Errorf("ReverseName v4 = %s", got)
	}
	if got := ReverseName(netip.MustParseAddr("2001:db8::567:89ab")); got != "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa." {
		t.Errorf("ReverseName v6 = %s", got)
	}
	for _, bad := range []string{"", "-a", "a-", "Web", "a_b", "a.b", string(make([]byte, 64))} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
	for _, good := range []string{"test-centos7", "a", "web6", "0db"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q): %v", good, err)
		}
	}
}

func TestIntent(t *testing.T) {
	in, err := ParseIntent([]string{"distribution=core", "filename=test.ipxe", "puppet_environment=prod"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"filename=test.ipxe", "distribution=core", "puppet_environment=prod"}, in.TXT()); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
	if in.Filename() != "test.ipxe" {
		t.Errorf("Filename = %s", in.Filename())
	}
	if got := (Intent{}).Filename(); got != DefaultFilename {
		t.Errorf("default Filename = %s", got)
	}
	in = in.With("distribution", "xenial")
	if v, _ := in.Get("distribution"); v != "xenial" || len(in) != 3 {
		t.Errorf("With replaced badly: %v", in)
	}
	for _, bad := range [][]string{{"novalue"}, {"=v"}, {"distribution=core", ""}} {
		if _, err := ParseIntent(bad); err == nil {
			t.Errorf("ParseIntent(%q) accepted", bad)
		}
	}
	// Names and values are templates.CheckIntent's to judge, not the parser's:
	// the boot service must see puppet-env=prod to refuse it with a reason.
	in, err = ParseIntent([]string{"puppet-env=prod", "role=a(b)", "k=", "k=v=w"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Intent{{"puppet-env", "prod"}, {"role", "a(b)"}, {"k", "v=w"}}, in); diff != "" {
		t.Errorf("ParseIntent (-want +got):\n%s", diff)
	}
}

func TestHostRecords(t *testing.T) {
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	h := Host{Name: "sm1", FQDN: "sm1.example.com.", MAC: mac, MACRecord: true,
		IPv4: netip.MustParseAddr("192.0.2.55"), IPv6: netip.MustParseAddr("2001:db8:135::55"),
		Intent: Intent{{"distribution", "core"}, {"filename", "test.ipxe"}}}
	want := []Record{
		{"sm1.example.com.", "A", "192.0.2.55"},
		{"sm1.example.com.", "AAAA", "2001:db8:135::55"},
		{"sm1.example.com.", "TXT", `"filename=test.ipxe" "distribution=core"`},
		{"00-25-90-96-c4-9a._mac.example.com.", "CNAME", "sm1.example.com."},
		{"55.2.0.192.in-addr.arpa.", "PTR", "sm1.example.com."},
		{"5.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR", "sm1.example.com."},
	}
	if diff := cmp.Diff(want, h.Records("example.com.")); diff != "" {
		t.Errorf("Records (-want +got):\n%s", diff)
	}
}

func FuzzParseIntent(f *testing.F) {
	f.Add("filename=test.ipxe", "distribution=core")
	f.Add("k=", "=v")
	f.Fuzz(func(t *testing.T, a, b string) {
		in, err := ParseIntent([]string{a, b})
		if err != nil {
			return
		}
		again, err := ParseIntent(in.TXT())
		if err != nil {
			t.Fatalf("TXT of a parsed intent does not parse: %v", err)
		}
		if diff := cmp.Diff(in.TXT(), again.TXT()); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
