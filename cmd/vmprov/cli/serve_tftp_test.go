package cli

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// TestTFTPAssetDirs: TFTP serves serve.dir/assets under assets/ and then
// the folders of serve.asset_dirs under assets/PREFIX/, as HTTP does, so
// that signed GRUB, which loads over TFTP only, finds the packaged
// installer; a missing folder is left out.
func TestTFTPAssetDirs(t *testing.T) {
	dir, pkg := t.TempDir(), t.TempDir()
	const prefix = "debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64"
	files := map[string]string{
		filepath.Join(pkg, "linux"):                                           "packaged kernel",
		filepath.Join(pkg, "initrd.gz"):                                       "packaged initrd",
		filepath.Join(dir, "assets", filepath.FromSlash(prefix), "initrd.gz"): "own initrd",
		filepath.Join(dir, "assets", "other"):                                 "other",
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.Parse([]byte("dns: {zone: example.com.}\nserve:\n  dir: " + dir + "\n  asset_dirs:\n" +
		"    - {prefix: " + prefix + ", dir: " + pkg + "}\n    - {prefix: gone, dir: " + filepath.Join(pkg, "gone") + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	srv, err := tftpServer(c, nil, serveconfig.Booter(c), log, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	from := netip.MustParseAddr("192.0.2.99")
	for name, want := range map[string]string{
		"assets/" + prefix + "/linux":     "packaged kernel",
		"assets/" + prefix + "/initrd.gz": "own initrd",
		"assets/other":                    "other",
		"assets/gone/linux":               "",
		"assets/linux":                    "",
	} {
		got, err := srv.Read(t.Context(), name, from)
		switch {
		case want == "" && err == nil:
			t.Errorf("TFTP %s: %q, want file not found", name, got)
		case want != "" && (err != nil || string(got) != want):
			t.Errorf("TFTP %s: %q, %v; want %q", name, got, err, want)
		}
	}
}
