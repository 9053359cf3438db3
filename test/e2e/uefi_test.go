package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// UEFI parts (Debian packages ovmf and ipxe): the firmware libvirt picks
// for <os firmware='efi'> (QEMU's descriptor 60-edk2-x86_64.json) and the
// loader serve.loaders names for x64 UEFI by default, which serve finds in
// the ipxe package's folder (serve.loader_dirs).
const (
	ovmfCode   = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	snponlyEFI = "/usr/lib/ipxe/snponly.efi"
)

// uefiDeadline bounds one UEFI boot under TCG on a shared machine: OVMF,
// its PXE DHCP, the TFTP download of snponly.efi, iPXE's DHCP and the
// chain to the initrd.
const uefiDeadline = 5 * time.Minute

// uefiIPv6Deadline bounds a UEFI boot on the IPv6-only link, where iPXE
// first waits out its DHCPv4 (and UEFI HTTP boot its HTTPv4 option's
// DHCPv4) before IPv6 goes on.
const uefiIPv6Deadline = 10 * time.Minute

// uefiLab is a lab whose `vmprov serve` boots OVMF VMs: the kernel of
// distribution core is one UEFI iPXE can load (haltEFI, which halts the
// VM), and VM NICs load no option ROM (libvirt.rom: none), so that the
// firmware's own network boot runs. Nothing is copied for the loader:
// serve finds snponly.efi in Debian's ipxe folder. loaderSize is its size.
type uefiLab struct {
	*demo.Env
	loaderSize int64
}

// setupUEFI brings up such a lab (br135, plus the bridges more).
func setupUEFI(t *testing.T, more ...lab.Bridge) uefiLab {
	t.Helper()
	if testing.Short() {
		t.Skip("boots OVMF under QEMU for minutes")
	}
	requireDemoLab(t)
	for _, f := range []string{ovmfCode, snponlyEFI, "/usr/share/qemu/firmware/60-edk2-x86_64.json"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, ipxe)", f)
		}
	}
	fi, err := os.Stat(snponlyEFI)
	if err != nil {
		t.Fatal(err)
	}
	e := setupDemo(t, buildVmprov(t, t.TempDir()), more...)
	kernel := filepath.Join(e.Dir, "serve", filepath.FromSlash(strings.TrimPrefix(demo.KernelPath, "/")))
	if err := os.WriteFile(kernel, haltEFI(), 0o644); err != nil { // read at request time
		t.Fatal(err)
	}
	setLibvirtROM(t, e.Config, "none")
	return uefiLab{Env: e, loaderSize: fi.Size()}
}

// create runs `vmprov create NAME --firmware efi ARGS...` with a small VM
// of distribution core, destroys it when t ends, and returns the host,
// the time create started and the domain's XML, which must run OVMF with
// no option ROM on its NIC.
func (e uefiLab) create(t *testing.T, name string, args ...string) (demo.Host, time.Time, string) {
	t.Helper()
	args = append([]string{"--distro", "core", "--firmware", "efi", "--memory", "512", "--vcpus", "1", "--disk-size", "1"}, args...)
	h, start, err := e.Create(t.Context(), name, args...)
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
	x, err := e.Lab.Libvirt.Virsh(t.Context(), "dumpxml", h.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x, "OVMF") || !strings.Contains(x, "<rom enabled='no'/>") {
		t.Fatalf("domain %s does not run OVMF with the NIC's option ROM off:\n%s", h.Name, x)
	}
	return h, start, x
}

// follow waits until h fetched its initrd and returns its timeline and
// its DHCP, TFTP and HTTP steps as serve logged them (uefiStep), in order.
func (e uefiLab) follow(t *testing.T, h demo.Host, start time.Time, deadline time.Duration) (demo.Timeline, []string) {
	t.Helper()
	tl, err := e.Follow(t.Context(), h, start, deadline, func(tl demo.Timeline) bool { return tl.Has(demo.InitrdPath) },
		func(ev demo.Event) { t.Logf("%s: %s", h.Name, ev) })
	steps := hostSteps(t, e.ServeLog, h, start, func(ev event) bool { return ev.File == demo.InitrdPath })
	if err != nil {
		t.Fatalf("%v; steps:\n%s", err, strings.Join(steps, "\n"))
	}
	return tl, steps
}

// hostSteps returns h's steps (hostStep) in serve's log at logPath from
// start on, in order, each also logged with its time since start; with
// last, up to the first step last reports.
func hostSteps(t *testing.T, logPath string, h demo.Host, start time.Time, last func(event) bool) []string {
	t.Helper()
	var steps []string
	for _, ev := range readEvents(t, logPath, start) {
		step, ok := hostStep(h, ev)
		if !ok {
			continue
		}
		t.Logf("%s %6.1fs %s", h.Name, ev.Time.Sub(start).Seconds(), step)
		steps = append(steps, step)
		if last != nil && last(ev) {
			break
		}
	}
	return steps
}

// hostStep formats a serve log line about h: its DHCP messages with class,
// client architecture and boot file, its TFTP transfers with their size,
// and its HTTP requests with their status (and size, for loaders under
// /ipxe/).
func hostStep(h demo.Host, ev event) (string, bool) {
	from := func() bool {
		a, err := netip.ParseAddr(ev.IP)
		return err == nil && slices.Contains(h.Addrs(), a.Unmap())
	}
	switch {
	case (strings.HasPrefix(ev.Msg, "dhcp4 ") || strings.HasPrefix(ev.Msg, "dhcp6 ")) && ev.MAC == h.MAC:
		return fmt.Sprintf("%s class=%s arch=%s file=%s", ev.Msg, ev.Class, ev.Arch, ev.File), true
	case ev.Msg == "tftp transfer" && from():
		return fmt.Sprintf("tftp %s bytes=%d", strings.TrimPrefix(ev.File, "/"), ev.Bytes), true
	case ev.Msg == "http request" && from():
		step := fmt.Sprintf("http %s %d", ev.File, ev.Status)
		if ev.Method != "" && ev.Method != "GET" {
			step = fmt.Sprintf("http %s %s %d", ev.Method, ev.File, ev.Status)
		}
		if strings.HasPrefix(ev.File, "/ipxe/") && ev.Method == "GET" {
			step += fmt.Sprintf(" bytes=%d", ev.Bytes)
		}
		return step, true
	}
	return "", false
}

// checkSteps fails t unless want occurs in steps in order (firmware may
// repeat its DHCP exchange; each wanted step must follow the one before).
func checkSteps(t *testing.T, h demo.Host, steps, want []string) {
	t.Helper()
	if n := subsequence(steps, want); n < len(want) {
		t.Errorf("serve's log of %s lacks %q after %q; steps:\n%s", h.MAC, want[n], want[max(n-1, 0)], strings.Join(steps, "\n"))
	}
}

// chainSteps is the HTTP chain of demo.WantRequests as steps.
func chainSteps(h demo.Host) []string {
	var want []string
	for _, r := range demo.WantRequests(h) {
		want = append(want, fmt.Sprintf("http %s %d", r.File, r.Status))
	}
	return want
}

// checkChain fails t unless iPXE's HTTP requests, those after the
// firmware's fetches of loaders under /ipxe/, are exactly the chain of
// demo.WantRequests: nothing fetched twice or out of order.
func checkChain(t *testing.T, tl demo.Timeline) {
	t.Helper()
	var got []demo.Request
	for _, r := range tl.Requests() {
		if r.Kind == demo.HTTP && !strings.HasPrefix(r.File, "/ipxe/") {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff(demo.WantRequests(tl.Host), got); diff != "" {
		t.Errorf("HTTP requests of %s (-want +got):\n%s", tl.Host.Name, diff)
	}
}

// checkNoStep fails t if a step starts with prefix (why says why none may).
func checkNoStep(t *testing.T, steps []string, prefix, why string) {
	t.Helper()
	for _, s := range steps {
		if strings.HasPrefix(s, prefix) {
			t.Errorf("%s: %s; steps:\n%s", s, why, strings.Join(steps, "\n"))
			return
		}
	}
}

// TestUEFI boots a VM with OVMF and no option ROM on its NIC, so that
// EDK2's own PXE runs, from `vmprov serve` in the lab: DHCPv4 with client
// architecture 7 gets the loader snponly.efi over TFTP, which serve finds
// in Debian's ipxe folder (nothing under serve.dir/tftp), the iPXE it
// starts DHCPs again with user class iPXE, gets /boot.ipxe and follows the
// host's chain to its kernel and initrd. The test asserts serve's log of
// that client, in order.
func TestUEFI(t *testing.T) {
	t.Parallel()
	e := setupUEFI(t)
	h, start, _ := e.create(t, "uefi1", "--vlan", "135", "--ip", "192.0.2.11")
	tl, steps := e.follow(t, h, start, uefiDeadline)

	want := []string{
		"dhcp4 OFFER class=pxe arch=7 file=snponly.efi",
		"dhcp4 ACK class=pxe arch=7 file=snponly.efi",
		fmt.Sprintf("tftp snponly.efi bytes=%d", e.loaderSize),
		"dhcp4 OFFER class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
		"dhcp4 ACK class=ipxe arch=7 file=" + e.BootURL + "/boot.ipxe",
	}
	checkSteps(t, h, steps, append(want, chainSteps(h)...))
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
	checkChain(t, tl)
}

// subsequence returns how many of want occur in got one after another. A
// want ending in "bytes=" matches any step it starts (a TFTP transfer of a
// rendered file, whose size the test does not know).
func subsequence(got, want []string) int {
	n := 0
	for _, g := range got {
		if n < len(want) && (g == want[n] || strings.HasSuffix(want[n], "bytes=") && strings.HasPrefix(g, want[n])) {
			n++
		}
	}
	return n
}
