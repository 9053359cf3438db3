package lab

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/templates"
)

// DebianInstallerDir is where package debian-installer-12-netboot-amd64
// puts the netboot kernel (linux) and initrd (initrd.gz) of the real Debian
// 12 installer, d-i: its own DHCP client, wget and preseed.
const DebianInstallerDir = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64"

// DebianInstallerDirOf is DebianInstallerDir of the host architecture arch
// (templates.ArchX8664 or templates.ArchARM64, whose package is
// debian-installer-12-netboot-arm64): beside linux and initrd.gz, the UEFI
// netboot shim (bootnetx64.efi, bootnetaa64.efi) and the signed GRUB it
// loads (grubx64.efi, grubaa64.efi), which vmprov serve finds there by
// plain name (serve.loader_dirs).
func DebianInstallerDirOf(arch string) string {
	a := templates.DebianArch(arch)
	return "/usr/lib/debian-installer/images/12/" + a + "/text/debian-installer/" + a
}

// DebianInstallerMarker starts every line DebianCallbackPreseed's
// early_command writes to the console; a test waits for
// DebianInstallerMarker+"installed".
const DebianInstallerMarker = "vmprov-di: "

// RequireDebianInstaller skips t unless the d-i netboot files are here.
func RequireDebianInstaller(t testing.TB) {
	t.Helper()
	RequireDebianInstallerOf(t, templates.ArchX8664)
}

// RequireDebianInstallerOf skips t unless the d-i netboot files of the host
// architecture arch are here, with its UEFI shim and GRUB.
func RequireDebianInstallerOf(t testing.TB, arch string) {
	t.Helper()
	files := []string{"linux", "initrd.gz"}
	if arch == templates.ArchARM64 {
		files = append(files, "bootnetaa64.efi", "grubaa64.efi")
	}
	dir := DebianInstallerDirOf(arch)
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Skipf("needs %s (install debian-installer-12-netboot-%s)", filepath.Join(dir, f), templates.DebianArch(arch))
		}
	}
}

// StageDebianInstaller copies d-i's kernel and initrd to where the install
// script of distribution dist (bookworm) fetches them under the default
// mirror, serveDir/assets (boot.url/assets), and returns their HTTP paths.
// They are copied, not linked: serve's os.Root serves no link out of
// serve.dir.
func StageDebianInstaller(serveDir, dist string) (kernel, initrd string, err error) {
	return StageDebianMirror(serveDir, "", dist)
}

// StageDebianMirror is StageDebianInstaller for a host whose TXT mirror=
// is boot.url/assets/sub: it copies d-i's kernel and initrd to where a
// Debian mirror has them (dists/DIST/main/installer-amd64/.../netboot)
// under serveDir/assets/sub and returns their HTTP paths. The rest of the
// mirror is absent: d-i's own requests to it get 404s in serve's log.
func StageDebianMirror(serveDir, sub, dist string) (kernel, initrd string, err error) {
	return stageDebian(serveDir, sub, dist, templates.ArchX8664)
}

// StageDebianInstallerOf is StageDebianInstaller for a host of architecture
// arch (TXT arch=): d-i of that architecture, at its paths.
func StageDebianInstallerOf(serveDir, dist, arch string) (kernel, initrd string, err error) {
	return stageDebian(serveDir, "", dist, arch)
}

func stageDebian(serveDir, sub, dist, arch string) (kernel, initrd string, err error) {
	if sub != "" && (strings.Contains(sub, "..") || path.IsAbs(sub)) {
		return "", "", fmt.Errorf("stage d-i: mirror directory %q: want a relative path under assets/ without ..", sub)
	}
	d, err := templates.LookupDistribution(dist)
	if err != nil {
		return "", "", fmt.Errorf("stage d-i: %w", err)
	}
	if d.Family != templates.FamilyDebian {
		return "", "", fmt.Errorf("stage d-i: distribution %s is family %s, not debian", dist, d.Family)
	}
	pxeboot := d.PXEBootFor(arch)
	dir := filepath.Join(serveDir, "assets", filepath.FromSlash(sub), filepath.FromSlash(pxeboot))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("stage d-i: %w", err)
	}
	for _, f := range [][2]string{{"linux", d.Kernel}, {"initrd.gz", d.Initrd}} {
		if err := copyFile(filepath.Join(DebianInstallerDirOf(arch), f[0]), filepath.Join(dir, f[1])); err != nil {
			return "", "", fmt.Errorf("stage d-i: %w", err)
		}
	}
	base := path.Join("/assets", sub, pxeboot)
	return base + "/" + d.Kernel, base + "/" + d.Initrd, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// DebianCallbackPreseed is a site preseed for d-i in a lab that has no
// Debian mirror, handed to the installer through the TXT override
// preseed=URL. A real install needs a mirror; this one stops where that is
// needed, after doing what an installer does with vmprov serve: its
// early_command fetches the host's own preseed.cfg from answerURL with
// d-i's wget (serve marks the host installing and writes the host's done
// URL, with its token, into the file's late_command), then calls that done
// URL with wget, as firstboot does at the end of a real install (serve
// marks the host installed). Each step is written to the console as a
// line starting with DebianInstallerMarker: "answer file", "done URL
// URL", then "installed" or "failed". d-i then waits at its mirror
// question until the VM is reset.
func DebianCallbackPreseed(answerURL string) string {
	if strings.ContainsAny(answerURL, "'\" \n") {
		panic("lab: answer URL with quotes or spaces: " + answerURL)
	}
	m := DebianInstallerMarker
	cmd := strings.Join([]string{
		"wget -q -O /tmp/vmprov-preseed.cfg " + answerURL,
		"echo '" + m + "answer file' >/dev/console",
		`cb=$(grep -o "http[^' ]*/done?token=[^' ]*" /tmp/vmprov-preseed.cfg | head -n 1)`,
		`echo "` + m + `done URL $cb" >/dev/console`,
		`wget -q -O /tmp/vmprov-done "$cb"`,
		"echo '" + m + "installed' >/dev/console",
	}, " && ") + " || echo '" + m + "failed' >/dev/console"
	return "# vmprov lab: d-i without a mirror (test/lab, DebianCallbackPreseed)\n" +
		"d-i debian-installer/locale string en_US.UTF-8\n" +
		"d-i keyboard-configuration/xkb-keymap select us\n" +
		"d-i netcfg/choose_interface select auto\n" +
		"d-i preseed/early_command string " + cmd + "\n"
}
