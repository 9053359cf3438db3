package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/test/lab"
)

// The addressing every stack gives its clients: VLAN 135, as the lab has it.
// The DNS servers are configuration only; no client resolves anything.
var (
	vlanID     = 135
	subnet4    = netip.MustParsePrefix("192.0.2.0/24")
	router4    = netip.MustParsePrefix("192.0.2.1/24")
	subnet6    = netip.MustParsePrefix("2001:db8:135::/64")
	router6    = netip.MustParsePrefix("2001:db8:135::1/64")
	dnsServer4 = netip.MustParseAddr("192.0.2.53")
	dnsServer6 = netip.MustParseAddr("2001:db8:135::53")
	// The server link of the relayed stack, where vmprov serves and
	// dhcrelay forwards to.
	serverLink4 = netip.MustParsePrefix("198.51.100.1/24")
	serverLink6 = netip.MustParsePrefix("2001:db8:100::1/64")
	relayUp4    = netip.MustParsePrefix("198.51.100.2/24")
	relayUp6    = netip.MustParsePrefix("2001:db8:100::2/64")
)

// leaseTime is serve.lease_time, in seconds.
const leaseTime = 3600

// clientTimeout bounds one client's exchange, from start to the address
// it reports.
const clientTimeout = 15 * time.Second

// host is a machine DNS knows: a strict MAC on VLAN 135, so that vmprov
// serve identifies it from its MAC alone, an A and an AAAA record (the
// EUI-64 address of the MAC).
type host struct {
	Name string
	MAC  net.HardwareAddr
	IPv4 netip.Addr
	IPv6 netip.Addr
}

func newHost(t *testing.T, name string, ip4 string) host {
	t.Helper()
	a := netip.MustParseAddr(ip4)
	mac, err := inventory.DefaultScheme().StrictMAC(vlanID, a)
	if err != nil {
		t.Fatal(err)
	}
	a6, err := inventory.EUI64(subnet6, mac)
	if err != nil {
		t.Fatal(err)
	}
	return host{Name: name, MAC: mac, IPv4: a, IPv6: a6}
}

// stack is `vmprov serve` with its own BIND, and the segment its clients
// plug into: either VLAN 135's bridge that vmprov serves on (direct), or a
// client bridge behind dhcrelay -4 and -6, with vmprov on another link
// (relayed).
type stack struct {
	Name     string
	Dir      string
	Bin      string
	Server   *lab.Namespace // vmprov serve and BIND
	Config   string
	ServeLog string
	// ServerID is the DHCPv4 server identifier clients must report.
	ServerID netip.Addr
	// Clients is the segment clients plug into: bridge br135 (192.0.2.1/24,
	// 2001:db8:135::1/64) in its router namespace.
	Clients *lab.Segment
	// Relay is the relay's namespace, the router of Clients (relayed
	// stack only).
	Relay *lab.Namespace
}

// newDirectStack serves VLAN 135 on the clients' bridge.
func newDirectStack(t *testing.T, bin string, hosts []host) *stack {
	t.Helper()
	s := &stack{Name: "direct", Bin: bin, Dir: t.TempDir(), Clients: lab.SegmentForTest(t)}
	s.Server, s.ServerID = s.Clients.Router, router4.Addr()
	s.serve(t, netip.AddrPortFrom(router4.Addr(), 53), s.Clients.Bridge.Name, hosts)
	return s
}

// newRelayedStack serves from bridge brs (198.51.100.1/24,
// 2001:db8:100::1/64) in a namespace of its own. The clients' segment is
// on the other side of the relay: its router namespace, the VLAN's router
// (192.0.2.1, 2001:db8:135::1), has a port on brs (198.51.100.2,
// 2001:db8:100::2). vmprov has no interface on the clients' bridge: only
// dhcrelay, started by startRelays, and routing connect the two.
func newRelayedStack(t *testing.T, bin string, hosts []host) *stack {
	t.Helper()
	ctx := t.Context()
	s := &stack{Name: "relayed", Bin: bin, Dir: t.TempDir(), Clients: lab.SegmentForTest(t), Server: lab.NamespaceForTest(t)}
	s.Relay = s.Clients.Router
	if err := s.Server.AddBridge(ctx, lab.Bridge{Name: "brs", IPv4: serverLink4, IPv6: serverLink6}); err != nil {
		t.Fatal(err)
	}
	err := lab.AddVeth(ctx,
		lab.VethEnd{Netns: s.Relay.Name, Name: "up0", Addrs: []netip.Prefix{relayUp4, relayUp6}},
		lab.VethEnd{Netns: s.Server.Name, Name: "relay0", Master: "brs"})
	if err != nil {
		t.Fatal(err)
	}
	// The relay is also the VLAN's router: replies to giaddr, and the
	// renewals bound clients unicast to the server (RFC 2131 section
	// 4.4.5), are routed between the links. (dhcrelay also relays the
	// copy of such a renewal that passes its client interface.)
	if _, err := s.Server.IP(ctx, "route", "add", subnet4.String(), "via", relayUp4.Addr().String(), "dev", "brs"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Relay.Exec(ctx, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}
	s.ServerID = serverLink4.Addr()
	s.serve(t, netip.AddrPortFrom(serverLink4.Addr(), 53), "brs", hosts)
	return s
}

// serve starts BIND on dnsAddr in the server namespace, writes the vmprov
// configuration (VLAN 135, DHCP on iface), publishes hosts with
// `vmprov host add` and starts `vmprov serve`, waiting until both DHCP
// servers listen.
func (s *stack) serve(t *testing.T, dnsAddr netip.AddrPort, iface string, hosts []host) {
	t.Helper()
	ctx := t.Context()
	bindDir := filepath.Join(s.Dir, "bind")
	if err := os.MkdirAll(bindDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := lab.StartBIND(ctx, lab.BINDConfig{
		Dir: bindDir, Listen: dnsAddr, Zone: lab.TestZone, ReverseZones: lab.TestReverseZones(),
		KeyName: "vmprov.", Algorithm: "hmac-sha256", Secret: lab.GenerateSecret(), Netns: s.Server.Name,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	s.Config = filepath.Join(s.Dir, "vmprov.yaml")
	cfg := fmt.Sprintf(`# vmprov configuration of the %s stack of test/interop.
dns:
  server: %q
  zone: %s
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %q}
libvirt: {domain_type: qemu}
boot:
  url: "http://%s:8080"
vlans:
  - {id: %d, ipv4: %s, gateway: %s, ipv6: %q, dns_servers: [%s, %q]}
serve:
  interfaces: [%s]
  http: ":8080"
  tftp: "off"
  dir: %q
  lease_time: %d
`, s.Name, dnsAddr, lab.TestZone, b.KeyFile(), dnsAddr.Addr(), vlanID, subnet4, router4.Addr(), subnet6,
		dnsServer4, dnsServer6, iface, filepath.Join(s.Dir, "serve"), leaseTime)
	if err := os.WriteFile(s.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		out, err := s.Server.Exec(ctx, s.Bin, "--config", s.Config, "host", "add", "--name", h.Name,
			"--mac", h.MAC.String(), "--ip", h.IPv4.String(), "--ipv6", h.IPv6.String(), "--distro", "core")
		if err != nil {
			t.Fatalf("vmprov host add %s: %v\n%s", h.Name, err, out)
		}
	}
	s.ServeLog = filepath.Join(s.Dir, "serve.log")
	p := startProc(t, s.Server.Name, "vmprov serve", s.ServeLog, s.Bin, "serve", "--config", s.Config, "--log-json", "-v")
	err = poll(ctx, 30*time.Second, func() error {
		if err := p.exited(); err != nil {
			return stop(err)
		}
		for _, msg := range []string{"dhcp4 listening", "dhcp6 listening"} {
			if !logHas(s.ServeLog, func(m map[string]any) bool { return m["msg"] == msg }) {
				return fmt.Errorf("no %q in %s", msg, s.ServeLog)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("vmprov serve (%s stack): %v\n%s", s.Name, err, tail(s.ServeLog, 30))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (%s stack) ---\n%s", s.ServeLog, s.Name, tail(s.ServeLog, 60))
		}
	})
}

// startRelays starts dhcrelay -4 and -6 in the relay namespace, between the
// client bridge and the server link, and waits until both are forwarding.
// The relay adds a relay agent information option (-a) and an Interface-ID
// (-I), which vmprov must echo. Call it once clients are plugged in: the
// client bridge has no IPv6 link-local address before it has a port.
func (s *stack) startRelays(t *testing.T) {
	t.Helper()
	if s.Relay == nil {
		return
	}
	logs := map[string]string{}
	for _, r := range []struct {
		name string
		argv []string
		// ready is the line dhcrelay logs when it has set up its sockets.
		ready string
	}{
		{"dhcrelay4", []string{"dhcrelay", "-4", "-d", "-a", "-pf", filepath.Join(s.Dir, "dhcrelay4.pid"),
			"-id", s.Clients.Bridge.Name, "-iu", "up0", serverLink4.Addr().String()}, "Sending on"},
		{"dhcrelay6", []string{"dhcrelay", "-6", "-d", "-I", "-pf", filepath.Join(s.Dir, "dhcrelay6.pid"),
			"-l", s.Clients.Bridge.Name, "-u", serverLink6.Addr().String() + "%up0"}, "Sending on"},
	} {
		log := filepath.Join(s.Dir, r.name+".log")
		logs[r.name] = log
		p := startProc(t, s.Relay.Name, r.name, log, r.argv...)
		err := poll(t.Context(), 10*time.Second, func() error {
			if err := p.exited(); err != nil {
				return stop(err)
			}
			b, _ := os.ReadFile(log)
			if !strings.Contains(string(b), r.ready) {
				return fmt.Errorf("no %q in %s", r.ready, log)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v\n%s", r.name, err, tail(log, 30))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for name, log := range logs {
				t.Logf("--- %s ---\n%s", name, tail(log, 40))
			}
		}
	})
}

// proc is a process the test started inside a network namespace, in a
// process group of its own. It is stopped by its saved PID when the test
// ends: SIGTERM to the group, then SIGKILL.
type proc struct {
	name string
	pid  int
	log  string
	done chan struct{}
	err  error // cmd.Wait's result, valid once done is closed
}

// startProc runs argv in netns (`ip netns exec`, which execs argv, so the
// PID is argv's) with stdout and stderr in logPath, and an environment of
// PATH only: what a client hands its hook is then only what it reports.
func startProc(t *testing.T, netns, name, logPath string, argv ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return p
}

// exited returns an error describing the exit if the process has exited.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) exited: %v", p.name, p.pid, p.err)
	default:
		return nil
	}
}

// wait waits up to timeout for the process to exit by itself and returns
// its exit error.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v", p.name, p.pid, timeout)
	}
}

// stop ends the process and whatever it left in its process group:
// SIGTERM to the group, up to 5 s to go, then SIGKILL.
func (p *proc) stop() error {
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.name, p.pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL", p.name, p.pid)
	}
}

// stopPolling wraps an error that makes further polling pointless.
type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }

func stop(err error) error { return stopPolling{err} }

// poll calls fn every 50 ms until it returns nil, returns an error made
// with stop, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var sp stopPolling
		if errors.As(err, &sp) {
			return sp.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logHas reports whether a JSON line of the log at path matches.
func logHas(path string, match func(map[string]any) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && match(m) {
			return true
		}
	}
	return false
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// silent lists the lines of serve's log where it did not answer, or
// answered with a NAK, or warned or logged an error. Every client here is
// known to DNS and on its VLAN, so each of its requests must be answered.
func (s *stack) silent() []string {
	var out []string
	f, err := os.Open(s.ServeLog)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var m struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Level == "WARN" || m.Level == "ERROR" {
			out = append(out, sc.Text())
			continue
		}
		for _, w := range []string{"ignored", "no answer", "no offer", "NAK", "another server"} {
			if strings.Contains(m.Msg, w) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}
