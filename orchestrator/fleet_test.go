package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// testFleet is three fakes: hv1 and hv2 with both lab bridges, hv3 without
// the IPv6-only br136; limits 4096, 8192 and 4096 MiB.
type testFleet struct {
	hv    map[string]*hvtest.Fake
	fleet *fleet.Fleet
}

func newTestFleet(t *testing.T) *testFleet {
	t.Helper()
	tf := &testFleet{hv: map[string]*hvtest.Fake{}}
	var members []fleet.Member
	for _, m := range []struct {
		name    string
		mem     uint64
		bridges []string
	}{{"hv1", 4096, []string{"br135", "br136"}}, {"hv2", 8192, []string{"br135", "br136"}}, {"hv3", 4096, []string{"br135"}}} {
		f := hvtest.NewFake("vmprov")
		f.SetNode(m.mem, 4, m.bridges...)
		tf.hv[m.name] = f
		members = append(members, fleet.Member{Name: m.name, URI: "test:///" + m.name})
	}
	tf.fleet = fleet.New(fleet.Config{Members: members, Timeout: 2 * time.Second,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			return tf.hv[m.Name], nil, nil
		}})
	return tf
}

func (e *env) fleetOrchestrator(t *testing.T, f *fleet.Fleet) *orchestrator.Orchestrator {
	t.Helper()
	o, err := orchestrator.New(orchestrator.Config{Config: e.cfg, DNS: e.dns, Fleet: f, Rand: zeros{}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// where returns the fakes that hold a domain called name.
func (tf *testFleet) where(name string) []string {
	var out []string
	for _, n := range []string{"hv1", "hv2", "hv3"} {
		if _, err := tf.hv[n].Get(context.Background(), name); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func txtHypervisor(t *testing.T, e *env, name string) string {
	t.Helper()
	for _, txt := range e.records(t, name+".example.com.", dns.TypeTXT) {
		for _, f := range strings.Fields(txt) {
			if v, ok := strings.CutPrefix(strings.Trim(f, `"`), "hypervisor="); ok {
				return v
			}
		}
	}
	return ""
}

// TestFleetPlacement: VMs go where the rule says, the TXT records it, and
// each domain is on the hypervisor its TXT names.
func TestFleetPlacement(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	o := e.fleetOrchestrator(t, tf.fleet)
	ctx := t.Context()
	// Each VM 1024 MiB, 1 vCPU. The rule picks the lowest committed share
	// of the limit (hv2 has twice the room), then fewer vCPUs, then name.
	steps := []struct {
		name string
		vlan int
		ip   string
		want string
	}{
		{"fa", 135, "192.0.2.21", "hv1"}, // 0/4096, 0/8192, 0/4096: name order
		{"fb", 135, "192.0.2.22", "hv2"}, // 1/4 vs 0 vs 0 → hv2 (vCPUs tie, name)
		{"fc", 135, "192.0.2.23", "hv3"}, // 1/4, 1/8, 0 → hv3
		{"fd", 135, "192.0.2.24", "hv2"}, // 1/4, 1/8, 1/4 → hv2
		{"fe", 135, "192.0.2.25", "hv1"}, // 1/4, 2/8, 1/4 → tie on share: vCPUs 1,2,1 → hv1
		{"ff", 135, "192.0.2.26", "hv3"}, // 2/4, 2/8, 1/4: hv2 and hv3 tie, vCPUs 2 vs 1 → hv3
	}
	for _, s := range steps {
		r := orchestrator.Request{Name: s.name, VLAN: s.vlan, Distro: "core", MemoryMiB: 1024, VCPUs: 1, DiskGiB: 1}
		if s.ip != "" {
			r.IPv4 = netip.MustParseAddr(s.ip)
		}
		p, err := o.Create(ctx, r)
		if err != nil {
			t.Fatalf("create %s: %v", s.name, err)
		}
		if p.Hypervisor != s.want || txtHypervisor(t, e, s.name) != s.want || !cmp.Equal(tf.where(s.name), []string{s.want}) {
			t.Errorf("create %s: plan says %s, TXT hypervisor=%s, domain on %v; want %s for all", s.name, p.Hypervisor, txtHypervisor(t, e, s.name), tf.where(s.name), s.want)
		}
	}
	// hv1 has 2048 of 4096 MiB committed: a 3072 MiB VM does not fit there,
	// nor on hv3; --dry-run says so.
	big := orchestrator.Request{Name: "big", IPv4: netip.MustParseAddr("192.0.2.30"), Distro: "core", MemoryMiB: 3072, VCPUs: 1, DiskGiB: 1}
	p, err := o.Plan(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hypervisor != "hv2" || len(p.Rejected) != 2 || !strings.Contains(p.Rejected[0].Reason, "not enough memory: the VM needs 3072 MiB, 2048 of 4096 MiB are free") {
		t.Errorf("dry run: hypervisor %s, rejected %+v; want hv2, hv1 and hv3 without room", p.Hypervisor, p.Rejected)
	}
	big.On = "hv1"
	if _, err := o.Create(ctx, big); err == nil || !strings.Contains(err.Error(), "--on hv1 cannot take this VM: hv1: not enough memory") {
		t.Errorf("create --on hv1 = %v, want a refusal naming the memory", err)
	}
	if got := e.records(t, "big.example.com.", dns.TypeA); len(got) != 0 {
		t.Errorf("refused create left %v", got)
	}

	// List shows every VM with its hypervisor.
	ps, err := o.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range ps {
		got[p.Name] = p.Hypervisor
	}
	want := map[string]string{}
	for _, s := range steps {
		want[s.name] = s.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// Destroy goes straight to the hypervisor the TXT names.
	before := map[string]int{}
	for n, f := range tf.hv {
		before[n] = len(f.Calls())
	}
	if err := o.Destroy(ctx, "fc"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"hv1", "hv2"} {
		if calls := tf.hv[n].Calls()[before[n]:]; len(calls) != 0 {
			t.Errorf("destroy of a VM on hv3 called %s: %v", n, calls)
		}
	}
	if len(tf.where("fc")) != 0 || len(tf.hv["hv3"].Volumes("vmprov")) != 1 {
		t.Errorf("fc still on %v, hv3 volumes %v", tf.where("fc"), tf.hv["hv3"].Volumes("vmprov"))
	}
}

// TestFleetDefineFails: a define failure on the first candidate is rolled
// back there and the VM lands on the second, its TXT rewritten; when every
// candidate fails, nothing is left anywhere and the error lists each
// attempt.
func TestFleetDefineFails(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	o := e.fleetOrchestrator(t, tf.fleet)
	ctx := t.Context()
	tf.hv["hv1"].FailOn(hvtest.OpDefine, "", errors.New("emulator missing"))
	r := orchestrator.Request{Name: "fx", IPv4: netip.MustParseAddr("192.0.2.40"), Distro: "core", MemoryMiB: 1024, VCPUs: 1, DiskGiB: 1}
	p, err := o.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hypervisor != "hv2" || txtHypervisor(t, e, "fx") != "hv2" || !cmp.Equal(tf.where("fx"), []string{"hv2"}) {
		t.Errorf("after a define failure on hv1: plan %s, TXT %s, domain on %v; want hv2", p.Hypervisor, txtHypervisor(t, e, "fx"), tf.where("fx"))
	}
	if v := tf.hv["hv1"].Volumes("vmprov"); len(v) != 0 {
		t.Errorf("hv1 keeps volumes %v after the rollback there", v)
	}

	for _, n := range []string{"hv2", "hv3"} {
		tf.hv[n].FailOn(hvtest.OpStart, "", errors.New("no room at the inn"))
	}
	_, err = o.Create(ctx, orchestrator.Request{Name: "fy", IPv4: netip.MustParseAddr("192.0.2.41"), Distro: "core", MemoryMiB: 1024, VCPUs: 1, DiskGiB: 1})
	if err == nil {
		t.Fatal("create succeeded with every hypervisor failing")
	}
	for _, want := range []string{"hv1: define domain", "emulator missing", "hv3: start domain", "no room at the inn", "hv2: start domain", "rolled back: domain undefined, disk deleted", "DNS records removed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	e.assertNoHost(t, "fy", "192.0.2.41")
	for n, f := range tf.hv {
		if _, err := f.Get(ctx, "fy"); err == nil {
			t.Errorf("%s keeps domain fy", n)
		}
		for _, v := range f.Volumes("vmprov") {
			if v == "fy.qcow2" {
				t.Errorf("%s keeps volume %s", n, v)
			}
		}
	}
}

// TestFleetHypervisorDown: list shows the others and names the one that
// hangs; create places elsewhere; destroy of a VM on it refuses and keeps
// its records; orphans are found on both sides.
func TestFleetHypervisorDown(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	o := e.fleetOrchestrator(t, tf.fleet)
	for i, n := range []string{"g1", "g2", "g3"} {
		if _, err := o.Create(ctx, orchestrator.Request{Name: n, IPv4: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 50+i)), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// A new command (a new fleet) while hv2 hangs.
	tf.hv["hv2"].Hang()
	t.Cleanup(tf.hv["hv2"].Unhang)
	tf2 := *tf
	tf2.fleet = fleet.New(fleet.Config{Members: tf.fleet.Members(), Timeout: 300 * time.Millisecond,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			return tf.hv[m.Name], nil, nil
		}})
	o = e.fleetOrchestrator(t, tf2.fleet)
	ps, err := o.List(ctx)
	var ue *orchestrator.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, fleet.ErrUnreachable) || !cmp.Equal(ue.Members, []string{"hv2"}) {
		t.Fatalf("list error = %v, want an UnreachableError naming hv2", err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name+"@"+p.Hypervisor)
	}
	if !cmp.Equal(names, []string{"g1@hv1", "g3@hv3"}) {
		t.Errorf("list while hv2 hangs = %v, want g1@hv1 g3@hv3", names)
	}
	p, err := o.Create(ctx, orchestrator.Request{Name: "g4", IPv4: netip.MustParseAddr("192.0.2.54"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1})
	if err != nil || p.Hypervisor == "hv2" {
		t.Fatalf("create while hv2 hangs = %v on %q, want success elsewhere", err, p.Hypervisor)
	}
	err = o.Destroy(ctx, "g2")
	if !errors.Is(err, fleet.ErrUnreachable) || !strings.Contains(err.Error(), "hypervisor=hv2") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("destroy of a VM on hv2 = %v, want a refusal naming hv2", err)
	}
	if got := e.records(t, "g2.example.com.", dns.TypeA); len(got) != 1 {
		t.Errorf("g2's A record after the refused destroy: %v", got)
	}
	tf.hv["hv2"].Unhang()

	// Orphans: a domain whose records are gone, records whose domain is gone.
	o = e.fleetOrchestrator(t, newFleetOf(tf))
	if err := tf.hv["hv1"].Destroy(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if err := tf.hv["hv1"].Undefine(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if err := e.dns.Apply(ctx, removeName("g3.example.com.")); err != nil {
		t.Fatal(err)
	}
	orphans, err := o.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range orphans {
		got = append(got, x.Name+": "+x.Kind)
	}
	if diff := cmp.Diff([]string{"g1: " + orchestrator.OrphanRecords, "g3: " + orchestrator.OrphanDomain}, got); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
}

// newFleetOf is a new command's fleet of tf's fakes.
func newFleetOf(tf *testFleet) *fleet.Fleet {
	return fleet.New(fleet.Config{Members: tf.fleet.Members(), Timeout: 2 * time.Second,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			return tf.hv[m.Name], nil, nil
		}})
}

// move undefines domain name on from, behind vmprov's back, and defines
// it on to (none when to is empty), as `virsh migrate` or an operator does.
func (tf *testFleet) move(t *testing.T, name, from, to string) {
	t.Helper()
	ctx := t.Context()
	d, err := tf.hv[from].Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.hv[from].Destroy(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := tf.hv[from].Undefine(ctx, name); err != nil {
		t.Fatal(err)
	}
	if to != "" {
		if err := tf.hv[to].Define(ctx, d.XML); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFleetRaceForLastSlot: creates racing for the last room on a
// hypervisor never overcommit it: a define that finds the limit passed
// yields, and the VM goes to the next candidate.
func TestFleetRaceForLastSlot(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	// Room for one 1024 MiB VM on hv1 and one on hv3, eight on hv2; each
	// create is its own command with its own fleet.
	tf.hv["hv1"].SetNode(1024, 4, "br135")
	tf.hv["hv3"].SetNode(1024, 4, "br135")
	tf.hv["hv2"].SetNode(8192, 4, "br135")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := e.fleetOrchestrator(t, newFleetOf(tf))
			_, errs[i] = o.Create(ctx, orchestrator.Request{Name: fmt.Sprintf("race%d", i), IPv4: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 60+i)), Distro: "core", MemoryMiB: 1024, VCPUs: 1, DiskGiB: 1})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("race%d: %v", i, err)
		}
	}
	for _, n := range []string{"hv1", "hv3"} {
		node, err := tf.hv[n].Node(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if node.MemoryCommittedMiB > 1024 {
			t.Errorf("%s: %d MiB committed, over its 1024 MiB", n, node.MemoryCommittedMiB)
		}
	}
	for i := range errs {
		name := fmt.Sprintf("race%d", i)
		if w := tf.where(name); len(w) != 1 || txtHypervisor(t, e, name) != w[0] {
			t.Errorf("%s on %v, TXT says %s", name, w, txtHypervisor(t, e, name))
		}
	}
}

func removeName(fqdn string) dnsupdate.ChangeSet {
	return dnsupdate.ChangeSet{Zone: "example.com.", RemoveName: []string{fqdn}}
}

// TestFleetRecordDisagrees: when a domain is not where its TXT says, show,
// list and destroy say so and still find it; a TXT naming a hypervisor
// that is not in the fleet is reported too.
func TestFleetRecordDisagrees(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	o := e.fleetOrchestrator(t, tf.fleet)
	p, err := o.Create(ctx, orchestrator.Request{Name: "mv", IPv4: netip.MustParseAddr("192.0.2.70"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv1"})
	if err != nil {
		t.Fatal(err)
	}
	// Moved by hand (virsh migrate, or define elsewhere) to hv3.
	tf.move(t, "mv", "hv1", "hv3")
	s, err := o.Show(ctx, "mv")
	if err != nil {
		t.Fatal(err)
	}
	if s.Hypervisor != "hv3" || len(s.Warnings) != 2 || !strings.Contains(strings.Join(s.Warnings, "; "), "domain mv is on hv3, not where its TXT record says (hypervisor=hv1)") {
		t.Errorf("show: hypervisor %q, warnings %q; want hv3 and the disagreement", s.Hypervisor, s.Warnings)
	}
	ps, err := o.List(ctx)
	if err != nil || len(ps) != 1 || ps[0].Hypervisor != "hv3" || len(ps[0].Warnings) != 1 {
		t.Errorf("list = %+v, %v; want mv on hv3 with a warning", ps, err)
	}
	if err := o.Destroy(ctx, "mv"); err != nil {
		t.Fatal(err)
	}
	if w := tf.where("mv"); len(w) != 0 {
		t.Errorf("destroy left the domain on %v", w)
	}
	e.assertNoHost(t, "mv", p.IPv4.String())

	// A TXT naming a hypervisor the configuration does not have.
	if _, err := o.Create(ctx, orchestrator.Request{Name: "lost", IPv4: netip.MustParseAddr("192.0.2.71"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv2"}); err != nil {
		t.Fatal(err)
	}
	small := fleet.New(fleet.Config{Members: tf.fleet.Members()[:1], Timeout: time.Second,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			return tf.hv[m.Name], nil, nil
		}})
	s, err = e.fleetOrchestrator(t, small).Show(ctx, "lost")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.Warnings, "; "), "hypervisor=hv2, which is not in hypervisors: (hv1)") {
		t.Errorf("show with hv2 gone from the configuration: warnings %q", s.Warnings)
	}
}

// TestFleetReinstallNow power-cycles the VM on the hypervisor its TXT
// names, asking no other; create --on asks the pinned one alone; --txt
// hypervisor= is refused.
func TestFleetReinstallNow(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	o := e.fleetOrchestrator(t, tf.fleet)
	if _, err := o.Create(ctx, orchestrator.Request{Name: "rn", IPv4: netip.MustParseAddr("192.0.2.72"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv3"}); err != nil {
		t.Fatal(err)
	}
	// Pinned, the create asked hv3 alone.
	for _, n := range []string{"hv1", "hv2"} {
		if calls := tf.hv[n].Calls(); len(calls) != 0 {
			t.Errorf("create --on hv3 called %s: %v", n, calls)
		}
	}
	before := map[string]int{}
	for n, f := range tf.hv {
		before[n] = len(f.Calls())
	}
	o = e.fleetOrchestrator(t, newFleetOf(tf))
	p, err := o.ReinstallNow(ctx, "rn", "rocky9", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hypervisor != "hv3" || txtHypervisor(t, e, "rn") != "hv3" {
		t.Errorf("reinstall --now: plan on %q, TXT hypervisor=%s; want hv3 kept", p.Hypervisor, txtHypervisor(t, e, "rn"))
	}
	var ops []hvtest.Op
	for _, c := range tf.hv["hv3"].Calls()[before["hv3"]:] {
		ops = append(ops, c.Op)
	}
	if !slices.Contains(ops, hvtest.OpDestroy) || !slices.Contains(ops, hvtest.OpStart) {
		t.Errorf("hv3 saw %v, want a destroy and a start", ops)
	}
	for _, n := range []string{"hv1", "hv2"} {
		if calls := tf.hv[n].Calls()[before[n]:]; len(calls) != 0 {
			t.Errorf("reinstall --now of a VM on hv3 called %s: %v", n, calls)
		}
	}
	_, err = o.Create(ctx, orchestrator.Request{Name: "tx", IPv4: netip.MustParseAddr("192.0.2.73"), Distro: "core", Vars: []inventory.Var{{Key: "hypervisor", Value: "hv1"}}})
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "--on") {
		t.Errorf("create --txt hypervisor=hv1 = %v, want a refusal pointing at --on", err)
	}
}

// slowNode is a Fake whose Node, after the first, answers only when its
// context ends: a hypervisor too slow for the member deadline.
type slowNode struct {
	*hvtest.Fake
	calls atomic.Int32
}

func (s *slowNode) Node(ctx context.Context) (virt.Node, error) {
	if s.calls.Add(1) > 1 {
		<-ctx.Done()
		return virt.Node{}, ctx.Err()
	}
	return s.Fake.Node(ctx)
}

// defineHook is a Fake whose Define runs hook first.
type defineHook struct {
	*hvtest.Fake
	hook func()
}

func (d *defineHook) Define(ctx context.Context, x string) error {
	d.hook()
	return d.Fake.Define(ctx, x)
}

func fleetOf(hvs map[string]virt.Hypervisor, timeout time.Duration, names ...string) *fleet.Fleet {
	var ms []fleet.Member
	for _, n := range names {
		ms = append(ms, fleet.Member{Name: n, URI: "test:///" + n})
	}
	return fleet.New(fleet.Config{Members: ms, Timeout: timeout,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			return hvs[m.Name], nil, nil
		}})
}

// TestFleetSlowAfterDefine: a recount after define that misses the member
// deadline does not stop the create, and a rollback on that member still
// runs (a slow question does not make it refuse changes).
func TestFleetSlowAfterDefine(t *testing.T) {
	e := newEnv(t, "vmprov")
	ctx := t.Context()
	hv1 := &slowNode{Fake: hvtest.NewFake("vmprov")}
	hv1.SetNode(8192, 4, "br135")
	hv2 := hvtest.NewFake("vmprov")
	hv2.SetNode(4096, 4, "br135")
	o := e.fleetOrchestrator(t, fleetOf(map[string]virt.Hypervisor{"hv1": hv1, "hv2": hv2}, 200*time.Millisecond, "hv1", "hv2"))
	p, err := o.Create(ctx, orchestrator.Request{Name: "sl", IPv4: netip.MustParseAddr("192.0.2.80"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1})
	if err != nil || p.Hypervisor != "hv1" || p.Power != virt.StateRunning {
		t.Fatalf("create with a slow recount = %v on %q (%s); want it running on hv1", err, p.Hypervisor, p.Power)
	}

	// Start fails after the slow recount: the rollback on hv1 runs, the VM
	// goes to hv2.
	hv1.calls.Store(0)
	hv1.FailOn(hvtest.OpStart, "", errors.New("no start"))
	o = e.fleetOrchestrator(t, fleetOf(map[string]virt.Hypervisor{"hv1": hv1, "hv2": hv2}, 200*time.Millisecond, "hv1", "hv2"))
	p, err = o.Create(ctx, orchestrator.Request{Name: "sm", IPv4: netip.MustParseAddr("192.0.2.81"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1})
	if err != nil || p.Hypervisor != "hv2" {
		t.Fatalf("create = %v on %q, want hv2 after hv1's start failed", err, p.Hypervisor)
	}
	if _, err := hv1.Get(ctx, "sm"); err == nil || slices.Contains(hv1.Volumes("vmprov"), "sm.qcow2") {
		t.Errorf("hv1 keeps sm (domain or volume %v) after its rollback", hv1.Volumes("vmprov"))
	}
}

// TestFleetTXTChangedDuringCreate: when the TXT changes while a create is
// under way (a reinstall, serve), the move to the next candidate fails and
// the rollback still removes every record, the TXT included.
func TestFleetTXTChangedDuringCreate(t *testing.T) {
	e := newEnv(t, "vmprov")
	ctx := t.Context()
	hv1 := &defineHook{Fake: hvtest.NewFake("vmprov")}
	hv1.SetNode(8192, 4, "br135")
	hv1.FailOn(hvtest.OpDefine, "", errors.New("refused"))
	hv1.hook = func() {
		add := &dns.TXT{Hdr: dns.RR_Header{Name: "tc.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"distribution=core", "state=installing"}}
		if err := e.dns.Apply(context.Background(), dnsupdate.ChangeSet{Zone: "example.com.", RemoveRRset: []dnsupdate.RRKey{{Name: "tc.example.com.", Type: dns.TypeTXT}}, Add: []dns.RR{add}}); err != nil {
			t.Error(err)
		}
	}
	hv2 := hvtest.NewFake("vmprov")
	hv2.SetNode(4096, 4, "br135")
	o := e.fleetOrchestrator(t, fleetOf(map[string]virt.Hypervisor{"hv1": hv1, "hv2": hv2}, time.Second, "hv1", "hv2"))
	_, err := o.Create(ctx, orchestrator.Request{Name: "tc", IPv4: netip.MustParseAddr("192.0.2.82"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1})
	if err == nil || !strings.Contains(err.Error(), "changed meanwhile") || strings.Contains(err.Error(), "ROLLBACK FAILED") {
		t.Fatalf("create = %v, want the TXT change named and a complete rollback", err)
	}
	e.assertNoHost(t, "tc", "192.0.2.82")
	if got := e.records(t, "tc.example.com.", dns.TypeTXT); len(got) != 0 {
		t.Errorf("TXT left: %v", got)
	}
}

// TestFleetMovedAndDown: the record's hypervisor lacks the domain and
// another cannot be asked: destroy refuses (the VM may run there) and
// keeps the records.
func TestFleetMovedAndDown(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	o := e.fleetOrchestrator(t, tf.fleet)
	if _, err := o.Create(ctx, orchestrator.Request{Name: "mg", IPv4: netip.MustParseAddr("192.0.2.83"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv1"}); err != nil {
		t.Fatal(err)
	}
	tf.move(t, "mg", "hv1", "hv2")
	tf.hv["hv2"].Hang()
	t.Cleanup(tf.hv["hv2"].Unhang)
	o = e.fleetOrchestrator(t, fleetOf(map[string]virt.Hypervisor{"hv1": tf.hv["hv1"], "hv2": tf.hv["hv2"], "hv3": tf.hv["hv3"]}, 200*time.Millisecond, "hv1", "hv2", "hv3"))
	err := o.Destroy(ctx, "mg")
	if !errors.Is(err, fleet.ErrUnreachable) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("destroy = %v, want a refusal: hv2 may hold the domain", err)
	}
	if got := e.records(t, "mg.example.com.", dns.TypeA); len(got) != 1 {
		t.Errorf("A after the refused destroy: %v", got)
	}
	// --on a name the fleet does not have is refused before anyone is asked.
	n := len(tf.hv["hv1"].Calls())
	_, err = o.Create(ctx, orchestrator.Request{Name: "on", IPv4: netip.MustParseAddr("192.0.2.84"), Distro: "core", On: "hv9"})
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "--on hv9: no such hypervisor: use one of hv1, hv2, hv3") || len(tf.hv["hv1"].Calls()) != n {
		t.Errorf("create --on hv9 = %v, want ErrInvalid before any call", err)
	}
}

// TestConnectOverridesFleet: with hypervisors: configured, --connect to
// another URI than the one the TXT names refuses destroy instead of
// removing the records of a VM that runs elsewhere.
func TestConnectOverridesFleet(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	if _, err := e.fleetOrchestrator(t, tf.fleet).Create(ctx, orchestrator.Request{Name: "cx", IPv4: netip.MustParseAddr("192.0.2.85"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv1"}); err != nil {
		t.Fatal(err)
	}
	cfg := *e.cfg
	for _, m := range tf.fleet.Members() {
		cfg.Hypervisors = append(cfg.Hypervisors, config.Hypervisor{Name: m.Name, URI: m.URI})
	}
	o, err := orchestrator.New(orchestrator.Config{Config: &cfg, DNS: e.dns, Fleet: fleet.Single("test:///hv2", tf.hv["hv2"])})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Destroy(ctx, "cx")
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "hypervisor=hv1 (test:///hv1), not test:///hv2") {
		t.Errorf("destroy with --connect to hv2 = %v, want a refusal naming hv1", err)
	}
	if got := e.records(t, "cx.example.com.", dns.TypeA); len(got) != 1 {
		t.Errorf("A after the refused destroy: %v", got)
	}
}

// TestRollbackFailureKeepsRecords: on the fleet of one, a rollback that
// cannot delete the disk keeps the DNS records, and destroy finds them
// and the disk; a destroy that cannot delete the disk keeps them too.
func TestRollbackFailureKeepsRecords(t *testing.T) {
	e := newEnv(t, "vmprov")
	ctx := t.Context()
	hv := hvtest.NewFake("vmprov")
	hv.FailOn(hvtest.OpStart, "", errors.New("no start"))
	hv.FailOn(hvtest.OpDeleteDisk, "", errors.New("volume busy"))
	o := e.orchestrator(t, hv)
	_, err := o.Create(ctx, orchestrator.Request{Name: "rb", IPv4: netip.MustParseAddr("192.0.2.91"), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1})
	if err == nil || !strings.Contains(err.Error(), "ROLLBACK INCOMPLETE: disk deleted: ") || !strings.Contains(err.Error(), "the DNS records are kept, so that `vmprov destroy rb` finds and removes what is left") {
		t.Fatalf("create = %v, want an incomplete rollback that keeps the records", err)
	}
	if got := e.records(t, "rb.example.com.", dns.TypeA); len(got) != 1 {
		t.Fatalf("A after the incomplete rollback: %v", got)
	}
	err = o.Destroy(ctx, "rb")
	if err == nil || !strings.Contains(err.Error(), "its DNS records are kept") || len(e.records(t, "rb.example.com.", dns.TypeA)) != 1 {
		t.Errorf("destroy with the disk still busy = %v, want the records kept", err)
	}
	hv.ClearFailures()
	if err := o.Destroy(ctx, "rb"); err != nil {
		t.Fatal(err)
	}
	if v := hv.Volumes("vmprov"); len(v) != 0 {
		t.Errorf("volumes left after destroy: %v", v)
	}
	e.assertNoHost(t, "rb", "192.0.2.91")
}

// TestFleetPartialAnswers: while a member is down, list --orphans judges
// no records (the domain may have moved there), and show of a host whose
// domain is not where its TXT says prints the records with the reasons,
// whatever error the other member gave.
func TestFleetPartialAnswers(t *testing.T) {
	e := newEnv(t, "vmprov")
	tf := newTestFleet(t)
	ctx := t.Context()
	o := e.fleetOrchestrator(t, tf.fleet)
	for i, n := range []string{"og", "sw"} {
		if _, err := o.Create(ctx, orchestrator.Request{Name: n, IPv4: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 90+i)), Distro: "core", MemoryMiB: 512, VCPUs: 1, DiskGiB: 1, On: "hv1"}); err != nil {
			t.Fatal(err)
		}
		tf.move(t, n, "hv1", "")
	}
	tf.hv["hv2"].Hang()
	defer tf.hv["hv2"].Unhang()
	o = e.fleetOrchestrator(t, fleetOf(map[string]virt.Hypervisor{"hv1": tf.hv["hv1"], "hv2": tf.hv["hv2"], "hv3": tf.hv["hv3"]}, 200*time.Millisecond, "hv1", "hv2", "hv3"))
	orphans, err := o.Orphans(ctx)
	if !errors.Is(err, fleet.ErrUnreachable) || len(orphans) != 0 {
		t.Errorf("orphans while hv2 is down = %+v, %v; want none judged and ErrUnreachable", orphans, err)
	}
	tf.hv["hv2"].Unhang()

	tf.hv["hv3"].FailOn(hvtest.OpGet, "sw", errors.New("access denied"))
	p, err := e.fleetOrchestrator(t, newFleetOf(tf)).Show(ctx, "sw")
	if err != nil {
		t.Fatalf("show = %v, want the records with warnings", err)
	}
	w := strings.Join(p.Warnings, "; ")
	if len(p.Records) == 0 || !strings.Contains(w, "hv1 has no domain sw") || !strings.Contains(w, "access denied") {
		t.Errorf("show: %d records, warnings %q; want the records, hv1's absence and hv3's error", len(p.Records), w)
	}
}
