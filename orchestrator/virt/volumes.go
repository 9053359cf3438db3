package virt

import (
	"context"
	"errors"
	"fmt"
)

// VolumeStore puts small files (such as an iPXE option ROM) into a storage
// pool of a hypervisor and reads them back, through the hypervisor's own
// connection (libvirt: virStorageVolUpload and virStorageVolDownload
// streams), so no SSH or scp to a remote hypervisor is needed. A volume's
// path is the file a guest's <rom file=.../> may name on that hypervisor.
//
// Contract, shared by every implementation (hvtest.VolumeConformance checks
// it):
//   - UploadVolume creates the raw volume name of exactly len(data) (> 0)
//     bytes in pool, readable by every user of the host (QEMU may run as a
//     user of its own), writes data into it and returns its path. A volume
//     of that name that already exists is ErrExists and is left alone; when
//     the write fails the new volume is deleted, so no partial volume
//     remains.
//   - DownloadVolume returns a volume's whole content; an absent volume is
//     ErrNotFound, one larger than limit bytes ErrTooLarge.
//   - ListVolumes returns every volume of pool, sorted by name.
//   - DeleteVolume deletes a volume; an absent one is nil.
//   - A pool that does not exist is ErrPoolNotFound, naming the pool. Names
//     are checked with CheckVolumeName.
//
// Methods are safe for concurrent use on different names, and treat ctx as
// Hypervisor's methods do.
type VolumeStore interface {
	UploadVolume(ctx context.Context, pool, name string, data []byte) (path string, err error)
	DownloadVolume(ctx context.Context, pool, name string, limit int64) ([]byte, error)
	ListVolumes(ctx context.Context, pool string) ([]Volume, error)
	DeleteVolume(ctx context.Context, pool, name string) error
}

// Volume is a storage volume as the hypervisor reports it.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Size uint64 `json:"size"` // capacity in bytes
}

// ErrTooLarge: a volume is larger than the caller's limit.
var ErrTooLarge = errors.New("volume larger than the limit")

// CheckVolumeName accepts a storage volume name: 1 to 255 bytes, no slash,
// control character or space, and not "." or "..".
func CheckVolumeName(name string) error {
	if name == "" || len(name) > 255 || name == "." || name == ".." {
		return fmt.Errorf("volume name %q: want 1 to 255 characters, not . or ..", name)
	}
	for _, r := range name {
		if r == '/' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("volume name %q has %q", name, r)
		}
	}
	return nil
}
