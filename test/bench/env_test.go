package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/test/lab"
)

// The segment every server and client share: a /20, the largest subnet a
// strict MAC addresses, inside the benchmarking range 198.18.0.0/15, and a
// /64 of the documentation prefix 2001:db8::/32 for DHCPv6.
var (
	serverPrefix  = netip.MustParsePrefix("198.18.0.1/20")
	clientPrefix  = netip.MustParsePrefix("198.18.0.2/20")
	firstHost     = netip.MustParseAddr("198.18.1.10")
	serverPrefix6 = netip.MustParsePrefix("2001:db8:18::1/64")
	clientPrefix6 = netip.MustParsePrefix("2001:db8:18::2/64")
	firstHost6    = netip.MustParseAddr("2001:db8:18::1:10")
)

const (
	zone       = "example.com."
	reverse    = "18.198.in-addr.arpa."
	reverse6   = "0.0.0.0.8.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa." // of 2001:db8:18::/64
	vlanID     = 100
	serverIf   = "bs0"
	clientIf   = "bc0"
	httpPort   = 8080
	peerPort   = 8081          // nginx
	bootFile   = "snponly.efi" // serve.loaders' default for architecture 7
	loaderSize = 1 << 20
	initrdSize = 64 << 20
	recordTTL  = 300
)

// host is one reservation: its DNS name, strict MAC and addresses.
type host struct {
	Name string
	IP   netip.Addr
	IP6  netip.Addr
	MAC  net.HardwareAddr
}

// env is the bench segment: a server namespace with BIND and serve.dir, a
// client namespace, a veth pair between them, and the vmprov binary.
type env struct {
	tb       testing.TB
	dir      string
	srv, cli *lab.Namespace
	bind     *lab.BIND
	hosts    []host
	serveDir string
	vmprov   string
	config   string
}

// newEnv builds the segment with n hosts in DNS and serve.dir holding the
// 1 MiB loader (tftp/snponly.efi) and the 64 MiB initrd (assets/initrd.img).
// It skips tb when not root or when a binary it needs is missing.
func newEnv(tb testing.TB, n int) *env {
	tb.Helper()
	lab.RequireRoot(tb, "ip", "named", "go")
	ctx := tb.Context()
	e := &env{tb: tb, dir: tb.TempDir()}
	e.srv = lab.NamespaceForTest(tb)
	e.cli = lab.NamespaceForTest(tb)
	if err := lab.AddVeth(ctx,
		lab.VethEnd{Netns: e.srv.Name, Name: serverIf, Addrs: []netip.Prefix{serverPrefix, serverPrefix6}},
		lab.VethEnd{Netns: e.cli.Name, Name: clientIf, Addrs: []netip.Prefix{clientPrefix, clientPrefix6}}); err != nil {
		tb.Fatal(err)
	}

	bindDir := filepath.Join(e.dir, "bind")
	if err := os.Mkdir(bindDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	b, err := lab.StartBIND(ctx, lab.BINDConfig{
		Dir:          bindDir,
		Listen:       netip.MustParseAddrPort("127.0.0.1:53"),
		Zone:         zone,
		ReverseZones: []string{reverse, reverse6},
		KeyName:      "vmprov.",
		Algorithm:    "hmac-sha256",
		Secret:       lab.GenerateSecret(),
		Netns:        e.srv.Name,
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	e.bind = b
	e.hosts = makeHosts(tb, n)
	e.loadDNS()

	// serve.dir, world-readable: tftpd-hpa and nginx's workers drop root
	// (the testing package makes its temporary directories private).
	e.serveDir = filepath.Join(e.dir, "serve")
	for _, d := range []string{"tftp", "assets"} {
		if err := os.MkdirAll(filepath.Join(e.serveDir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Dir(e.dir), e.dir, e.serveDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	writeFile(tb, filepath.Join(e.serveDir, "tftp", bootFile), pattern(loaderSize, 1))
	writeFile(tb, filepath.Join(e.serveDir, "tftp", "probe.txt"), []byte("probe\n"))
	writeFile(tb, filepath.Join(e.serveDir, "assets", "initrd.img"), pattern(initrdSize, 2))

	e.vmprov = filepath.Join(e.dir, "vmprov")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(bctx, "go", "build", "-o", e.vmprov, "github.com/vmprov/vmprov/cmd/vmprov").CombinedOutput(); err != nil {
		tb.Fatalf("go build vmprov: %v\n%s", err, out)
	}
	e.config = filepath.Join(e.dir, "vmprov.yaml")
	writeFile(tb, e.config, fmt.Appendf(nil, `dns:
  server: %q
  zone: %s
  reverse_zones: [%s]
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %q}
  ttl: %d
boot:
  url: "http://%s:%d"
vlans:
  - {id: %d, bridge: %s, ipv4: %s, gateway: %s, ipv6: %s, dns_servers: [%s, %s]}
serve:
  interfaces: [%s]
  http: "%s:%d"
  tftp: "%s:69"
  dir: %q
  lease_time: 3600
  limits: {tftp_transfers_per_client: 128}  # the benchmark's 100 TFTP clients share one address
`, b.Addr().String(), zone, reverse, b.KeyFile(), recordTTL,
		serverPrefix.Addr(), httpPort,
		vlanID, serverIf, serverPrefix.Masked(), serverPrefix.Addr(), serverPrefix6.Masked(), serverPrefix.Addr(), serverPrefix6.Addr(),
		serverIf, serverPrefix.Addr(), httpPort, serverPrefix.Addr(), e.serveDir))
	return e
}

// makeHosts returns n hosts from firstHost on, with their strict MACs.
func makeHosts(tb testing.TB, n int) []host {
	tb.Helper()
	scheme := inventory.DefaultScheme()
	hs := make([]host, n)
	ip, ip6 := firstHost, firstHost6
	for i := range hs {
		mac, err := scheme.StrictMAC(vlanID, ip)
		if err != nil {
			tb.Fatal(err)
		}
		if !serverPrefix.Contains(ip) {
			tb.Fatalf("%d hosts do not fit %s", n, serverPrefix.Masked())
		}
		hs[i] = host{Name: fmt.Sprintf("b%04d", i), IP: ip, IP6: ip6, MAC: mac}
		ip, ip6 = ip.Next(), ip6.Next()
	}
	return hs
}

// loadDNS writes every host's A, AAAA, PTR and TXT records with signed
// updates.
func (e *env) loadDNS() {
	e.tb.Helper()
	byZone := map[string][]dns.RR{}
	for _, h := range e.hosts {
		ih := inventory.Host{Name: h.Name, FQDN: h.Name + "." + zone, IPv4: h.IP, IPv6: h.IP6,
			Intent: inventory.Intent{{Key: inventory.KeyDistribution, Value: "bookworm"}}}
		for _, r := range ih.Records(zone) {
			rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", r.Name, recordTTL, r.Type, r.Data))
			if err != nil {
				e.tb.Fatal(err)
			}
			z := zone
			switch {
			case r.Type == "PTR" && strings.HasSuffix(r.Name, ".ip6.arpa."):
				z = reverse6
			case r.Type == "PTR":
				z = reverse
			}
			byZone[z] = append(byZone[z], rr)
		}
	}
	name, alg, _ := e.bind.TSIG()
	for z, rrs := range byZone {
		for len(rrs) > 0 {
			chunk := rrs[:min(len(rrs), 200)]
			rrs = rrs[len(chunk):]
			m := new(dns.Msg)
			m.SetUpdate(z)
			m.Insert(chunk)
			m.SetTsig(name, alg, 300, time.Now().Unix())
			r, err := e.bind.Exchange(e.tb.Context(), m)
			if err != nil {
				e.tb.Fatalf("dns update %s: %v", z, err)
			}
			if r.Rcode != dns.RcodeSuccess {
				e.tb.Fatalf("dns update %s: %s", z, dns.RcodeToString[r.Rcode])
			}
		}
	}
}

// pattern returns size deterministic bytes that differ per seed and
// do not repeat with a short period.
func pattern(size int, seed uint64) []byte {
	b := make([]byte, size)
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i < size; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// proc is a server started in a namespace, in the foreground, so that its
// PID is known; it is stopped by that PID.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs argv inside ns (`ip netns exec` execs it, keeping the PID)
// with stdout and stderr in logPath, and stops it when tb ends.
func start(tb testing.TB, name string, ns *lab.Namespace, logPath string, extraEnv []string, argv ...string) *proc {
	tb.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		if err := p.stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return p
}

// exited returns a description of the exit, or nil while p runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) exited: %v\n--- %s ---\n%s", p.name, p.cmd.Process.Pid, p.err, p.log, tail(p.log, 30))
	default:
		return nil
	}
}

// stop sends SIGTERM to p's PID, then SIGKILL after 10 s. Stopping twice
// is harmless.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitReady polls ready (bounded by 30 s) until it succeeds, failing tb
// early when p exits.
func waitReady(tb testing.TB, p *proc, what string, ready func() error) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if xerr := p.exited(); xerr != nil {
			tb.Fatalf("%s: %v", what, xerr)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not ready within 30s: %v\n--- %s ---\n%s", what, err, p.log, tail(p.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startVmprov runs `vmprov serve --config FILE` in the server namespace
// and waits until its HTTP health check answers.
func (e *env) startVmprov() *proc {
	e.tb.Helper()
	p := start(e.tb, "vmprov serve", e.srv, filepath.Join(e.dir, "vmprov.log"), nil, e.vmprov, "serve", "--config", e.config)
	c := e.httpClient()
	waitReady(e.tb, p, "vmprov serve", func() error {
		return httpGet(c, fmt.Sprintf("http://%s:%d/healthz", serverPrefix.Addr(), httpPort), io.Discard)
	})
	return p
}

// httpClient returns a client whose connections are opened in the client
// namespace.
func (e *env) httpClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return e.cli.Dial(network, addr)
			},
		},
	}
}

// httpGet copies the body of a 200 response to w.
func httpGet(c *http.Client, url string, w io.Writer) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
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

// runIn runs a bounded command in ns and returns its combined output.
func runIn(ctx context.Context, ns *lab.Namespace, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%s: killed after %v: %w", argv[0], timeout, err)
	}
	return out.String(), err
}

// requireBinaries skips tb when a peer or load generator is missing.
func requireBinaries(tb testing.TB, names ...string) {
	tb.Helper()
	lab.RequireRoot(tb, names...)
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
