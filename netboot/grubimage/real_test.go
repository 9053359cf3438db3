package grubimage

import (
	"bytes"
	"debug/pe"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireGRUB skips t unless grub-mkimage and Debian's x86_64-efi modules
// are installed.
func requireGRUB(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(DefaultMkimage); err != nil {
		t.Skip("needs grub-mkimage (Debian package " + DebianPackage + ")")
	}
	if _, err := os.Stat(filepath.Join(DefaultGrubDir(DefaultFormat), "moddep.lst")); err != nil {
		t.Skip("needs " + DefaultGrubDir(DefaultFormat) + " (Debian package " + DebianPackage + ")")
	}
}

// TestGrubRealBuild runs the real grub-mkimage and reads the image back
// with debug/pe, independently of Inspect's checks: a PE32+ EFI
// application for x86-64 whose module area holds the configuration,
// prefix and modules asked for.
func TestGrubRealBuild(t *testing.T) {
	requireGRUB(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "mactel64.efi")
	res, err := Build(t.Context(), Options{Output: out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed {
		t.Error("first build: Changed = false")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != res.Size {
		t.Errorf("size %d, Result.Size %d", len(b), res.Size)
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x, want AMD64", f.Machine)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header %T, want PE32+", f.OptionalHeader)
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		t.Errorf("subsystem %d, want EFI application", oh.Subsystem)
	}
	mods := f.Section("mods")
	if mods == nil {
		t.Fatal("no mods section")
	}
	data, err := mods.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The configuration and prefix are stored NUL-terminated in the
	// module area, as grub-mkimage -c and -p put them.
	for _, want := range []string{res.Config + "\x00", DefaultPrefix + "\x00"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("mods section does not hold %q", want)
		}
	}
	im, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	if im.Config != res.Config || im.Prefix != DefaultPrefix {
		t.Errorf("Inspect: config %q prefix %q", im.Config, im.Prefix)
	}
	for _, m := range []string{"normal", "configfile", "net", "efinet", "tftp", "http", "linux", "echo"} {
		if !slices.Contains(im.Modules, m) {
			t.Errorf("module %s not in the image (modules: %s)", m, strings.Join(im.Modules, " "))
		}
	}
	if !strings.Contains(res.Config, "configfile (tftp)/boot/grub/x86_64-efi/grub.cfg-01-$net_default_mac\n") {
		t.Errorf("config does not fetch the per-host grub.cfg:\n%s", res.Config)
	}

	t.Run("reproducible", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "again.efi")
		res2, err := Build(t.Context(), Options{Output: other}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res2.SHA256 != res.SHA256 {
			t.Errorf("second build sha256 %s, first %s", res2.SHA256, res.SHA256)
		}
		res3, err := Build(t.Context(), Options{Output: out}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res3.Changed || res3.SHA256 != res.SHA256 {
			t.Errorf("rebuild over the same image: Changed %v sha256 %s", res3.Changed, res3.SHA256)
		}
	})
	t.Run("options reach the image", func(t *testing.T) {
		o := filepath.Join(t.TempDir(), "x.efi")
		res, err := Build(t.Context(), Options{Output: o, Prefix: "(tftp,192.0.2.1)/grub", DHCP: true,
			Modules: []string{"normal", "configfile", "net", "efinet", "tftp", "echo"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		im, err := Inspect(b)
		if err != nil {
			t.Fatal(err)
		}
		if im.Prefix != "(tftp,192.0.2.1)/grub" || !strings.Contains(im.Config, "\nnet_bootp\n") || im.Config != res.Config {
			t.Errorf("prefix %q config %q", im.Prefix, im.Config)
		}
		if slices.Contains(im.Modules, "http") {
			t.Errorf("http embedded though not asked for: %v", im.Modules)
		}
	})
	t.Run("unknown module", func(t *testing.T) {
		o := filepath.Join(t.TempDir(), "x.efi")
		_, err := Build(t.Context(), Options{Output: o, Modules: []string{"normal", "configfile", "net", "efinet", "tftp", "nosuchmod"}}, nil)
		if !errors.Is(err, ErrUnknownModule) {
			t.Fatalf("err = %v, want ErrUnknownModule", err)
		}
		if _, err := os.Stat(o); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("output written after a failed build: %v", err)
		}
	})
}
