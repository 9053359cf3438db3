package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

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
func requireLab(t *testing.T) {
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
	b, err := e.Boot(t.Context(), demo.BootSpec{Name: name, Args: args, Timeout: bootDeadline,
		Each: func(ev demo.Event) { t.Log(ev) }})
	if b.Host.Name != "" {
		t.Cleanup(func() {
			if b.Console != nil {
				if t.Failed() {
					t.Logf("--- %s ---\n%s", b.Console.Path, tail(b.Console.Path, 30))
				}
				_ = b.Console.Close()
			}
			if t.Failed() {
				t.Logf("--- %s ---\n%s", e.Lab.Libvirt.DomainLog(name), tail(e.Lab.Libvirt.DomainLog(name), 20))
			}
			if err := e.Destroy(context.Background(), name); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
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

// metric returns the value of the sample named series (metric name and
// labels, as /metrics writes them) from serve's /metrics, read from inside
// the lab's namespace; -1 when /metrics has no such sample.
func metric(t *testing.T, e *demo.Env, series string) float64 {
	t.Helper()
	out, err := e.Lab.Netns.Exec(t.Context(), "curl", "-sf", e.BootURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}
