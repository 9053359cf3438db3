package hvtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// cleanupTimeout bounds each cleanup step; t.Context is already done when
// cleanups run.
const cleanupTimeout = 30 * time.Second

// Conformance checks that the hypervisors newHV returns keep the contract
// documented on virt.Hypervisor. pool names an existing, active storage pool.
//
// Every domain and volume the suite makes has a fresh random name starting
// with "hvt-", so the suite may share a hypervisor with other users (such as
// libvirt's per-process test:///default driver); it removes what it made.
// Domains are of type qemu and are defined with their disk created first, so
// a real QEMU hypervisor can start them (they boot nothing).
func Conformance(t *testing.T, pool string, newHV func(t *testing.T) virt.Hypervisor) {
	t.Helper()
	t.Run("CreateDisk", func(t *testing.T) {
		hv, ctx, name := newHV(t), t.Context(), uniqueName(t)
		cleanupDisk(t, hv, pool, name)
		path, err := hv.CreateDisk(ctx, pool, name, 1<<20)
		if err != nil {
			t.Fatalf("CreateDisk: %v", err)
		}
		if want := "/" + virt.VolumeName(name); !strings.HasSuffix(path, want) {
			t.Errorf("CreateDisk path = %q, want a path ending in %q", path, want)
		}
		if _, err := hv.CreateDisk(ctx, pool, name, 1<<20); !errors.Is(err, virt.ErrExists) {
			t.Errorf("second CreateDisk error = %v, want ErrExists", err)
		}
		if err := hv.DeleteDisk(ctx, pool, name); err != nil {
			t.Fatalf("DeleteDisk: %v", err)
		}
		if err := hv.DeleteDisk(ctx, pool, name); err != nil {
			t.Errorf("second DeleteDisk = %v, want nil", err)
		}
		// The volume is really gone: it can be made again.
		if _, err := hv.CreateDisk(ctx, pool, name, 2<<20); err != nil {
			t.Errorf("CreateDisk after DeleteDisk: %v", err)
		}
	})

	t.Run("CreateDisk refuses bad requests", func(t *testing.T) {
		hv, ctx, name := newHV(t), t.Context(), uniqueName(t)
		cleanupDisk(t, hv, pool, name)
		if _, err := hv.CreateDisk(ctx, pool, name, 0); err == nil {
			t.Error("CreateDisk of 0 bytes succeeded")
		}
		if _, err := hv.CreateDisk(ctx, pool, "a/../"+name, 1<<20); err == nil {
			t.Error("CreateDisk of a name with a slash succeeded")
		}
	})

	t.Run("missing pool", func(t *testing.T) {
		hv, ctx, name := newHV(t), t.Context(), uniqueName(t)
		missing := name + "-nopool"
		_, err := hv.CreateDisk(ctx, missing, name, 1<<20)
		if !errors.Is(err, virt.ErrPoolNotFound) || !strings.Contains(err.Error(), missing) {
			t.Errorf("CreateDisk in a missing pool: error = %v, want ErrPoolNotFound naming %q", err, missing)
		}
		err = hv.DeleteDisk(ctx, missing, name)
		if !errors.Is(err, virt.ErrPoolNotFound) {
			t.Errorf("DeleteDisk in a missing pool: error = %v, want ErrPoolNotFound", err)
		}
	})

	t.Run("Define Get List", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		spec := defineNew(t, hv, pool)
		got, err := hv.Get(ctx, spec.Name)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		want := wantDomain(spec, virt.StateShutOff)
		if diff := cmp.Diff(want, got, ignoreXML); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		if back, err := virt.ParseDomain(got.XML); err != nil || back.Meta != spec.Meta {
			t.Errorf("Get returned XML that parses to %+v, %v; want metadata %+v", back.Meta, err, spec.Meta)
		}
		if diff := cmp.Diff(want, listed(t, hv, spec.Name), ignoreXML); diff != "" {
			t.Errorf("List entry (-want +got):\n%s", diff)
		}
	})

	t.Run("Node counts what domains commit", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		before, err := hv.Node(ctx)
		if err != nil {
			t.Fatalf("Node: %v", err)
		}
		if before.MemoryMiB == 0 || before.CPUs <= 0 {
			t.Errorf("Node = %d MiB, %d CPUs; want both positive", before.MemoryMiB, before.CPUs)
		}
		if !slices.IsSorted(before.Bridges) {
			t.Errorf("Node bridges %q are not sorted", before.Bridges)
		}
		spec := newSpec(t, hv, pool)
		spec.MemoryMiB, spec.VCPUs = 96, 3
		cleanupDomain(t, hv, spec.Name)
		if err := hv.Define(ctx, buildXML(t, spec)); err != nil {
			t.Fatalf("Define: %v", err)
		}
		after, err := hv.Node(ctx)
		if err != nil {
			t.Fatalf("Node: %v", err)
		}
		if after.Domains != before.Domains+1 || after.MemoryCommittedMiB != before.MemoryCommittedMiB+96 || after.VCPUsCommitted != before.VCPUsCommitted+3 {
			t.Errorf("after defining a domain of 96 MiB and 3 vCPUs: Node = %d domains, %d MiB, %d vCPUs committed; want %d, %d, %d",
				after.Domains, after.MemoryCommittedMiB, after.VCPUsCommitted, before.Domains+1, before.MemoryCommittedMiB+96, before.VCPUsCommitted+3)
		}
		if after.MemoryMiB != before.MemoryMiB || after.CPUs != before.CPUs {
			t.Errorf("capacity changed with a definition: %d MiB %d CPUs, then %d MiB %d CPUs", before.MemoryMiB, before.CPUs, after.MemoryMiB, after.CPUs)
		}
		if err := hv.Undefine(ctx, spec.Name); err != nil {
			t.Fatalf("Undefine: %v", err)
		}
		gone, err := hv.Node(ctx)
		if err != nil {
			t.Fatalf("Node: %v", err)
		}
		if gone.Domains != before.Domains || gone.MemoryCommittedMiB != before.MemoryCommittedMiB {
			t.Errorf("after Undefine: Node = %d domains, %d MiB committed; want %d, %d", gone.Domains, gone.MemoryCommittedMiB, before.Domains, before.MemoryCommittedMiB)
		}
	})

	t.Run("List leaves out domains without vmprov metadata", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		spec := newSpec(t, hv, pool)
		x := buildXML(t, spec)
		var d libvirtxml.Domain
		if err := d.Unmarshal(x); err != nil {
			t.Fatal(err)
		}
		d.Metadata = nil
		foreign, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cleanupDomain(t, hv, spec.Name)
		if err := hv.Define(ctx, foreign); err != nil {
			t.Fatalf("Define: %v", err)
		}
		got, err := hv.Get(ctx, spec.Name)
		if err != nil {
			t.Fatalf("Get of a domain without vmprov metadata: %v", err)
		}
		if got.Meta != (virt.Metadata{}) || got.MAC != strings.ToLower(spec.MAC) {
			t.Errorf("Get = meta %+v, mac %q; want zero metadata and mac %s", got.Meta, got.MAC, spec.MAC)
		}
		all, err := hv.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, d := range all {
			if d.Meta == (virt.Metadata{}) {
				t.Errorf("List returned %q, which has no vmprov metadata", d.Name)
			}
		}
	})

	t.Run("Define of an existing name is ErrExists", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		first := defineNew(t, hv, pool)
		second := first
		second.MAC, second.Meta = randomMAC(t), virt.Metadata{VLAN: 4000, Distro: "other"}
		if err := hv.Define(ctx, buildXML(t, second)); !errors.Is(err, virt.ErrExists) {
			t.Errorf("second Define error = %v, want ErrExists", err)
		}
		got, err := hv.Get(ctx, first.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantDomain(first, virt.StateShutOff), got, ignoreXML); diff != "" {
			t.Errorf("domain changed by the refused Define (-want +got):\n%s", diff)
		}
	})

	t.Run("absent domain", func(t *testing.T) {
		hv, ctx, name := newHV(t), t.Context(), uniqueName(t)
		if _, err := hv.Get(ctx, name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Get error = %v, want ErrNotFound", err)
		}
		if err := hv.Start(ctx, name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Start error = %v, want ErrNotFound", err)
		}
		if err := hv.Destroy(ctx, name); err != nil {
			t.Errorf("Destroy = %v, want nil", err)
		}
		if err := hv.Undefine(ctx, name); err != nil {
			t.Errorf("Undefine = %v, want nil", err)
		}
		if err := hv.DeleteDisk(ctx, pool, name); err != nil {
			t.Errorf("DeleteDisk = %v, want nil", err)
		}
		for _, d := range listAll(t, hv) {
			if d.Name == name {
				t.Errorf("List returned absent domain %q", name)
			}
		}
	})

	t.Run("Define rejects invalid XML", func(t *testing.T) {
		hv, ctx, name := newHV(t), t.Context(), uniqueName(t)
		cleanupDomain(t, hv, name)
		for _, tt := range []struct{ name, xml string }{
			{"not XML", "this is not XML"},
			{"truncated", "<domain type='qemu'><name>" + name + "</name><memory>65536</memory>"},
			{"no name", "<domain type='qemu'><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"},
			{"not a domain", "<network><name>" + name + "</name></network>"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				err := hv.Define(ctx, tt.xml)
				if err == nil || errors.Is(err, virt.ErrExists) {
					t.Errorf("Define error = %v, want a rejection", err)
				}
				if _, err := hv.Get(ctx, name); !errors.Is(err, virt.ErrNotFound) {
					t.Errorf("after rejected Define, Get error = %v, want ErrNotFound", err)
				}
			})
		}
	})

	t.Run("Start Destroy Undefine", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		spec := defineNew(t, hv, pool)
		for i := range 2 {
			if err := hv.Start(ctx, spec.Name); err != nil {
				t.Fatalf("Start #%d: %v", i+1, err)
			}
			wantState(t, hv, spec.Name, virt.StateRunning)
		}
		if diff := cmp.Diff(wantDomain(spec, virt.StateRunning), listed(t, hv, spec.Name), ignoreXML); diff != "" {
			t.Errorf("List entry of a running domain (-want +got):\n%s", diff)
		}
		for i := range 2 {
			if err := hv.Destroy(ctx, spec.Name); err != nil {
				t.Fatalf("Destroy #%d: %v", i+1, err)
			}
			wantState(t, hv, spec.Name, virt.StateShutOff)
		}
		for i := range 2 {
			if err := hv.Undefine(ctx, spec.Name); err != nil {
				t.Fatalf("Undefine #%d: %v", i+1, err)
			}
			if _, err := hv.Get(ctx, spec.Name); !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("Get after Undefine #%d: error = %v, want ErrNotFound", i+1, err)
			}
		}
	})

	t.Run("Undefine of a running domain leaves it transient", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		spec := defineNew(t, hv, pool)
		if err := hv.Start(ctx, spec.Name); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if err := hv.Undefine(ctx, spec.Name); err != nil {
			t.Fatalf("Undefine: %v", err)
		}
		wantState(t, hv, spec.Name, virt.StateRunning)
		if err := hv.Undefine(ctx, spec.Name); err != nil {
			t.Errorf("second Undefine = %v, want nil", err)
		}
		if err := hv.Define(ctx, buildXML(t, spec)); !errors.Is(err, virt.ErrExists) {
			t.Errorf("Define over a running transient domain: error = %v, want ErrExists", err)
		}
		if err := hv.Destroy(ctx, spec.Name); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		if _, err := hv.Get(ctx, spec.Name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Get after Undefine and Destroy: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent operations on different names", func(t *testing.T) {
		hv, ctx := newHV(t), t.Context()
		const n = 6
		names := make([]string, n)
		var wg sync.WaitGroup
		for i := range names {
			names[i] = uniqueName(t)
			mac := randomMAC(t)
			cleanupDisk(t, hv, pool, names[i])
			cleanupDomain(t, hv, names[i])
			wg.Go(func() {
				if err := lifecycle(ctx, hv, pool, names[i], mac); err != nil {
					t.Errorf("%s: %v", names[i], err)
				}
			})
		}
		wg.Wait()
		for _, d := range listAll(t, hv) {
			for _, name := range names {
				if d.Name == name {
					t.Errorf("List after concurrent lifecycles still has %q", name)
				}
			}
		}
	})
}

// lifecycle runs one VM from disk to removal and checks each step.
func lifecycle(ctx context.Context, hv virt.Hypervisor, pool, name, mac string) error {
	path, err := hv.CreateDisk(ctx, pool, name, 1<<20)
	if err != nil {
		return fmt.Errorf("CreateDisk: %w", err)
	}
	spec := specFor(name, mac, path)
	x, err := virt.BuildDomainXML(spec)
	if err != nil {
		return err
	}
	if err := hv.Define(ctx, x); err != nil {
		return fmt.Errorf("Define: %w", err)
	}
	if err := hv.Start(ctx, name); err != nil {
		return fmt.Errorf("Start: %w", err)
	}
	d, err := hv.Get(ctx, name)
	if err != nil || d.State != virt.StateRunning || d.Meta != spec.Meta || d.MAC != mac {
		return fmt.Errorf("Get = state %q, meta %+v, mac %q, %v; want running, %+v, %s", d.State, d.Meta, d.MAC, err, spec.Meta, mac)
	}
	if err := hv.Destroy(ctx, name); err != nil {
		return fmt.Errorf("Destroy: %w", err)
	}
	if err := hv.Undefine(ctx, name); err != nil {
		return fmt.Errorf("Undefine: %w", err)
	}
	if err := hv.DeleteDisk(ctx, pool, name); err != nil {
		return fmt.Errorf("DeleteDisk: %w", err)
	}
	if _, err := hv.Get(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		return fmt.Errorf("Get after Undefine: error = %v, want ErrNotFound", err)
	}
	return nil
}

var ignoreXML = cmpopts.IgnoreFields(virt.Domain{}, "XML")

// uniqueName returns a fresh domain/volume name.
func uniqueName(t *testing.T) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "hvt-" + hex.EncodeToString(b[:])
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC(t *testing.T) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("02:04:06:%02x:%02x:%02x", b[0], b[1], b[2])
}

func specFor(name, mac, disk string) virt.DomainSpec {
	return virt.DomainSpec{
		Name: name, Type: "qemu", MemoryMiB: 64, VCPUs: 1,
		MAC: mac, Bridge: "br135", DiskPath: disk,
		Meta: virt.Metadata{VLAN: 135, Distro: "core", FQDN: name + ".example.com."},
	}
}

// newSpec creates a disk for a fresh name (removed at cleanup) and returns
// the spec of a VM using it.
func newSpec(t *testing.T, hv virt.Hypervisor, pool string) virt.DomainSpec {
	t.Helper()
	name := uniqueName(t)
	cleanupDisk(t, hv, pool, name)
	path, err := hv.CreateDisk(t.Context(), pool, name, 1<<20)
	if err != nil {
		t.Fatalf("CreateDisk: %v", err)
	}
	return specFor(name, randomMAC(t), path)
}

// defineNew defines a fresh VM (removed at cleanup) and returns its spec.
func defineNew(t *testing.T, hv virt.Hypervisor, pool string) virt.DomainSpec {
	t.Helper()
	spec := newSpec(t, hv, pool)
	cleanupDomain(t, hv, spec.Name)
	if err := hv.Define(t.Context(), buildXML(t, spec)); err != nil {
		t.Fatalf("Define: %v", err)
	}
	return spec
}

func buildXML(t *testing.T, s virt.DomainSpec) string {
	t.Helper()
	x, err := virt.BuildDomainXML(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func wantDomain(s virt.DomainSpec, state string) virt.Domain {
	boot := s.Boot
	if len(boot) == 0 {
		boot = virt.DefaultBoot()
	}
	return virt.Domain{Name: s.Name, State: state, Meta: s.Meta, MAC: strings.ToLower(s.MAC),
		Bridge: s.Bridge, DiskPath: s.DiskPath, Boot: boot, MemoryMiB: uint64(s.MemoryMiB), VCPUs: s.VCPUs}
}

func wantState(t *testing.T, hv virt.Hypervisor, name, want string) {
	t.Helper()
	d, err := hv.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d.State != want {
		t.Errorf("state of %s = %q, want %q", name, d.State, want)
	}
}

func listAll(t *testing.T, hv virt.Hypervisor) []virt.Domain {
	t.Helper()
	all, err := hv.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return all
}

// listed returns name's entry in List, failing if there is not exactly one.
func listed(t *testing.T, hv virt.Hypervisor, name string) virt.Domain {
	t.Helper()
	var found []virt.Domain
	for _, d := range listAll(t, hv) {
		if d.Name == name {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("List has %d entries named %q, want 1", len(found), name)
	}
	return found[0]
}

func cleanupDomain(t *testing.T, hv virt.Hypervisor, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := hv.Destroy(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := hv.Undefine(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func cleanupDisk(t *testing.T, hv virt.Hypervisor, pool, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := hv.DeleteDisk(ctx, pool, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}
