package dhcp4

import (
	"fmt"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// TestInstalledHost: a host in build state installed gets its address and
// options from every firmware's DISCOVER and REQUEST, but no boot file, no
// TFTP server and no BSDP image, so its firmware boots the disk; iPXE still
// gets BASE/boot.ipxe, which answers it the script that exits. Its BSDP
// INFORM[LIST] is not answered. The host is read from DNS (the fake and
// real BIND) by vmprov's policy.
func TestInstalledHost(t *testing.T) {
	mac := macOf(0x1e)
	rrs := []dns.RR{}
	for _, s := range []string{
		"done30.example.com. 300 IN A 192.0.2.30",
		"30.2.0.192.in-addr.arpa. 300 IN PTR done30.example.com.",
		`done30.example.com. 300 IN TXT "filename=test.ipxe" "distribution=core" "state=installed" "build_id=38b6bf72"`,
	} {
		rrs = append(rrs, mustRR(t, s))
	}
	zones := []string{"example.com.", "2.0.192.in-addr.arpa."}
	backends := map[string]func(t *testing.T) dnsupdate.Updater{
		"fake": func(*testing.T) dnsupdate.Updater { return dnstest.NewFake(zones...) },
		"bind": func(t *testing.T) dnsupdate.Updater {
			b := lab.BINDForTest(t)
			name, alg, secret := b.TSIG()
			c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	captures := []struct {
		name, file string
		req        func(t testing.TB) *dhcpv4.DHCPv4
	}{
		{"pxe bios firmware", "", pxeBIOSFirmware},
		{"ovmf pxe", "", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-pxe-discover.bin") }},
		{"ovmf http boot", "", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ovmf-http-discover.bin") }},
		{"ipxe bios", "http://boot.example.com/boot.ipxe", func(t testing.TB) *dhcpv4.DHCPv4 { return fromTestdata(t, "ipxe-bios-discover.bin") }},
		{"intel mac, N key", "", func(t testing.TB) *dhcpv4.DHCPv4 {
			return request(t, dhcpv4.MessageTypeDiscover, mac,
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("AAPLBSDPC/i386/MacBookPro11,1")),
				dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, (&bsdp.Message{Version: bsdp.Version1_1}).Encode()))
		}},
	}
	for bname, mk := range backends {
		t.Run(bname, func(t *testing.T) {
			u := mk(t)
			loadRecords(t, u, zones, rrs)
			cfg := testConfig(t)
			s, err := New(testServerConfig(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), u.(netboot.Resolver)), nil))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range captures {
				t.Run(c.name, func(t *testing.T) {
					discover := c.req(t)
					discover.ClientHWAddr = mac
					offer, err := s.Handle(t.Context(), discover, ingress)
					if err != nil || offer == nil {
						t.Fatalf("DISCOVER: reply %v, error %v", offer, err)
					}
					req := c.req(t)
					req.ClientHWAddr = mac
					req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
					req.UpdateOption(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))
					req.UpdateOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
					ack, err := s.Handle(t.Context(), req, ingress)
					if err != nil || ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
						t.Fatalf("REQUEST: reply %v, error %v", ack, err)
					}
					for _, r := range []*dhcpv4.DHCPv4{offer, ack} {
						got := fmt.Sprintf("yiaddr %s host %s file %q siaddr %s option66 %q option67 %q bsdp %v",
							r.YourIPAddr, r.HostName(), r.BootFileName, r.ServerIPAddr, r.TFTPServerName(),
							r.Options.Get(dhcpv4.OptionBootfileName), r.Options.Has(dhcpv4.OptionVendorSpecificInformation))
						want := fmt.Sprintf("yiaddr 192.0.2.30 host done30 file %q siaddr 0.0.0.0 option66 \"\" option67 \"\" bsdp false", c.file)
						if got != want {
							t.Errorf("%s:\n got  %s\n want %s", r.MessageType(), got, want)
						}
					}
				})
			}
			t.Run("bsdp inform list", func(t *testing.T) {
				req := request(t, dhcpv4.MessageTypeInform, mac,
					dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 30)),
					dhcpv4.WithOption(dhcpv4.OptClassIdentifier("AAPLBSDPC/i386/MacBookPro11,1")),
					dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, (&bsdp.Message{Type: bsdp.MessageTypeList, Version: bsdp.Version1_1, ReplyPort: 1020}).Encode()))
				if resp, err := s.Handle(t.Context(), req, ingress); err != nil || resp != nil {
					t.Errorf("INFORM[LIST] of an installed Mac: reply %v, error %v; want no image offered (no reply)", resp, err)
				}
			})
			// vmprov reinstall while the policy's cache (TTL 300 s) still
			// holds installed: the local-boot answer is confirmed past the
			// cache, so PXE firmware gets its loader at once.
			t.Run("reinstalled while cached", func(t *testing.T) {
				reinstalled := mustRR(t, `done30.example.com. 300 IN TXT "filename=test.ipxe" "distribution=core" "state=install" "build_id=9f0c1d2e"`)
				if err := u.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.com.",
					RemoveRRset: []dnsupdate.RRKey{{Name: "done30.example.com.", Type: dns.TypeTXT}}, Add: []dns.RR{reinstalled}}); err != nil {
					t.Fatal(err)
				}
				discover := pxeBIOSFirmware(t)
				discover.ClientHWAddr = mac
				offer, err := s.Handle(t.Context(), discover, ingress)
				if err != nil || offer == nil {
					t.Fatalf("DISCOVER: reply %v, error %v", offer, err)
				}
				if offer.BootFileName == "" {
					t.Errorf("OFFER after a reinstall: no boot file, want the BIOS loader (the cached installed was answered)")
				}
			})
		})
	}
}
