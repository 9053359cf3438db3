package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vagrantValidate runs `vagrant validate args...` on the Vagrantfile in dir
// with its own VAGRANT_HOME and data directory (nothing is written to ~ or
// dir) and no update checks, and returns the output and error.
func vagrantValidate(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "vagrant", append([]string{"validate"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"VAGRANT_CWD="+dir,
		"VAGRANT_HOME="+filepath.Join(tmp, "home"),
		"VAGRANT_DOTFILE_PATH="+filepath.Join(tmp, "dot"),
		"VAGRANT_CHECKPOINT_DISABLE=1",
		"VAGRANT_BOX_UPDATE_CHECK_DISABLE=1",
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// hasLibvirtPlugin reports whether vagrant-libvirt (Debian package
// vagrant-libvirt) is installed.
func hasLibvirtPlugin(t *testing.T) bool {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "vagrant", "plugin", "list")
	cmd.Env = append(os.Environ(), "VAGRANT_HOME="+t.TempDir(), "VAGRANT_CHECKPOINT_DISABLE=1")
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), "vagrant-libvirt")
}

// mutatedTree copies the Vagrantfile, with old replaced by new, and the
// provisioning script into a temporary tree.
func mutatedTree(t *testing.T, old, new string) string {
	t.Helper()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Vagrantfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("the Vagrantfile has no %q to change", old)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile(filepath.Join(root, "test", "provision.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test", "provision.sh"), p, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVagrantfile validates the Vagrantfile with Debian's vagrant: the
// machine settings and the provisioner (whose script must be
// test/provision.sh, the one TestProvision runs) always, the libvirt
// provider's settings when the vagrant-libvirt plugin is installed. Broken
// copies of the Vagrantfile must fail the same validation.
func TestVagrantfile(t *testing.T) {
	if _, err := exec.LookPath("vagrant"); err != nil {
		t.Skip("needs vagrant (Debian package vagrant)")
	}
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Vagrantfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`path: "test/provision.sh"`, `config.vm.box = "debian/bookworm64"`, "config.vm.provider :libvirt", "config.vm.provider :virtualbox"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Vagrantfile lacks %s", want)
		}
	}

	t.Run("without provider settings", func(t *testing.T) {
		if out, err := vagrantValidate(t, root, nil, "--ignore-provider"); err != nil {
			t.Errorf("vagrant validate --ignore-provider: %v\n%s", err, out)
		}
		dir := mutatedTree(t, `path: "test/provision.sh"`, `path: "test/no-such-script.sh"`)
		if out, err := vagrantValidate(t, dir, nil, "--ignore-provider"); err == nil || !strings.Contains(out, "no-such-script.sh") {
			t.Errorf("a Vagrantfile naming a missing script validated: %v\n%s", err, out)
		}
	})

	t.Run("libvirt provider", func(t *testing.T) {
		if !hasLibvirtPlugin(t) {
			t.Skip("needs the vagrant-libvirt plugin (Debian package vagrant-libvirt) to validate the libvirt provider settings")
		}
		env := []string{"VAGRANT_DEFAULT_PROVIDER=libvirt"}
		if out, err := vagrantValidate(t, root, env); err != nil {
			t.Errorf("vagrant validate: %v\n%s", err, out)
		}
		dir := mutatedTree(t, "lv.cpus = 2", "lv.cpuz = 2")
		if out, err := vagrantValidate(t, dir, env); err == nil || !strings.Contains(out, "cpuz") {
			t.Errorf("a Vagrantfile with an unknown libvirt setting validated: %v\n%s", err, out)
		}
	})
}
