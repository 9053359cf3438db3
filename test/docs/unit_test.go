package docs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/tftp"
	"github.com/vmprov/vmprov/test/lab"
)

// unitFile is a parsed systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

// parseUnit reads the subset of systemd's unit syntax vmprov's unit uses:
// [Section] headers, Key=Value lines, # and ; comments, no continuations.
func parseUnit(text string) (unitFile, error) {
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, "\\"):
			return nil, fmt.Errorf("line %d: continuation lines are not supported", n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is not Key=Value inside a section", n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u, sc.Err()
}

// last returns the effective value of a single-valued setting.
func (u unitFile) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// words returns the space-separated values of a list setting, all
// assignments joined (an empty assignment resets the list, as in systemd).
func (u unitFile) words(section, key string) []string {
	var ws []string
	for _, v := range u[section][key] {
		if v == "" {
			ws = nil
			continue
		}
		ws = append(ws, strings.Fields(v)...)
	}
	return ws
}

const unitPath = "deploy/vmprov-serve.service"

func readUnit(t *testing.T) unitFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), unitPath))
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatalf("%s: %v", unitPath, err)
	}
	return u
}

// neededCapabilities derives what `vmprov serve` needs from the ports it
// binds with the default configuration and from how its DHCP sockets are
// opened (bound to serve.interfaces with SO_BINDTODEVICE).
func neededCapabilities(t *testing.T) []string {
	t.Helper()
	var c config.Config
	c.SetDefaults()
	ports := []int{dhcpv4.ServerPort, dhcpv6.DefaultServerPort}
	for _, addr := range []string{c.Serve.HTTP, c.Serve.TFTP} {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("default listen address %q: %v", addr, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("default listen address %q: %v", addr, err)
		}
		ports = append(ports, n)
	}
	var caps []string
	if slices.ContainsFunc(ports, func(p int) bool { return p < 1024 }) {
		caps = append(caps, "CAP_NET_BIND_SERVICE") // ports 67, 69, 80, 547
	}
	caps = append(caps, "CAP_NET_RAW") // SO_BINDTODEVICE on Linux before 5.7
	return caps
}

// TestServeUnitFile checks deploy/vmprov-serve.service: the command line,
// the capabilities (exactly what serve needs for its ports and sockets), the
// unprivileged user and the sandboxing that must not take those away.
func TestServeUnitFile(t *testing.T) {
	u := readUnit(t)
	svc := "Service"
	if got, want := u.last(svc, "ExecStart"), "/usr/local/bin/vmprov serve --config /etc/vmprov/vmprov.yaml"; got != want {
		t.Errorf("ExecStart=%s, want %s", got, want)
	}
	need := neededCapabilities(t)
	slices.Sort(need)
	for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		got := u.words(svc, key)
		slices.Sort(got)
		if diff := cmp.Diff(need, got); diff != "" {
			t.Errorf("%s (-needed +unit):\n%s", key, diff)
		}
	}
	if user := u.last(svc, "User"); (user == "" || user == "root" || user == "0") && u.last(svc, "DynamicUser") != "yes" {
		t.Errorf("User=%q: the unit must run as an unprivileged user", user)
	}
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes",
		"Restart":         "on-failure",
		"ProtectSystem":   "strict",
		"PrivateTmp":      "yes",
		"StateDirectory":  "vmprov",
	} {
		if got := u.last(svc, key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	// Settings under which the capabilities or sockets would not work.
	for key, bad := range map[string]string{
		"PrivateUsers":   "yes", // capabilities would hold only in a user namespace
		"PrivateNetwork": "yes", // no access to serve.interfaces
		"User":           "root",
	} {
		if got := u.last(svc, key); got == bad {
			t.Errorf("%s=%s: vmprov serve cannot work with it", key, got)
		}
	}
	var c config.Config
	c.SetDefaults()
	if got := "/var/lib/" + u.last(svc, "StateDirectory"); got != c.Serve.Dir {
		t.Errorf("StateDirectory is %s, but serve.dir defaults to %s", got, c.Serve.Dir)
	}
	if ro := u.words(svc, "ReadOnlyPaths"); !slices.Contains(ro, filepath.Dir(config.DefaultPath)) {
		t.Errorf("ReadOnlyPaths=%v lacks %s", ro, filepath.Dir(config.DefaultPath))
	}
	fam := u.words(svc, "RestrictAddressFamilies")
	for _, f := range []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"} {
		if !slices.Contains(fam, f) {
			t.Errorf("RestrictAddressFamilies=%v lacks %s (sockets, interface addresses, logging)", fam, f)
		}
	}
}

// TestServeUnitFileLimit checks that the unit's LimitNOFILE covers the
// file descriptors vmprov serve may hold at the default serve.limits, and
// that those defaults are the servers' own bounds, so that neither can
// drift from the other.
func TestServeUnitFileLimit(t *testing.T) {
	u := readUnit(t)
	v := u.last("Service", "LimitNOFILE")
	soft, _, _ := strings.Cut(v, ":") // SOFT[:HARD]
	limit, err := strconv.Atoi(soft)
	if err != nil {
		t.Fatalf("LimitNOFILE=%q: want a number of files", v)
	}
	var c config.Config
	c.SetDefaults()
	l := c.Serve.Limits
	if need := l.Files(); limit < need {
		t.Errorf("LimitNOFILE=%d, but the default serve.limits (%d TFTP transfers, %d HTTP connections) need %d", limit, l.TFTPTransfers, l.HTTPConnections, need)
	}
	for _, b := range []struct {
		name       string
		serve, own int
	}{
		{"serve.limits.tftp_transfers and tftp.MaxTransfers", l.TFTPTransfers, tftp.MaxTransfers},
		{"serve.limits.tftp_transfers_per_client and tftp.MaxTransfersPerClient", l.TFTPTransfersPerClient, tftp.MaxTransfersPerClient},
		{"serve.limits.http_connections and httpboot.MaxConnections", l.HTTPConnections, httpboot.MaxConnections},
		{"config.FilesPerTFTPTransfer and tftp.FilesPerTransfer", config.FilesPerTFTPTransfer, tftp.FilesPerTransfer},
	} {
		if b.serve != b.own {
			t.Errorf("%s differ: %d and %d", b.name, b.serve, b.own)
		}
	}
}

// TestREADMECapabilities checks that README's capability table under
// "## Deploying vmprov serve" lists exactly the unit's capabilities.
func TestREADMECapabilities(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Deploying vmprov serve\n")
	if !ok {
		t.Fatal("README.md has no section ## Deploying vmprov serve")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `CAP_") {
			c, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			listed = append(listed, c)
		}
	}
	unit := readUnit(t).words("Service", "AmbientCapabilities")
	slices.Sort(listed)
	slices.Sort(unit)
	if diff := cmp.Diff(unit, listed); diff != "" {
		t.Errorf("README's capability table (-unit +README):\n%s", diff)
	}
}

func TestParseUnit(t *testing.T) {
	u, err := parseUnit("# c\n[Service]\nA=1\n; c\nL=x y\nL=z\nL=\nL=w\n[Install]\nWantedBy=multi-user.target\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.last("Service", "A"); got != "1" {
		t.Errorf("A = %q", got)
	}
	if diff := cmp.Diff([]string{"w"}, u.words("Service", "L")); diff != "" {
		t.Errorf("L (-want +got):\n%s", diff)
	}
	if got := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy = %q", got)
	}
	for _, bad := range []string{"A=1\n", "[S]\nnoequals\n", "[S]\nA=1 \\\n"} {
		if _, err := parseUnit(bad); err == nil {
			t.Errorf("parseUnit(%q) succeeded", bad)
		}
	}
}

// buildVmprov builds cmd/vmprov into a directory every user can read and
// returns the binary's path.
func buildVmprov(t *testing.T) string {
	t.Helper()
	dir := publicTempDir(t)
	bin := filepath.Join(dir, "vmprov")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/vmprov")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/vmprov: %v\n%s", err, out)
	}
	return bin
}

// publicTempDir is a temporary directory with mode 0755, removed when t ends.
func publicTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vmprov-docs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServeUnitRuns checks the unit against the real binary: ExecStart's
// command and flags exist (`vmprov serve --help`), systemd-analyze accepts
// the unit without a warning, and `vmprov serve` started as an unprivileged
// user with exactly the unit's capabilities binds DHCPv4, DHCPv6, TFTP and
// HTTP on a bridge, while without CAP_NET_BIND_SERVICE it cannot.
func TestServeUnitRuns(t *testing.T) {
	u := readUnit(t)
	exe := strings.Fields(u.last("Service", "ExecStart"))
	if len(exe) < 2 {
		t.Fatalf("ExecStart=%q", u.last("Service", "ExecStart"))
	}
	bin := buildVmprov(t)

	t.Run("flags", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), bin, exe[1], "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("vmprov %s --help: %v\n%s", exe[1], err, out)
		}
		if !strings.Contains(string(out), "vmprov "+exe[1]) {
			t.Errorf("vmprov %s --help does not describe %s:\n%s", exe[1], exe[1], out)
		}
		for _, a := range exe[2:] {
			if strings.HasPrefix(a, "-") && !strings.Contains(string(out), " "+a+" ") {
				t.Errorf("ExecStart flag %s is not in `vmprov %s --help`:\n%s", a, exe[1], out)
			}
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("needs systemd-analyze (Debian package systemd)")
		}
		// verify checks that ExecStart's program exists: point it at the
		// binary just built; everything else is the unit as shipped.
		b, err := os.ReadFile(filepath.Join(repoRoot(t), unitPath))
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(t.TempDir(), "vmprov-serve.service")
		text := strings.Replace(string(b), "ExecStart="+exe[0]+" ", "ExecStart="+bin+" ", 1)
		if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), sa, "verify", "--man=no", unit)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
		}
		// Exposure 0.0 (fully sandboxed) to 10.0; the unit scores 1.5.
		out, err := exec.CommandContext(t.Context(), sa, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security --threshold=20 (exposure 2.0): %v\n%s", err, out)
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		caps := u.words("Service", "AmbientCapabilities")
		seg := lab.SegmentForTest(t)
		for _, b := range []string{"setpriv", "ss"} {
			if _, err := exec.LookPath(b); err != nil {
				t.Skipf("needs %s (Debian packages util-linux, iproute2)", b)
			}
		}
		cfg := serveConfig(t, seg.Bridge)
		t.Run("unit capabilities", func(t *testing.T) {
			p := startServe(t, seg.Router, bin, cfg, caps)
			if err := p.waitHealthy(t.Context(), seg.Router, netip.AddrPortFrom(seg.Bridge.IPv4.Addr(), 80)); err != nil {
				t.Fatalf("%v\n%s", err, p.log.String())
			}
			ss, err := seg.Router.Exec(t.Context(), "ss", "-H", "-l", "-n", "-u", "-t")
			if err != nil {
				t.Fatal(err)
			}
			// TFTP listens on serve.interfaces' addresses, not on every one.
			tftp := "udp:" + seg.Bridge.IPv4.Addr().String() + ":69"
			for _, want := range []string{"udp:0.0.0.0:67", "udp:*:547", tftp, "tcp:*:80"} {
				if !listening(ss, want) {
					t.Errorf("no socket %s in the namespace:\n%s\n--- serve ---\n%s", want, ss, p.log.String())
				}
			}
			for _, line := range strings.Split(ss, "\n") {
				if f := strings.Fields(line); len(f) >= 5 && f[0] == "udp" && slices.Contains([]string{"*:69", "0.0.0.0:69", "[::]:69"}, f[4]) {
					t.Errorf("TFTP listens on every address (%s), want only %s's", f[4], seg.Bridge.Name)
				}
			}
			if err := p.stop(); err != nil {
				t.Errorf("vmprov serve on SIGTERM: %v\n%s", err, p.log.String())
			}
		})
		t.Run("without CAP_NET_BIND_SERVICE", func(t *testing.T) {
			fewer := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "CAP_NET_BIND_SERVICE" })
			p := startServe(t, seg.Router, bin, cfg, fewer)
			err := p.wait(30 * time.Second)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(p.log.String(), "permission denied") {
				t.Errorf("vmprov serve without CAP_NET_BIND_SERVICE: %v, want a failure to bind\n%s", err, p.log.String())
			}
		})
	})
}

// serveConfig writes a configuration serving br (ports 67, 69, 80, 547)
// into a directory the nobody user can read, with serve.dir writable by it.
func serveConfig(t *testing.T, br lab.Bridge) string {
	t.Helper()
	dir := publicTempDir(t)
	secret := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secret, []byte(lab.GenerateSecret()+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	serveDir := filepath.Join(dir, "serve")
	if err := os.Mkdir(serveDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{secret, serveDir} {
		if err := os.Chown(p, 0, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(serveDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vmprov.yaml")
	text := fmt.Sprintf(`dns: {server: "127.0.0.1:53", zone: example.com., tsig: {secret_file: %q}}
boot: {url: "http://%s"}
vlans:
  - {id: 135, bridge: %s, ipv4: %s, gateway: %s, ipv6: %q}
serve: {interfaces: [%s], http: ":80", tftp: ":69", dir: %q}
`, secret, br.IPv4.Addr(), br.Name, br.IPv4.Masked(), br.IPv4.Addr(), br.IPv6.Masked(), br.Name, serveDir)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// nobody is the unprivileged uid and gid serve runs as in the tests.
const nobody = 65534

// serveProc is a `vmprov serve` started by startServe.
type serveProc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
}

// startServe runs `vmprov serve --config cfg` in ns as uid/gid nobody with
// no new privileges and exactly caps (systemd names, CAP_...) as ambient,
// inheritable and bounding set, like the unit's User=, NoNewPrivileges= and
// capability settings. It is killed by PID when t ends.
func startServe(t *testing.T, ns *lab.Namespace, bin, cfg string, caps []string) *serveProc {
	t.Helper()
	var names []string
	for _, c := range caps {
		names = append(names, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	set := strings.Join(append([]string{"-all"}, names...), ",")
	args := []string{"netns", "exec", ns.Name, "setpriv",
		"--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups", "--no-new-privs",
		"--inh-caps", set, "--ambient-caps", set, "--bounding-set", set,
		"--", bin, "serve", "--config", cfg}
	p := &serveProc{log: &bytes.Buffer{}, done: make(chan error, 1)}
	// ip netns exec and setpriv exec in place: the PID is vmprov's.
	p.cmd = exec.Command("ip", args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit error, or an error if the process is still running
// after timeout.
func (p *serveProc) wait(timeout time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		return errors.New("still running")
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.wait(20 * time.Second)
}

// waitHealthy polls GET /healthz at addr inside ns until it answers 200,
// the process exits, or a minute passes.
func (p *serveProc) waitHealthy(ctx context.Context, ns *lab.Namespace, addr netip.AddrPort) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(_ context.Context, network, address string) (net.Conn, error) { return ns.Dial(network, address) },
	}}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := p.wait(0); err == nil || !strings.Contains(err.Error(), "still running") {
			return fmt.Errorf("vmprov serve exited: %v", err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("vmprov serve: /healthz did not answer 200 within a minute")
}

// listening reports whether `ss -H -l -n -u -t` output has a socket
// "proto:addr:port" (e.g. "udp:0.0.0.0:67"; "*" matches any address).
func listening(ss, want string) bool {
	proto, rest, _ := strings.Cut(want, ":")
	i := strings.LastIndex(rest, ":")
	addr, port := rest[:i], rest[i+1:]
	for _, line := range strings.Split(ss, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != proto {
			continue
		}
		local := f[4]
		j := strings.LastIndex(local, ":")
		if j < 0 || local[j+1:] != port {
			continue
		}
		la, _, _ := strings.Cut(local[:j], "%") // 0.0.0.0%br135: bound to a device
		if addr == "*" || la == addr {
			return true
		}
	}
	return false
}

func TestListening(t *testing.T) {
	ss := "udp UNCONN 0 0 0.0.0.0%br135:67 0.0.0.0:*\nudp UNCONN 0 0 [::]%br135:547 [::]:*\ntcp LISTEN 0 4096 *:80 *:*\n"
	for _, tt := range []struct {
		want string
		ok   bool
	}{
		{"udp:0.0.0.0:67", true},
		{"udp:*:547", true},
		{"tcp:*:80", true},
		{"udp:*:80", false},
		{"udp:*:69", false},
		{"udp:127.0.0.1:67", false},
	} {
		if got := listening(ss, tt.want); got != tt.ok {
			t.Errorf("listening(%s) = %v, want %v", tt.want, got, tt.ok)
		}
	}
}
