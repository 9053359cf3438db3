package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestHTTPBoot creates a VM with `vmprov create --firmware efi --netboot
// http`, whose domain XML turns OVMF's PXE boot options off (EDK2's
// fw_cfg switches opt/org.tianocore/IPv4PXESupport and IPv6PXESupport),
// so that the firmware takes its UEFI HTTP boot option: DHCPv4 with vendor
// class HTTPClient and architecture 16 gets the URL of the loader,
// {boot.url}/ipxe/snponly.efi, which serve finds in Debian's ipxe folder;
// the firmware GETs it over HTTP and starts it, and the iPXE it starts
// DHCPs with user class iPXE and follows the chain to its kernel and
// initrd. No TFTP is involved. The test asserts serve's log of that
// client, in order.
func TestHTTPBoot(t *testing.T) {
	t.Parallel()
	e := setupUEFI(t)
	h, start, x := e.create(t, "http1", "--vlan", "135", "--ip", "192.0.2.12", "--netboot", "http")
	for _, w := range []string{"<entry name='opt/org.tianocore/IPv4PXESupport'>n</entry>", "<entry name='opt/org.tianocore/IPv6PXESupport'>n</entry>"} {
		if !strings.Contains(x, w) {
			t.Fatalf("domain %s lacks %s:\n%s", h.Name, w, x)
		}
	}
	tl, steps := e.follow(t, h, start, uefiDeadline)

	loader := e.BootURL + "/ipxe/snponly.efi"
	want := []string{
		"dhcp4 OFFER class=http arch=16 file=" + loader,
		"dhcp4 ACK class=http arch=16 file=" + loader,
		fmt.Sprintf("http /ipxe/snponly.efi 200 bytes=%d", e.loaderSize),
		"dhcp4 OFFER class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
		"dhcp4 ACK class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
	}
	checkSteps(t, h, steps, append(want, chainSteps(h)...))
	checkNoStep(t, steps, "dhcp4 OFFER class=pxe", "the firmware's PXE ran, which --netboot http turns off")
	checkNoStep(t, steps, "tftp ", "UEFI HTTP boot fetched over TFTP")
	checkChain(t, tl)
}
