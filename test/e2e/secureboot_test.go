package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// secureBootDeadline bounds one Secure Boot install boot under TCG on a
// shared machine: OVMF with SMM, shim and GRUB over TFTP, d-i's 48 MB of
// kernel and initrd over TFTP too (signed GRUB has no HTTP), and d-i's boot
// to its DHCP and preseed. It took 90 s on a busy machine.
const secureBootDeadline = 10 * time.Minute

// Secure Boot parts (Debian packages ovmf and
// debian-installer-12-netboot-amd64): the firmware descriptor libvirt picks
// for Secure Boot with Microsoft's keys enrolled, and the signed shim and
// GRUB, which TFTP finds in serve.loader_dirs.
var secureBootParts = []string{
	"/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json",
	"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
	"/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
	filepath.Join(lab.DebianInstallerDir, "bootnetx64.efi"),
	filepath.Join(lab.DebianInstallerDir, "grubx64.efi"),
}

// TestSecureBoot installs a VM with Secure Boot (docs/design.md, "Secure
// Boot"): vmprov create --firmware efi-secure defines OVMF with Secure Boot
// and Microsoft's keys on q35 with SMM and writes TXT firmware=efi-secure.
// With no option ROM on the NIC, EDK2's PXE asks serve's DHCPv4 with
// architecture 7 and gets, for that TXT key, Debian's Microsoft-signed shim
// (serve.secure_boot.loaders) instead of iPXE; shim loads the Debian-signed
// grubx64.efi from its TFTP directory; signed GRUB reads grub.cfg under
// its prefix, which serve renders for the host; that grub.cfg loads d-i's
// signed kernel and its initrd over TFTP; the kernel reports Secure Boot on
// the serial console, and d-i fetches the host's preseed over HTTP. All from
// the defaults of serve.secure_boot and serve.loader_dirs: nothing is copied
// into serve.dir/tftp.
// Destroy removes the VM's NVRAM file.
func TestSecureBoot(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("boots OVMF with Secure Boot and the Debian installer under TCG for minutes")
	}
	requireDemoLab(t)
	lab.RequireDebianInstaller(t)
	for _, f := range secureBootParts {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, debian-installer-12-netboot-amd64)", f)
		}
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	e := setupDemo(t, buildVmprov(t, t.TempDir()))
	ctx := t.Context()
	kernel, initrd, err := lab.StageDebianInstaller(filepath.Join(e.Dir, "serve"), "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	setLibvirtROM(t, e.Config, "none")

	const name, ip = "sb1", "192.0.2.41"
	b, destroy := bootVM(t, e, demo.BootSpec{Name: name, Timeout: secureBootDeadline,
		Args: []string{"--vlan", "135", "--ip", ip, "--distro", "bookworm", "--firmware", "efi-secure",
			"--memory", "1024", "--vcpus", "1", "--disk-size", "1"},
		Until: func(b *demo.Boot) bool {
			return b.Timeline.Has("/bootstrap/install/bookworm/x86_64/preseed.cfg") ||
				b.Console != nil && strings.Contains(b.Console.Text(), "grub>")
		},
	}, 40)

	// The domain runs OVMF with Secure Boot from a per-VM copy of the
	// varstore with Microsoft's keys.
	x, err := e.Lab.Libvirt.Virsh(ctx, "dumpxml", name)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'[^>]*>([^<]+)</nvram>`).FindStringSubmatch(x)
	if !strings.Contains(x, "secure='yes'") || !strings.Contains(x, "<smm state='on'/>") || !strings.Contains(x, "machine='pc-q35") || m == nil {
		t.Fatalf("domain %s does not run OVMF with Secure Boot, SMM on q35 and a varstore from OVMF_VARS_4M.ms.fd:\n%s", name, x)
	}
	nvram := e.Lab.Libvirt.HostPath(m[1])
	if _, err := os.Stat(nvram); err != nil {
		t.Errorf("the VM's NVRAM: %v", err)
	}

	// The firmware's, shim's, GRUB's and d-i's requests as serve logged
	// them, in order.
	steps := hostSteps(t, e.ServeLog, b.Host, b.Timeline.Start, nil)
	shim := config.DefaultSecureBootLoaders()[7]
	want := []string{
		"dhcp4 OFFER class=pxe arch=7 file=" + shim,
		"dhcp4 ACK class=pxe arch=7 file=" + shim,
		fmt.Sprintf("tftp %s bytes=%d", shim, size(filepath.Join(lab.DebianInstallerDir, shim))),
		fmt.Sprintf("tftp grubx64.efi bytes=%d", size(filepath.Join(lab.DebianInstallerDir, "grubx64.efi"))),
		"tftp " + config.DefaultSignedGrubConfigs()[7] + " bytes=", // rendered for the host
		fmt.Sprintf("tftp %s bytes=%d", strings.TrimPrefix(kernel, "/"), size(filepath.Join(lab.DebianInstallerDir, "linux"))),
		fmt.Sprintf("tftp %s bytes=%d", strings.TrimPrefix(initrd, "/"), size(filepath.Join(lab.DebianInstallerDir, "initrd.gz"))),
		"http /bootstrap/install/bookworm/x86_64/preseed.cfg 200",
	}
	if n := subsequence(steps, want); n < len(want) {
		t.Errorf("serve's log of %s lacks %q after %q; steps:\n%s", name, want[n], want[max(n-1, 0)], strings.Join(steps, "\n"))
	}
	if slices.ContainsFunc(steps, func(s string) bool { return strings.Contains(s, "ipxe") }) {
		t.Errorf("a Secure Boot host was handed iPXE; steps:\n%s", strings.Join(steps, "\n"))
	}
	// Sending the installing grub.cfg marked the host installing. (TFTP
	// logs the FQDN with its trailing dot, HTTP without.)
	got := append(transitions(t, e.ServeLog, b.Host.FQDN), transitions(t, e.ServeLog, strings.TrimSuffix(b.Host.FQDN, "."))...)
	if !slices.Contains(got, "install→installing") {
		t.Errorf("build state changes logged by serve: %q, want install→installing", got)
	}

	// The kernel says Secure Boot is on (arch/x86/kernel/setup.c, with
	// pr_fmt "secureboot: "), and Debian's lockdown follows from it.
	console := b.Console.Text()
	for _, w := range []string{"secureboot: Secure boot enabled", "Kernel is locked down from EFI Secure Boot"} {
		if !strings.Contains(console, w) {
			t.Errorf("the serial console lacks %q:\n%s", w, lastLines(console, 40))
		}
	}

	// vmprov explain shows the Secure Boot answer for this host.
	out, err := e.Vmprov(ctx, "explain", name, "--firmware", "efi")
	if err != nil || !strings.Contains(string(out), shim) || !strings.Contains(string(out), "Secure Boot") {
		t.Errorf("vmprov explain %s --firmware efi: %v; want %s and Secure Boot in:\n%s", name, err, shim, out)
	}

	// Destroy removes the per-VM NVRAM with the domain.
	if err := destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(nvram); !os.IsNotExist(err) {
		t.Errorf("NVRAM %s after vmprov destroy: %v, want it removed", nvram, err)
	}
}
