package ipxebuild

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// optionROM returns a minimal PCI option ROM image of n 512-byte blocks with fill as data.
func optionROM(vendor, device uint16, n int, fill byte) []byte {
	b := make([]byte, n*512)
	for i := range b {
		b[i] = fill
	}
	b[0], b[1], b[2] = 0x55, 0xaa, byte(n)
	binary.LittleEndian.PutUint16(b[0x18:], 0x1c)
	copy(b[0x1c:], "PCIR")
	binary.LittleEndian.PutUint16(b[0x20:], vendor)
	binary.LittleEndian.PutUint16(b[0x22:], device)
	binary.LittleEndian.PutUint16(b[0x2c:], uint16(n))
	b[0x30] = 0
	return b
}

func TestParseOptionROM(t *testing.T) {
	good := optionROM(0x1af4, 0x1000, 2, 0)
	tests := []struct {
		name    string
		in      []byte
		want    OptionROM
		wantErr bool
	}{
		{"virtio", good, OptionROM{Size: 1024, VendorID: 0x1af4, DeviceID: 0x1000}, false},
		{"empty", nil, OptionROM{}, true},
		{"no signature", append([]byte{0x55, 0xab}, good[2:]...), OptionROM{}, true},
		{"pcir beyond end", good[:0x20], OptionROM{}, true},
		{"length beyond file", good[:600], OptionROM{}, true},
		{"bad pcir pointer", func() []byte { b := append([]byte(nil), good...); b[0x18] = 0xf0; b[0x19] = 0xff; return b }(), OptionROM{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptionROM(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNotOptionROM) {
				t.Errorf("err %v is not ErrNotOptionROM", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseOptionROM(f *testing.F) {
	f.Add(optionROM(0x1af4, 0x1000, 1, 0))
	f.Add([]byte{0x55, 0xaa})
	if b, err := os.ReadFile("/usr/lib/ipxe/qemu/pxe-virtio.rom"); err == nil {
		f.Add(b) // Debian's ipxe-qemu ROM, when installed
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseOptionROM(b)
		if err != nil {
			return
		}
		if r.Size <= 0 || r.Size > len(b) || b[0] != 0x55 || b[1] != 0xaa {
			t.Fatalf("accepted %+v for a %d-byte input", r, len(b))
		}
	})
}

func FuzzLinkedObjects(f *testing.F) {
	f.Add([]byte("bin/blib.a(ipv6.o)  bin/blib.a(config.o) (obj_ipv6)\n(obj_ping)(obj_"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, o := range LinkedObjects(b) {
			if len(o) < 4 || o[:4] != "obj_" {
				t.Fatalf("object %q", o)
			}
		}
	})
}

func TestLinkedObjects(t *testing.T) {
	in := "Archive member included\nbin/blib.a(ipv6.o) bin/blib.a(config.o) (obj_ipv6)\n" +
		"bin/blib.a(ndp.o) bin/blib.a(ipv6.o) (ndp_discovery)\n(obj_ping) (obj_ipv6) (obj_bad name) (obj_"
	if diff := cmp.Diff([]string{"obj_ipv6", "obj_ping"}, LinkedObjects([]byte(in))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInstallLocal(t *testing.T) {
	dir := t.TempDir()
	romA := filepath.Join(dir, "a.rom")
	romB := filepath.Join(dir, "b.rom")
	a, b := optionROM(0x1af4, 0x1000, 1, 0xa), optionROM(0x1af4, 0x1000, 1, 0xb)
	for p, data := range map[string][]byte{romA: a, romB: b} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		t.Helper()
		d, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("fresh", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "usr/share/ipxe/1af41000.rom")
		res, err := InstallLocal(t.Context(), romA, dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(InstallResult{Dest: dest, SHA256: sha256Hex(a), Changed: true}, res); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if !cmp.Equal(read(dest), a) {
			t.Errorf("dest does not hold the ROM")
		}
	})

	t.Run("backup once", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "1af41000.rom")
		original := []byte("the distribution's ROM")
		if err := os.WriteFile(dest, original, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := InstallLocal(t.Context(), romA, dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Backup != dest+".orig" || !res.Changed || !cmp.Equal(read(dest+".orig"), original) {
			t.Errorf("first install: %+v, backup %q", res, read(dest+".orig"))
		}
		if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
			t.Errorf("dest mode %v", fi.Mode())
		}
		// Same ROM again: nothing changes.
		res, err = InstallLocal(t.Context(), romA, dest, nil)
		if err != nil || res.Changed || res.Backup != dest+".orig" {
			t.Errorf("reinstall: %+v, %v", res, err)
		}
		// Another ROM: the backup still holds the original.
		res, err = InstallLocal(t.Context(), romB, dest, nil)
		if err != nil || !res.Changed {
			t.Fatalf("second install: %+v, %v", res, err)
		}
		if !cmp.Equal(read(dest), b) || !cmp.Equal(read(dest+".orig"), original) {
			t.Errorf("after second install: dest or backup wrong")
		}
		info, err := Check(dest)
		if err != nil || info.SHA256 != sha256Hex(b) || info.ROM == nil || info.ROM.VendorID != 0x1af4 {
			t.Errorf("Check = %+v, %v", info, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(dest))
		if len(entries) != 2 {
			t.Errorf("temporary files left: %v", entries)
		}
	})

	t.Run("symlink dest", func(t *testing.T) {
		d := t.TempDir()
		target := filepath.Join(d, "pxe-virtio.rom")
		if err := os.WriteFile(target, []byte("packaged"), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(d, "1af41000.rom")
		if err := os.Symlink(target, dest); err != nil {
			t.Fatal(err)
		}
		if _, err := InstallLocal(t.Context(), romA, dest, nil); err != nil {
			t.Fatal(err)
		}
		if link, err := os.Readlink(dest + ".orig"); err != nil || link != target {
			t.Errorf("backup link = %q, %v", link, err)
		}
		if !cmp.Equal(read(target), []byte("packaged")) {
			t.Errorf("the symlink's target was overwritten")
		}
		if fi, err := os.Lstat(dest); err != nil || !fi.Mode().IsRegular() || !cmp.Equal(read(dest), a) {
			t.Errorf("dest is not the new regular file: %v %v", fi.Mode(), err)
		}
	})

	t.Run("not a ROM", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "x.rom")
		if err := os.WriteFile(bad, []byte("#!ipxe\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "1af41000.rom")
		if _, err := InstallLocal(t.Context(), bad, dest, nil); !errors.Is(err, ErrNotOptionROM) {
			t.Errorf("err = %v", err)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("dest written for a bad ROM")
		}
	})
}
