package tftp

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// TestSecureBootFiles serves the Secure Boot chain (docs/design.md,
// "Secure Boot"): the signed shim and GRUB from a loader folder, the kernel
// from the assets tree, and signed GRUB's grub.cfg, rendered for the
// requester by its address alone, never a tree's own (a netboot tree
// served whole holds one).
func TestSecureBootFiles(t *testing.T) {
	root, files := testRoot(t)
	loaders, tree, assets := t.TempDir(), t.TempDir(), t.TempDir()
	for dir, fs := range map[string]map[string]string{
		loaders: {"bootnetx64.efi": "shim", "grubx64.efi": "signed grub"},
		tree: {
			"debian-installer/amd64/grub/grub.cfg": "the installer's own menu",
			"ipxe.efi":                             "shadowed by the root's",
		},
		assets: {"debian/linux": "kernel"},
	} {
		for name, body := range fs {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := testConfig(t)
	b := serveconfig.Booter(cfg)
	sb := web10(t)
	sb.Host.Intent = sb.Host.Intent.With("distribution", "bookworm").With("firmware", "efi-secure")
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): sb}}
	s, addr := startServer(t, Config{Root: root, Policy: pol, Booter: b, Render: Templates(b),
		SignedGrubConfig: "debian-installer/amd64/grub/grub.cfg", LoaderDirs: netboot.LoaderDirs{loaders},
		Trees: []Tree{{Prefix: "assets", Dir: assets}, {Dir: tree}}})
	tests := []struct {
		name string
		want string // the body, or with a "~" prefix a part of it
		err  string
	}{
		{name: "bootnetx64.efi", want: "shim"},
		{name: "/grubx64.efi", want: "signed grub"},
		{name: "assets/debian/linux", want: "kernel"},
		{name: "/assets/debian/linux", want: "kernel"},
		{name: "ipxe.efi", want: string(files["ipxe.efi"])},
		{name: "/debian-installer/amd64/grub/grub.cfg", want: "~\tlinux /assets/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux 'DEBIAN_FRONTEND=text"},
		{name: "assets", err: "file not found"},
		{name: "assets/debian/initrd.gz", err: "file not found"},
		{name: "debian-installer/amd64/linux", err: "file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _, err := get(t, addr, tt.name, 0)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want error %q", body, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if part, ok := strings.CutPrefix(tt.want, "~"); ok {
				if !bytes.Contains(body, []byte(part)) || bytes.Contains(body, []byte("(http,")) {
					t.Errorf("got\n%s\nwant it to contain %q and no HTTP", body, part)
				}
			} else if string(body) != tt.want {
				t.Errorf("got %q, want %q", body, tt.want)
			}
		})
	}
	waitStats(t, s, "1 generated", func(st Stats) bool { return st.Generated == 1 })

	t.Run("unknown requester", func(t *testing.T) {
		_, addr := startServer(t, Config{Root: root, Policy: &addrPolicy{}, Booter: b, Render: Templates(b),
			SignedGrubConfig: "debian-installer/amd64/grub/grub.cfg", Trees: []Tree{{Dir: tree}}})
		if body, _, err := get(t, addr, "debian-installer/amd64/grub/grub.cfg", 0); err == nil || !strings.Contains(err.Error(), "file not found") {
			t.Errorf("got %q, %v; want file not found, not the tree's grub.cfg", body, err)
		}
	})
	t.Run("missing tree", func(t *testing.T) {
		if _, err := New(Config{Root: root, Trees: []Tree{{Dir: filepath.Join(tree, "nonexistent")}}}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
			t.Errorf("New = %v, want an error naming the missing tree", err)
		}
	})
}
