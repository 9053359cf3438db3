package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/test/lab"
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
	lab.RequireRoot(t, "go", "ip", "curl", "named", "radvd", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	for _, f := range []string{ovmfCode, ipxeEFI, "/usr/share/qemu/firmware/60-edk2-x86_64.json"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, ipxe)", f)
		}
	}
	loader, err := os.ReadFile(ipxeEFI)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildVmprov(t, t.TempDir())
	s := startServeLab(t, bin, serveLabOptions{Setup: func(t *testing.T, dir string) {
		// serve.loaders maps architecture 7 to ipxe.efi by default;
		// TFTP serves serve.dir/tftp.
		if err := os.MkdirAll(filepath.Join(dir, "tftp"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tftp", "ipxe.efi"), loader, 0o644); err != nil {
			t.Fatal(err)
		}
		// A kernel UEFI iPXE can load, which halts the VM when booted.
		if err := os.WriteFile(filepath.Join(dir, strings.TrimPrefix(kernelPath, "/")), haltEFI(), 0o644); err != nil {
			t.Fatal(err)
		}
	}})

	// vmprov create makes the DNS records, the disk and a BIOS domain.
	// Replace the domain by the same VM with UEFI firmware and its NIC's
	// option ROM off; only what happens after that start counts.
	vm := s.create(t, "uefi1", "--ip", "192.0.2.11")
	start := redefineUEFI(t, s, vm)

	evs := s.waitEvent(t, start, uefiDeadline, "request for "+initrdPath+" from 192.0.2.11", func(e event) bool {
		return e.Msg == "http request" && e.IP == "192.0.2.11" && e.File == initrdPath
	})

	// The client's DHCP, TFTP and HTTP steps as serve logged them.
	var steps []string
	for _, e := range evs {
		var step string
		switch {
		case strings.HasPrefix(e.Msg, "dhcp4 ") && e.MAC == vm.MAC:
			step = fmt.Sprintf("%s class=%s arch=%s file=%s", e.Msg, e.Class, e.Arch, e.File)
		case e.Msg == "tftp transfer" && e.IP == "192.0.2.11":
			step = fmt.Sprintf("tftp %s bytes=%d", e.File, e.Bytes)
		case e.Msg == "http request" && e.IP == "192.0.2.11":
			step = fmt.Sprintf("http %s %d", e.File, e.Status)
		default:
			continue
		}
		t.Logf("%6.1fs %s", e.Time.Sub(start).Seconds(), step)
		steps = append(steps, step)
	}
	want := []string{
		"dhcp4 OFFER class=pxe arch=7 file=ipxe.efi",
		"dhcp4 ACK class=pxe arch=7 file=ipxe.efi",
		fmt.Sprintf("tftp ipxe.efi bytes=%d", len(loader)),
		"dhcp4 OFFER class=ipxe arch=7 file=" + labBootURL + "/boot.ipxe",
		"dhcp4 ACK class=ipxe arch=7 file=" + labBootURL + "/boot.ipxe",
		"http /boot.ipxe 200",
		"http /mac/" + vm.hexhyp() + "/ipxe 404",
		"http /pxedust 200",
	}
	for _, r := range installChain {
		want = append(want, fmt.Sprintf("http %s %d", r.File, r.Status))
	}
	// Firmware may repeat a DHCP exchange; each wanted step must follow
	// the one before it.
	if n := subsequence(steps, want); n < len(want) {
		t.Errorf("serve's log of %s lacks %q after %q; steps:\n%s", vm.MAC, want[n], want[max(n-1, 0)], strings.Join(steps, "\n"))
	}
	// The HTTP requests exactly: nothing fetched twice or out of order.
	wantHTTP := append([]httpReq{{"/boot.ipxe", 200}, {"/mac/" + vm.hexhyp() + "/ipxe", 404}, {"/pxedust", 200}}, installChain...)
	if diff := cmp.Diff(wantHTTP, requestsOf(t, evs, "192.0.2.11", start)); diff != "" {
		t.Errorf("HTTP requests of 192.0.2.11 (-want +got):\n%s", diff)
	}
}

// redefineUEFI stops the domain vmprov create started, defines it again
// from virt.BuildDomainXML with FirmwareEFI (its MAC, disk and metadata
// unchanged) and <rom enabled='no'/> on its interface, starts it and
// returns when it was started.
func redefineUEFI(t *testing.T, s *serveLab, vm createdVM) time.Time {
	t.Helper()
	ctx := t.Context()
	lv := s.lab.Libvirt
	if _, err := lv.Virsh(ctx, "destroy", vm.Name); err != nil {
		t.Fatal(err)
	}
	cur, err := lv.Virsh(ctx, "dumpxml", "--inactive", vm.Name)
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(cur); err != nil {
		t.Fatalf("dumpxml %s: %v", vm.Name, err)
	}
	if d.Devices == nil || len(d.Devices.Disks) != 1 || len(d.Devices.Interfaces) != 1 ||
		d.Devices.Disks[0].Source == nil || d.Devices.Disks[0].Source.File == nil ||
		d.Devices.Interfaces[0].Source == nil || d.Devices.Interfaces[0].Source.Bridge == nil {
		t.Fatalf("domain %s is not one disk file and one bridged interface:\n%s", vm.Name, cur)
	}
	spec := virt.DomainSpec{
		Name:      vm.Name,
		Type:      d.Type,
		MemoryMiB: 512, // OVMF and iPXE want more than SeaBIOS
		VCPUs:     1,
		MAC:       vm.MAC,
		Bridge:    d.Devices.Interfaces[0].Source.Bridge.Bridge,
		DiskPath:  d.Devices.Disks[0].Source.File.File,
		Meta:      virt.Metadata{VLAN: 135, Distro: "core", FQDN: vm.FQDN},
		Firmware:  virt.FirmwareEFI,
	}
	x, err := virt.BuildDomainXML(spec)
	if err != nil {
		t.Fatal(err)
	}
	var efi libvirtxml.Domain
	if err := efi.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	efi.UUID = d.UUID // the same domain, redefined
	efi.Devices.Interfaces[0].ROM = &libvirtxml.DomainROM{Enabled: "no"}
	x, err = efi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), vm.Name+".xml")
	if err := os.WriteFile(file, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.Virsh(ctx, "define", file); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := lv.Virsh(ctx, "start", vm.Name); err != nil {
		t.Fatal(err)
	}
	if got, err := lv.Virsh(ctx, "dumpxml", vm.Name); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(got, "OVMF") {
		t.Fatalf("domain %s does not run OVMF:\n%s", vm.Name, got)
	}
	return start
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
