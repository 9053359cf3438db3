package libvirtconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
)

// testURI is libvirt's in-process test driver: shared state per process,
// with an active "default-pool" and a foreign running domain "test".
const (
	testURI  = "test:///default"
	testPool = "default-pool"
)

func openTest(t *testing.T) *libvirtconn.Libvirt {
	t.Helper()
	l, err := libvirtconn.Open(testURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func TestLibvirtConformance(t *testing.T) {
	hvtest.Conformance(t, testPool, func(t *testing.T) virt.Hypervisor { return openTest(t) })
}

// TestGoldenXMLIsValid defines every golden domain of package virt
// (../testdata) with libvirt's schema validation on, so the builder's XML is
// checked by libvirt itself.
func TestGoldenXMLIsValid(t *testing.T) {
	l := openTest(t)
	for _, name := range []string{"ipv4", "ipv6only", "rom", "efi"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "testdata", name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := virt.ParseDomain(string(b))
			if err != nil {
				t.Fatal(err)
			}
			// Unique name: the test driver's state is shared by the process.
			unique := "golden-" + name + "-" + filepath.Base(t.TempDir())
			x := strings.Replace(string(b), "<name>"+d.Name+"</name>", "<name>"+unique+"</name>", 1)
			if err := l.Define(t.Context(), x); err != nil {
				t.Fatalf("Define %s: %v", name, err)
			}
			t.Cleanup(func() { _ = l.Undefine(context.Background(), unique) })
			got, err := l.Get(t.Context(), unique)
			if err != nil {
				t.Fatal(err)
			}
			if got.Meta != d.Meta || got.MAC != d.MAC || got.Bridge != d.Bridge || got.DiskPath != d.DiskPath {
				t.Errorf("libvirt's XML reads back as %+v, want what %s says: %+v", got, name, d)
			}
		})
	}
}

func TestLibvirtErrors(t *testing.T) {
	l := openTest(t)
	ctx := t.Context()

	t.Run("schema-invalid XML is rejected with libvirt's reason", func(t *testing.T) {
		x := "<domain type='qemu'><name>schema-invalid</name><memory>65536</memory>" +
			"<os><type>hvm</type></os><devices><bogus/></devices></domain>"
		err := l.Define(ctx, x)
		if err == nil {
			_ = l.Undefine(context.Background(), "schema-invalid")
			t.Fatal("Define of schema-invalid XML succeeded")
		}
		for _, want := range []string{"define domain schema-invalid: libvirt rejected domain XML: ", "schema"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})

	t.Run("missing pool says how to fix it", func(t *testing.T) {
		_, err := l.CreateDisk(ctx, "nosuchpool", "web1", 1<<20)
		if !errors.Is(err, virt.ErrPoolNotFound) {
			t.Fatalf("error = %v, want ErrPoolNotFound", err)
		}
		for _, want := range []string{`"nosuchpool"`, testURI, "virsh -c " + testURI + " pool-define-as nosuchpool", "libvirt.pool"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})

	t.Run("cancelled context stops before libvirt is called", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.CreateDisk(cctx, testPool, "cancelled", 1<<20); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateDisk error = %v, want context.Canceled", err)
		}
		if err := l.DeleteDisk(ctx, testPool, "cancelled"); err != nil {
			t.Error(err)
		}
		if _, err := l.Get(cctx, "test"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get error = %v, want context.Canceled", err)
		}
	})

	t.Run("foreign domain is readable but not listed", func(t *testing.T) {
		d, err := l.Get(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		if d.Meta != (virt.Metadata{}) || d.State == "" {
			t.Errorf("Get(test) = %+v, want zero metadata and a state", d)
		}
		all, err := l.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			if d.Name == "test" {
				t.Error("List returned the driver's own domain")
			}
		}
	})
}

func TestOpenBadURI(t *testing.T) {
	_, err := libvirtconn.Open("nosuchdriver:///x", nil)
	if err == nil || !strings.Contains(err.Error(), "nosuchdriver:///x") {
		t.Errorf("Open error = %v, want one naming the URI", err)
	}
}

// TestVolumesOnTestDriver: the test driver lists and deletes volumes but has
// no streams, so an upload must fail with libvirt's reason and leave no
// volume behind. The full VolumeConformance runs against a real libvirtd
// (TestRealLibvirtd) and the fake.
func TestVolumesOnTestDriver(t *testing.T) {
	l := openTest(t)
	ctx := t.Context()
	name := "upload-" + filepath.Base(t.TempDir()) + ".rom"
	_, err := l.UploadVolume(ctx, testPool, name, []byte{0x55, 0xaa, 1})
	if err == nil {
		_ = l.DeleteVolume(context.Background(), testPool, name)
		t.Fatal("UploadVolume on the test driver succeeded; run VolumeConformance against it instead")
	}
	for _, want := range []string{"upload volume " + name, testPool, "not supported"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	all, err := l.ListVolumes(ctx, testPool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range all {
		if v.Name == name {
			t.Errorf("a failed upload left %+v", v)
		}
	}
	if _, err := l.ListVolumes(ctx, "nosuchpool"); !errors.Is(err, virt.ErrPoolNotFound) || !strings.Contains(err.Error(), "pool-define-as nosuchpool") {
		t.Errorf("ListVolumes of a missing pool: error = %v, want ErrPoolNotFound with the fix", err)
	}
	if err := l.DeleteVolume(ctx, testPool, name); err != nil {
		t.Errorf("DeleteVolume of an absent volume = %v, want nil", err)
	}
}
