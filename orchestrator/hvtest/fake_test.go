package hvtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

func TestFakeConformance(t *testing.T) {
	hvtest.Conformance(t, "default", func(t *testing.T) virt.Hypervisor { return hvtest.NewFake() })
}

// TestFakeConformanceShared runs the suite against one Fake shared by all
// subtests, as test:///default is shared by a process.
func TestFakeConformanceShared(t *testing.T) {
	f := hvtest.NewFake("images")
	hvtest.Conformance(t, "images", func(t *testing.T) virt.Hypervisor { return f })
}

func TestFakeVolumeConformance(t *testing.T) {
	f := hvtest.NewFake("images")
	hvtest.VolumeConformance(t, "images", func(t *testing.T) virt.VolumeStore { return f })
}

func TestFakeFailOn(t *testing.T) {
	ctx := t.Context()
	errBoom := errors.New("boom")
	x, err := virt.BuildDomainXML(virt.DomainSpec{Name: "web1", Type: "qemu", MemoryMiB: 64, VCPUs: 1,
		MAC: "02:04:06:08:73:ac", Bridge: "br135", DiskPath: "/default/web1.qcow2", Meta: virt.Metadata{VLAN: 135}})
	if err != nil {
		t.Fatal(err)
	}

	f := hvtest.NewFake()
	f.FailOn(hvtest.OpCreateDisk, "web1", errBoom)
	f.FailOn(hvtest.OpStart, "", errBoom)
	if _, err := f.CreateDisk(ctx, "default", "web1", 1<<20); !errors.Is(err, errBoom) {
		t.Errorf("CreateDisk error = %v, want the injected one", err)
	}
	if f.Volumes("default") != nil {
		t.Errorf("a failed CreateDisk left volumes %v", f.Volumes("default"))
	}
	if _, err := f.CreateDisk(ctx, "default", "web2", 1<<20); err != nil {
		t.Errorf("CreateDisk of another name: %v", err)
	}
	if err := f.Define(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx, "web1"); !errors.Is(err, errBoom) {
		t.Errorf("Start error = %v, want the injected one", err)
	}
	if d, err := f.Get(ctx, "web1"); err != nil || d.State != virt.StateShutOff {
		t.Errorf("after failed Start: state %q, %v; want shut off", d.State, err)
	}
	f.ClearFailures()
	if err := f.Start(ctx, "web1"); err != nil {
		t.Errorf("Start after ClearFailures: %v", err)
	}

	want := []hvtest.Call{
		{hvtest.OpCreateDisk, "web1"}, {hvtest.OpCreateDisk, "web2"}, {hvtest.OpDefine, "web1"},
		{hvtest.OpStart, "web1"}, {hvtest.OpGet, "web1"}, {hvtest.OpStart, "web1"},
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web2.qcow2"}, f.Volumes("default")); diff != "" {
		t.Errorf("Volumes (-want +got):\n%s", diff)
	}
}

func TestFakeHonoursContext(t *testing.T) {
	f := hvtest.NewFake()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.CreateDisk(ctx, "default", "web1", 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateDisk with a cancelled context: error = %v, want context.Canceled", err)
	}
	if f.Volumes("default") != nil {
		t.Error("CreateDisk with a cancelled context made a volume")
	}
}
