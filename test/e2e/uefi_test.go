package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab/demo"
)

// UEFI parts (Debian packages ovmf and ipxe): the firmware libvirt picks
// for <os firmware='efi'> (QEMU's descriptor 60-edk2-x86_64.json) and the
// loader serve.loaders names for x64 UEFI.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ipxeEFI  = "/usr/lib/ipxe/ipxe.efi"
)

// uefiDeadline bounds one UEFI boot under TCG on a shared machine: OVMF,
// its PXE DHCP, the TFTP download of ipxe.efi, iPXE's DHCP and the chain
// to the initrd.
const uefiDeadline = 5 * time.Minute

// TestUEFI boots a VM with OVMF and no option ROM on its NIC, so that
// EDK2's own PXE runs, from `vmprov serve` in the lab: DHCPv4 with client
// architecture 7 gets the loader ipxe.efi over TFTP from serve.dir/tftp,
// the iPXE it starts DHCPs again with user class iPXE, gets /boot.ipxe
// and follows the host's chain to its kernel and initrd. The test asserts
// serve's log of that client, in order.
func TestUEFI(t *testing.T) {
	if testing.Short() {
		t.Skip("boots OVMF under QEMU for minutes")
	}
	requireDemoLab(t)
	for _, f := range []string{ovmfCode, ipxeEFI, "/usr/share/qemu/firmware/60-edk2-x86_64.json"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, ipxe)", f)
		}
	}
	loader, err := os.ReadFile(ipxeEFI)
	if err != nil {
		t.Fatal(err)
	}
	e := setupDemo(t, buildVmprov(t, t.TempDir()))
	// serve.loaders maps architecture 7 to ipxe.efi by default; TFTP
	// serves serve.dir/tftp. The kernel becomes one UEFI iPXE can load,
	// which halts the VM when booted. Both are read at request time.
	serveDir := filepath.Join(e.Dir, "serve")
	for name, data := range map[string][]byte{
		filepath.Join("tftp", "ipxe.efi"):                            loader,
		filepath.FromSlash(strings.TrimPrefix(demo.KernelPath, "/")): haltEFI(),
	} {
		p := filepath.Join(serveDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// vmprov create with OVMF (--firmware efi) and no option ROM on the
	// NIC (libvirt.rom: none), so that the firmware's own PXE runs.
	setLibvirtROM(t, e.Config, "none")
	h, start, err := e.Create(t.Context(), "uefi1", "--vlan", "135", "--ip", "192.0.2.11", "--distro", "core",
		"--firmware", "efi", "--memory", "512", "--vcpus", "1", "--disk-size", "1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s ---\n%s", e.Lab.Libvirt.DomainLog(h.Name), demo.Tail(e.Lab.Libvirt.DomainLog(h.Name), 20))
		}
		if err := e.Destroy(context.Background(), h.Name); err != nil {
			t.Errorf("%v", err)
		}
	})
	if x, err := e.Lab.Libvirt.Virsh(t.Context(), "dumpxml", h.Name); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(x, "OVMF") || !strings.Contains(x, "<rom enabled='no'/>") {
		t.Fatalf("domain %s does not run OVMF with the NIC's option ROM off:\n%s", h.Name, x)
	}
	tl, err := e.Follow(t.Context(), h, start, uefiDeadline, func(tl demo.Timeline) bool { return tl.Has(demo.InitrdPath) }, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The client's DHCP, TFTP and HTTP steps as serve logged them, with
	// the client architecture and the TFTP size, which demo.Timeline
	// leaves out.
	var steps []string
	for _, ev := range readEvents(t, e.ServeLog, start) {
		var step string
		switch {
		case strings.HasPrefix(ev.Msg, "dhcp4 ") && ev.MAC == h.MAC:
			step = fmt.Sprintf("%s class=%s arch=%s file=%s", ev.Msg, ev.Class, ev.Arch, ev.File)
		case ev.Msg == "tftp transfer" && ev.IP == h.IPv4.String():
			step = fmt.Sprintf("tftp %s bytes=%d", ev.File, ev.Bytes)
		case ev.Msg == "http request" && ev.IP == h.IPv4.String():
			step = fmt.Sprintf("http %s %d", ev.File, ev.Status)
		default:
			continue
		}
		t.Logf("%6.1fs %s", ev.Time.Sub(start).Seconds(), step)
		steps = append(steps, step)
		if ev.File == demo.InitrdPath {
			break
		}
	}
	want := []string{
		"dhcp4 OFFER class=pxe arch=7 file=ipxe.efi",
		"dhcp4 ACK class=pxe arch=7 file=ipxe.efi",
		fmt.Sprintf("tftp ipxe.efi bytes=%d", len(loader)),
		"dhcp4 OFFER class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
		"dhcp4 ACK class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
	}
	for _, r := range demo.WantRequests(h) {
		want = append(want, fmt.Sprintf("http %s %d", r.File, r.Status))
	}
	// Firmware may repeat its DHCP exchange; each wanted step must follow
	// the one before it.
	if n := subsequence(steps, want); n < len(want) {
		t.Errorf("serve's log of %s lacks %q after %q; steps:\n%s", h.MAC, want[n], want[max(n-1, 0)], strings.Join(steps, "\n"))
	}
	// iPXE's own DHCPv4 is one exchange, and /boot.ipxe reuses it: no
	// DHCPv4 after the script was fetched.
	ipxeACKs, script := 0, -1
	for i, s := range steps {
		switch {
		case strings.HasPrefix(s, "dhcp4 ACK class=ipxe "):
			ipxeACKs++
		case s == "http /boot.ipxe 200" && script < 0:
			script = i
		case strings.HasPrefix(s, "dhcp4 ") && script >= 0:
			t.Errorf("%s after iPXE fetched /boot.ipxe, which should have used its configuration", s)
		}
	}
	if ipxeACKs != 1 {
		t.Errorf("%d DHCPv4 ACKs to iPXE, want 1; steps:\n%s", ipxeACKs, strings.Join(steps, "\n"))
	}
	// The HTTP requests exactly: nothing fetched twice or out of order.
	var got []demo.Request
	for _, r := range tl.Requests() {
		if r.Kind == demo.HTTP {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff(demo.WantRequests(h), got); diff != "" {
		t.Errorf("HTTP requests of %s (-want +got):\n%s", h.IPv4, diff)
	}
}

// subsequence returns how many of want occur in got one after another.
func subsequence(got, want []string) int {
	n := 0
	for _, g := range got {
		if n < len(want) && g == want[n] {
			n++
		}
	}
	return n
}
