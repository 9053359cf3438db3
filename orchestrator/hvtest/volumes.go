package hvtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// VolumeConformance checks that the stores newVS returns keep the contract
// documented on virt.VolumeStore. pool names an existing, active storage pool
// that may hold other volumes; the suite's own have fresh random names
// starting with "hvt-" and ending in ".rom", and are removed at the end.
func VolumeConformance(t *testing.T, pool string, newVS func(t *testing.T) virt.VolumeStore) {
	t.Helper()
	t.Run("Upload Download List Delete", func(t *testing.T) {
		vs, ctx, name := newVS(t), t.Context(), uniqueName(t)+".rom"
		cleanupVolume(t, vs, pool, name)
		// Not a multiple of any block size, and over one stream chunk.
		data := randomBytes(t, 200<<10+3)
		path, err := vs.UploadVolume(ctx, pool, name, data)
		if err != nil {
			t.Fatalf("UploadVolume: %v", err)
		}
		if !strings.HasSuffix(path, "/"+name) {
			t.Errorf("UploadVolume path = %q, want a path ending in /%s", path, name)
		}
		got, err := vs.DownloadVolume(ctx, pool, name, int64(len(data)))
		if err != nil {
			t.Fatalf("DownloadVolume: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("DownloadVolume returned %d bytes that differ from the %d uploaded", len(got), len(data))
		}
		if diff := cmp.Diff(virt.Volume{Name: name, Path: path, Size: uint64(len(data))}, listedVolume(t, vs, pool, name)); diff != "" {
			t.Errorf("ListVolumes entry (-want +got):\n%s", diff)
		}
		if _, err := vs.DownloadVolume(ctx, pool, name, int64(len(data))-1); !errors.Is(err, virt.ErrTooLarge) {
			t.Errorf("DownloadVolume with a limit under the size: error = %v, want ErrTooLarge", err)
		}

		// A second upload is refused and changes nothing.
		if _, err := vs.UploadVolume(ctx, pool, name, []byte("other")); !errors.Is(err, virt.ErrExists) {
			t.Errorf("second UploadVolume error = %v, want ErrExists", err)
		}
		if got, err := vs.DownloadVolume(ctx, pool, name, 1<<20); err != nil || !bytes.Equal(got, data) {
			t.Errorf("after a refused UploadVolume: %d bytes, %v; want the first upload's %d", len(got), err, len(data))
		}

		for i := range 2 {
			if err := vs.DeleteVolume(ctx, pool, name); err != nil {
				t.Fatalf("DeleteVolume #%d: %v", i+1, err)
			}
		}
		if _, err := vs.DownloadVolume(ctx, pool, name, 1<<20); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("DownloadVolume after DeleteVolume: error = %v, want ErrNotFound", err)
		}
		for _, v := range listVolumes(t, vs, pool) {
			if v.Name == name {
				t.Errorf("ListVolumes after DeleteVolume still has %q", name)
			}
		}
		// The name is free again, for other content.
		small := []byte{0x55, 0xaa, 1}
		if _, err := vs.UploadVolume(ctx, pool, name, small); err != nil {
			t.Fatalf("UploadVolume after DeleteVolume: %v", err)
		}
		if got, err := vs.DownloadVolume(ctx, pool, name, 3); err != nil || !bytes.Equal(got, small) {
			t.Errorf("DownloadVolume of a 3-byte volume = %x, %v; want %x", got, err, small)
		}
	})

	t.Run("refused uploads leave nothing", func(t *testing.T) {
		vs, ctx, name := newVS(t), t.Context(), uniqueName(t)+".rom"
		cleanupVolume(t, vs, pool, name)
		if _, err := vs.UploadVolume(ctx, pool, name, nil); err == nil {
			t.Error("UploadVolume of no data succeeded")
		}
		for _, bad := range []string{"", ".", "..", "a/" + name, "a " + name} {
			if _, err := vs.UploadVolume(ctx, pool, bad, []byte{1}); err == nil {
				t.Errorf("UploadVolume of name %q succeeded", bad)
				_ = vs.DeleteVolume(context.Background(), pool, bad)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := vs.UploadVolume(cctx, pool, name, []byte{1}); !errors.Is(err, context.Canceled) {
			t.Errorf("UploadVolume with a cancelled context: error = %v, want context.Canceled", err)
		}
		for _, v := range listVolumes(t, vs, pool) {
			if v.Name == name {
				t.Errorf("a refused UploadVolume left volume %+v", v)
			}
		}
	})

	t.Run("missing pool", func(t *testing.T) {
		vs, ctx, name := newVS(t), t.Context(), uniqueName(t)+".rom"
		missing := uniqueName(t) + "-nopool"
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, virt.ErrPoolNotFound) || !strings.Contains(err.Error(), missing) {
				t.Errorf("%s in a missing pool: error = %v, want ErrPoolNotFound naming %q", what, err, missing)
			}
		}
		_, err := vs.UploadVolume(ctx, missing, name, []byte{1})
		check("UploadVolume", err)
		_, err = vs.DownloadVolume(ctx, missing, name, 1)
		check("DownloadVolume", err)
		_, err = vs.ListVolumes(ctx, missing)
		check("ListVolumes", err)
		check("DeleteVolume", vs.DeleteVolume(ctx, missing, name))
	})

	t.Run("concurrent uploads of different names", func(t *testing.T) {
		vs, ctx := newVS(t), t.Context()
		const n = 4
		var wg sync.WaitGroup
		for range n {
			name := uniqueName(t) + ".rom"
			data := randomBytes(t, 70<<10)
			cleanupVolume(t, vs, pool, name)
			wg.Go(func() {
				if _, err := vs.UploadVolume(ctx, pool, name, data); err != nil {
					t.Errorf("UploadVolume %s: %v", name, err)
					return
				}
				if got, err := vs.DownloadVolume(ctx, pool, name, int64(len(data))); err != nil || !bytes.Equal(got, data) {
					t.Errorf("DownloadVolume %s: %d bytes, %v; want the %d uploaded", name, len(got), err, len(data))
				}
			})
		}
		wg.Wait()
	})
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func listVolumes(t *testing.T, vs virt.VolumeStore, pool string) []virt.Volume {
	t.Helper()
	all, err := vs.ListVolumes(t.Context(), pool)
	if err != nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Errorf("ListVolumes is not sorted by name: %q before %q", all[i-1].Name, all[i].Name)
		}
	}
	return all
}

// listedVolume returns name's entry in ListVolumes, failing if there is not
// exactly one.
func listedVolume(t *testing.T, vs virt.VolumeStore, pool, name string) virt.Volume {
	t.Helper()
	var found []virt.Volume
	for _, v := range listVolumes(t, vs, pool) {
		if v.Name == name {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("ListVolumes has %d entries named %q, want 1", len(found), name)
	}
	return found[0]
}

func cleanupVolume(t *testing.T, vs virt.VolumeStore, pool, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := vs.DeleteVolume(ctx, pool, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}
