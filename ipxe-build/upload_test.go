package ipxebuild

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// writeROM writes b to dir/name and reads it back as a ROM.
func writeROM(t *testing.T, dir, name string, b []byte) ROM {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadROM(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReadROM(t *testing.T) {
	dir := t.TempDir()
	r := writeROM(t, dir, "1af41000.rom", optionROM(0x1af4, 0x1000, 2, 7))
	want := ROM{Path: filepath.Join(dir, "1af41000.rom"), Size: 1024, SHA256: sha256Hex(optionROM(0x1af4, 0x1000, 2, 7)),
		Header: OptionROM{Size: 1024, VendorID: 0x1af4, DeviceID: 0x1000}}
	if diff := cmp.Diff(want, r, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Data" }, cmp.Ignore())); diff != "" {
		t.Errorf("ReadROM (-want +got):\n%s", diff)
	}
	bad := filepath.Join(dir, "ipxe.lkrn")
	os.WriteFile(bad, []byte("not a ROM at all, just text"), 0o644)
	if _, err := ReadROM(bad); !errors.Is(err, ErrNotOptionROM) || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadROM of a text file: error = %v, want ErrNotOptionROM naming the file", err)
	}
	if _, err := ReadROM(filepath.Join(dir, "missing.rom")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadROM of a missing file: error = %v, want ErrNotExist", err)
	}
}

func TestROMVolumeName(t *testing.T) {
	sum := strings.Repeat("3f2a9c0d1e4b", 5) + "0123"
	for _, tt := range []struct{ path, want string }{
		{"ipxe-out/bin/1af41000.rom", "ipxe-1af41000-3f2a9c0d1e4b.rom"},
		{"/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-efi-virtio-3f2a9c0d1e4b.rom"},
		{"my rom (v2).bin", "ipxe-my-rom--v2-.bin-3f2a9c0d1e4b.rom"},
		{".rom", "ipxe-rom-3f2a9c0d1e4b.rom"},
		{strings.Repeat("x", 100) + ".rom", "ipxe-" + strings.Repeat("x", 64) + "-3f2a9c0d1e4b.rom"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			got := ROMVolumeName(ROM{Path: tt.path, SHA256: sum})
			if got != tt.want {
				t.Errorf("ROMVolumeName = %q, want %q", got, tt.want)
			}
			if err := virt.CheckVolumeName(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestInstallVolume runs InstallVolume and CheckVolumes against hvtest.Fake,
// which passes the same VolumeConformance suite as the libvirt adapter;
// TestInstallVolumeRealLibvirtd repeats the essentials against libvirtd.
func TestInstallVolume(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	rom := writeROM(t, dir, "1af41000.rom", optionROM(0x1af4, 0x1000, 2, 1))
	other := writeROM(t, t.TempDir(), "1af41000.rom", optionROM(0x1af4, 0x1000, 2, 2))
	f := hvtest.NewFake("images")
	// Disks of VMs share the pool and are never read back.
	if _, err := f.CreateDisk(ctx, "images", "web1", 1<<30); err != nil {
		t.Fatal(err)
	}

	res, err := InstallVolume(ctx, f, "images", rom, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := ROMVolumeName(rom)
	want := VolumeResult{Pool: "images", Volume: name, Path: "/images/" + name, SHA256: rom.SHA256, Changed: true}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("first InstallVolume (-want +got):\n%s", diff)
	}
	uploads := func() int {
		n := 0
		for _, c := range f.Calls() {
			if c.Op == hvtest.OpUploadVolume {
				n++
			}
		}
		return n
	}

	t.Run("same ROM again is not uploaded", func(t *testing.T) {
		res, err := InstallVolume(ctx, f, "images", rom, nil)
		if err != nil {
			t.Fatal(err)
		}
		want.Changed = false
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("second InstallVolume (-want +got):\n%s", diff)
		}
		if n := uploads(); n != 1 {
			t.Errorf("%d uploads, want 1", n)
		}
	})

	t.Run("check", func(t *testing.T) {
		c, err := CheckVolumes(ctx, f, "images", rom)
		if err != nil {
			t.Fatal(err)
		}
		wantCheck := VolumeCheck{Pool: "images", Match: true, Files: []ROMFile{
			{Path: "/images/" + name, Volume: name, Size: 1024, SHA256: rom.SHA256, Match: true},
		}}
		if diff := cmp.Diff(wantCheck, c); diff != "" {
			t.Errorf("CheckVolumes (-want +got):\n%s", diff)
		}
		c, err = CheckVolumes(ctx, f, "images", other)
		if err != nil {
			t.Fatal(err)
		}
		wantCheck.Match, wantCheck.Files[0].Match = false, false
		if diff := cmp.Diff(wantCheck, c); diff != "" {
			t.Errorf("CheckVolumes against another ROM (-want +got):\n%s", diff)
		}
	})

	t.Run("a new build is a second volume", func(t *testing.T) {
		res, err := InstallVolume(ctx, f, "images", other, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Volume == name {
			t.Errorf("InstallVolume of another ROM = %+v, want a new volume beside %s", res, name)
		}
		c, err := CheckVolumes(ctx, f, "images", other)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Match || len(c.Files) != 2 {
			t.Errorf("CheckVolumes = %+v, want both ROM volumes, one matching", c)
		}
	})

	t.Run("volume with wrong bytes is replaced", func(t *testing.T) {
		r := writeROM(t, t.TempDir(), "broken.rom", optionROM(0x1af4, 0x1000, 1, 3))
		vname := ROMVolumeName(r)
		if _, err := f.UploadVolume(ctx, "images", vname, r.Data[:100]); err != nil {
			t.Fatal(err)
		}
		res, err := InstallVolume(ctx, f, "images", r, nil)
		if err != nil || !res.Changed {
			t.Fatalf("InstallVolume over a truncated volume = %+v, %v; want it replaced", res, err)
		}
		got, err := f.DownloadVolume(ctx, "images", vname, MaxROMSize)
		if err != nil || sha256Hex(got) != r.SHA256 {
			t.Errorf("volume now holds %d bytes (%v), want the ROM", len(got), err)
		}
	})

	t.Run("failed upload", func(t *testing.T) {
		errBoom := errors.New("boom")
		r := writeROM(t, t.TempDir(), "fail.rom", optionROM(0x1af4, 0x1000, 1, 4))
		f.FailOn(hvtest.OpUploadVolume, "", errBoom)
		defer f.ClearFailures()
		if _, err := InstallVolume(ctx, f, "images", r, nil); !errors.Is(err, errBoom) {
			t.Errorf("error = %v, want the upload's", err)
		}
		for _, v := range f.Volumes("images") {
			if v == ROMVolumeName(r) {
				t.Errorf("failed upload left %s", v)
			}
		}
	})

	t.Run("failed read-back removes the upload", func(t *testing.T) {
		errBoom := errors.New("read-back failed")
		r := writeROM(t, t.TempDir(), "readback.rom", optionROM(0x1af4, 0x1000, 1, 5))
		f.FailOn(hvtest.OpDownloadVolume, ROMVolumeName(r), errBoom)
		defer f.ClearFailures()
		if _, err := InstallVolume(ctx, f, "images", r, nil); !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "verify upload") {
			t.Errorf("error = %v, want the read-back's", err)
		}
		for _, v := range f.Volumes("images") {
			if v == ROMVolumeName(r) {
				t.Errorf("unverified upload left %s", v)
			}
		}
	})

	t.Run("missing pool", func(t *testing.T) {
		if _, err := InstallVolume(ctx, f, "nosuchpool", rom, nil); !errors.Is(err, virt.ErrPoolNotFound) || !strings.Contains(err.Error(), "nosuchpool") {
			t.Errorf("InstallVolume error = %v, want ErrPoolNotFound naming the pool", err)
		}
		if _, err := CheckVolumes(ctx, f, "nosuchpool", rom); !errors.Is(err, virt.ErrPoolNotFound) {
			t.Errorf("CheckVolumes error = %v, want ErrPoolNotFound", err)
		}
	})

	t.Run("unreadable volume is reported, not fatal", func(t *testing.T) {
		errBoom := errors.New("unreadable")
		f.FailOn(hvtest.OpDownloadVolume, name, errBoom)
		defer f.ClearFailures()
		c, err := CheckVolumes(ctx, f, "images", rom)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range c.Files {
			if file.Volume == name && (file.Match || !strings.Contains(file.Error, "unreadable")) {
				t.Errorf("unreadable volume reported as %+v", file)
			}
		}
	})
}
