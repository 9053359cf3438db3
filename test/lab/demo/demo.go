// Package demo is vmprov's lab scenario (seed 000), shared by `make lab`
// (vmprov-lab demo) and the end-to-end tests: in a lab brought up by lab.Up
// it writes a vmprov configuration, runs `vmprov serve` in the lab's
// namespace, creates VMs with the real `vmprov create` and follows their
// network boot in serve's JSON log, returning it as a Timeline of DHCP, HTTP
// and TFTP events.
//
// The kernel and initrd served under /assets are small local stand-ins: the
// kernel is a multiboot program (echokernel.S) that prints the command line
// and module strings iPXE hands it on the serial console, so the kernel
// command line rendered by the install script can be read back from the VM.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

// HTTPPort is where `vmprov serve` listens for HTTP, on every address of the
// lab's namespace.
const HTTPPort = 8080

// Site is boot.site: the first label of the lab's zone.
const Site = "example"

// PXEBootPath is where install/default.ipxe looks for the kernel and initrd
// of distribution core, under the mirror URL.
const PXEBootPath = "centos/7/os/x86_64/images/pxeboot"

//go:embed echokernel.S
var echoKernelSource []byte

// Env is `vmprov serve` running in a lab, with the files it uses.
type Env struct {
	Lab      *lab.Lab
	Bin      string // the vmprov binary
	Dir      string // vmprov.yaml, serve/ (serve.dir), serve.log
	Config   string // path of vmprov.yaml
	ServeLog string // serve's JSON log
	Serve    *lab.Daemon
	BootURL  string // boot.url: http://192.0.2.1:8080
	BootURL6 string // boot.url_v6 on the IPv6-only bridge, "" without one
	// EchoKernel is true when the served vmlinuz is the multiboot stand-in
	// that prints its command line; false when as/ld were missing and it
	// is a text file.
	EchoKernel bool
	log        *slog.Logger
}

// Setup writes DIR/vmprov.yaml for the lab (VLAN 135 on the lab's bridge,
// VLAN 136 on its IPv6-only bridge if the lab has one), the stand-in kernel
// and initrd under DIR/serve/assets, starts `vmprov serve --log-json -v` in
// the lab's namespace (recorded in the lab's state.json, so lab.Down stops
// it) and waits until its /healthz answers. bin is the vmprov binary.
func Setup(ctx context.Context, l *lab.Lab, bin, dir string, log *slog.Logger) (*Env, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	e := &Env{Lab: l, Bin: bin, Dir: dir, Config: filepath.Join(dir, "vmprov.yaml"),
		ServeLog: filepath.Join(dir, "serve.log"), log: log}
	if err := e.writeFiles(ctx); err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	e.Serve, err = l.Start("vmprov-serve", e.ServeLog, bin, "serve", "--config", e.Config, "--log-json", "-v")
	if err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	if err := e.waitHealthy(ctx, 60*time.Second); err != nil {
		return nil, fmt.Errorf("demo setup: vmprov serve: %w\n--- %s ---\n%s", err, e.ServeLog, Tail(e.ServeLog, 30))
	}
	log.Info("vmprov serve healthy", "pid", e.Serve.Process().PID, "file", e.ServeLog)
	return e, nil
}

// ConfigOptions are what differs between the lab's vmprov configuration
// for the demo and for a `vmprov serve` installed as a systemd unit
// (test/provision.sh).
type ConfigOptions struct {
	KeyFile  string // dns.tsig.secret_file; empty: the lab's key file
	ServeDir string // serve.dir (required)
	HTTPPort int    // serve.http's port, also in the boot URLs; 0: HTTPPort
	// TFTP is serve.tftp; empty: ":69", port 69 on every IPv4 and global
	// IPv6 address of serve.interfaces, so that UEFI PXE over IPv6 finds
	// TFTP at the global address its DHCPv6 tftp:// URL names.
	TFTP string
}

// Config is the lab's vmprov configuration (YAML): VLAN 135 on the lab's
// bridge, VLAN 136 on its IPv6-only bridge if it has one, DHCP on both, and
// the boot URLs of each address family.
type Config struct {
	YAML     string
	BootURL  string // boot.url: http://192.0.2.1:8080
	BootURL6 string // boot.url_v6 on the IPv6-only bridge, "" without one
}

// LabConfig writes the vmprov configuration of the lab whose state is st.
func LabConfig(st lab.State, o ConfigOptions) (Config, error) {
	br4, err := netip.ParsePrefix(st.IPv4)
	if err != nil {
		return Config{}, fmt.Errorf("lab bridge %s has no IPv4 address: %w", st.Bridge, err)
	}
	if o.ServeDir == "" {
		return Config{}, errors.New("lab config: no serve.dir")
	}
	if o.KeyFile == "" {
		o.KeyFile = st.KeyFile
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = HTTPPort
	}
	if o.TFTP == "" {
		o.TFTP = ":69"
	}
	port := fmt.Sprintf(":%d", o.HTTPPort)
	if o.HTTPPort == 80 {
		port = ""
	}
	var c Config
	c.BootURL = fmt.Sprintf("http://%s%s", br4.Addr(), port)
	vlans := []string{fmt.Sprintf(`  - {id: 135, bridge: %s, ipv4: %s, gateway: %s, ipv6: %q, dns_servers: [%s]}`,
		st.Bridge, br4.Masked(), br4.Addr(), mustMasked(st.IPv6), br4.Addr())}
	ifaces := []string{st.Bridge}
	for _, b := range st.More {
		p, err := netip.ParsePrefix(b.IPv6)
		if b.IPv4 != "" || err != nil || b.Name != lab.IPv6OnlyBridge().Name {
			continue
		}
		c.BootURL6 = fmt.Sprintf("http://[%s]%s", p.Addr(), port)
		vlans = append(vlans, fmt.Sprintf(`  - {id: 136, bridge: %s, ipv6: %q, gateway6: %q}`, b.Name, p.Masked(), p.Addr()))
		ifaces = append(ifaces, b.Name)
	}
	libvirt := "{domain_type: qemu}" // a lab without libvirtd
	if st.LibvirtURI != "" {
		libvirt = fmt.Sprintf("{uri: %q, domain_type: qemu, pool: %s}", st.LibvirtURI, st.Pool)
	}
	urlV6 := ""
	if c.BootURL6 != "" {
		urlV6 = fmt.Sprintf("  url_v6: %q\n", c.BootURL6)
	}
	c.YAML = fmt.Sprintf(`# vmprov configuration of the lab (written by vmprov-lab / test/lab/demo).
dns:
  server: %q
  zone: %s
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %q}
libvirt: %s
boot:
  url: %q
%s  # assets: "http://mirror.example.org/pub"   # a real mirror instead of the local stand-ins
vlans:
%s
serve:
  interfaces: [%s]
  http: ":%d"
  tftp: %q
  dir: %q
`, st.DNS, st.Zone, o.KeyFile, libvirt, c.BootURL, urlV6,
		strings.Join(vlans, "\n"), strings.Join(ifaces, ", "), o.HTTPPort, o.TFTP, o.ServeDir)
	return c, nil
}

func (e *Env) writeFiles(ctx context.Context) error {
	serveDir := filepath.Join(e.Dir, "serve")
	c, err := LabConfig(e.Lab.State, ConfigOptions{ServeDir: serveDir})
	if err != nil {
		return err
	}
	e.BootURL, e.BootURL6 = c.BootURL, c.BootURL6
	yaml := c.YAML
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(e.ServeLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(e.Config, []byte(yaml), 0o644); err != nil {
		return err
	}
	pxeboot := filepath.Join(serveDir, "assets", filepath.FromSlash(PXEBootPath))
	if err := os.MkdirAll(pxeboot, 0o755); err != nil {
		return err
	}
	kernel := filepath.Join(pxeboot, "vmlinuz")
	if err := BuildEchoKernel(ctx, kernel); err != nil {
		e.log.Warn("no multiboot stand-in kernel: serving a text file as vmlinuz", "err", err)
		if err := os.WriteFile(kernel, []byte("not a kernel: a stand-in of the vmprov lab\n"), 0o644); err != nil {
			return err
		}
	} else {
		e.EchoKernel = true
	}
	return os.WriteFile(filepath.Join(pxeboot, "initrd.img"), []byte("not an initrd: a stand-in of the vmprov lab\n"), 0o644)
}

func mustMasked(p string) string {
	if pp, err := netip.ParsePrefix(p); err == nil {
		return pp.Masked().String()
	}
	return ""
}

// BuildEchoKernel assembles echokernel.S into a flat multiboot image at
// path with binutils (as, ld).
func BuildEchoKernel(ctx context.Context, path string) error {
	for _, b := range []string{"as", "ld"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("build stand-in kernel: %w (install binutils)", err)
		}
	}
	tmp, err := os.MkdirTemp("", "vmprov-echokernel-")
	if err != nil {
		return fmt.Errorf("build stand-in kernel: %w", err)
	}
	defer os.RemoveAll(tmp)
	src, obj := filepath.Join(tmp, "echokernel.S"), filepath.Join(tmp, "echokernel.o")
	if err := os.WriteFile(src, echoKernelSource, 0o644); err != nil {
		return fmt.Errorf("build stand-in kernel: %w", err)
	}
	for _, argv := range [][]string{
		{"as", "--32", "-o", obj, src},
		{"ld", "-m", "elf_i386", "-Ttext=0x100000", "--oformat=binary", "-o", path, obj},
	} {
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("build stand-in kernel: %s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// waitHealthy polls /healthz from inside the namespace until it answers.
func (e *Env) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := e.BootURL + "/healthz"
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := e.Lab.Netns.Exec(cctx, "curl", "-sf", "-o", "/dev/null", url)
		cancel()
		if err == nil {
			return nil
		}
		if done, why := e.Serve.Exited(); done {
			return errors.New(why)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Vmprov runs the vmprov CLI with the lab's configuration inside the lab's
// namespace (where BIND listens) and returns its standard output; the error
// holds its standard error.
func (e *Env) Vmprov(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	argv := append([]string{"netns", "exec", e.Lab.State.Netns, e.Bin, "--config", e.Config}, args...)
	c := exec.CommandContext(ctx, "ip", argv...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("vmprov %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// Host is what `vmprov create -o json` reports about a new VM.
type Host struct {
	Name string     `json:"name"`
	FQDN string     `json:"fqdn"`
	VLAN int        `json:"vlan"`
	MAC  string     `json:"mac"`
	IPv4 netip.Addr `json:"-"`
	IPv6 netip.Addr `json:"-"`
}

// Addrs returns the host's valid addresses.
func (h Host) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// Create runs `vmprov create --name NAME ARGS... -o json` and returns the
// host and the time create was started, which timelines count from.
func (e *Env) Create(ctx context.Context, name string, args ...string) (Host, time.Time, error) {
	start := time.Now()
	out, err := e.Vmprov(ctx, append(append([]string{"create", "--name", name}, args...), "-o", "json")...)
	if err != nil {
		return Host{}, start, err
	}
	var raw struct {
		Host
		IPv4 *netip.Addr `json:"ipv4"`
		IPv6 *netip.Addr `json:"ipv6"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return Host{}, start, fmt.Errorf("vmprov create -o json: %w\n%s", err, out)
	}
	h := raw.Host
	if raw.IPv4 != nil {
		h.IPv4 = *raw.IPv4
	}
	if raw.IPv6 != nil {
		h.IPv6 = *raw.IPv6
	}
	e.log.Info("created", "name", h.Name, "fqdn", h.FQDN, "mac", h.MAC, "ipv4", h.IPv4, "ipv6", h.IPv6)
	return h, start, nil
}

// Destroy runs `vmprov destroy NAME`.
func (e *Env) Destroy(ctx context.Context, name string) error {
	_, err := e.Vmprov(ctx, "destroy", name)
	return err
}

// UseFleet writes DIR/vmprov-fleet.yaml, e's configuration with the
// hypervisors of f (hypervisors:, each with its memory_mib from memoryMiB
// when set) and libvirt.timeout timeout, and makes it e's configuration:
// e.Vmprov, e.Create and e.Boot then place VMs on the fleet. `vmprov serve`
// keeps running with the configuration it started with.
func (e *Env) UseFleet(f *lab.Fleet, timeout string, memoryMiB map[string]uint64) error {
	base, err := os.ReadFile(e.Config)
	if err != nil {
		return fmt.Errorf("use fleet: %w", err)
	}
	var sb strings.Builder
	sb.Write(base)
	sb.WriteString("hypervisors:\n")
	for _, h := range f.Hypervisors {
		line := fmt.Sprintf("  - {name: %s, uri: %q", h.Name, h.URI)
		if m := memoryMiB[h.Name]; m > 0 {
			line += fmt.Sprintf(", memory_mib: %d", m)
		}
		sb.WriteString(line + "}\n")
	}
	cfg := strings.Replace(sb.String(), "libvirt: {", "libvirt: {timeout: "+timeout+", ", 1)
	if !strings.Contains(cfg, "timeout: "+timeout) {
		return fmt.Errorf("use fleet: no libvirt: {...} line in %s to add the timeout to", e.Config)
	}
	path := filepath.Join(e.Dir, "vmprov-fleet.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("use fleet: %w", err)
	}
	e.Config = path
	return nil
}
