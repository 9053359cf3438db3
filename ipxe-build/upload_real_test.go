package ipxebuild

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// debianROMs are the ipxe-qemu package's real iPXE ROMs: virtio-net as QEMU
// loads it by default, and another build of it.
var debianROMs = [2]string{"/usr/lib/ipxe/qemu/pxe-virtio.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom"}

// TestInstallVolumeRealLibvirtd uploads real iPXE ROMs into the storage pool
// of a real libvirtd through its stream API, checks them by SHA-256 read
// back, and boots a QEMU guest whose virtio-net interface loads the uploaded
// volume as its <rom file=.../>.
func TestInstallVolumeRealLibvirtd(t *testing.T) {
	lab.RequireRoot(t, "ip", "mount", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	var roms [2]ROM
	for i, p := range debianROMs {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%v (install ipxe-qemu)", err)
		}
		r, err := ReadROM(p)
		if err != nil {
			t.Fatal(err)
		}
		roms[i] = r
	}
	ns := lab.NamespaceForTest(t)
	if err := ns.AddBridge(t.Context(), lab.Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24")}); err != nil {
		t.Fatal(err)
	}
	lv := lab.LibvirtForTest(t, ns.Name)
	hv, err := libvirtconn.Open(lv.URI(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hv.Close() })
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))

	res, err := InstallVolume(ctx, hv, lab.PoolName, roms[0], log)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(lv.PoolDir(), ROMVolumeName(roms[0])); res.Path != want || !res.Changed {
		t.Errorf("InstallVolume = %+v, want a new volume at %s", res, want)
	}
	if b, err := os.ReadFile(res.Path); err != nil || sha256Hex(b) != roms[0].SHA256 {
		t.Errorf("pool file %s: %d bytes, %v; want the ROM's bytes", res.Path, len(b), err)
	}
	fi, _ := os.Stat(res.Path)

	t.Run("idempotent", func(t *testing.T) {
		again, err := InstallVolume(ctx, hv, lab.PoolName, roms[0], log)
		if err != nil {
			t.Fatal(err)
		}
		if again.Changed || again.Path != res.Path {
			t.Errorf("second InstallVolume = %+v, want unchanged %s", again, res.Path)
		}
		if fi2, err := os.Stat(res.Path); err != nil || !os.SameFile(fi, fi2) || !fi2.ModTime().Equal(fi.ModTime()) {
			t.Errorf("the volume's file was rewritten (%v)", err)
		}
	})

	t.Run("check by sha256", func(t *testing.T) {
		c, err := CheckVolumes(ctx, hv, lab.PoolName, roms[0])
		if err != nil {
			t.Fatal(err)
		}
		if !c.Match || len(c.Files) != 1 || c.Files[0].SHA256 != roms[0].SHA256 || c.Files[0].Path != res.Path {
			t.Errorf("CheckVolumes = %+v, want one matching volume %s", c, res.Path)
		}
		c, err = CheckVolumes(ctx, hv, lab.PoolName, roms[1])
		if err != nil {
			t.Fatal(err)
		}
		if c.Match || len(c.Files) != 1 || c.Files[0].Match || c.Files[0].SHA256 != roms[0].SHA256 {
			t.Errorf("CheckVolumes against another ROM = %+v, want a mismatch reporting %s", c, roms[0].SHA256)
		}
		// A bit flipped on the hypervisor is found by the read-back.
		b, _ := os.ReadFile(res.Path)
		b[len(b)-1] ^= 1
		if err := os.WriteFile(res.Path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err = CheckVolumes(ctx, hv, lab.PoolName, roms[0])
		if err != nil || c.Match || c.Files[0].SHA256 != sha256Hex(b) {
			t.Errorf("CheckVolumes of a corrupted volume = %+v, %v; want a mismatch", c, err)
		}
		again, err := InstallVolume(ctx, hv, lab.PoolName, roms[0], log)
		if err != nil || !again.Changed {
			t.Fatalf("InstallVolume over the corrupted volume = %+v, %v; want it replaced", again, err)
		}
		if c, err := CheckVolumes(ctx, hv, lab.PoolName, roms[0]); err != nil || !c.Match {
			t.Errorf("CheckVolumes after the repair = %+v, %v", c, err)
		}
	})

	t.Run("missing pool", func(t *testing.T) {
		_, err := InstallVolume(ctx, hv, "nosuchpool", roms[0], log)
		if !errors.Is(err, virt.ErrPoolNotFound) {
			t.Fatalf("error = %v, want ErrPoolNotFound", err)
		}
		for _, want := range []string{`"nosuchpool"`, "pool-define-as nosuchpool", "libvirt.pool"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})

	t.Run("QEMU loads the uploaded ROM", func(t *testing.T) {
		const name = "vmprov-romvol"
		disk, err := hv.CreateDisk(ctx, lab.PoolName, name, 16<<20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hv.DeleteDisk(context.Background(), lab.PoolName, name) })
		x, err := virt.BuildDomainXML(virt.DomainSpec{Name: name, Type: "qemu", MemoryMiB: 96, VCPUs: 1,
			MAC: "02:04:06:08:70:0e", Bridge: "br135", DiskPath: disk, ROMFile: res.Path, Meta: virt.Metadata{VLAN: 135}})
		if err != nil {
			t.Fatal(err)
		}
		if err := hv.Define(ctx, x); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = hv.Destroy(context.Background(), name)
			_ = hv.Undefine(context.Background(), name)
		})
		if err := hv.Start(ctx, name); err != nil {
			t.Fatalf("%v\n%s", err, readLog(lv.DomainLog(name)))
		}
		// libvirt logs QEMU's command line; QEMU opened the file when it started.
		if l := readLog(lv.DomainLog(name)); !strings.Contains(l, "romfile") || !strings.Contains(l, res.Path) {
			t.Errorf("QEMU was not started with romfile %s:\n%s", res.Path, l)
		}
	})
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
