package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// grubConfigFile writes a configuration with serve.dir in a temporary
// directory, a BSDP boot file and a fixed server address.
func grubConfigFile(t *testing.T) (cfg, serveDir string) {
	t.Helper()
	dir := t.TempDir()
	serveDir = filepath.Join(dir, "srv")
	cfg = filepath.Join(dir, "vmprov.yaml")
	text := `dns: {server: "127.0.0.1:53", zone: example.com.}
boot: {url: "http://192.0.2.1"}
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1}
serve: {dir: ` + serveDir + `, server_ipv4: 192.0.2.1}
bsdp: {images: [{id: 0x81000089, name: The-Image, bootfile: mac/grub64.efi}]}
`
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, serveDir
}

func TestCLIGrubFlags(t *testing.T) {
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi/moddep.lst"); err != nil {
		t.Skip("needs /usr/lib/grub/x86_64-efi (Debian package grub-efi-amd64-bin)")
	}
	cfg, serveDir := grubConfigFile(t)
	t.Setenv("VMPROV_CONFIG", "")
	type plan struct {
		Output, Format, Prefix string
		ConfigPath             string `json:"config_path"`
		Modules                []string
		Server                 bool // the config sets net_default_server
		DHCP                   bool // the config runs net_bootp
	}
	tests := []struct {
		name string
		args []string
		want plan
	}{
		{
			name: "defaults from the configuration",
			args: []string{"--config", cfg},
			want: plan{Output: filepath.Join(serveDir, "tftp", "mac", "grub64.efi"), Format: "x86_64-efi", Prefix: "(tftp)/boot/grub",
				ConfigPath: "(tftp)/boot/grub/x86_64-efi/grub.cfg-01-$net_default_mac", Server: true},
		},
		{
			name: "flags override",
			args: []string{"--config", cfg, "--out", "x.efi", "--prefix", "(tftp)/grub", "--format", "x86_64-efi",
				"--grub-dir", "/usr/lib/grub/x86_64-efi", "--modules", "normal,configfile,net", "--modules", "efinet,tftp", "--dhcp"},
			want: plan{Output: "x.efi", Format: "x86_64-efi", Prefix: "(tftp)/grub", ConfigPath: "(tftp)/grub/x86_64-efi/grub.cfg-01-$net_default_mac",
				Modules: []string{"normal", "configfile", "net", "efinet", "tftp"}, Server: true, DHCP: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := vmprov(t, append([]string{"grub", "build", "--dry-run", "-o", "json"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var got struct {
				plan
				Config string
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			got.Server = strings.Contains(got.Config, "\nset net_default_server=192.0.2.1\n")
			got.DHCP = strings.Contains(got.Config, "\nnet_bootp\n")
			if tt.want.Modules == nil {
				got.Modules = nil // the default list is TestGrubDefaultModules' business
			}
			if diff := cmp.Diff(tt.want, got.plan); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCLIGrubErrors(t *testing.T) {
	t.Setenv("VMPROV_CONFIG", "")
	out := filepath.Join(t.TempDir(), "x.efi")
	noConfig := filepath.Join(t.TempDir(), "absent.yaml")
	tests := []struct {
		name      string
		args      []string
		path      string // PATH for the run; empty keeps it
		needsGRUB bool   // needs Debian's x86_64-efi modules
		code      int
		message   string
	}{
		{"bad output format", []string{"-o", "yaml"}, "", false, 2, "--output"},
		{"bad server", []string{"--server", "2001:db8::1"}, "", false, 2, "IPv4"},
		{"unknown flag", []string{"--nope"}, "", false, 2, "unknown flag"},
		{"arguments", []string{"extra"}, "", false, 1, "unknown command"},
		{"named configuration missing", []string{"--config", noConfig}, "", false, 1, "does not exist"},
		{"missing grub-mkimage", nil, t.TempDir(), false, 1, "grub-mkimage not found: install Debian package grub-efi-amd64-bin"},
		{"missing module directory", []string{"--grub-mkimage", "true", "--grub-dir", "/nonexistent/x86_64-efi"}, "", false, 1, "no GRUB module directory: /nonexistent/x86_64-efi: install Debian package grub-efi-amd64-bin"},
		{"unknown module", []string{"--modules", "normal,configfile,net,efinet,tftp,nosuchmod"}, "", true, 1, "unknown GRUB module: nosuchmod not in /usr/lib/grub/x86_64-efi"},
		{"netboot module left out", []string{"--modules", "normal,configfile,net,efinet"}, "", true, 1, "must include tftp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsGRUB {
				if _, err := os.Stat("/usr/lib/grub/x86_64-efi/moddep.lst"); err != nil {
					t.Skip("needs /usr/lib/grub/x86_64-efi (Debian package grub-efi-amd64-bin)")
				}
			}
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			args := append([]string{"grub", "build", "--out", out}, tt.args...)
			code, _, errs := vmprov(t, args...)
			if code != tt.code || !strings.Contains(errs, tt.message) {
				t.Errorf("exit %d, %q; want exit %d and %q", code, errs, tt.code, tt.message)
			}
		})
	}
}

// TestCLIGrubBuild runs the real grub-mkimage through the command line.
func TestCLIGrubBuild(t *testing.T) {
	if _, err := exec.LookPath("grub-mkimage"); err != nil {
		t.Skip("needs grub-mkimage (Debian package grub-efi-amd64-bin)")
	}
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi/moddep.lst"); err != nil {
		t.Skip("needs /usr/lib/grub/x86_64-efi (Debian package grub-efi-amd64-bin)")
	}
	cfg, serveDir := grubConfigFile(t)
	if err := os.MkdirAll(filepath.Join(serveDir, "tftp", "mac"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs := vmprov(t, "--config", cfg, "grub", "build", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct {
		Output, SHA256 string
		Size           int64
		Changed        bool
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(serveDir, "tftp", "mac", "grub64.efi"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Size != int64(len(b)) || !res.Changed {
		t.Errorf("result %+v, file %d bytes sha256 %x", res, len(b), sum)
	}
	code, out, errs = vmprov(t, "--config", cfg, "grub", "build")
	if code != 0 || !strings.HasPrefix(out, "unchanged ") || !strings.Contains(out, res.SHA256) {
		t.Errorf("second build: exit %d, %q, %s", code, out, errs)
	}
	code, _, errs = vmprov(t, "--config", cfg, "grub", "build", "--out", serveDir)
	if code != 1 || !strings.Contains(errs, "is a directory") {
		t.Errorf("build over a directory: exit %d, %s", code, errs)
	}
}
