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

	"github.com/vmprov/vmprov/test/lab"
)

// serveLab is a lab (test/lab) with `vmprov serve` running in its
// namespace on br135: HTTP on port 8080 of every address there
// (192.0.2.1 and 2001:db8:135::1), TFTP on 192.0.2.1, DHCPv4 and DHCPv6.
type serveLab struct {
	lab      *lab.Lab
	ns       string
	bin      string // the vmprov binary built for the test
	cfg      string // its config file
	serveDir string // serve.dir
	log      string // serve's JSON log
	served   chan error
}

// serveLabOptions adds to the config startServeLab writes.
type serveLabOptions struct {
	ROM   string // libvirt.rom: the option ROM of every interface
	Setup func(t *testing.T, serveDir string)
}

// Boot service URLs of the lab: what the config and an embedded ROM
// script name.
const (
	labBootURL   = "http://192.0.2.1:8080"
	labBootURLv6 = "http://[2001:db8:135::1]:8080"
)

// buildVmprov builds the vmprov command into dir.
func buildVmprov(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vmprov")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/vmprov/vmprov/cmd/vmprov").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServeLab brings up a lab with libvirtd and radvd, writes a config
// for it with stand-in kernel and initrd under serve.dir, and runs `vmprov
// serve` in the lab namespace until the test ends.
func startServeLab(t *testing.T, bin string, opts serveLabOptions) *serveLab {
	t.Helper()
	tmp := t.TempDir()
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
	l, err := lab.Up(t.Context(), lab.Options{Dir: labDir, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	s := &serveLab{lab: l, ns: ns, bin: bin, cfg: filepath.Join(tmp, "vmprov.yaml"),
		serveDir: filepath.Join(tmp, "serve"), log: filepath.Join(tmp, "serve.log"), served: make(chan error, 1)}

	// Stand-in kernel and initrd where install/default.ipxe looks for
	// distribution core; iPXE fetches them and then fails to boot them.
	pxeboot := filepath.Join(s.serveDir, "assets", "centos", "7", "os", "x86_64", "images", "pxeboot")
	if err := os.MkdirAll(pxeboot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if err := os.WriteFile(filepath.Join(pxeboot, f), []byte("not a "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Setup != nil {
		opts.Setup(t, s.serveDir)
	}

	rom := ""
	if opts.ROM != "" {
		rom = fmt.Sprintf(", rom: %q", opts.ROM)
	}
	yaml := fmt.Sprintf(`dns:
  server: %q
  zone: %s
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %q}
libvirt: {uri: %q, domain_type: qemu, pool: %s%s}
boot:
  url: %q
  url_v6: %q
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64", dns_servers: [192.0.2.1]}
serve:
  interfaces: [br135]
  http: ":8080"
  tftp: "192.0.2.1:69"
  dir: %q
`, l.State.DNS, l.State.Zone, l.State.KeyFile, l.State.LibvirtURI, l.State.Pool, rom, labBootURL, labBootURLv6, s.serveDir)
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command("ip", "netns", "exec", ns, bin, "serve", "--config", s.cfg, "--log-json", "-v")
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() { s.served <- serve.Wait() }()
	t.Cleanup(func() {
		defer logf.Close()
		_ = serve.Process.Signal(syscall.SIGTERM) // `ip netns exec` execs vmprov: this is its PID
		select {
		case err := <-s.served:
			s.served <- err
		case <-time.After(15 * time.Second):
			_ = serve.Process.Kill()
			s.served <- <-s.served
		}
		if t.Failed() {
			t.Logf("--- %s ---\n%s", s.log, tail(s.log, 80))
		}
	})
	waitHealthy(t, ns, s.served, s.log)
	return s
}

// vmprov runs the vmprov command with the lab's config in the namespace,
// where BIND listens; libvirtd is reached through its unix socket.
func (s *serveLab) vmprov(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", s.ns, s.bin, "--config", s.cfg}, args...)...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("vmprov %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// createdVM is the part of `vmprov create -o json` the tests use.
type createdVM struct {
	Name string `json:"name"`
	FQDN string `json:"fqdn"`
	MAC  string `json:"mac"`
	IPv4 string `json:"ipv4"`
	IPv6 string `json:"ipv6"`
}

// hexhyp is the MAC as iPXE's ${mac:hexhyp} writes it.
func (v createdVM) hexhyp() string { return strings.ReplaceAll(v.MAC, ":", "-") }

// create runs `vmprov create --name NAME --distro core` with small sizes
// and args, and destroys the VM when the test ends.
func (s *serveLab) create(t *testing.T, name string, args ...string) createdVM {
	t.Helper()
	argv := append([]string{"create", "--name", name, "--distro", "core",
		"--memory", "256", "--vcpus", "1", "--disk-size", "1", "-o", "json"}, args...)
	out, err := s.vmprov(t.Context(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s ---\n%s", s.lab.Libvirt.DomainLog(name), tail(s.lab.Libvirt.DomainLog(name), 20))
		}
		if _, err := s.vmprov(context.Background(), "destroy", name); err != nil {
			t.Errorf("%v", err)
		}
	})
	var vm createdVM
	if err := json.Unmarshal(out, &vm); err != nil {
		t.Fatalf("vmprov create -o json: %v\n%s", err, out)
	}
	t.Logf("created %s (%s, mac %s, ipv4 %q, ipv6 %q)", name, vm.FQDN, vm.MAC, vm.IPv4, vm.IPv6)
	return vm
}

// event is one JSON line of serve's log with the fields the boot tests
// look at beyond logLine's.
type event struct {
	logLine
	Arch  string `json:"arch"`
	Bytes int64  `json:"bytes"`
	Type  string `json:"type"`
}

// readEvents parses the JSON lines of the serve log logged at or after
// since; other lines are skipped.
func readEvents(t *testing.T, path string, since time.Time) []event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil && !e.Time.Before(since) {
			evs = append(evs, e)
		}
	}
	return evs
}

// waitEvent polls serve's log until match holds for one of the events since
// since, within deadline, and returns all events read then. It fails the
// test when serve exits or the deadline passes.
func (s *serveLab) waitEvent(t *testing.T, since time.Time, deadline time.Duration, what string, match func(event) bool) []event {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		evs := readEvents(t, s.log, since)
		for _, e := range evs {
			if match(e) {
				return evs
			}
		}
		select {
		case err := <-s.served:
			s.served <- err
			t.Fatalf("vmprov serve exited: %v", err)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("no %s within %v", what, deadline)
		}
		time.Sleep(time.Second)
	}
}

// httpReq is one HTTP request from serve's log.
type httpReq struct {
	File   string
	Status int
}

// requestsOf returns the HTTP requests of the client at ip, in order.
func requestsOf(t *testing.T, evs []event, ip string, start time.Time) []httpReq {
	t.Helper()
	var got []httpReq
	for _, e := range evs {
		if e.Msg != "http request" || e.IP != ip {
			continue
		}
		t.Logf("%6.1fs GET %s %d", e.Time.Sub(start).Seconds(), e.File, e.Status)
		got = append(got, httpReq{e.File, e.Status})
	}
	return got
}

// installChain is what iPXE requests after the /pxedust of a host created
// with --distro core: boot.site is the first label of dns.zone.
var installChain = []httpReq{
	{"/bootstrap/example/default.ipxe", 200},
	{"/bootstrap/install/default.ipxe", 200},
	{kernelPath, 200},
	{initrdPath, 200},
}

// Kernel and initrd of distribution core, under serve.dir.
const (
	kernelPath = "/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz"
	initrdPath = "/assets/centos/7/os/x86_64/images/pxeboot/initrd.img"
)
