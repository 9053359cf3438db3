package libvirtconn_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// TestRealLibvirtd drives a real libvirtd with QEMU (TCG) in a lab network
// namespace: the conformance suite, then a vmprov VM whose tap must join the
// VLAN's bridge.
func TestRealLibvirtd(t *testing.T) {
	lab.RequireRoot(t, "ip", "mount", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img")
	ns := lab.NamespaceForTest(t)
	if err := ns.AddBridge(t.Context(), lab.Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24")}); err != nil {
		t.Fatal(err)
	}
	lv := lab.LibvirtForTest(t, ns.Name)
	hv, err := libvirtconn.Open(lv.URI(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hv.Close(); err != nil {
			t.Error(err)
		}
	})

	t.Run("conformance", func(t *testing.T) {
		hvtest.Conformance(t, lab.PoolName, func(t *testing.T) virt.Hypervisor { return hv })
	})
	t.Run("VM on br135", func(t *testing.T) {
		ctx := t.Context()
		const name, mac = "vmprov-real", "02:04:06:08:70:0c"
		path, err := hv.CreateDisk(ctx, lab.PoolName, name, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(lv.PoolDir(), name+".qcow2"); path != want {
			t.Errorf("disk path = %q, want %q", path, want)
		}
		if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "QFI\xfb") {
			t.Errorf("disk %s is not a qcow2 image (%v)", path, err)
		}
		spec := virt.DomainSpec{Name: name, Type: "qemu", MemoryMiB: 96, VCPUs: 1, MAC: mac, Bridge: "br135",
			DiskPath: path, Meta: virt.Metadata{VLAN: 135, Distro: "core", FQDN: name + ".example.com."}}
		x, err := virt.BuildDomainXML(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := hv.Define(ctx, x); err != nil {
			t.Fatal(err)
		}
		if err := hv.Start(ctx, name); err != nil {
			t.Fatalf("%v\n%s", err, readFile(lv.DomainLog(name)))
		}
		d, err := hv.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != virt.StateRunning || d.MAC != mac || d.Bridge != "br135" || d.DiskPath != path || d.Meta != spec.Meta {
			t.Errorf("Get = %+v, want running with the spec's MAC, bridge, disk and metadata", d)
		}
		tap := tapOf(t, d.XML)
		ports, err := ns.IP(ctx, "-o", "link", "show", "master", "br135")
		// libvirt gives the tap the guest's MAC with fe as first byte.
		if err != nil || !strings.Contains(ports, tap+"@") && !strings.Contains(ports, tap+":") || !strings.Contains(ports, "fe:04:06:08:70:0c") {
			t.Errorf("tap %s of %s is not a port of br135: %q %v", tap, name, ports, err)
		}

		if err := hv.Destroy(ctx, name); err != nil {
			t.Fatal(err)
		}
		gone := false
		for deadline := time.Now().Add(10 * time.Second); !gone && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ports, _ = ns.IP(ctx, "-o", "link", "show", "master", "br135")
			gone = !strings.Contains(ports, tap)
		}
		if !gone {
			t.Errorf("tap %s still on br135 after Destroy: %q", tap, ports)
		}
		if err := hv.Undefine(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := hv.DeleteDisk(ctx, lab.PoolName, name); err != nil {
			t.Fatal(err)
		}
		if _, err := hv.Get(ctx, name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Get after removal: error = %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("disk %s still exists after DeleteDisk: %v", path, err)
		}
	})

	t.Run("UEFI VM", func(t *testing.T) { realUEFI(t, hv, lv) })
}

// TestRealLibvirtdUploadConformance runs VolumeConformance against a real
// libvirtd (the test driver has no streams) and checks that an uploaded
// volume is a plain file of the dir pool.
func TestRealLibvirtdUploadConformance(t *testing.T) {
	lab.RequireRoot(t, "ip", "mount", "libvirtd", "virtlogd", "virsh")
	lv := lab.LibvirtForTest(t, lab.NamespaceForTest(t).Name)
	hv, err := libvirtconn.Open(lv.URI(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hv.Close(); err != nil {
			t.Error(err)
		}
	})
	hvtest.VolumeConformance(t, lab.PoolName, func(t *testing.T) virt.VolumeStore { return hv })

	ctx := t.Context()
	const name = "vmprov-real.rom"
	data := []byte("\x55\xaa uploaded through a libvirt stream")
	path, err := hv.UploadVolume(ctx, lab.PoolName, name, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hv.DeleteVolume(context.Background(), lab.PoolName, name) })
	if want := filepath.Join(lv.PoolDir(), name); path != want {
		t.Errorf("volume path = %q, want %q", path, want)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != string(data) {
		t.Errorf("file %s = %q, %v; want the uploaded bytes", path, b, err)
	}
	// QEMU, running as another user on a distribution's libvirtd, must read it.
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("file %s has mode %v, want 0644", path, fi.Mode())
	}
}

// realUEFI defines and starts an OVMF VM and checks that Undefine removes
// its NVRAM file too.
func realUEFI(t *testing.T, hv *libvirtconn.Libvirt, lv *lab.Libvirt) {
	ctx := t.Context()
	const name = "vmprov-uefi"
	path, err := hv.CreateDisk(ctx, lab.PoolName, name, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hv.DeleteDisk(context.Background(), lab.PoolName, name) })
	x, err := virt.BuildDomainXML(virt.DomainSpec{Name: name, Type: "qemu", MemoryMiB: 128, VCPUs: 1,
		MAC: "02:04:06:08:70:0d", Bridge: "br135", DiskPath: path, Meta: virt.Metadata{VLAN: 135},
		Firmware: virt.FirmwareEFI})
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
		t.Fatalf("%v\n%s", err, readFile(lv.DomainLog(name)))
	}
	d, err := hv.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var live libvirtxml.Domain
	if err := live.Unmarshal(d.XML); err != nil {
		t.Fatal(err)
	}
	if live.OS.Loader == nil || !strings.Contains(live.OS.Loader.Path, "OVMF") || live.OS.NVRam == nil {
		t.Fatalf("live XML has no OVMF loader and NVRAM:\n%s", d.XML)
	}
	// The lab's libvirtd sees DIR/root/lib as /var/lib/libvirt.
	nvram := filepath.Join(filepath.Dir(lv.PoolDir()), "root", "lib",
		strings.TrimPrefix(live.OS.NVRam.NVRam, "/var/lib/libvirt/"))
	if _, err := os.Stat(nvram); err != nil {
		t.Fatalf("NVRAM of a running UEFI VM: %v", err)
	}
	if err := hv.Destroy(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := hv.Undefine(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(nvram); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NVRAM %s after Undefine: %v, want it removed", nvram, err)
	}
}

// tapOf returns the host interface (<target dev>) of a running domain's
// first interface.
func tapOf(t *testing.T, liveXML string) string {
	t.Helper()
	var d libvirtxml.Domain
	if err := d.Unmarshal(liveXML); err != nil {
		t.Fatal(err)
	}
	if d.Devices == nil || len(d.Devices.Interfaces) == 0 || d.Devices.Interfaces[0].Target == nil {
		t.Fatalf("live XML has no interface target:\n%s", liveXML)
	}
	return d.Devices.Interfaces[0].Target.Dev
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
