package lab

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/templates"
)

// TestDebianCallbackPreseed: the site preseed holds one early_command, a
// valid shell command line that fetches the given answer file and reports
// each step on the console.
func TestDebianCallbackPreseed(t *testing.T) {
	const answer = "http://192.0.2.1:8080/bootstrap/install/bookworm/x86_64/preseed.cfg"
	p := DebianCallbackPreseed(answer)
	var cmds []string
	for _, l := range strings.Split(p, "\n") {
		if c, ok := strings.CutPrefix(l, "d-i preseed/early_command string "); ok {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) != 1 {
		t.Fatalf("%d early_command lines, want 1:\n%s", len(cmds), p)
	}
	for _, w := range []string{"wget -q -O /tmp/vmprov-preseed.cfg " + answer + " ", DebianInstallerMarker + "installed", DebianInstallerMarker + "failed", "/done?token="} {
		if !strings.Contains(cmds[0], w) {
			t.Errorf("early_command lacks %q: %s", w, cmds[0])
		}
	}
	if out, err := exec.CommandContext(t.Context(), "sh", "-n", "-c", cmds[0]).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s\n%s", err, out, cmds[0])
	}
}

// TestStageDebianMirror: d-i's kernel and initrd land where the install
// boot of a host whose TXT mirror= is boot.url/assets/SUB fetches them,
// and a mirror directory that leaves assets/ is refused.
func TestStageDebianMirror(t *testing.T) {
	RequireDebianInstaller(t)
	const boot = "http://192.0.2.1:8080"
	dir := t.TempDir()
	kernel, initrd, err := StageDebianMirror(dir, "lab-mirror", "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	ib, err := templates.Install(templates.Host{FQDN: "di.example.com", MAC: net.HardwareAddr{2, 4, 6, 8, 0x72, 0x29},
		Distribution: "bookworm", BootURL: boot, Site: "example",
		Vars: []templates.Var{{Name: "mirror", Value: boot + "/assets/lab-mirror"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ got, want string }{{kernel, ib.Kernel}, {initrd, ib.Initrd}} {
		if boot+f.got != f.want {
			t.Errorf("staged at %s, the install boot fetches %s", boot+f.got, f.want)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.got))); err != nil {
			t.Errorf("%s: %v", f.got, err)
		}
	}
	for _, sub := range []string{"../x", "/abs"} {
		if _, _, err := StageDebianMirror(dir, sub, "bookworm"); err == nil {
			t.Errorf("StageDebianMirror(%q): no error", sub)
		}
	}
}

// TestStageDebianARM64: the arm64 installer lands where a TXT arch=aarch64
// host's grub.cfg loads it, over HTTP and over TFTP (serve.dir/assets), and
// the shim and signed GRUB are in the package folder serve.loader_dirs
// lists by default, where serve finds serve.loaders' default by plain name.
func TestStageDebianARM64(t *testing.T) {
	RequireDebianInstallerOf(t, templates.ArchARM64)
	dir := t.TempDir()
	kernel, initrd, err := StageDebianInstallerOf(dir, "bookworm", templates.ArchARM64)
	if err != nil {
		t.Fatal(err)
	}
	const base = "/assets/debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/"
	if kernel != base+"linux" || initrd != base+"initrd.gz" {
		t.Errorf("staged %s and %s, want them under %s", kernel, initrd, base)
	}
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tftp")); err == nil {
		t.Error("staging the installer made serve.dir/tftp: the shim and GRUB come from serve.loader_dirs")
	}
	src := DebianInstallerDirOf(templates.ArchARM64)
	if !slices.Contains(config.DefaultLoaderDirs(), src) {
		t.Errorf("serve.loader_dirs' default %v lacks %s", config.DefaultLoaderDirs(), src)
	}
	if _, err := os.Stat(filepath.Join(src, config.DefaultLoaders()[11])); err != nil {
		t.Errorf("serve.loaders' default for arm64: %v", err)
	}
}
