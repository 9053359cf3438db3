package fleet_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

func status(name string, limit, committed uint64, vcpus int, bridges ...string) fleet.Status {
	return fleet.Status{Member: fleet.Member{Name: name, URI: "test:///" + name},
		Node: virt.Node{MemoryMiB: limit, CPUs: 8, Bridges: bridges, MemoryCommittedMiB: committed, VCPUsCommitted: vcpus}}
}

func names(ss []fleet.Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Member.Name)
	}
	return out
}

func TestPlace(t *testing.T) {
	need := fleet.Need{Bridge: "br135", MemoryMiB: 1024, VCPUs: 2}
	down := status("hv4", 0, 0, 0)
	down.Err = fmt.Errorf("hypervisor hv4 (test:///hv4): %w: connection refused", fleet.ErrUnreachable)
	broken := status("hv5", 0, 0, 0)
	broken.Err = errors.New("list interfaces: no interface driver")
	tests := []struct {
		name     string
		members  []fleet.Status
		on       string
		want     []string
		rejected []fleet.Rejection
		wantErr  string
	}{
		{
			name: "least memory committed relative to the limit first",
			// hv1 25 %, hv2 50 %, hv3 12.5 %.
			members: []fleet.Status{status("hv1", 8192, 2048, 2, "br135"), status("hv2", 4096, 2048, 2, "br135"), status("hv3", 16384, 2048, 2, "br135")},
			want:    []string{"hv3", "hv1", "hv2"},
		},
		{
			name:    "then fewer vCPUs, then name",
			members: []fleet.Status{status("hv2", 8192, 0, 4, "br135"), status("hv3", 8192, 0, 2, "br135"), status("hv1", 8192, 0, 2, "br135")},
			want:    []string{"hv1", "hv3", "hv2"},
		},
		{
			name:     "no bridge, no room and unreachable are left out with the reason",
			members:  []fleet.Status{status("hv1", 8192, 0, 0, "br136"), status("hv2", 4096, 3584, 0, "br135"), status("hv3", 4096, 3072, 0, "br135", "br136"), down, broken},
			want:     []string{"hv3"},
			rejected: []fleet.Rejection{{"hv1", "no bridge br135 (it has bridges br136)"}, {"hv2", "not enough memory: the VM needs 1024 MiB, 512 of 4096 MiB are free"}, {"hv4", "unreachable: connection refused"}, {"hv5", "error: list interfaces: no interface driver"}},
		},
		{
			name:    "the cap counts, not the host",
			members: []fleet.Status{{Member: fleet.Member{Name: "hv1", MemoryMiB: 1000}, Node: virt.Node{MemoryMiB: 65536, Bridges: []string{"br135"}}}},
			wantErr: "hv1: not enough memory: the VM needs 1024 MiB, 1000 of 1000 MiB are free",
		},
		{
			name:    "pinned",
			members: []fleet.Status{status("hv1", 8192, 4096, 0, "br135"), status("hv2", 8192, 0, 0, "br135")},
			on:      "hv1",
			want:    []string{"hv1"},
		},
		{
			name:    "pinned without the bridge",
			members: []fleet.Status{status("hv1", 8192, 0, 0, "br136"), status("hv2", 8192, 0, 0, "br135")},
			on:      "hv1",
			wantErr: "--on hv1 cannot take this VM: hv1: no bridge br135",
		},
		{
			name:    "pinned to an unknown name",
			members: []fleet.Status{status("hv1", 8192, 0, 0, "br135")},
			on:      "hv9",
			wantErr: "--on hv9: no such hypervisor: use one of hv1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fleet.Place(tt.members, need, tt.on)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Place error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, names(c.Candidates)); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.rejected, c.Rejected); diff != "" {
				t.Errorf("rejected (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlaceAllUnreachable: a refusal because every member was unreachable
// is ErrUnreachable too (exit 3 on the command line).
func TestPlaceAllUnreachable(t *testing.T) {
	down := status("hv1", 0, 0, 0)
	down.Err = fmt.Errorf("hypervisor hv1: %w: connection refused", fleet.ErrUnreachable)
	_, err := fleet.Place([]fleet.Status{down}, fleet.Need{Bridge: "br135", MemoryMiB: 1}, "")
	if !errors.Is(err, fleet.ErrNoRoom) || !errors.Is(err, fleet.ErrUnreachable) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Place with every member down = %q, want ErrNoRoom and ErrUnreachable on one line", err)
	}
	_, err = fleet.Place([]fleet.Status{down, status("hv2", 8192, 0, 0, "br136")}, fleet.Need{Bridge: "br135", MemoryMiB: 1}, "")
	if !errors.Is(err, fleet.ErrNoRoom) || errors.Is(err, fleet.ErrUnreachable) {
		t.Errorf("Place with one member down and one without the bridge = %v, want ErrNoRoom only", err)
	}
}

// TestPlacePinnedUnreachable: with --on, only the pinned member decides
// whether the refusal is ErrUnreachable.
func TestPlacePinnedUnreachable(t *testing.T) {
	down := status("hv1", 0, 0, 0)
	down.Err = fmt.Errorf("hypervisor hv1: %w: connection refused", fleet.ErrUnreachable)
	nobridge := status("hv2", 8192, 0, 0, "br136")
	if _, err := fleet.Place([]fleet.Status{down, nobridge}, fleet.Need{Bridge: "br135", MemoryMiB: 1}, "hv2"); errors.Is(err, fleet.ErrUnreachable) {
		t.Errorf("--on hv2, reachable without the bridge = %v: ErrUnreachable because of hv1", err)
	}
	down2 := status("hv2", 0, 0, 0)
	down2.Err = fmt.Errorf("hypervisor hv2: %w: connection refused", fleet.ErrUnreachable)
	if _, err := fleet.Place([]fleet.Status{status("hv1", 8192, 0, 0, "br135"), down2}, fleet.Need{Bridge: "br135", MemoryMiB: 1}, "hv2"); !errors.Is(err, fleet.ErrUnreachable) {
		t.Errorf("--on hv2, unreachable = %v, want ErrUnreachable", err)
	}
}

func TestOvercommitted(t *testing.T) {
	if fleet.Overcommitted(status("hv1", 4096, 4096, 0)) {
		t.Error("a node at its limit counts as overcommitted")
	}
	if !fleet.Overcommitted(status("hv1", 4096, 4097, 0)) {
		t.Error("a node past its limit does not count as overcommitted")
	}
}
