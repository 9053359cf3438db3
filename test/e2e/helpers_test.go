package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// bootDeadline bounds the wait for a VM's kernel request: SeaBIOS, an
// empty disk, iPXE's DHCP and the chain under TCG on a shared machine.
const bootDeadline = demo.BootTimeout

// romFile is the option ROM QEMU loads for virtio-net (package ipxe-qemu).
const romFile = "/usr/lib/ipxe/qemu/efi-virtio.rom"

// logLine is one JSON line of `vmprov serve --log-json` (see demo.LogLine,
// which has a few more fields).
type logLine struct {
	Time   time.Time `json:"time"`
	Msg    string    `json:"msg"`
	Proto  string    `json:"proto"`
	IP     string    `json:"ip"`
	MAC    string    `json:"mac"`
	File   string    `json:"file"`
	Status int       `json:"status"`
	Class  string    `json:"class"`
}

// waitHealthy polls /healthz from inside the namespace until it answers.
func waitHealthy(t *testing.T, ns string, served <-chan error, logPath string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "curl", "-sf", "-o", "/dev/null", "http://192.0.2.1:8080/healthz").Run()
		cancel()
		if err == nil {
			return
		}
		select {
		case err := <-served:
			t.Fatalf("vmprov serve exited: %v\n%s", err, tail(logPath, 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vmprov serve: /healthz did not answer within 30s: %v\n%s", err, tail(logPath, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readLog parses the JSON lines of the serve log; other lines are skipped.
func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	lines, err := demo.ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]logLine, len(lines))
	for i, ln := range lines {
		out[i] = logLine{Time: ln.Time, Msg: ln.Msg, Proto: ln.Proto, IP: ln.IP, MAC: ln.MAC, File: ln.File, Status: ln.Status, Class: ln.Class}
	}
	return out
}

// hasRequest reports whether the log holds an HTTP request for file.
func hasRequest(lines []logLine, file string) bool {
	for _, ln := range lines {
		if ln.Msg == "http request" && ln.File == file {
			return true
		}
	}
	return false
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string { return demo.Tail(path, n) }

// requireLab skips t unless everything a lab boot needs is here.
func requireLab(t testing.TB) {
	t.Helper()
	lab.RequireRoot(t, "go", "ip", "curl", "dig", "named", "radvd", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	if _, err := os.Stat(romFile); err != nil {
		t.Skipf("needs %s (install ipxe-qemu)", romFile)
	}
}

// startDemo brings up a lab with the IPv6-only bridge br136 in a fresh
// namespace, builds vmprov and runs `vmprov serve` in it through the demo
// scenario that `make lab` runs too; everything is torn down when t ends.
func startDemo(t *testing.T) *demo.Env {
	t.Helper()
	requireLab(t)
	e := setupDemo(t, buildVmprov(t, t.TempDir()), lab.IPv6OnlyBridge())
	if !e.EchoKernel {
		t.Fatal("the multiboot stand-in kernel could not be built (needs as and ld from binutils)")
	}
	return e
}

// boot runs `vmprov create --name NAME ARGS...` in e's lab and follows the
// VM's boot until the stand-in kernel has printed its command line; the VM
// is destroyed with `vmprov destroy` when t ends.
func boot(t *testing.T, e *demo.Env, name string, args ...string) *demo.Boot {
	t.Helper()
	b, _ := bootVM(t, e, demo.BootSpec{Name: name, Args: args, Timeout: bootDeadline}, 30)
	return b
}

// bootVM runs `vmprov create --name spec.Name spec.Args...` in e's lab and
// follows the boot as spec says (its events logged unless spec.Each is
// set), failing t on error. destroy closes the console and runs `vmprov
// destroy`, once: when t ends unless the test called it first. If t has
// failed by then, the last consoleLines lines of the console and the
// domain's log are logged.
func bootVM(t *testing.T, e *demo.Env, spec demo.BootSpec, consoleLines int) (b *demo.Boot, destroy func(context.Context) error) {
	t.Helper()
	if spec.Each == nil {
		spec.Each = func(ev demo.Event) { t.Log(ev) }
	}
	b, err := e.Boot(t.Context(), spec)
	done := false
	destroy = func(ctx context.Context) error {
		if done {
			return nil
		}
		done = true
		if b.Console != nil {
			if t.Failed() {
				t.Logf("--- %s ---\n%s", b.Console.Path, tail(b.Console.Path, consoleLines))
			}
			_ = b.Console.Close()
		}
		if t.Failed() {
			t.Logf("--- %s ---\n%s", e.Lab.Libvirt.DomainLog(spec.Name), tail(e.Lab.Libvirt.DomainLog(spec.Name), 20))
		}
		return e.Destroy(ctx, spec.Name)
	}
	if b.Host.Name != "" {
		t.Cleanup(func() {
			if err := destroy(context.Background()); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, destroy
}

// cmdlineArgs splits a multiboot command line, as the stand-in kernel
// prints it, into the kernel's URI and its arguments by name (key=value; a
// word without "=" maps to itself).
func cmdlineArgs(cmdline string) (uri string, args map[string]string) {
	f := strings.Fields(cmdline)
	args = map[string]string{}
	if len(f) == 0 {
		return "", args
	}
	for _, w := range f[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			v = w
		}
		args[k] = v
	}
	return f[0], args
}

// dig asks the lab's BIND, from inside its namespace, for name's records of
// type typ (or, with typ "-x", for the PTR of address name).
func dig(t *testing.T, e *demo.Env, typ, name string) []string {
	t.Helper()
	server, _, _ := strings.Cut(e.Lab.State.DNS, ":")
	args := []string{"dig", "@" + server, "+short", name, typ}
	if typ == "-x" {
		args = []string{"dig", "@" + server, "+short", "-x", name}
	}
	out, err := e.Lab.Netns.Exec(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// metric returns the value of a series of serve's /metrics, read from
// inside the lab's namespace (see seriesValue); -1 when /metrics has no
// such series.
func metric(t *testing.T, e *demo.Env, name string, labels ...string) float64 {
	t.Helper()
	out, err := e.Lab.Netns.Exec(t.Context(), "curl", "-sf", e.BootURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	v, err := seriesValue(out, name, labels...)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return v
}

// seriesValue parses body, a scrape in the Prometheus text format, with
// expfmt and returns the value of the series name whose labels include
// labels (names and values in pairs): a counter's, gauge's or untyped
// value, or with name ending in _count or _sum a histogram's or summary's
// count or sum. Several matching series are summed, as a PromQL sum()
// would; none gives -1.
func seriesValue(body, name string, labels ...string) (float64, error) {
	if len(labels)%2 != 0 {
		return 0, fmt.Errorf("series %s: labels %q are not name-value pairs", name, labels)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	family, part := name, ""
	if _, ok := fams[name]; !ok {
		for _, suffix := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil {
				family, part = base, suffix
			}
		}
	}
	sum, found := 0.0, false
	for _, m := range fams[family].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case part == "" && m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case part == "" && m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case part == "" && m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case part == "_count" && m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case part == "_sum" && m.Histogram != nil:
			sum += m.GetHistogram().GetSampleSum()
		case part == "_count" && m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		case part == "_sum" && m.Summary != nil:
			sum += m.GetSummary().GetSampleSum()
		default:
			continue
		}
		found = true
	}
	if !found {
		return -1, nil
	}
	return sum, nil
}
