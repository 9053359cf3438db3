package ipxebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// MaxROMSize is the largest PCI option ROM a header can describe (a 16-bit
// count of 512-byte blocks); larger volumes are never read back.
const MaxROMSize = 0xffff * 512

// ROMVolumePrefix and ROMVolumeSuffix frame the names of the ROM volumes
// vmprov uploads (ROMVolumeName); CheckVolumes reads back only those.
const (
	ROMVolumePrefix = "ipxe-"
	ROMVolumeSuffix = ".rom"
)

// ROM is a PCI option ROM read from a file and checked by ParseOptionROM.
type ROM struct {
	Path   string    `json:"path"`
	Size   int       `json:"size"`
	SHA256 string    `json:"sha256"`
	Header OptionROM `json:"header"`
	Data   []byte    `json:"-"`
}

// ReadROM reads and checks the option ROM at path, so that a file that is
// not one is refused before anything is installed anywhere.
func ReadROM(path string) (ROM, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ROM{}, fmt.Errorf("ipxe install: %w", err)
	}
	h, err := ParseOptionROM(b)
	if err != nil {
		return ROM{}, fmt.Errorf("ipxe install: %s: %w (want a ROM such as ipxe-out/bin/1af41000.rom from vmprov ipxe build)", path, err)
	}
	return ROM{Path: path, Size: len(b), SHA256: sha256Hex(b), Header: h, Data: b}, nil
}

// ROMVolumeName is the storage volume name of r: "ipxe-", the file's base name
// without ".rom", "-", the first 12 hex digits of its SHA-256 and ".rom", e.g.
// ipxe-1af41000-3f2a9c0d1e4b.rom. The name changes with the content, so a new
// build never overwrites the file that running VMs' <rom file=.../> names,
// and the same build is found again instead of uploaded twice.
func ROMVolumeName(r ROM) string {
	base := strings.TrimSuffix(filepath.Base(r.Path), ROMVolumeSuffix)
	clean := []byte(base)
	for i, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			clean[i] = '-'
		}
	}
	if len(clean) > 64 {
		clean = clean[:64]
	}
	if len(clean) == 0 || base == "." || base == "/" {
		clean = []byte("rom")
	}
	return ROMVolumePrefix + string(clean) + "-" + r.SHA256[:12] + ROMVolumeSuffix
}

// VolumeResult says what InstallVolume did on one hypervisor.
type VolumeResult struct {
	Pool    string `json:"pool"`
	Volume  string `json:"volume"`
	Path    string `json:"path"` // the volume's file on the hypervisor: the value for libvirt.rom
	SHA256  string `json:"sha256"`
	Changed bool   `json:"changed"` // false: the volume already held this ROM
}

// InstallVolume uploads r into pool as the volume ROMVolumeName(r) through vs
// (on libvirt, virStorageVolUpload: no SSH or scp to the hypervisor) and
// returns its path there, which a domain's <rom file=.../> (libvirt.rom) names.
// It is idempotent: a volume of that name holding the same bytes is left
// alone. A volume of that name with other bytes (an upload cut short outside
// vmprov) is replaced. The upload is read back and compared before
// InstallVolume reports success.
func InstallVolume(ctx context.Context, vs virt.VolumeStore, pool string, r ROM, log *slog.Logger) (VolumeResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := ROMVolumeName(r)
	res := VolumeResult{Pool: pool, Volume: name, SHA256: r.SHA256}
	vols, err := vs.ListVolumes(ctx, pool)
	if err != nil {
		return res, fmt.Errorf("ipxe install: %w", err)
	}
	for _, v := range vols {
		if v.Name != name {
			continue
		}
		res.Path = v.Path
		got, err := readSum(ctx, vs, pool, v)
		if err != nil {
			return res, fmt.Errorf("ipxe install: %w", err)
		}
		if got == r.SHA256 {
			log.Info("ipxe install: already uploaded", "file", v.Path, "sha256", r.SHA256)
			return res, nil
		}
		log.Warn("ipxe install: replacing a volume whose bytes do not match its name", "file", v.Path, "sha256", got)
		if err := vs.DeleteVolume(ctx, pool, name); err != nil {
			return res, fmt.Errorf("ipxe install: %w", err)
		}
	}
	path, err := vs.UploadVolume(ctx, pool, name, r.Data)
	if err != nil {
		return res, fmt.Errorf("ipxe install: %w", err)
	}
	res.Path, res.Changed = path, true
	got, err := readSum(ctx, vs, pool, virt.Volume{Name: name, Path: path, Size: uint64(r.Size)})
	if err == nil && got != r.SHA256 {
		err = fmt.Errorf("volume %s reads back with sha256 %s, want %s", path, got, r.SHA256)
	}
	if err != nil {
		if derr := vs.DeleteVolume(context.WithoutCancel(ctx), pool, name); derr != nil {
			err = errors.Join(err, derr)
		}
		return res, fmt.Errorf("ipxe install: verify upload: %w", err)
	}
	log.Info("ipxe install: uploaded", "file", path, "bytes", r.Size, "sha256", r.SHA256)
	return res, nil
}

// readSum downloads a volume and returns the SHA-256 of its bytes.
func readSum(ctx context.Context, vs virt.VolumeStore, pool string, v virt.Volume) (string, error) {
	b, err := vs.DownloadVolume(ctx, pool, v.Name, MaxROMSize)
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

// ROMFile is one installed ROM that CheckVolumes (or a local check) found.
type ROMFile struct {
	Path   string `json:"path"`
	Volume string `json:"volume,omitempty"` // the storage volume, when read through libvirt
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // empty when the file could not be read (Error)
	Match  bool   `json:"match"`            // the bytes are those of the ROM checked against
	Error  string `json:"error,omitempty"`
}

// VolumeCheck is what CheckVolumes found in one pool.
type VolumeCheck struct {
	Pool  string    `json:"pool"`
	Files []ROMFile `json:"files"` // the pool's vmprov ROM volumes, sorted by name
	Match bool      `json:"match"` // one of Files holds the ROM
}

// CheckVolumes reads back (virStorageVolDownload) every vmprov ROM volume of
// pool — named ROMVolumePrefix…ROMVolumeSuffix — and reports its SHA-256 and
// whether it holds r. A volume that cannot be read is reported with its
// error, not as a failure of the whole check; a missing pool is an error.
func CheckVolumes(ctx context.Context, vs virt.VolumeStore, pool string, r ROM) (VolumeCheck, error) {
	res := VolumeCheck{Pool: pool, Files: []ROMFile{}}
	vols, err := vs.ListVolumes(ctx, pool)
	if err != nil {
		return res, fmt.Errorf("ipxe install --check: %w", err)
	}
	for _, v := range vols {
		if !strings.HasPrefix(v.Name, ROMVolumePrefix) || !strings.HasSuffix(v.Name, ROMVolumeSuffix) {
			continue
		}
		f := ROMFile{Path: v.Path, Volume: v.Name, Size: int64(v.Size)}
		sum, err := readSum(ctx, vs, pool, v)
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("ipxe install --check: %w", ctx.Err())
		case err != nil:
			f.Error = err.Error()
		default:
			f.SHA256, f.Match = sum, sum == r.SHA256
		}
		res.Match = res.Match || f.Match
		res.Files = append(res.Files, f)
	}
	return res, nil
}
