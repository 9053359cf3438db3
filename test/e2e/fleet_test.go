package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// fleetVM is one VM of TestFleet: its name, and its VLAN and IPv4 address
// (none: IPv6-only on the VLAN, SLAAC).
type fleetVM struct {
	name string
	vlan int
	ip   string
}

// fleetHost is what `vmprov create -o json` and `vmprov list -o json` say
// of a VM, with the fields TestFleet checks.
type fleetHost struct {
	Name       string      `json:"name"`
	FQDN       string      `json:"fqdn"`
	VLAN       int         `json:"vlan"`
	MAC        string      `json:"mac"`
	IPv4       *netip.Addr `json:"ipv4"`
	IPv6       *netip.Addr `json:"ipv6"`
	Hypervisor string      `json:"hypervisor"`
	Power      string      `json:"power"`
}

// placementModel is the placement rule of docs/design.md ("Many
// hypervisors") kept by the test from its own bookkeeping: a candidate has
// the bridge and room under its cap; the least committed share of the cap
// wins, then fewer vCPUs, then name.
type placementModel struct {
	caps      map[string]uint64
	bridges   map[string][]string
	committed map[string]uint64
	vcpus     map[string]int
}

func (m *placementModel) place(bridge string, mem uint64) string {
	var best string
	for _, h := range slices.Sorted(maps.Keys(m.caps)) {
		if !slices.Contains(m.bridges[h], bridge) || m.committed[h]+mem > m.caps[h] {
			continue
		}
		if best == "" {
			best = h
			continue
		}
		// committed/cap of h against best, as cross products.
		c := cmp.Or(cmp.Compare(m.committed[h]*m.caps[best], m.committed[best]*m.caps[h]), cmp.Compare(m.vcpus[h], m.vcpus[best]))
		if c < 0 {
			best = h
		}
	}
	return best
}

func (m *placementModel) add(h string, mem uint64) { m.committed[h] += mem; m.vcpus[h]++ }

// runVmprov runs the vmprov CLI with e's configuration in the lab's
// namespace and returns its standard output, standard error and exit code.
func runVmprov(t *testing.T, e *demo.Env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.Lab.State.Netns, e.Bin, "--config", e.Config}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("vmprov %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustVmprov is runVmprov that fails t unless vmprov exits 0.
func mustVmprov(t *testing.T, e *demo.Env, args ...string) string {
	t.Helper()
	out, stderr, code := runVmprov(t, e, args...)
	if code != 0 {
		t.Fatalf("vmprov %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// domainsOn lists the domains of a fleet hypervisor through its own socket.
func domainsOn(t *testing.T, h *lab.Hypervisor) []string {
	t.Helper()
	out, err := h.Libvirt.Virsh(t.Context(), "list", "--all", "--name")
	if err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
	return slices.Sorted(slices.Values(strings.Fields(out)))
}

// TestFleet is issue "a fleet of hypervisors" end to end: three real
// libvirtds in namespaces of their own (hv1 over qemu+ssh through Debian's
// sshd, hv2 and hv3 over qemu+tcp; hv3 without the IPv6-only bridge br136,
// found through libvirt), the real vmprov CLI, BIND and `vmprov serve`.
//
//   - `vmprov hypervisors` sees each one's bridges.
//   - Nine VMs created without --on spread by the placement rule (the test
//     keeps its own model of it); each domain is on the hypervisor its TXT
//     names; `list -o json` shows all nine with their hypervisor; one of
//     them (on whichever hypervisor placement picks) netboots through
//     vmprov serve to the kernel's command line.
//   - hv2's libvirtd stopped: `list` exits 3, names hv2 on stderr and shows
//     the others' VMs; a create lands elsewhere; destroy of a VM on hv2
//     exits 3, changes nothing, keeps its records. Restarted: all list.
//   - A define failure injected on the first candidate (its QEMU binary
//     hidden in that libvirtd's mount namespace: libvirt refuses the
//     domain, "No emulator found") is rolled back there and the VM lands on
//     the second candidate, which its TXT then names.
//   - `list --orphans` finds a domain undefined behind vmprov's back.
//   - `ipxe install` uploads the ROM to every hypervisor.
//   - A connection to a hypervisor that hangs in the middle of a change is
//     closed by libvirt's keepalive (about 20 s).
//   - destroy of everything leaves no domain, volume or record.
func TestFleet(t *testing.T) {
	t.Parallel()
	requireLab(t)
	lab.RequireRoot(t, "sshd", "ssh", "nsenter", "virt-ssh-helper")
	e := setupDemo(t, buildVmprov(t, t.TempDir()), lab.IPv6OnlyBridge())
	f := startFleet(t, e, "5s")

	// The fleet as vmprov sees it: bridges found through libvirt.
	var hs []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		LimitMiB  uint64 `json:"limit_mib"`
		Node      struct {
			Bridges []string `json:"bridges"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(mustVmprov(t, e, "hypervisors", "-o", "json")), &hs); err != nil {
		t.Fatal(err)
	}
	model := &placementModel{caps: map[string]uint64{}, bridges: map[string][]string{}, committed: map[string]uint64{}, vcpus: map[string]int{}}
	for i, h := range f.Hypervisors {
		if i >= len(hs) || hs[i].Name != h.Name || !hs[i].Reachable || !slices.Equal(hs[i].Node.Bridges, h.Bridges) || hs[i].LimitMiB != fleetMemoryMiB[h.Name] {
			t.Fatalf("vmprov hypervisors = %+v; want %s reachable with bridges %v and limit %d MiB", hs, h.Name, h.Bridges, fleetMemoryMiB[h.Name])
		}
		model.caps[h.Name], model.bridges[h.Name] = fleetMemoryMiB[h.Name], h.Bridges
	}

	const mem = 256
	create := func(v fleetVM, extra ...string) fleetHost {
		t.Helper()
		args := []string{"create", "--name", v.name, "--distro", "core", "--memory", fmt.Sprint(mem), "--vcpus", "1", "--disk-size", "1", "-o", "json"}
		if v.ip != "" {
			args = append(args, "--ip", v.ip)
		} else {
			args = append(args, "--vlan", fmt.Sprint(v.vlan))
		}
		var h fleetHost
		if err := json.Unmarshal([]byte(mustVmprov(t, e, append(args, extra...)...)), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	bridge := map[int]string{135: "br135", 136: "br136"}

	// Nine VMs, placed. The last keeps the default boot order (its empty
	// disk, then the network) and netboots, its console opened as soon as
	// create returns; the others boot from their empty disks only, and
	// idle.
	vms := []fleetVM{{"fl1", 135, "192.0.2.101"}, {"fl2", 135, "192.0.2.102"}, {"fl3", 136, ""}, {"fl4", 135, "192.0.2.104"},
		{"fl5", 136, ""}, {"fl6", 135, "192.0.2.106"}, {"fl7", 135, "192.0.2.107"}, {"fl8", 136, ""}, {"fl9", 135, "192.0.2.109"}}
	placed := map[string]string{}
	var netboot fleetHost
	var netbootStart time.Time
	for i, v := range vms {
		want := model.place(bridge[v.vlan], mem)
		extra := []string{"--boot", "hd"}
		last := i == len(vms)-1
		if last {
			extra, netbootStart = nil, time.Now()
		}
		h := create(v, extra...)
		if h.Hypervisor != want {
			t.Errorf("create %s (VLAN %d): placed on %q, the rule says %q (committed %v of %v)", v.name, v.vlan, h.Hypervisor, want, model.committed, model.caps)
		}
		placed[v.name] = h.Hypervisor
		model.add(h.Hypervisor, mem)
		if last {
			netboot = h
		}
	}
	// The netbooting VM: through vmprov serve from whichever hypervisor.
	nbHV := f.Hypervisor(netboot.Hypervisor)
	b := &demo.Boot{Host: demo.Host{Name: netboot.Name, FQDN: netboot.FQDN, VLAN: netboot.VLAN, MAC: netboot.MAC}}
	if netboot.IPv4 != nil {
		b.Host.IPv4 = *netboot.IPv4
	}
	if netboot.IPv6 != nil {
		b.Host.IPv6 = *netboot.IPv6
	}
	b.Timeline = demo.Timeline{Host: b.Host, Start: netbootStart}
	err := e.FollowBoot(t.Context(), b, netbootStart, demo.BootSpec{Name: netboot.Name, Timeout: bootDeadline, ConsoleURI: nbHV.LocalURI,
		Each: func(ev demo.Event) { t.Log(ev) }})
	if b.Console != nil {
		defer b.Console.Close()
	}
	if err == nil {
		err = e.Check(b)
	}
	if err != nil {
		if b.Console != nil {
			t.Logf("--- %s ---\n%s", b.Console.Path, tail(b.Console.Path, 30))
		}
		t.Fatalf("%s on %s: %v", netboot.Name, nbHV.Name, err)
	}
	if b.Console == nil || b.Cmdline == "" {
		t.Errorf("%s on %s: no kernel command line seen on its serial console", netboot.Name, nbHV.Name)
	}

	t.Logf("placed: %v", placed)
	if len(slices.Compact(slices.Sorted(maps.Values(placed)))) != 3 {
		t.Errorf("nine VMs went to %v, not spread over three hypervisors", placed)
	}
	for _, h := range f.Hypervisors {
		var want []string
		for n, on := range placed {
			if on == h.Name {
				want = append(want, n)
			}
		}
		slices.Sort(want)
		if got := domainsOn(t, h); !slices.Equal(got, want) {
			t.Errorf("%s holds domains %v, want %v", h.Name, got, want)
		}
	}
	for n, on := range placed {
		if txt := strings.Join(dig(t, e, "TXT", n+"."+e.Lab.State.Zone), " "); !strings.Contains(txt, `"hypervisor=`+on+`"`) {
			t.Errorf("%s TXT = %s, want hypervisor=%s", n, txt, on)
		}
	}
	listed := func(out string) map[string]string {
		t.Helper()
		var ls []fleetHost
		if err := json.Unmarshal([]byte(out), &ls); err != nil {
			t.Fatalf("list -o json: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, h := range ls {
			got[h.Name] = h.Hypervisor
		}
		return got
	}
	if got := listed(mustVmprov(t, e, "list", "-o", "json")); !maps.Equal(got, placed) {
		t.Errorf("list -o json = %v, want %v", got, placed)
	}

	// hv2 stops answering: list shows the others and names it, exit 3.
	hv2 := f.Hypervisor("hv2")
	if err := hv2.Stop(); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runVmprov(t, e, "list", "-o", "json")
	others := map[string]string{}
	var onHV2 []string
	for n, on := range placed {
		if on == "hv2" {
			onHV2 = append(onHV2, n)
		} else {
			others[n] = on
		}
	}
	slices.Sort(onHV2)
	if code != 3 || !strings.Contains(stderr, "hv2") || !maps.Equal(listed(out), others) {
		t.Errorf("list with hv2 stopped: exit %d, listed %v, stderr %q; want exit 3, %v, hv2 named", code, listed(out), stderr, others)
	}
	if len(onHV2) == 0 {
		t.Fatal("no VM was placed on hv2")
	}
	// A create still succeeds elsewhere.
	if h := create(fleetVM{"fl10", 135, "192.0.2.110"}, "--boot", "hd"); h.Hypervisor == "hv2" || h.Hypervisor == "" {
		t.Errorf("create with hv2 stopped went to %q", h.Hypervisor)
	} else {
		placed["fl10"] = h.Hypervisor
	}
	// Destroy of a VM on hv2 refuses and changes nothing.
	victim := onHV2[0]
	_, stderr, code = runVmprov(t, e, "destroy", victim)
	if code != 3 || !strings.Contains(stderr, "hypervisor=hv2") || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("destroy %s with hv2 stopped: exit %d, stderr %q; want exit 3 naming hv2 and saying nothing was changed", victim, code, stderr)
	}
	if got := dig(t, e, "TXT", victim+"."+e.Lab.State.Zone); len(got) == 0 {
		t.Errorf("the refused destroy removed %s's TXT record", victim)
	}
	if err := hv2.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listed(mustVmprov(t, e, "list", "-o", "json")); !maps.Equal(got, placed) {
		t.Errorf("list after hv2's restart = %v, want %v", got, placed)
	}

	// hv3 hangs (its libvirtd stopped by SIGSTOP): list waits out the
	// member deadline (libvirt.timeout, 5s here), no more, and names it.
	hv3 := f.Hypervisor("hv3")
	if err := hv3.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, stderr, code = runVmprov(t, e, "list", "-o", "json")
	took := time.Since(start)
	if err := hv3.Resume(); err != nil {
		t.Fatal(err)
	}
	if code != 3 || !strings.Contains(stderr, "hv3") || !strings.Contains(stderr, "no answer within 5s") || len(listed(out)) == 0 {
		t.Errorf("list with hv3 hanging: exit %d after %s, listed %v, stderr %q; want exit 3 naming hv3's deadline, the others listed", code, took, listed(out), stderr)
	}
	t.Logf("list with hv3 hanging took %s", took)

	// A define failure on the first candidate: its libvirtd no longer finds
	// QEMU. The VM lands on the second, whose name the TXT then holds.
	var plan struct {
		Hypervisor string   `json:"hypervisor"`
		Candidates []string `json:"candidates"`
	}
	next := fleetVM{"fl11", 135, "192.0.2.111"}
	if err := json.Unmarshal([]byte(mustVmprov(t, e, "create", "--name", next.name, "--ip", next.ip, "--distro", "core", "--memory", fmt.Sprint(mem), "--dry-run", "-o", "json")), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Candidates) < 2 || plan.Candidates[0] != plan.Hypervisor {
		t.Fatalf("dry run: hypervisor %q, candidates %v; want at least two, the first chosen", plan.Hypervisor, plan.Candidates)
	}
	first, second := f.Hypervisor(plan.Candidates[0]), plan.Candidates[1]
	hideQEMU(t, first)
	args := []string{"create", "--name", next.name, "--ip", next.ip, "--distro", "core", "--memory", fmt.Sprint(mem), "--vcpus", "1", "--disk-size", "1", "--boot", "hd", "-o", "json"}
	out, stderr, code = runVmprov(t, e, args...)
	var h fleetHost
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || h.Hypervisor != second {
		t.Fatalf("create with %s's define failing: exit %d, on %q; want success on %s\n%s%s", first.Name, code, h.Hypervisor, second, out, stderr)
	}
	placed[next.name] = second
	if !strings.Contains(stderr, first.Name+": define domain") || !strings.Contains(stderr, "rolled back: disk deleted") {
		t.Errorf("create's log does not show the attempt on %s and its rollback:\n%s", first.Name, stderr)
	}
	if txt := strings.Join(dig(t, e, "TXT", next.name+"."+e.Lab.State.Zone), " "); !strings.Contains(txt, `"hypervisor=`+second+`"`) {
		t.Errorf("%s TXT = %s, want hypervisor=%s", next.name, txt, second)
	}
	if _, err := os.Stat(filepath.Join(first.Libvirt.PoolDir(), next.name+".qcow2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s keeps the disk of %s after the rollback there (%v)", first.Name, next.name, err)
	}
	if slices.Contains(domainsOn(t, first), next.name) {
		t.Errorf("%s keeps a domain %s", first.Name, next.name)
	}

	// An orphan: a domain undefined behind vmprov's back leaves records.
	gone := "fl8"
	goneHV := f.Hypervisor(placed[gone])
	for _, cmd := range []string{"destroy", "undefine"} {
		if _, err := goneHV.Libvirt.Virsh(t.Context(), cmd, gone); err != nil {
			t.Fatal(err)
		}
	}
	var orphans []struct {
		Name, Kind string
	}
	if err := json.Unmarshal([]byte(mustVmprov(t, e, "list", "--orphans", "-o", "json")), &orphans); err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0].Name != gone || !strings.Contains(orphans[0].Kind, "without a domain") {
		t.Errorf("list --orphans = %+v, want %s's records without a domain", orphans, gone)
	}

	// Destroy everything: nothing left anywhere.
	for n := range placed {
		mustVmprov(t, e, "destroy", n)
		if got := dig(t, e, "A", n+"."+e.Lab.State.Zone); len(got) != 0 {
			t.Errorf("%s A after destroy: %v", n, got)
		}
	}
	// ipxe install with a fleet uploads to every hypervisor of it.
	var rep struct {
		Hypervisors []struct {
			Hypervisor, Path, Error string
		} `json:"hypervisors"`
	}
	if err := json.Unmarshal([]byte(mustVmprov(t, e, "ipxe", "install", romFile, "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Hypervisors) != len(f.Hypervisors) {
		t.Errorf("ipxe install reported %d hypervisors, want %d: %+v", len(rep.Hypervisors), len(f.Hypervisors), rep)
	}
	for i, r := range rep.Hypervisors {
		if i < len(f.Hypervisors) && (r.Hypervisor != f.Hypervisors[i].URI || r.Error != "" || !strings.HasPrefix(r.Path, f.Hypervisors[i].Libvirt.PoolDir()+"/")) {
			t.Errorf("ipxe install on %s: %+v, want an upload into %s", f.Hypervisors[i].Name, r, f.Hypervisors[i].Libvirt.PoolDir())
		}
		if _, err := os.Stat(r.Path); err != nil {
			t.Errorf("ipxe install: %v", err)
		}
	}

	checkKeepalive(t, f.Hypervisor("hv3"))

	for _, hv := range f.Hypervisors {
		if got := domainsOn(t, hv); len(got) != 0 {
			t.Errorf("%s keeps domains %v", hv.Name, got)
		}
		if vols, _ := filepath.Glob(filepath.Join(hv.Libvirt.PoolDir(), "fl*")); len(vols) != 0 {
			t.Errorf("%s keeps volumes %v", hv.Name, vols)
		}
	}
}

// TestFleet's last step: a connection to a hypervisor that stops answering
// in the middle of a change is closed by libvirt's keepalive.
func checkKeepalive(t *testing.T, h *lab.Hypervisor) {
	t.Helper()
	lv, err := libvirtconn.Open(h.LocalURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	if err := h.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Resume(); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	err = lv.Start(t.Context(), "fl-none")
	took := time.Since(start)
	limit := libvirtconn.Keepalive*(libvirtconn.KeepaliveCount+1) + 30*time.Second
	if err == nil || !strings.Contains(err.Error(), "keepalive") || took > limit {
		t.Errorf("start on %s while it hangs: %v after %s; want the keepalive to close the connection", h.Name, err, took)
	}
	t.Logf("keepalive closed the connection to %s after %s: %v", h.Name, took, err)
}

// hideQEMU makes h's libvirtd find no QEMU binary (an empty file bound over
// it in that libvirtd's own mount namespace) until t ends.
func hideQEMU(t *testing.T, h *lab.Hypervisor) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	pid := fmt.Sprint(h.Libvirt.Processes()[0].PID)
	if out, err := exec.CommandContext(t.Context(), "nsenter", "-t", pid, "-m", "mount", "--bind", "/dev/null", qemu).CombinedOutput(); err != nil {
		t.Fatalf("hide QEMU from %s: %v\n%s", h.Name, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("nsenter", "-t", pid, "-m", "umount", qemu).Run()
	})
}
