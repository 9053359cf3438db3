package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/templates"
	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// arm64 UEFI parts (Debian packages qemu-system-arm and qemu-efi-aarch64):
// the emulator and the firmware libvirt picks for an aarch64 domain with
// <os firmware='efi'> and no Secure Boot (QEMU's descriptor
// 60-edk2-aarch64.json, AAVMF).
const (
	aarch64Emulator = "qemu-system-aarch64"
	aavmfCode       = "/usr/share/AAVMF/AAVMF_CODE.fd"
	aavmfDescriptor = "/usr/share/qemu/firmware/60-edk2-aarch64.json"
)

// arm64Deadline bounds one arm64 install boot under TCG on a shared
// machine, where every aarch64 instruction is emulated: AAVMF and its PXE,
// the shim, GRUB and 73 MB of kernel and initrd over TFTP, the kernel's
// boot, d-i's DHCP, its preseed and the callback. It took about 2 to 3
// minutes here with other QEMU tests running; it stays under go test's
// default timeout of 10 minutes.
const arm64Deadline = 8 * time.Minute

// TestARM64 boots an arm64 VM (vmprov create --arch aarch64: QEMU's virt
// machine with AAVMF, an aarch64 libvirt domain in the lab) from the
// network through vmprov serve, into Debian 12's real arm64 installer
// (package debian-installer-12-netboot-arm64), by the signed chain of
// Secure Boot hosts (docs/design.md, "Secure Boot"), all from serve's
// defaults: nothing is copied into serve.dir/tftp.
//
//  1. AAVMF's PXE sends DHCPv4 with client architecture 11 and gets
//     serve.loaders' default, Debian's netboot shim bootnetaa64.efi, which
//     TFTP finds in serve.loader_dirs;
//  2. the shim loads the Debian-signed GRUB beside it, grubaa64.efi, which
//     reads grub.cfg under its prefix, serve.signed_grub_cfg's name for
//     architecture 11, rendered for the host;
//  3. that grub.cfg loads the arm64 installer's linux and initrd.gz over
//     TFTP from serve.dir/assets (the host's TXT says arch=aarch64), and
//     the kernel starts on the serial console, ttyAMA0;
//  4. d-i gets its address from serve's DHCP, and the site preseed (TXT
//     preseed=, lab.DebianCallbackPreseed: the lab has no mirror) fetches
//     the host's own preseed.cfg and calls its done URL: the host is
//     installed.
//
// The test asserts serve's log of that client in order, the kernel's
// first console lines, and the build state changes.
func TestARM64(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("boots an arm64 VM under TCG for many minutes")
	}
	requireDemoLab(t)
	if _, err := exec.LookPath(aarch64Emulator); err != nil {
		t.Skipf("needs %s (install qemu-system-arm)", aarch64Emulator)
	}
	for _, f := range []string{aavmfCode, aavmfDescriptor} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (install qemu-efi-aarch64)", f)
		}
	}
	lab.RequireDebianInstallerOf(t, templates.ArchARM64)

	e := setupDemo(t, buildVmprov(t, t.TempDir()))
	ctx := t.Context()
	serveDir := filepath.Join(e.Dir, "serve")
	kernel, initrd, err := lab.StageDebianInstallerOf(serveDir, "bookworm", templates.ArchARM64)
	if err != nil {
		t.Fatal(err)
	}
	shim, grub := config.DefaultLoaders()[11], "grubaa64.efi"
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	installer := lab.DebianInstallerDirOf(templates.ArchARM64)
	answer := e.BootURL + "/bootstrap/install/bookworm/aarch64/preseed.cfg"
	site := "/bootstrap/" + demo.Site + "/arm64-callback.cfg"
	if err := os.MkdirAll(filepath.Join(serveDir, "bootstrap", demo.Site), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(serveDir, filepath.FromSlash(site)), []byte(lab.DebianCallbackPreseed(answer)), 0o644); err != nil {
		t.Fatal(err)
	}

	const name, ip = "arm1", "192.0.2.42"
	b, _ := bootVM(t, e, demo.BootSpec{Name: name, Timeout: arm64Deadline,
		Args: []string{"--vlan", "135", "--ip", ip, "--distro", "bookworm", "--arch", "aarch64", "--boot", "network,hd",
			"--txt", "preseed=" + e.BootURL + site, "--memory", "1024", "--vcpus", "1", "--disk-size", "1"},
		Until: func(b *demo.Boot) bool {
			return b.Timeline.Has("/done") || b.Console != nil && strings.Contains(b.Console.Text(), lab.DebianInstallerMarker+"failed")
		},
	}, 60)
	start := b.Timeline.Start

	// The domain is an aarch64 guest on AAVMF whose NIC loads no option
	// ROM, so that the firmware's own PXE runs.
	if x, err := e.Lab.Libvirt.Virsh(ctx, "dumpxml", name); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(x, "arch='aarch64'") || !strings.Contains(x, "AAVMF") || !strings.Contains(x, "<rom enabled='no'/>") {
		t.Errorf("domain %s is not an aarch64 guest on AAVMF with the NIC's option ROM off:\n%s", name, x)
	}

	// 1-4: the client's DHCP, TFTP and HTTP steps as serve logged them.
	steps := hostSteps(t, e.ServeLog, b.Host, start, nil)
	want := []string{
		"dhcp4 OFFER class=pxe arch=11 file=" + shim,
		"dhcp4 ACK class=pxe arch=11 file=" + shim,
		fmt.Sprintf("tftp %s bytes=%d", shim, size(filepath.Join(installer, shim))),
		fmt.Sprintf("tftp %s bytes=%d", grub, size(filepath.Join(installer, grub))),
		"tftp " + config.DefaultSignedGrubConfigs()[11] + " bytes=", // rendered for the host
		fmt.Sprintf("tftp %s bytes=%d", strings.TrimPrefix(kernel, "/"), size(filepath.Join(installer, "linux"))),
		fmt.Sprintf("tftp %s bytes=%d", strings.TrimPrefix(initrd, "/"), size(filepath.Join(installer, "initrd.gz"))),
		"dhcp4 ACK class=none arch= file=", // d-i's own DHCP
		"http " + site + " 200",
		"http /bootstrap/install/bookworm/aarch64/preseed.cfg 200",
		"http /done 200",
	}
	// Firmware and d-i may repeat their DHCP; each wanted step must follow
	// the one before it.
	if n := subsequence(steps, want); n < len(want) {
		t.Errorf("serve's log of %s lacks %q after %q; steps:\n%s", b.Host.MAC, want[n], want[max(n-1, 0)], strings.Join(steps, "\n"))
	}
	if slices.ContainsFunc(steps, func(s string) bool {
		return strings.Contains(s, "ipxe") || strings.HasPrefix(s, "http "+kernel) || strings.HasPrefix(s, "http "+initrd)
	}) {
		t.Errorf("the arm64 host was handed iPXE or fetched its installer over HTTP; steps:\n%s", strings.Join(steps, "\n"))
	}
	if _, err := os.Stat(filepath.Join(serveDir, "tftp", "debian-installer")); err == nil {
		t.Errorf("serve.dir/tftp holds a debian-installer tree: the chain must come from serve.loader_dirs")
	}

	// 3: the kernel started on the serial console with its command line.
	console := b.Console.Text()
	for _, w := range []string{"EFI stub: Booting Linux Kernel", "Booting Linux on physical CPU", "Kernel command line: ", "console=ttyAMA0,115200", "hostname=" + name} {
		if !strings.Contains(console, w) {
			t.Errorf("the serial console lacks %q:\n%s", w, lastLines(console, 40))
		}
	}
	// TFTP logs the host's FQDN with its trailing dot, HTTP without; the
	// grub.cfg (TFTP) came before the callback (HTTP).
	fqdn := strings.TrimSuffix(b.Host.FQDN, ".")
	if got := append(transitions(t, e.ServeLog, fqdn+"."), transitions(t, e.ServeLog, fqdn)...); strings.Join(got, ",") != "install→installing,installing→installed" {
		t.Errorf("build state changes logged by serve: %q, want install→installing, installing→installed", got)
	}
}
