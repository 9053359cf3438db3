package tftp

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/inventory"
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
		SignedGrubConfigs: map[netboot.Arch]string{netboot.ArchUEFIx64: "debian-installer/amd64/grub/grub.cfg"}, LoaderDirs: netboot.LoaderDirs{loaders},
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
			SignedGrubConfigs: map[netboot.Arch]string{netboot.ArchUEFIx64: "debian-installer/amd64/grub/grub.cfg"}, Trees: []Tree{{Dir: tree}}})
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

// TestSignedGrubARM64 serves arm64 UEFI's signed chain from the defaults of
// serve.loaders, serve.loader_dirs and serve.signed_grub_cfg: the shim
// bootnetaa64.efi and grubaa64.efi by plain name from a loader folder, and
// at the arm64 GRUB's prefix a grub.cfg that loads the arm64 installer over
// TFTP. A host whose TXT names no architecture is arm64 there too: the name
// says which GRUB asks. The kernel is serve's assets/ one wherever the
// host's mirror is: TFTP serves no other.
func TestSignedGrubARM64(t *testing.T) {
	root, _ := testRoot(t)
	loaders := t.TempDir()
	for name, body := range map[string]string{"bootnetaa64.efi": "arm64 shim", "grubaa64.efi": "arm64 signed grub"} {
		if err := os.WriteFile(filepath.Join(loaders, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t)
	if got := cfg.Serve.Loaders[uint16(netboot.ArchUEFIARM64)]; got != "bootnetaa64.efi" {
		t.Fatalf("serve.loaders[11] = %q, want Debian's shim bootnetaa64.efi", got)
	}
	b := serveconfig.Booter(cfg)
	const arm64Dir = "/assets/debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/"
	for _, tt := range []struct {
		name   string
		intent []string // TXT strings beside distribution=bookworm
		want   string
	}{
		{"TXT arch=aarch64", []string{"arch=aarch64"}, "\tlinux " + arm64Dir + "linux "},
		{"no TXT arch", nil, "\tlinux " + arm64Dir + "linux "},
		{"no TXT arch, console", nil, " 'console=ttyAMA0,115200'"},
		{"TXT mirror on another host", []string{"mirror=http://deb.debian.org"}, "\tlinux " + arm64Dir + "linux "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := web10(t)
			in, err := inventory.ParseIntent(append([]string{"distribution=bookworm"}, tt.intent...))
			if err != nil {
				t.Fatal(err)
			}
			d.Host.Intent = in
			pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d}}
			_, addr := startServer(t, Config{Root: root, Policy: pol, Booter: b, Render: Templates(b),
				SignedGrubConfigs: serveconfig.ArchMap(cfg.Serve.SignedGrubConfigs), LoaderDirs: netboot.LoaderDirs{loaders}})
			for name, want := range map[string]string{"bootnetaa64.efi": "arm64 shim", "grubaa64.efi": "arm64 signed grub"} {
				if body, _, err := get(t, addr, name, 0); err != nil || string(body) != want {
					t.Errorf("%s: %q, %v; want %q from the loader folder", name, body, err, want)
				}
			}
			body, _, err := get(t, addr, "/debian-installer/arm64/grub/grub.cfg", 0)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(body), tt.want) || strings.Contains(string(body), "(http,") || strings.Contains(string(body), "amd64") {
				t.Errorf("arm64 GRUB's grub.cfg:\n%s\nwant %q, over TFTP, nothing of amd64", body, tt.want)
			}
		})
	}
}

// TestSignedGrubNames: one name for two architectures would leave the
// requester's architecture unknown.
func TestSignedGrubNames(t *testing.T) {
	root, _ := testRoot(t)
	_, err := New(Config{Root: root, SignedGrubConfigs: map[netboot.Arch]string{7: "grub/grub.cfg", 11: "/grub/grub.cfg"}})
	if err == nil || !strings.Contains(err.Error(), "architectures 7 and 11") {
		t.Errorf("New = %v, want an error naming both architectures", err)
	}
	if _, err := New(Config{Root: root, SignedGrubConfigs: map[netboot.Arch]string{11: "../grub.cfg"}}); err == nil || !strings.Contains(err.Error(), "architecture 11") {
		t.Errorf("New = %v, want an error naming architecture 11", err)
	}
}

// TestSignedGrubIPv6: a requester of signed GRUB's grub.cfg over IPv6
// (DHCPv6 hands out tftp://[server]/shim) gets the boot URLs of
// boot.url_v6, as over HTTP: its installer has no IPv4 to fetch the answer
// file and firstboot from. An IPv4 requester keeps boot.url's.
func TestSignedGrubIPv6(t *testing.T) {
	root, _ := testRoot(t)
	cfg := testConfig(t)
	cfg.Boot.URLv6 = "http://[2001:db8::1]:8080"
	b := serveconfig.Booter(cfg)
	d := web10(t)
	d.Host.IPv6 = netip.MustParseAddr("2001:db8::10")
	d.Host.Intent = d.Host.Intent.With("distribution", "bookworm").With("firmware", "efi-secure")
	pol := &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d, netip.IPv6Loopback(): d}}
	c := Config{Root: root, Policy: pol, Booter: b, Render: Templates(b),
		SignedGrubConfigs: map[netboot.Arch]string{netboot.ArchUEFIx64: "debian-installer/amd64/grub/grub.cfg"}}
	for _, tt := range []struct {
		name      string
		listen    net.IP
		want, not string
	}{
		{"IPv6", net.IPv6loopback, "http://[2001:db8::1]:8080/bootstrap/install/bookworm/", "192.0.2.1"},
		{"IPv4", net.IPv4(127, 0, 0, 1), "http://192.0.2.1:8080/bootstrap/install/bookworm/", "2001:db8::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startServerAt(t, c, tt.listen)
			body, _, err := get(t, addr, "/debian-installer/amd64/grub/grub.cfg", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, arg := range []string{"'url=" + tt.want + "x86_64/preseed.cfg'", "'firstboot=" + tt.want + "firstboot'"} {
				if !strings.Contains(string(body), arg) {
					t.Errorf("grub.cfg:\n%s\nwant %s", body, arg)
				}
			}
			if strings.Contains(string(body), tt.not) {
				t.Errorf("grub.cfg:\n%s\nnames %s, the other address family's server", body, tt.not)
			}
		})
	}
}

// TestSignedGrubBeforeRoot: a TFTP root that holds Debian's netboot tree
// (netboot.tar.gz unpacked, the classic debian-installer setup) has its own
// debian-installer/amd64/grub/grub.cfg, at signed GRUB's prefix; the
// requester still gets its rendered configuration, which DNS confirmed and
// the build state chose, never the tree's installer menu. The root's other
// files are served as before.
func TestSignedGrubBeforeRoot(t *testing.T) {
	root, _ := testRoot(t)
	for name, body := range map[string]string{
		"debian-installer/amd64/grub/grub.cfg": "the installer's own menu",
		"debian-installer/amd64/linux":         "netboot kernel",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := serveconfig.Booter(testConfig(t))
	d := web10(t)
	d.Host.Intent = d.Host.Intent.With("distribution", "bookworm").With("firmware", "efi-secure")
	c := Config{Root: root, Booter: b, Render: Templates(b),
		SignedGrubConfigs: map[netboot.Arch]string{netboot.ArchUEFIx64: "debian-installer/amd64/grub/grub.cfg"}}

	c.Policy = &addrPolicy{hosts: map[netip.Addr]netboot.Decision{netip.MustParseAddr("127.0.0.1"): d}}
	_, addr := startServer(t, c)
	body, _, err := get(t, addr, "/debian-installer/amd64/grub/grub.cfg", 0)
	if err != nil || !strings.Contains(string(body), "vmprov grub.cfg for web10.example.com") {
		t.Errorf("signed grub.cfg: %q, %v; want the host's rendered configuration, not the root's", body, err)
	}
	if body, _, err := get(t, addr, "debian-installer/amd64/linux", 0); err != nil || string(body) != "netboot kernel" {
		t.Errorf("root file: %q, %v; want the root's", body, err)
	}

	c.Policy = &addrPolicy{}
	_, addr = startServer(t, c)
	if body, _, err := get(t, addr, "debian-installer/amd64/grub/grub.cfg", 0); err == nil || !strings.Contains(err.Error(), "file not found") {
		t.Errorf("unknown requester: %q, %v; want file not found, not the root's grub.cfg", body, err)
	}
}
