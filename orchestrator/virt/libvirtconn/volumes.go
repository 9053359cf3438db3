package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

var _ virt.VolumeStore = (*Libvirt)(nil)

// streamChunk is the size of one stream write; libvirt's own limit per
// message is 256 KiB.
const streamChunk = 64 << 10

// volume looks up name in an active pool: virt.ErrNotFound when absent. The
// caller frees both.
func (l *Libvirt) volume(ctx context.Context, op, pool, name string) (*libvirt.StoragePool, *libvirt.StorageVol, error) {
	if err := virt.CheckVolumeName(name); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	p, err := l.pool(ctx, op, pool)
	if err != nil {
		return nil, nil, err
	}
	l.refresh(p, pool)
	if err := ctx.Err(); err != nil {
		_ = p.Free()
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	v, err := p.LookupStorageVolByName(name)
	if code(err) == libvirt.ERR_NO_STORAGE_VOL {
		return p, nil, fmt.Errorf("%s: volume %s in pool %q on %s: %w", op, name, pool, l.uri, virt.ErrNotFound)
	}
	if err != nil {
		_ = p.Free()
		return nil, nil, fmt.Errorf("%s: look up volume %s in pool %q: %w", op, name, pool, wrap(err))
	}
	return p, v, nil
}

// UploadVolume implements virt.VolumeStore with virStorageVolUpload on a
// blocking stream.
func (l *Libvirt) UploadVolume(ctx context.Context, pool, name string, data []byte) (string, error) {
	op := "upload volume " + name
	if len(data) == 0 {
		return "", fmt.Errorf("%s: no data: want at least one byte", op)
	}
	p, v, err := l.volume(ctx, op, pool, name)
	if err == nil {
		path, _ := v.GetPath()
		_ = v.Free()
		_ = p.Free()
		return "", fmt.Errorf("%s: volume %s in pool %q (%s): %w", op, name, pool, path, virt.ErrExists)
	}
	if !errors.Is(err, virt.ErrNotFound) {
		return "", err
	}
	defer p.Free()
	x, err := (&libvirtxml.StorageVolume{
		Name:       name,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(len(data))},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(len(data))},
		Target: &libvirtxml.StorageVolumeTarget{
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"},
			// World-readable: QEMU may run as another user (libvirt-qemu,
			// qemu) and reads a <rom file=.../> itself. Uploaded
			// volumes hold boot files, not secrets.
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: "0644"},
		},
	}).Marshal()
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	start := time.Now()
	v, err = p.StorageVolCreateXML(x, 0)
	if err != nil {
		if code(err) == libvirt.ERR_STORAGE_VOL_EXIST || strings.Contains(wrap(err).Error(), "already exists") {
			return "", fmt.Errorf("%s: volume %s in pool %q: %w", op, name, pool, virt.ErrExists)
		}
		return "", fmt.Errorf("%s: libvirt refused volume %s in pool %q: %w", op, name, pool, wrap(err))
	}
	defer v.Free()
	if err := l.upload(ctx, v, data); err != nil {
		// The volume is new and was never complete: remove it.
		if derr := v.Delete(libvirt.STORAGE_VOL_DELETE_NORMAL); derr != nil {
			l.log.Error("partial volume left in pool: delete it", "file", name, "err", wrap(derr))
		}
		return "", fmt.Errorf("%s: to pool %q on %s: %w", op, pool, l.uri, err)
	}
	path, err := v.GetPath()
	if err != nil {
		return "", fmt.Errorf("%s: path of volume %s (uploaded to pool %q): %w", op, name, pool, wrap(err))
	}
	l.log.Info("volume uploaded", "file", path, "bytes", len(data), "dur", time.Since(start))
	return path, nil
}

// upload writes data into v through a stream.
func (l *Libvirt) upload(ctx context.Context, v *libvirt.StorageVol, data []byte) error {
	st, err := l.conn.NewStream(0)
	if err != nil {
		return wrap(err)
	}
	defer st.Free()
	if err := v.Upload(st, 0, uint64(len(data)), 0); err != nil {
		return wrap(err)
	}
	for rest := data; len(rest) > 0; {
		if err := ctx.Err(); err != nil {
			_ = st.Abort()
			return err
		}
		n, err := st.Send(rest[:min(len(rest), streamChunk)])
		if err != nil {
			_ = st.Abort()
			return wrap(err)
		}
		if n < 0 { // -2: would block, which a blocking stream does not
			_ = st.Abort()
			return fmt.Errorf("stream send returned %d", n)
		}
		rest = rest[n:]
	}
	if err := st.Finish(); err != nil {
		return wrap(err)
	}
	return nil
}

// DownloadVolume implements virt.VolumeStore with virStorageVolDownload on a
// blocking stream.
func (l *Libvirt) DownloadVolume(ctx context.Context, pool, name string, limit int64) ([]byte, error) {
	op := "download volume " + name
	p, v, err := l.volume(ctx, op, pool, name)
	if p != nil {
		defer p.Free()
	}
	if err != nil {
		return nil, err
	}
	defer v.Free()
	info, err := v.GetInfo()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, wrap(err))
	}
	if int64(info.Capacity) > limit {
		return nil, fmt.Errorf("%s: %d bytes in pool %q, over %d: %w", op, info.Capacity, pool, limit, virt.ErrTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	st, err := l.conn.NewStream(0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, wrap(err))
	}
	defer st.Free()
	if err := v.Download(st, 0, info.Capacity, 0); err != nil {
		return nil, fmt.Errorf("%s: from pool %q on %s: %w", op, pool, l.uri, wrap(err))
	}
	out := make([]byte, 0, info.Capacity)
	buf := make([]byte, streamChunk)
	for {
		if err := ctx.Err(); err != nil {
			_ = st.Abort()
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		n, err := st.Recv(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = st.Abort()
			return nil, fmt.Errorf("%s: %w", op, wrap(err))
		}
		if n < 0 { // -2 would block, -3 in a hole: neither on a blocking, non-sparse stream
			_ = st.Abort()
			return nil, fmt.Errorf("%s: stream receive returned %d", op, n)
		}
		if int64(len(out)+n) > limit {
			_ = st.Abort()
			return nil, fmt.Errorf("%s: more than %d bytes: %w", op, limit, virt.ErrTooLarge)
		}
		out = append(out, buf[:n]...)
	}
	if err := st.Finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, wrap(err))
	}
	return out, nil
}

// ListVolumes implements virt.VolumeStore.
func (l *Libvirt) ListVolumes(ctx context.Context, pool string) ([]virt.Volume, error) {
	op := "list volumes"
	p, err := l.pool(ctx, op, pool)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	l.refresh(p, pool)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	all, err := p.ListAllStorageVolumes(0)
	if err != nil {
		return nil, fmt.Errorf("%s of pool %q on %s: %w", op, pool, l.uri, wrap(err))
	}
	defer func() {
		for i := range all {
			_ = all[i].Free()
		}
	}()
	out := make([]virt.Volume, 0, len(all))
	for i := range all {
		name, err := all[i].GetName()
		if err != nil {
			continue // deleted since the listing
		}
		path, err := all[i].GetPath()
		if err != nil {
			continue
		}
		info, err := all[i].GetInfo()
		if err != nil {
			continue
		}
		out = append(out, virt.Volume{Name: name, Path: path, Size: info.Capacity})
	}
	slices.SortFunc(out, func(a, b virt.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteVolume implements virt.VolumeStore.
func (l *Libvirt) DeleteVolume(ctx context.Context, pool, name string) error {
	op := "delete volume " + name
	p, v, err := l.volume(ctx, op, pool, name)
	if p != nil {
		defer p.Free()
	}
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer v.Free()
	path, _ := v.GetPath()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := v.Delete(libvirt.STORAGE_VOL_DELETE_NORMAL); err != nil {
		if code(err) == libvirt.ERR_NO_STORAGE_VOL {
			return nil
		}
		return fmt.Errorf("%s: in pool %q: %w", op, pool, wrap(err))
	}
	l.log.Info("volume deleted", "file", path)
	return nil
}
