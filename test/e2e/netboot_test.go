package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab"
)

// bootDeadline bounds the wait for the VM's kernel request: SeaBIOS, an
// empty disk, iPXE's DHCP and the chain under TCG on a shared machine.
const bootDeadline = 240 * time.Second

// romFile is the option ROM QEMU loads for virtio-net (package ipxe-qemu).
const romFile = "/usr/lib/ipxe/qemu/efi-virtio.rom"

// logLine is one JSON line of `vmprov serve --log-json`.
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

// TestNetbootIPv4 creates a VM with `vmprov create` in the lab and follows
// it from SeaBIOS through iPXE's DHCPv4 exchange with `vmprov serve` to the
// kernel and initrd of its install script, asserting the HTTP requests the
// VM made, in order.
func TestNetbootIPv4(t *testing.T) {
	lab.RequireRoot(t, "go", "ip", "curl", "named", "radvd", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	if _, err := os.Stat(romFile); err != nil {
		t.Skipf("needs %s (install ipxe-qemu)", romFile)
	}
	ctx := t.Context()
	tmp := t.TempDir()

	bin := filepath.Join(tmp, "vmprov")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/vmprov/vmprov/cmd/vmprov").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// A short directory: libvirt's socket path must fit in 107 bytes.
	labDir, err := os.MkdirTemp("", "vmprov-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("vmprove-%08x", rand.Uint32())
	t.Cleanup(func() {
		if err := lab.Down(labDir); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(labDir)
		} else {
			t.Logf("lab files kept in %s", labDir)
		}
	})
	l, err := lab.Up(ctx, lab.Options{Dir: labDir, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}

	// Stand-in kernel and initrd where install/default.ipxe looks for
	// distribution core; iPXE fetches them and then fails to boot them.
	serveDir := filepath.Join(tmp, "serve")
	pxeboot := filepath.Join(serveDir, "assets", "centos", "7", "os", "x86_64", "images", "pxeboot")
	if err := os.MkdirAll(pxeboot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if err := os.WriteFile(filepath.Join(pxeboot, f), []byte("not a "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cfg := filepath.Join(tmp, "vmprov.yaml")
	yaml := fmt.Sprintf(`dns:
  server: %q
  zone: %s
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %q}
libvirt: {uri: %q, domain_type: qemu, pool: %s}
boot:
  url: "http://192.0.2.1:8080"
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64", dns_servers: [192.0.2.1]}
serve:
  interfaces: [br135]
  http: "192.0.2.1:8080"
  tftp: "192.0.2.1:69"
  dir: %q
`, l.State.DNS, l.State.Zone, l.State.KeyFile, l.State.LibvirtURI, l.State.Pool, serveDir)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	// vmprov serve in the lab namespace, where br135 and BIND are.
	serveLog := filepath.Join(tmp, "serve.log")
	logf, err := os.Create(serveLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	serve := exec.Command("ip", "netns", "exec", ns, bin, "serve", "--config", cfg, "--log-json", "-v")
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			_ = serve.Process.Kill()
			<-served
		}
		if t.Failed() {
			t.Logf("--- %s ---\n%s", serveLog, tail(serveLog, 60))
		}
	})
	waitHealthy(t, ns, served, serveLog)

	// vmprov create, also in the namespace: BIND listens on the bridge.
	// libvirt is reached through its unix socket.
	vmprov := func(ctx context.Context, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, bin, "--config", cfg}, args...)...)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			return out, fmt.Errorf("vmprov %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out, nil
	}
	created := time.Now()
	out, err := vmprov(ctx, "create", "--name", "demo1", "--ip", "192.0.2.10", "--distro", "core",
		"--memory", "256", "--vcpus", "1", "--disk-size", "1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s ---\n%s", l.Libvirt.DomainLog("demo1"), tail(l.Libvirt.DomainLog("demo1"), 20))
		}
		if _, err := vmprov(context.Background(), "destroy", "demo1"); err != nil {
			t.Errorf("%v", err)
		}
	})
	var plan struct {
		MAC  string `json:"mac"`
		FQDN string `json:"fqdn"`
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatalf("vmprov create -o json: %v\n%s", err, out)
	}
	hexhyp := strings.ReplaceAll(plan.MAC, ":", "-")
	t.Logf("created demo1 (%s, %s)", plan.FQDN, plan.MAC)

	// Wait for the VM's initrd request, then look at what it did.
	const initrd = "/assets/centos/7/os/x86_64/images/pxeboot/initrd.img"
	var lines []logLine
	deadline := time.Now().Add(bootDeadline)
	for {
		lines = readLog(t, serveLog)
		if hasRequest(lines, initrd) {
			break
		}
		select {
		case err := <-served:
			t.Fatalf("vmprov serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request for %s within %v of create", initrd, bootDeadline)
		}
		time.Sleep(time.Second)
	}

	var ack *logLine
	for i, ln := range lines {
		if ln.MAC == plan.MAC && ln.Msg == "dhcp4 ACK" {
			ack = &lines[i]
			break
		}
	}
	if ack == nil {
		t.Errorf("no DHCPv4 ACK logged for %s", plan.MAC)
	} else {
		t.Logf("%6.1fs dhcp4 ACK %s file=%s class=%s", ack.Time.Sub(created).Seconds(), ack.MAC, ack.File, ack.Class)
		if want := "http://192.0.2.1:8080/boot.ipxe"; ack.File != want {
			t.Errorf("DHCPv4 ACK boot file = %q, want %q", ack.File, want)
		}
	}

	type req struct {
		File   string
		Status int
	}
	var got []req
	for _, ln := range lines {
		if ln.Msg != "http request" || ln.IP != "192.0.2.10" {
			continue
		}
		t.Logf("%6.1fs GET %s %d", ln.Time.Sub(created).Seconds(), ln.File, ln.Status)
		got = append(got, req{ln.File, ln.Status})
	}
	want := []req{
		{"/boot.ipxe", 200},
		{"/mac/" + hexhyp + "/ipxe", 404},
		{"/pxedust", 200},
		{"/bootstrap/example/default.ipxe", 200}, // boot.site: the first label of dns.zone
		{"/bootstrap/install/default.ipxe", 200},
		{"/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz", 200},
		{initrd, 200},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HTTP requests of 192.0.2.10 (-want +got):\n%s", diff)
	}
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
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var ln logLine
		if json.Unmarshal(sc.Bytes(), &ln) == nil {
			lines = append(lines, ln)
		}
	}
	return lines
}

func hasRequest(lines []logLine, file string) bool {
	for _, ln := range lines {
		if ln.Msg == "http request" && ln.File == file {
			return true
		}
	}
	return false
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
