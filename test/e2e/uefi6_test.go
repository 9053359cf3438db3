package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/test/lab"
)

// TestUEFIIPv6 boots OVMF VMs on the lab's IPv6-only VLAN 136 (br136:
// router advertisements with the O flag, no DHCPv4 answers), one lab for
// both, in parallel:
//
//   - pxe: `vmprov create --vlan 136 --firmware efi` turns OVMF's IPv4 PXE
//     off, since the host has no IPv4 address, so its PXE over IPv6 asks
//     serve over DHCPv6 with architecture 7 and gets
//     tftp://[2001:db8:136::1]/snponly.efi, which it fetches over TFTP on
//     IPv6;
//   - http: with --netboot http both PXE options are off, and UEFI HTTP
//     boot over IPv6 asks with vendor class HTTPClient and architecture 16
//     and gets {boot.url_v6}/ipxe/snponly.efi, which it fetches over HTTP.
//
// Either way the iPXE started asks DHCPv6 with user class iPXE, gets
// {boot.url_v6}/boot.ipxe and follows the chain to its kernel and initrd
// over IPv6. No DHCPv4 answer is ever given.
func TestUEFIIPv6(t *testing.T) {
	t.Parallel()
	e := setupUEFI(t, lab.IPv6OnlyBridge())
	if e.BootURL6 == "" {
		t.Fatal("the lab has no IPv6 boot URL (boot.url_v6)")
	}
	const server = "2001:db8:136::1" // serve's global address on br136
	ipxe := []string{
		"dhcp6 REPLY class=ipxe arch=7 file=" + e.BootURL6 + "/boot.ipxe",
	}
	for _, tc := range []struct {
		name    string
		netboot string
		fwcfg   []string // EDK2 switches in the domain XML, all "n"
		want    []string
		never   string // a step prefix that must not occur
	}{
		{
			name: "pxe", netboot: "pxe",
			fwcfg: []string{"IPv4PXESupport"},
			want: []string{
				"dhcp6 REPLY class=pxe arch=7 file=tftp://[" + server + "]/snponly.efi",
				fmt.Sprintf("tftp snponly.efi bytes=%d", e.loaderSize),
			},
			never: "http /ipxe/",
		},
		{
			name: "http", netboot: "http",
			fwcfg: []string{"IPv4PXESupport", "IPv6PXESupport"},
			want: []string{
				"dhcp6 REPLY class=http arch=16 file=" + e.BootURL6 + "/ipxe/snponly.efi",
				fmt.Sprintf("http /ipxe/snponly.efi 200 bytes=%d", e.loaderSize),
			},
			never: "tftp ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, start, x := e.create(t, "uefi6"+tc.name, "--vlan", "136", "--netboot", tc.netboot)
			if h.IPv4.IsValid() || !h.IPv6.IsValid() {
				t.Fatalf("host %s has IPv4 %v and IPv6 %v, want IPv6 only", h.Name, h.IPv4, h.IPv6)
			}
			for _, name := range tc.fwcfg {
				if w := "<entry name='opt/org.tianocore/" + name + "'>n</entry>"; !strings.Contains(x, w) {
					t.Fatalf("domain %s lacks %s:\n%s", h.Name, w, x)
				}
			}
			if tc.netboot == "pxe" && strings.Contains(x, "IPv6PXESupport") {
				t.Fatalf("domain %s turns PXE over IPv6 off:\n%s", h.Name, x)
			}
			tl, steps := e.follow(t, h, start, uefiIPv6Deadline)
			checkSteps(t, h, steps, append(append(tc.want, ipxe...), chainSteps(h)...))
			checkNoStep(t, steps, "dhcp4 OFFER", "DHCPv4 answered an IPv6-only host")
			checkNoStep(t, steps, tc.never, "the other way of loading was used")
			checkChain(t, tl)
		})
	}
}
