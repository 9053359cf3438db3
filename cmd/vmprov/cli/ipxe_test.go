package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// The ipxe-qemu package's real iPXE ROMs: two different virtio-net builds.
const (
	debianROM      = "/usr/lib/ipxe/qemu/pxe-virtio.rom"
	debianOtherROM = "/usr/lib/ipxe/qemu/efi-virtio.rom"
)

// romFiles copies the Debian ROMs into a temp dir as 1af41000.rom and
// other/1af41000.rom, and returns those paths and a file that is no ROM.
func romFiles(t *testing.T) (rom, other, notROM string) {
	t.Helper()
	dir := t.TempDir()
	rom, other, notROM = filepath.Join(dir, "1af41000.rom"), filepath.Join(dir, "other", "1af41000.rom"), filepath.Join(dir, "ipxe.lkrn")
	for src, dst := range map[string]string{debianROM: rom, debianOtherROM: other} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("%v (install ipxe-qemu)", err)
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(notROM, []byte("MZ this is a kernel, not an option ROM"), 0o644); err != nil {
		t.Fatal(err)
	}
	return rom, other, notROM
}

// minimalConfig writes a configuration with libvirt.pool = pool.
func minimalConfig(t *testing.T, pool string) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n"), 0o600)
	cfg := filepath.Join(dir, "vmprov.yaml")
	os.WriteFile(cfg, []byte("dns: {zone: example.com., server: '127.0.0.1:9', tsig: {secret_file: "+secret+"}}\n"+
		"libvirt: {pool: "+pool+"}\nvlans: [{id: 135, ipv4: 192.0.2.0/24}]\n"), 0o600)
	return cfg
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkReport is the JSON of ipxe install --check.
type checkReport struct {
	ROM struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	} `json:"rom"`
	Hypervisors []struct {
		Hypervisor string `json:"hypervisor"`
		Pool       string `json:"pool"`
		Files      []struct {
			Path   string `json:"path"`
			Volume string `json:"volume"`
			SHA256 string `json:"sha256"`
			Match  bool   `json:"match"`
		} `json:"files"`
		Match bool   `json:"match"`
		Error string `json:"error"`
	} `json:"hypervisors"`
	Match bool `json:"match"`
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, out)
	}
	return v
}

func TestIPXEInstallUsage(t *testing.T) {
	rom, _, notROM := romFiles(t)
	noConfig := filepath.Join(t.TempDir(), "none.yaml")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no ROM", []string{"ipxe", "install"}, 2, []string{"ROM"}},
		{"path with connect", []string{"ipxe", "install", rom, "--path", "/tmp/x.rom", "--connect", "test:///default"}, 2, []string{"--path", "--connect"}},
		{"pool without connect", []string{"ipxe", "install", rom, "--pool", "images"}, 2, []string{"--pool needs --connect"}},
		{"bad output", []string{"ipxe", "install", rom, "--check", "-o", "yaml"}, 2, []string{"yaml"}},
		{"not a ROM", []string{"ipxe", "install", notROM, "--connect", "test:///default", "--pool", "default-pool"}, 1, []string{notROM, "not a PCI option ROM"}},
		{"not a ROM, check", []string{"ipxe", "install", notROM, "--check", "--path", rom}, 1, []string{notROM, "not a PCI option ROM"}},
		{"missing ROM", []string{"ipxe", "install", rom + ".missing", "--connect", "test:///default", "--pool", "default-pool"}, 1, []string{rom + ".missing"}},
		{"no config for the pool", []string{"--config", noConfig, "ipxe", "install", rom, "--connect", "test:///default"}, 1, []string{"none.yaml", "--pool"}},
		{"bad URI", []string{"ipxe", "install", rom, "--connect", "nosuchdriver:///x", "--pool", "p"}, 1, []string{"nosuchdriver:///x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := vmprov(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
		})
	}
}

func TestIPXEInstallLocal(t *testing.T) {
	rom, other, _ := romFiles(t)
	dest := filepath.Join(t.TempDir(), "share", "1af41000.rom")
	os.MkdirAll(filepath.Dir(dest), 0o755)
	os.WriteFile(dest, []byte("the distribution's ROM"), 0o644)

	code, out, errs := vmprov(t, "ipxe", "install", rom, "--path", dest)
	if code != 0 || !strings.Contains(out, "installed "+dest) || !strings.Contains(out, dest+".orig") {
		t.Fatalf("install: exit %d\n%s%s", code, out, errs)
	}
	if got := sha256File(t, dest); got != sha256File(t, rom) {
		t.Errorf("%s has sha256 %s after install, want the ROM's", dest, got)
	}
	if code, out, errs := vmprov(t, "ipxe", "install", rom, "--path", dest); code != 0 || !strings.Contains(out, "already holds this ROM") {
		t.Errorf("second install: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = vmprov(t, "ipxe", "install", rom, "--path", dest, "--check", "-o", "json")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	rep := decode[checkReport](t, out)
	if !rep.Match || len(rep.Hypervisors) != 1 || rep.Hypervisors[0].Hypervisor != "local" ||
		len(rep.Hypervisors[0].Files) != 1 || rep.Hypervisors[0].Files[0].SHA256 != sha256File(t, rom) {
		t.Errorf("check report = %+v", rep)
	}

	code, out, errs = vmprov(t, "ipxe", "install", other, "--path", dest, "--check")
	if code != 1 || !strings.Contains(out, "local: MISMATCH") || !strings.Contains(out, sha256File(t, rom)+"  differs") ||
		!strings.Contains(errs, "not installed on local") {
		t.Errorf("check against another ROM: exit %d, want 1\n%s%s", code, out, errs)
	}
	code, out, errs = vmprov(t, "ipxe", "install", rom, "--path", dest+".none", "--check")
	if code != 1 || !strings.Contains(out, "ERROR") || !strings.Contains(errs, dest+".none") {
		t.Errorf("check of a missing file: exit %d, want 1\n%s%s", code, out, errs)
	}
}

// TestIPXEInstallTestDriver runs ipxe install against libvirt's test driver,
// which lists volumes but has no upload stream.
func TestIPXEInstallTestDriver(t *testing.T) {
	rom, _, _ := romFiles(t)
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })
	cfg := minimalConfig(t, "default-pool")

	code, out, errs := vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", "test:///default", "--check", "-o", "json")
	if code != 1 || !strings.Contains(errs, "not installed on test:///default") {
		t.Fatalf("check: exit %d, want 1\n%s%s", code, out, errs)
	}
	rep := decode[checkReport](t, out)
	if rep.Match || len(rep.Hypervisors) != 1 || rep.Hypervisors[0].Pool != "default-pool" || rep.Hypervisors[0].Files == nil {
		t.Errorf("check report = %+v, want default-pool without ROM volumes", rep)
	}

	code, out, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", "test:///default")
	if code != 1 || !strings.Contains(errs, "virStorageVolUpload") || !strings.Contains(out, "test:///default: FAILED") {
		t.Errorf("upload to the test driver: exit %d, want 1 naming virStorageVolUpload\n%s%s", code, out, errs)
	}

	code, _, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", "test:///default", "--pool", "nosuchpool")
	for _, want := range []string{`"nosuchpool"`, "pool-define-as nosuchpool", "--pool"} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("missing pool: exit %d, stderr %q lacks %q", code, errs, want)
		}
	}
}

// TestIPXEInstallRealLibvirtd uploads a real iPXE ROM to two real libvirtds
// (each with its own storage pool directory) and checks them.
func TestIPXEInstallRealLibvirtd(t *testing.T) {
	lab.RequireRoot(t, "ip", "mount", "libvirtd", "virtlogd", "virsh")
	rom, other, notROM := romFiles(t)
	ns := lab.NamespaceForTest(t)
	if err := ns.AddBridge(t.Context(), lab.Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24")}); err != nil {
		t.Fatal(err)
	}
	a, b := lab.LibvirtForTest(t, ns.Name), lab.LibvirtForTest(t, ns.Name)
	cfg := minimalConfig(t, lab.PoolName)
	sum := sha256File(t, rom)
	volume := "ipxe-1af41000-" + sum[:12] + ".rom"
	pathA, pathB := filepath.Join(a.PoolDir(), volume), filepath.Join(b.PoolDir(), volume)
	poolFiles := func() []string {
		var all []string
		for _, lv := range []*lab.Libvirt{a, b} {
			m, _ := filepath.Glob(filepath.Join(lv.PoolDir(), "*"))
			all = append(all, m...)
		}
		return all
	}

	// A file that is no ROM is refused before any hypervisor is contacted.
	if code, _, errs := vmprov(t, "--config", cfg, "ipxe", "install", notROM, "--connect", a.URI(), "--connect", b.URI()); code != 1 || !strings.Contains(errs, "not a PCI option ROM") {
		t.Errorf("install of a non-ROM: exit %d, %s", code, errs)
	}
	if files := poolFiles(); len(files) != 0 {
		t.Errorf("a refused ROM left %v", files)
	}

	// The root --connect still selects the hypervisor; the pool comes from libvirt.pool.
	code, out, errs := vmprov(t, "--config", cfg, "--connect", a.URI(), "ipxe", "install", rom)
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errs)
	}
	want := a.URI() + ": uploaded " + pathA + " (pool vmprov, sha256 " + sum + ")\n" +
		"Set this in the vmprov configuration so that vmprov create gives every VM interface this ROM:\n" +
		"libvirt:\n  rom: " + pathA + "\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("install output (-want +got):\n%s", diff)
	}
	if got := sha256File(t, pathA); got != sum {
		t.Errorf("%s has sha256 %s, want %s", pathA, got, sum)
	}

	// Two hypervisors: the first already has it; the pools' paths differ.
	code, out, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", a.URI(), "--connect", b.URI(), "-o", "json")
	if code != 0 {
		t.Fatalf("install on two: exit %d\n%s%s", code, out, errs)
	}
	type result struct {
		Hypervisor, Pool, Volume, Path, SHA256 string
		Changed                                bool
	}
	got := decode[struct {
		Hypervisors []result
		Config      string
	}](t, out)
	wantJSON := []result{
		{a.URI(), lab.PoolName, volume, pathA, sum, false},
		{b.URI(), lab.PoolName, volume, pathB, sum, true},
	}
	if diff := cmp.Diff(wantJSON, got.Hypervisors); diff != "" || got.Config != "" {
		t.Errorf("install on two (-want +got):\n%s\nconfig %q, want none: the paths differ", diff, got.Config)
	}
	code, out, _ = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", a.URI(), "--connect", b.URI())
	if code != 0 || strings.Count(out, "already holds this ROM") != 2 || !strings.Contains(out, "differs between hypervisors") {
		t.Errorf("third install: exit %d\n%s", code, out)
	}

	code, out, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", a.URI(), "--connect", b.URI(), "--check")
	if code != 0 || strings.Count(out, "(pool vmprov): has ROM") != 2 || !strings.Contains(out, pathB+"  75776 bytes  sha256 "+sum+"  match") {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}

	// Another ROM: both hypervisors mismatch, and say what they have.
	code, out, errs = vmprov(t, "--config", cfg, "ipxe", "install", other, "--connect", a.URI(), "--connect", b.URI(), "--check", "-o", "json")
	if code != 1 || !strings.Contains(errs, "not installed on "+a.URI()+", "+b.URI()) {
		t.Errorf("check against another ROM: exit %d, want 1\n%s", code, errs)
	}
	rep := decode[checkReport](t, out)
	if rep.Match || len(rep.Hypervisors) != 2 {
		t.Fatalf("check report = %+v", rep)
	}
	for _, hv := range rep.Hypervisors {
		if hv.Match || len(hv.Files) != 1 || hv.Files[0].SHA256 != sum || hv.Files[0].Match || hv.Files[0].Volume != volume {
			t.Errorf("%s: %+v, want one volume %s with sha256 %s, not matching", hv.Hypervisor, hv, volume, sum)
		}
	}

	// A ROM changed on one hypervisor is found by reading it back.
	if err := os.WriteFile(pathB, []byte("\x55\xaa truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", a.URI(), "--connect", b.URI(), "--check")
	if code != 1 || !strings.Contains(out, a.URI()+" (pool vmprov): has ROM") || !strings.Contains(out, b.URI()+" (pool vmprov): MISMATCH") ||
		!strings.Contains(errs, "not installed on "+b.URI()) || strings.Contains(errs, a.URI()) {
		t.Errorf("check after tampering: exit %d\n%s%s", code, out, errs)
	}

	code, _, errs = vmprov(t, "--config", cfg, "ipxe", "install", rom, "--connect", a.URI(), "--pool", "nosuchpool")
	for _, w := range []string{`"nosuchpool"`, "pool-define-as nosuchpool", "--pool"} {
		if code != 1 || !strings.Contains(errs, w) {
			t.Errorf("missing pool: exit %d, stderr %q lacks %q", code, errs, w)
		}
	}
}
