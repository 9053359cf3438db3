package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	base, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(base)
	sb.WriteString("hypervisors:\n")
	for _, h := range f.Hypervisors {
		fmt.Fprintf(&sb, "  - {name: %s, uri: %q, memory_mib: %d}\n", h.Name, h.URI, fleetMemoryMiB[h.Name])
	}
	cfg := strings.Replace(sb.String(), "libvirt: {", "libvirt: {timeout: "+timeout+", ", 1)
	if !strings.Contains(cfg, "timeout: "+timeout) {
		t.Fatalf("no libvirt: {...} line to add the timeout to in %s", e.Config)
	}
	path := filepath.Join(e.Dir, "vmprov-fleet.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Config = path
	return f
}
