package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// BenchmarkFleetCreateDestroy30 creates 30 VMs with the vmprov CLI on the
// lab's fleet of three libvirtds (startFleet: hv1 over qemu+ssh, hv2 and
// hv3 over qemu+tcp; placement spreads the VMs by committed memory) and
// destroys them again, one `vmprov create` or `vmprov destroy` process per
// VM as an operator's script runs it. The VMs are small (64 MiB, 1 vCPU, a
// 1 GiB disk) and boot from their empty disk only (--boot hd), so that 30
// TCG network boots do not load the machine while it is measured.
//
// The baseline does the same work the way the glue scripts vmprov replaces
// do it, one process per step and round robin over the three hypervisors:
// per VM `virsh vol-create-as`, `virsh define` of the domain XML vmprov
// produced for that VM (renamed, its disk in the target's pool), `virsh
// start` and one nsupdate (-k with the lab's TSIG key) adding the same A,
// AAAA, TXT and PTR records; then per VM `virsh destroy`, `virsh undefine`,
// `virsh vol-delete` and one nsupdate deleting the records (the XML files
// are written before its timing starts). It runs twice:
// over qemu+tcp to all three hypervisors (hv1's libvirtd listens on TCP
// too), and over the URIs vmprov uses (qemu+ssh for hv1), so that the cost
// of the ssh transport shows. Every command on both sides runs in the lab's
// namespace through `ip netns exec` and is timed as a whole process.
//
// It reports the milliseconds per VM (create and destroy) of vmprov and of
// both baselines, the ratios vmprov/baseline (over qemu+tcp) and
// vmprov/baseline-ssh, and the 1-minute load average at the end, and logs
// where the VMs went and a summary of one more VM's `vmprov -v` create and
// destroy (see fleetBenchTrace; VMPROV_BENCH_TRACE=FILE keeps their whole
// logs), which shows where vmprov's time goes. On a busy machine the
// figures measure the overload, not vmprov. After each part it checks,
// untimed, that no domain, volume or DNS record of its VMs is left; a
// failure leaves the rest to the lab's teardown, which takes the fleet,
// BIND and their files with it. It never fails on a timing.
//
//	go test -run '^$' -bench Fleet -benchtime 1x -timeout 30m ./test/e2e/
func BenchmarkFleetCreateDestroy30(b *testing.B) {
	requireDemoLab(b)
	lab.RequireRoot(b, "nsupdate", "dig", "ssh")
	e := setupDemo(b, buildVmprov(b, b.TempDir()), lab.IPv6OnlyBridge())
	f := startFleet(b, e, "10s")
	const n = 30
	pool, dir := e.Lab.State.Pool, b.TempDir()
	tcp := fleetBenchTargets(b, e, f, true)
	mixed := fleetBenchTargets(b, e, f, false)
	_, loadStart := fleetBenchLoad()

	var vm, tcpRun, sshRun fleetBenchPhases
	placed := map[string]int{}
	tcpHV, sshHV := map[string]time.Duration{}, map[string]time.Duration{}
	for i := range b.N {
		plans := make([]fleetBenchPlan, n)
		start := time.Now()
		for j := range n {
			plans[j] = fleetBenchCreate(b, e, fmt.Sprintf("fbv-%d-%02d", i, j), fmt.Sprintf("192.0.2.%d", 100+j))
		}
		mid := time.Now()
		for _, p := range plans {
			if err := e.Destroy(b.Context(), p.Name); err != nil {
				b.Fatal(err)
			}
		}
		vm.add(start, mid, time.Now())
		fleetBenchRequireClean(b, e, f, "fbv-")
		for _, p := range plans {
			placed[p.Hypervisor]++
		}

		tcpRun = tcpRun.plus(fleetBenchScript(b, e, pool, dir, plans, tcp, fmt.Sprintf("fbt-%d-", i), tcpHV))
		fleetBenchRequireClean(b, e, f, "fbt-")
		sshRun = sshRun.plus(fleetBenchScript(b, e, pool, dir, plans, mixed, fmt.Sprintf("fbs-%d-", i), sshHV))
		fleetBenchRequireClean(b, e, f, "fbs-")
	}
	load1, loadEnd := fleetBenchLoad()

	// Where vmprov's time goes: one more VM with -v, untimed.
	traces := []string{
		fleetBenchTrace(b, e, "create", "--name", "fbv-trace", "--ip", "192.0.2.199", "--distro", "core",
			"--memory", "64", "--vcpus", "1", "--disk-size", "1", "--boot", "hd", "-o", "json"),
		fleetBenchTrace(b, e, "destroy", "fbv-trace"),
	}
	fleetBenchRequireClean(b, e, f, "fbv-")

	per := float64(b.N * n)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / per }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(vm.total()), "vmprov-ms/vm")
	b.ReportMetric(ms(tcpRun.total()), "nsupdate+virsh-tcp-ms/vm")
	b.ReportMetric(ms(sshRun.total()), "nsupdate+virsh-ssh-ms/vm")
	b.ReportMetric(float64(vm.total())/float64(tcpRun.total()), "vmprov/baseline")
	b.ReportMetric(float64(vm.total())/float64(sshRun.total()), "vmprov/baseline-ssh")
	b.ReportMetric(load1, "loadavg-1m")
	b.Logf("%d VMs × %d: per VM (create + destroy) vmprov %.0f + %.0f ms; nsupdate+virsh over qemu+tcp %.0f + %.0f ms; with hv1 over qemu+ssh %.0f + %.0f ms",
		n, b.N, ms(vm.create), ms(vm.destroy), ms(tcpRun.create), ms(tcpRun.destroy), ms(sshRun.create), ms(sshRun.destroy))
	b.Logf("vmprov placed them: %v; the baseline's time per hypervisor (%d VMs each): tcp %s; hv1 over ssh %s",
		placed, b.N*n/len(f.Hypervisors), fleetBenchPerHV(tcpHV, b.N*n/len(f.Hypervisors)), fleetBenchPerHV(sshHV, b.N*n/len(f.Hypervisors)))
	b.Logf("load average: %s at the start, %s at the end", loadStart, loadEnd)
	for _, t := range traces {
		b.Log(t)
	}
}

// BenchmarkFleetList times `vmprov list -o json` with 9 VMs on the lab's
// fleet (created once with vmprov, spread by placement) against the three
// sequential `virsh -c URI list --all` a script runs to see the same
// domains, one per hypervisor over the URIs vmprov uses (qemu+ssh for hv1,
// qemu+tcp for hv2 and hv3), and against the same over qemu+tcp only.
// vmprov list is one process that asks all three hypervisors at once, but
// it does more than the virsh baseline: once the hypervisors have answered
// it also reads the DNS records of every VM (A, AAAA and TXT queries, 27 for
// 9 VMs, in parallel) and joins them with the domains, which virsh list
// does not. Each run (b.N of them) times
// 5 rounds of the three, interleaved; every command runs in the lab's
// namespace through `ip netns exec` and is timed as a whole process.
//
// It reports the mean milliseconds of each, the ratios vmprov/virsh (same
// URIs) and vmprov/virsh-tcp, and the 1-minute load average at the end, and
// logs a summary of one `vmprov -v list` (see fleetBenchTrace;
// VMPROV_BENCH_TRACE=FILE keeps its whole log). On a busy machine the figures
// measure the overload, not vmprov. The VMs are destroyed at the end and
// checked gone. It never fails on a timing.
//
//	go test -run '^$' -bench Fleet -benchtime 1x -timeout 30m ./test/e2e/
func BenchmarkFleetList(b *testing.B) {
	requireDemoLab(b)
	lab.RequireRoot(b, "dig", "ssh")
	e := setupDemo(b, buildVmprov(b, b.TempDir()), lab.IPv6OnlyBridge())
	f := startFleet(b, e, "10s")
	const n, rounds = 9, 5
	var names []string
	placed := map[string]int{}
	for j := range n {
		p := fleetBenchCreate(b, e, fmt.Sprintf("fbl-%02d", j), fmt.Sprintf("192.0.2.%d", 140+j))
		names = append(names, p.Name)
		placed[p.Hypervisor]++
	}
	tcp := fleetBenchTargets(b, e, f, true)
	mixed := fleetBenchTargets(b, e, f, false)
	_, loadStart := fleetBenchLoad()

	virshAll := func(ts []fleetBenchTarget) (time.Duration, []string) {
		var got []string
		start := time.Now()
		outs := make([]string, len(ts))
		for i, t := range ts {
			outs[i] = fleetBenchVirsh(b, e, t.uri, "list", "--all")
		}
		d := time.Since(start)
		for _, o := range outs {
			for _, ln := range strings.Split(o, "\n") {
				if fs := strings.Fields(ln); len(fs) >= 2 {
					got = append(got, fs[1])
				}
			}
		}
		slices.Sort(got)
		return d, got
	}
	var vmDur, mixedDur, tcpDur time.Duration
	for range b.N {
		for range rounds {
			start := time.Now()
			out, err := e.Vmprov(b.Context(), "list", "-o", "json")
			vmDur += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			var ps []fleetBenchPlan
			if err := json.Unmarshal(out, &ps); err != nil {
				b.Fatalf("vmprov list -o json: %v\n%s", err, out)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, names) {
				b.Fatalf("vmprov list: %v, want %v", got, names)
			}
			for _, v := range []struct {
				ts  []fleetBenchTarget
				dur *time.Duration
			}{{mixed, &mixedDur}, {tcp, &tcpDur}} {
				d, got := virshAll(v.ts)
				*v.dur += d
				if !slices.Equal(got, names) {
					b.Fatalf("virsh list --all on the fleet: %v, want %v", got, names)
				}
			}
		}
	}
	load1, loadEnd := fleetBenchLoad()
	trace := fleetBenchTrace(b, e, "list", "-o", "json")
	for _, name := range names {
		if err := e.Destroy(b.Context(), name); err != nil {
			b.Fatal(err)
		}
	}
	fleetBenchRequireClean(b, e, f, "fbl-")

	k := float64(b.N * rounds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / k }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(vmDur), "vmprov-list-ms")
	b.ReportMetric(ms(mixedDur), "virsh-list-ms")
	b.ReportMetric(ms(tcpDur), "virsh-tcp-list-ms")
	b.ReportMetric(float64(vmDur)/float64(mixedDur), "vmprov/virsh")
	b.ReportMetric(float64(vmDur)/float64(tcpDur), "vmprov/virsh-tcp")
	b.ReportMetric(load1, "loadavg-1m")
	b.Logf("%d VMs (placed %v), mean of %d: vmprov list -o json %.0f ms; 3 × virsh list --all %.0f ms (hv1 over qemu+ssh), %.0f ms (all over qemu+tcp)",
		n, placed, b.N*rounds, ms(vmDur), ms(mixedDur), ms(tcpDur))
	b.Logf("load average: %s at the start, %s at the end", loadStart, loadEnd)
	b.Log(trace)
}

// fleetBenchPhases are the create and destroy times of one side.
type fleetBenchPhases struct{ create, destroy time.Duration }

func (p *fleetBenchPhases) add(start, mid, end time.Time) {
	p.create += mid.Sub(start)
	p.destroy += end.Sub(mid)
}

func (p fleetBenchPhases) plus(q fleetBenchPhases) fleetBenchPhases {
	return fleetBenchPhases{p.create + q.create, p.destroy + q.destroy}
}

func (p fleetBenchPhases) total() time.Duration { return p.create + p.destroy }

// fleetBenchScript is the baseline of BenchmarkFleetCreateDestroy30 for
// vmprov's plans: VM j, named prefix + its two digits, goes to target j mod
// len(ts). The XML files are written before the timing starts. perHV adds up
// the time spent on each hypervisor.
func fleetBenchScript(b *testing.B, e *demo.Env, pool, dir string, plans []fleetBenchPlan, ts []fleetBenchTarget, prefix string, perHV map[string]time.Duration) fleetBenchPhases {
	b.Helper()
	vms := make([]fleetBenchScriptVM, len(plans))
	for j, p := range plans {
		var err error
		if vms[j], err = fleetBenchRename(p, fmt.Sprintf("%s%02d", prefix, j), dir, ts[j%len(ts)]); err != nil {
			b.Fatal(err)
		}
	}
	var ph fleetBenchPhases
	start := time.Now()
	for _, vm := range vms {
		t0 := time.Now()
		fleetBenchScriptCreate(b, e, pool, vm)
		perHV[vm.target.hv.Name] += time.Since(t0)
	}
	mid := time.Now()
	for _, vm := range vms {
		t0 := time.Now()
		fleetBenchScriptDestroy(b, e, pool, vm)
		perHV[vm.target.hv.Name] += time.Since(t0)
	}
	ph.add(start, mid, time.Now())
	return ph
}

// fleetBenchPerHV formats the mean time per VM on each hypervisor.
func fleetBenchPerHV(m map[string]time.Duration, vms int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %.0f ms/vm", k, float64(m[k].Microseconds())/1000/float64(max(vms, 1))))
	}
	return strings.Join(parts, ", ")
}

// fleetBenchTrace runs `vmprov -v ARGS...` in the lab's namespace, untimed
// by the benchmark, and returns a summary of its debug log (benchmark logs
// are cut at 10 lines): its wall time, when its first and last log lines
// came, and per message (and hypervisor) how often it came and the sum of
// its dur= fields. With VMPROV_BENCH_TRACE set to a file name, the whole
// log is appended to that file too.
func fleetBenchTrace(b *testing.B, e *demo.Env, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), fleetBenchTimeout)
	defer cancel()
	argv := append([]string{"netns", "exec", e.Lab.State.Netns, e.Bin, "--config", e.Config, "-v"}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	_, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("vmprov -v %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	head := fmt.Sprintf("vmprov -v %s: %.0f ms", strings.Join(args, " "), fleetBenchMS(d))
	if path := os.Getenv("VMPROV_BENCH_TRACE"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "--- %s (started %s) ---\n%s", head, start.UTC().Format(time.RFC3339Nano), stderr.Bytes())
			err = f.Close()
		}
		if err != nil {
			b.Logf("VMPROV_BENCH_TRACE: %v", err)
		}
	}
	type agg struct {
		n   int
		dur time.Duration
	}
	var keys []string
	sums := map[string]*agg{}
	var first, last time.Time
	for _, ln := range strings.Split(stderr.String(), "\n") {
		f := fleetBenchLogFields(ln)
		t, err := time.Parse(time.RFC3339Nano, f["time"])
		if err != nil || f["msg"] == "" {
			continue
		}
		if first.IsZero() {
			first = t
		}
		last = t
		k := f["msg"]
		if hv := f["hypervisor"]; hv != "" {
			k += " " + hv
		}
		if sums[k] == nil {
			sums[k] = &agg{}
			keys = append(keys, k)
		}
		sums[k].n++
		if dd, err := time.ParseDuration(f["dur"]); err == nil {
			sums[k].dur += dd
		}
	}
	if first.IsZero() {
		return head + ", no log lines"
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d %.1f ms", k, sums[k].n, fleetBenchMS(sums[k].dur)))
	}
	return fmt.Sprintf("%s, log lines from +%.0f to +%.0f ms: %s", head, fleetBenchMS(first.Sub(start)), fleetBenchMS(last.Sub(start)), strings.Join(parts, "; "))
}

func fleetBenchMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fleetBenchLogFields splits a line of slog's text handler into its
// key=value fields, unquoting quoted values.
func fleetBenchLogFields(ln string) map[string]string {
	f := map[string]string{}
	for ln != "" {
		ln = strings.TrimLeft(ln, " ")
		k, rest, ok := strings.Cut(ln, "=")
		if !ok || k == "" {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		f[k] = v
		ln = rest
	}
	return f
}
