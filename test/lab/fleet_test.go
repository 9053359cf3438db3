package lab_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab"
)

// TestFleet brings up a lab with three hypervisors (hv1 over qemu+ssh with
// both bridges, hv2 and hv3 over qemu+tcp, hv3 with br135 only) and checks
// every one through its remote URI from inside the lab's namespace, the L2
// path from a hypervisor to the lab's bridge, Stop/Restart with a running
// guest, Pause/Resume, and that Down leaves nothing behind.
func TestFleet(t *testing.T) {
	lab.RequireRoot(t, "ip", "named", "libvirtd", "virtlogd", "virsh", "nsenter",
		"ssh", "ssh-keygen", "/usr/sbin/sshd", "virt-ssh-helper", "qemu-system-x86_64")
	// A short directory: the hypervisors' libvirt sockets are under it.
	dir, err := os.MkdirTemp("", "vmprov-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("lab files kept in %s", dir)
		}
	})
	t.Cleanup(func() { _ = lab.Down(dir) })
	l, err := lab.Up(t.Context(), lab.Options{Dir: dir, Netns: fmt.Sprintf("vmprovt-%08x", rand.Uint32()),
		NoRadvd: true, More: []lab.Bridge{lab.IPv6OnlyBridge()}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f, err := l.StartFleet(t.Context(), lab.DefaultFleet())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fleet of 3 up in %v", time.Since(start).Round(time.Millisecond))
	hv1, hv2, hv3 := f.Hypervisor("hv1"), f.Hypervisor("hv2"), f.Hypervisor("hv3")

	wantURIs := []string{
		"qemu+ssh://root@192.0.2.251/system?command=" + filepath.Join(dir, "fleet", "ssh") + "&no_tty=1",
		"qemu+tcp://192.0.2.252/system",
		"qemu+tcp://192.0.2.253/system",
	}
	for i, h := range f.Hypervisors {
		if h.URI != wantURIs[i] {
			t.Errorf("%s URI = %q, want %q", h.Name, h.URI, wantURIs[i])
		}
		t.Run(h.Name, func(t *testing.T) {
			// libvirt's interface API lists the bridges and lo, not the
			// veth ends enslaved to the bridges.
			out, err := h.RemoteVirsh(t.Context(), "iface-list", "--all")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				names = append(names, strings.Fields(line)[0])
			}
			slices.Sort(names)
			if diff := cmp.Diff(append(slices.Clone(h.Bridges), "lo"), names); diff != "" {
				t.Errorf("iface-list (-want +got):\n%s\n%s", diff, out)
			}
			for _, b := range h.Bridges {
				if x, err := h.RemoteVirsh(t.Context(), "iface-dumpxml", b); err != nil || !strings.Contains(x, "type='bridge'") {
					t.Errorf("iface-dumpxml %s: want type='bridge': %v\n%s", b, err, x)
				}
			}
			if out, err := h.RemoteVirsh(t.Context(), "nodeinfo"); err != nil || !strings.Contains(out, "Memory size") {
				t.Errorf("nodeinfo: %v\n%s", err, out)
			}
			if out, err := h.RemoteVirsh(t.Context(), "pool-info", lab.PoolName); err != nil || !strings.Contains(out, "running") {
				t.Errorf("pool-info %s: %v\n%s", lab.PoolName, err, out)
			}
		})
	}

	// L2: hv3's br135 reaches BIND on the lab's br135.
	if c, err := hv3.Netns.Dial("tcp", l.State.DNS); err != nil {
		t.Errorf("connect to the lab's BIND from hv3: %v", err)
	} else {
		c.Close()
	}

	// A domain defined over ssh is hv1's alone.
	defineFleetGuest(t, hv1, "vmprov-on-hv1", "02:04:06:08:71:01", false)
	for _, h := range f.Hypervisors {
		want := []string{}
		if h == hv1 {
			want = []string{"vmprov-on-hv1"}
		}
		if diff := cmp.Diff(want, listAll(t, h)); diff != "" {
			t.Errorf("%s domains (-want +got):\n%s", h.Name, diff)
		}
	}

	// Stop hv2 with a defined and a running guest: hv2 refuses at once,
	// hv1 and hv3 answer.
	defineFleetGuest(t, hv2, "vmprov-on-hv2", "02:04:06:08:72:01", false)
	defineFleetGuest(t, hv2, "vmprov-run-hv2", "02:04:06:08:72:02", true)
	qemuPID := guestPID(t, hv2, "vmprov-run-hv2")
	if err := hv2.Stop(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	out, err := hv2.RemoteVirsh(t.Context(), "list")
	if err == nil || !strings.Contains(out, "Connection refused") {
		t.Errorf("list on stopped hv2: want connection refused, got %v\n%s", err, out)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("list on stopped hv2 took %v", d)
	}
	for _, h := range []*lab.Hypervisor{hv1, hv3} {
		if _, err := h.RemoteVirsh(t.Context(), "list"); err != nil {
			t.Errorf("%s with hv2 stopped: %v", h.Name, err)
		}
	}
	if !alive(lab.Process{PID: qemuPID}) {
		t.Errorf("guest QEMU (pid %d) did not outlive hv2's libvirtd", qemuPID)
	}
	start = time.Now()
	if err := hv2.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("hv2 restarted in %v", time.Since(start).Round(time.Millisecond))
	if diff := cmp.Diff([]string{"vmprov-on-hv2", "vmprov-run-hv2"}, listAll(t, hv2)); diff != "" {
		t.Errorf("hv2 domains after restart (-want +got):\n%s", diff)
	}
	if out, err := hv2.RemoteVirsh(t.Context(), "domstate", "vmprov-run-hv2"); err != nil || strings.TrimSpace(out) != "running" {
		t.Errorf("guest after restart: %v %q, want running", err, out)
	}
	if got := guestPID(t, hv2, "vmprov-run-hv2"); got != qemuPID {
		t.Errorf("guest pid after restart %d, want the same QEMU %d", got, qemuPID)
	}

	// Over ssh too: sshd serves the restarted libvirtd.
	if err := hv1.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"vmprov-on-hv1"}, listAll(t, hv1)); diff != "" {
		t.Errorf("hv1 domains after restart (-want +got):\n%s", diff)
	}

	// A paused hypervisor hangs rather than refuses.
	if err := hv3.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	out, err = hv3.RemoteVirsh(ctx, "list")
	cancel()
	if err == nil || strings.Contains(out, "refused") {
		t.Errorf("list on paused hv3: want a timeout, got %v\n%s", err, out)
	}
	if err := hv3.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := hv3.RemoteVirsh(t.Context(), "list"); err != nil {
		t.Errorf("hv3 after resume: %v", err)
	}

	// Down, from the state file alone, with hv2 paused and a guest running.
	if err := hv2.Pause(); err != nil {
		t.Fatal(err)
	}
	st, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Fleet) != 3 {
		t.Fatalf("state records %d hypervisors, want 3", len(st.Fleet))
	}
	start = time.Now()
	if err := lab.Down(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("down in %v", time.Since(start).Round(time.Millisecond))
	for _, hs := range st.Fleet {
		if _, err := os.Stat(filepath.Join("/run/netns", hs.Netns)); err == nil {
			t.Errorf("namespace %s survived Down", hs.Netns)
		}
		for _, p := range hs.Processes {
			if alive(p) {
				t.Errorf("%s %s (pid %d) survived Down", hs.Name, p.Name, p.PID)
			}
		}
	}
	if alive(lab.Process{PID: qemuPID}) {
		t.Errorf("guest QEMU (pid %d) survived Down", qemuPID)
	}
}

// defineFleetGuest defines (and with start, starts) a disk-less TCG guest on
// br135 of h over its remote URI.
func defineFleetGuest(t *testing.T, h *lab.Hypervisor, name, mac string, start bool) {
	t.Helper()
	file := guestXML(t, name, mac)
	if _, err := h.RemoteVirsh(t.Context(), "define", file); err != nil {
		t.Fatal(err)
	}
	if start {
		if _, err := h.RemoteVirsh(t.Context(), "start", name); err != nil {
			t.Fatalf("%v\n%s", err, readFile(h.Libvirt.DomainLog(name)))
		}
	}
}

// listAll lists the names of h's domains over its remote URI, sorted.
func listAll(t *testing.T, h *lab.Hypervisor) []string {
	t.Helper()
	out, err := h.RemoteVirsh(t.Context(), "list", "--all", "--name")
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// guestPID reads the QEMU pid of a running guest of h from libvirt's pid file.
func guestPID(t *testing.T, h *lab.Hypervisor, name string) int {
	t.Helper()
	b, err := os.ReadFile(h.Libvirt.HostPath("/run/libvirt/qemu/" + name + ".pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestFleetClose checks StartFleet's checks of its specs, and that Lab.Close
// stops a fleet whose only hypervisor is stopped, its guest still running.
func TestFleetClose(t *testing.T) {
	lab.RequireRoot(t, "ip", "named", "libvirtd", "virtlogd", "virsh", "nsenter", "qemu-system-x86_64")
	dir, err := os.MkdirTemp("", "vmprov-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Cleanup(func() { _ = lab.Down(dir) })
	l, err := lab.Up(t.Context(), lab.Options{Dir: dir, Netns: fmt.Sprintf("vmprovt-%08x", rand.Uint32()),
		NoLibvirt: true, NoRadvd: true})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		specs   []lab.HypervisorSpec
		wantErr string
	}{
		{"none", nil, "0 hypervisors"},
		{"five", make([]lab.HypervisorSpec, 5), "5 hypervisors"},
		{"no name", []lab.HypervisorSpec{{}}, `name ""`},
		{"twice", []lab.HypervisorSpec{{Name: "hv1"}, {Name: "hv1"}}, `name "hv1"`},
		{"unknown bridge", []lab.HypervisorSpec{{Name: "hv1", Bridges: []string{"br135", "br136"}}}, "br136 is not one of"},
		{"no first bridge", []lab.HypervisorSpec{{Name: "hv1", Bridges: []string{}}}, "lack the lab's first bridge br135"},
		{"long name", []lab.HypervisorSpec{{Name: "hypervisor1"}}, "shorter hypervisor name"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.StartFleet(t.Context(), tt.specs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("StartFleet error = %v, want %q", err, tt.wantErr)
			}
		})
	}

	f, err := l.StartFleet(t.Context(), []lab.HypervisorSpec{{Name: "hv1"}})
	if err != nil {
		t.Fatal(err)
	}
	hv := f.Hypervisors[0]
	if diff := cmp.Diff([]string{"br135"}, hv.Bridges); diff != "" {
		t.Errorf("default bridges (-want +got):\n%s", diff)
	}
	defineFleetGuest(t, hv, "vmprov-close", "02:04:06:08:73:01", true)
	qemuPID := guestPID(t, hv, "vmprov-close")
	if err := hv.Stop(); err != nil {
		t.Fatal(err)
	}
	procs := hv.Libvirt.Processes()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(procs, lab.Process{Name: "qemu", PID: qemuPID}) {
		if alive(p) {
			t.Errorf("%s (pid %d) survived Close", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", hv.Netns.Name)); err == nil {
		t.Errorf("namespace %s survived Close", hv.Netns.Name)
	}
}
