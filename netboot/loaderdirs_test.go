package netboot_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmprov/vmprov/netboot"
)

// TestLoaderDirs: a plain name comes from the first folder that has it as
// a regular file (following links, as Debian's ipxe.efi is one); folders
// and missing folders are skipped; names with a folder, "..", or other
// bytes are never looked up.
func TestLoaderDirs(t *testing.T) {
	base := t.TempDir()
	first, second := filepath.Join(base, "first"), filepath.Join(base, "second")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(first, "snponly.efi"), "first snponly")
	write(filepath.Join(second, "snponly.efi"), "second snponly")
	write(filepath.Join(second, "grubx64.efi"), "second grub")
	write(filepath.Join(second, "sub", "file"), "in a sub-folder")
	write(filepath.Join(base, "elsewhere", "ipxe.efi"), "linked ipxe")
	write(filepath.Join(base, "secret"), "outside")
	if err := os.Mkdir(filepath.Join(first, "grubx64.efi"), 0o755); err != nil { // a folder, skipped
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "elsewhere", "ipxe.efi"), filepath.Join(second, "ipxe.efi")); err != nil {
		t.Fatal(err)
	}
	dirs := netboot.LoaderDirs{filepath.Join(base, "missing"), first, second}

	for name, want := range map[string]string{
		"snponly.efi": "first snponly",
		"grubx64.efi": "second grub",
		"ipxe.efi":    "linked ipxe",
	} {
		f, fi, err := dirs.Open(name)
		if err != nil {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != want || fi.Size() != int64(len(want)) {
			t.Errorf("Open(%q) = %q (size %d), %v; want %q", name, b, fi.Size(), err, want)
		}
	}
	for _, name := range []string{"", ".", "..", "../secret", "sub/file", "/etc/passwd", `..\secret`, "sub", "nothere.efi", "a\x00b", "a b", "caf\xc3\xa9"} {
		if f, _, err := dirs.Open(name); err == nil {
			f.Close()
			t.Errorf("Open(%q) opened %s, want not found", name, f.Name())
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q): %v, want fs.ErrNotExist", name, err)
		}
	}
	if f, _, err := (netboot.LoaderDirs{}).Open("snponly.efi"); err == nil {
		f.Close()
		t.Error("no loader folders opened a file")
	}
}

func TestPlainFileName(t *testing.T) {
	for name, want := range map[string]bool{
		"snponly.efi": true, "undionly.kpxe": true, "grub.cfg-01-02-04-06-08-73-ac": true, "..efi": true,
		"": false, ".": false, "..": false, "a/b": false, `a\b`: false, "a b": false, "a\tb": false, "\x7f": false, "é": false,
	} {
		if got := netboot.PlainFileName(name); got != want {
			t.Errorf("PlainFileName(%q) = %v, want %v", name, got, want)
		}
	}
}
