package e2e

import (
	"testing"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// fleetMemoryMiB are the memory_mib caps the fleet tests give hv1, hv2 and
// hv3: hv2 has twice the room of the others, so placement by committed
// share differs from round robin.
var fleetMemoryMiB = map[string]uint64{"hv1": 1536, "hv2": 3072, "hv3": 1536}

// startFleet starts the lab's default fleet (lab.DefaultFleet: hv1 over
// qemu+ssh with br135 and br136, hv2 over qemu+tcp with both, hv3 over
// qemu+tcp with br135 only) next to e's lab and points e's vmprov
// configuration at it (hypervisors: with fleetMemoryMiB caps and
// libvirt.timeout timeout), so that e.Vmprov, e.Create and e.Boot place
// VMs on the fleet. `vmprov serve` keeps running with the configuration it
// started with. The fleet goes down with the lab.
func startFleet(t testing.TB, e *demo.Env, timeout string) *lab.Fleet {
	t.Helper()
	f, err := e.Lab.StartFleet(t.Context(), lab.DefaultFleet())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.UseFleet(f, timeout, fleetMemoryMiB); err != nil {
		t.Fatal(err)
	}
	return f
}
