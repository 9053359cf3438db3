package dhcp6_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/vmprov/vmprov/inventory"
)

// TestInstalledHost: a host in build state installed gets its address, DNS
// servers and search list from DHCPv6, but PXE firmware and UEFI HTTP boot
// get no boot file URL, so their firmware boots the disk; iPXE still gets
// BASE/boot.ipxe, which answers it the script that exits.
func TestInstalledHost(t *testing.T) {
	mac := mustMAC("00:25:90:96:c4:9e")
	addr := netip.MustParseAddr("2001:db8:135::70")
	recs := []string{
		"done70.example.com. 300 AAAA " + addr.String(),
		`done70.example.com. 300 TXT "distribution=bookworm" "state=installed" "build_id=38b6bf72"`,
		"00-25-90-96-c4-9e._mac.example.com. 300 CNAME done70.example.com.",
		inventory.ReverseName(addr) + " 300 PTR done70.example.com.",
	}
	tests := []struct {
		name string
		mods []dhcpv6.Modifier
		boot string
	}{
		{"UEFI PXE, arch 7", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64), withVendorClass("PXEClient:Arch:00007:UNDI:003016")}, ""},
		{"BIOS PXE, arch 0", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.INTEL_X86PC)}, ""},
		{"UEFI HTTP boot, arch 16", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), withVendorClass("HTTPClient:Arch:00016:UNDI:003016")}, ""},
		{"arm64 PXE, arch 11", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_ARM64)}, ""},
		{"iPXE", []dhcpv6.Modifier{withUserClass("iPXE"), dhcpv6.WithArchType(iana.EFI_X86_64)}, "http://[2001:db8:135::1]/boot.ipxe"},
	}
	for bname, newBackend := range backends() {
		t.Run(bname, func(t *testing.T) {
			b := newBackend(t)
			load(t, b, recs...)
			s := newServer(t, b, false)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for _, typ := range []dhcpv6.MessageType{dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest} {
						mods := append([]dhcpv6.Modifier{dhcpv6.WithClientID(duidLLT(mac)), ia()}, tt.mods...)
						if typ == dhcpv6.MessageTypeRequest {
							mods = append(mods, dhcpv6.WithServerID(serverDUID))
						}
						got, err := s.Handle(t.Context(), msg(typ, mods...), direct(linkLocal(mac)))
						if err != nil || got == nil {
							t.Fatalf("%s: reply %v, error %v", typ, got, err)
						}
						sum := summarize(t, got)
						want := summary{Type: sum.Type, ClientID: hexDUID(duidLLT(mac)), ServerID: true, Preference: sum.Preference,
							IAs: ianaOf(addr), DNS: dns135, Domains: domains, BootFile: tt.boot}
						if diff := cmp.Diff(want, sum); diff != "" {
							t.Errorf("%s: reply (-want +got):\n%s", typ, diff)
						}
					}
				})
			}
		})
	}
}
