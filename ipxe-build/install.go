package ipxebuild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Where QEMU looks for the virtio-net PXE ROM (seed 000).
const (
	DefaultROMPath = "/usr/share/ipxe/1af41000.rom"   // EL7 and later
	LegacyROMPath  = "/usr/share/gpxe/virtio-net.rom" // EL6
)

// ErrNotOptionROM is wrapped by ParseOptionROM's errors.
var ErrNotOptionROM = errors.New("not a PCI option ROM")

// OptionROM is what the header of a PCI expansion ROM image says (PCI Firmware
// Specification 3.0, section 5.1: 0x55 0xAA, size in 512-byte units at 2, pointer to the
// "PCIR" data structure at 0x18).
type OptionROM struct {
	Size     int    `json:"size"`      // image length from the header, in bytes
	VendorID uint16 `json:"vendor_id"` // from the PCI data structure
	DeviceID uint16 `json:"device_id"`
	CodeType uint8  `json:"code_type"` // 0 x86 BIOS, 3 EFI
}

// ParseOptionROM decodes the header of the first image in b.
func ParseOptionROM(b []byte) (OptionROM, error) {
	if len(b) < 0x1a || b[0] != 0x55 || b[1] != 0xaa {
		return OptionROM{}, fmt.Errorf("%w: no 0x55 0xAA signature", ErrNotOptionROM)
	}
	ptr := int(binary.LittleEndian.Uint16(b[0x18:]))
	if ptr+0x18 > len(b) || !bytes.Equal(b[ptr:ptr+4], []byte("PCIR")) {
		return OptionROM{}, fmt.Errorf("%w: no PCIR data structure at %#x", ErrNotOptionROM, ptr)
	}
	r := OptionROM{
		VendorID: binary.LittleEndian.Uint16(b[ptr+4:]),
		DeviceID: binary.LittleEndian.Uint16(b[ptr+6:]),
		Size:     int(binary.LittleEndian.Uint16(b[ptr+0x10:])) * 512,
		CodeType: b[ptr+0x14],
	}
	if r.Size == 0 || r.Size > len(b) {
		return OptionROM{}, fmt.Errorf("%w: image length %d outside the %d-byte file", ErrNotOptionROM, r.Size, len(b))
	}
	return r, nil
}

// FileInfo is what Check reports about an installed ROM.
type FileInfo struct {
	Path   string     `json:"path"`
	Size   int64      `json:"size"`
	SHA256 string     `json:"sha256"`
	ROM    *OptionROM `json:"rom,omitempty"` // nil if the file is not a PCI option ROM
}

// Check reports the size, SHA-256 and option ROM header of the file at path, e.g. to
// compare an installed ROM with a build's manifest.
func Check(path string) (FileInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return FileInfo{}, fmt.Errorf("check %s: %w", path, err)
	}
	fi := FileInfo{Path: path, Size: int64(len(b)), SHA256: sha256Hex(b)}
	if r, err := ParseOptionROM(b); err == nil {
		fi.ROM = &r
	}
	return fi, nil
}

// InstallResult says what InstallLocal did.
type InstallResult struct {
	Dest    string `json:"dest"`
	SHA256  string `json:"sha256"`
	Backup  string `json:"backup,omitempty"` // DEST.orig, the file that was there first
	Changed bool   `json:"changed"`          // false: DEST already held this ROM
}

// InstallLocal installs the PCI option ROM at rom as dest (DefaultROMPath if empty) on this
// machine. The first install keeps the file it replaces as dest.orig (later installs keep
// that backup); the new file is written to a temporary file in dest's directory and renamed
// over dest, so QEMU never reads a partial ROM. A dest that already holds the same bytes is
// left alone. Symbolic links at dest (Debian points QEMU's ROM names into /usr/lib/ipxe)
// are backed up as links and replaced by a regular file.
func InstallLocal(ctx context.Context, rom, dest string, log *slog.Logger) (InstallResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dest == "" {
		dest = DefaultROMPath
	}
	data, err := os.ReadFile(rom)
	if err != nil {
		return InstallResult{}, fmt.Errorf("ipxe install: %w", err)
	}
	if _, err := ParseOptionROM(data); err != nil {
		return InstallResult{}, fmt.Errorf("ipxe install: %s: %w", rom, err)
	}
	res := InstallResult{Dest: dest, SHA256: sha256Hex(data)}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("ipxe install: %w", err)
	}
	if cur, err := os.ReadFile(dest); err == nil && bytes.Equal(cur, data) {
		if _, err := os.Lstat(dest + ".orig"); err == nil {
			res.Backup = dest + ".orig"
		}
		log.Info("ipxe install: already installed", "file", dest, "sha256", res.SHA256)
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return res, fmt.Errorf("ipxe install: %w", err)
	}
	backup, err := backupOnce(dest)
	if err != nil {
		return res, fmt.Errorf("ipxe install: backup of %s: %w", dest, err)
	}
	res.Backup = backup
	if err := writeFileAtomic(dest, data, 0o644); err != nil {
		return res, fmt.Errorf("ipxe install: %w", err)
	}
	res.Changed = true
	log.Info("ipxe install: installed", "file", dest, "bytes", len(data), "sha256", res.SHA256, "backup", backup)
	return res, nil
}

// backupOnce keeps the first file at dest as dest.orig and returns that name, or "" when
// there was nothing to keep.
func backupOnce(dest string) (string, error) {
	orig := dest + ".orig"
	if _, err := os.Lstat(orig); err == nil {
		return orig, nil
	}
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(dest)
		if err != nil {
			return "", err
		}
		tmp := orig + ".vmprov-tmp"
		os.Remove(tmp)
		if err := os.Symlink(link, tmp); err != nil {
			return "", err
		}
		return orig, os.Rename(tmp, orig)
	}
	in, err := os.Open(dest)
	if err != nil {
		return "", err
	}
	defer in.Close()
	return orig, replaceFile(orig, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
