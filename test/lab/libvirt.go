package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PoolName is the dir storage pool StartLibvirt creates.
const PoolName = "vmprov"

// LibvirtTCPPort is where a fleet hypervisor's libvirtd listens for
// qemu+tcp (libvirt's default).
const LibvirtTCPPort = 16509

// LibvirtReadyTimeout bounds how long StartLibvirt waits for libvirtd.
const LibvirtReadyTimeout = 60 * time.Second

// Libvirt is a libvirtd (with its virtlogd) started by StartLibvirt.
//
// It is a privileged libvirtd, but a private one: it runs in a mount
// namespace of its own where /etc/libvirt, /run/libvirt, /var/lib/libvirt,
// /var/cache/libvirt and /var/log/libvirt are bind mounts of directories
// under DIR/root. It therefore neither sees nor disturbs a system libvirtd or
// virtlogd (running or socket-activated), starts none of the system's
// networks or pools, and leaves nothing behind outside DIR. Its QEMU runs as
// root without a security driver, so disk images anywhere under DIR work.
type Libvirt struct {
	dir, netns string
	tcp        netip.Addr // libvirtd's listen_addr, when valid
	proc       *child     // libvirtd, when started by this process
	procs      []Process
	log        *slog.Logger
}

// StartLibvirt starts virtlogd and libvirtd for dir (which must exist) inside
// the network namespace netns (empty: the caller's), waits until
// qemu:///system?socket=DIR/run/libvirt-sock answers, and creates the dir
// storage pool PoolName at DIR/pool. Logs go to DIR/libvirtd.log and
// DIR/virtlogd.log, guests' QEMU logs to DomainLog(name). ctx bounds only the
// start; Stop ends everything, guests included.
func StartLibvirt(ctx context.Context, dir, netns string, log *slog.Logger) (*Libvirt, error) {
	return startLibvirt(ctx, dir, netns, netip.Addr{}, log)
}

// startLibvirt is StartLibvirt with libvirtd also listening, when tcp is
// valid, on LibvirtTCPPort of that address in netns, without TLS or
// authentication: qemu+tcp://TCP/system.
func startLibvirt(ctx context.Context, dir, netns string, tcp netip.Addr, log *slog.Logger) (*Libvirt, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start libvirtd: %w", err)
	}
	for _, bin := range []string{"libvirtd", "virtlogd", "virsh", "ip", "mount", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("start libvirtd: %w (install libvirt-daemon-system, libvirt-clients)", err)
		}
	}
	l := &Libvirt{dir: dir, netns: netns, tcp: tcp, log: log}
	if n := len(l.socket()); n > 107 {
		return nil, fmt.Errorf("start libvirtd: socket path %s is %d bytes, over the 107 a unix socket allows: use a shorter dir", l.socket(), n)
	}
	if err := l.start(ctx); err != nil {
		_ = l.Stop()
		return nil, fmt.Errorf("start libvirtd in %s: %w", dir, err)
	}
	return l, nil
}

// start writes the configuration and starts libvirtd. A first start runs it
// in a fresh mount namespace (libvirtScript) with a new virtlogd; a restart,
// while the virtlogd of the first start still runs, runs it in virtlogd's
// mount namespace, so that the new libvirtd takes over the guests the old
// one left running, their logs included.
func (l *Libvirt) start(ctx context.Context) error {
	if err := l.writeFiles(); err != nil {
		return err
	}
	copyCaps(CapabilitiesCache, l.capsDir())
	logPath := filepath.Join(l.dir, "libvirtd.log")
	env := []string{"LAB_DIR=" + l.dir, "LAB_NETNS=" + l.netns}
	if l.tcp.IsValid() {
		env = append(env, "LAB_LISTEN=--listen")
	}
	attr := &syscall.SysProcAttr{Setsid: true, Unshareflags: syscall.CLONE_NEWNS}
	argv := []string{"sh", "-ec", libvirtScript}
	vl, reuse := l.virtlogd()
	if reuse {
		// nsenter does not fork without -p: libvirtd keeps its PID.
		attr = &syscall.SysProcAttr{Setsid: true}
		argv = append([]string{"nsenter", "-t", strconv.Itoa(vl.PID), "-m", "--"}, argv...)
		env = append(env, "LAB_MOUNTED=1")
	}
	p, err := startChildAttr("libvirtd", "", logPath, attr, env, argv...)
	if err != nil {
		return err
	}
	l.proc = p
	l.procs = []Process{p.Process}
	if reuse {
		l.procs = append(l.procs, vl)
	}
	err = poll(ctx, LibvirtReadyTimeout, func() error {
		if done, why := p.exited(); done {
			return stopPolling{errors.New(why)}
		}
		_, err := l.Virsh(ctx, "version")
		return err
	})
	if err == nil && !reuse {
		if vl, perr := readPIDFile("virtlogd", filepath.Join(l.dir, "virtlogd.pid")); perr == nil {
			vl.Log = filepath.Join(l.dir, "virtlogd.log")
			l.procs = append(l.procs, vl)
		} else {
			err = perr
		}
	}
	if err == nil {
		err = l.createPool(ctx)
	}
	if err != nil {
		return fmt.Errorf("%w\n--- %s ---\n%s", err, logPath, tail(logPath, 30))
	}
	copyCaps(l.capsDir(), CapabilitiesCache)
	l.log.Info("libvirtd started", "pid", p.PID, "uri", l.URI(), "file", logPath)
	return nil
}

// virtlogd returns the virtlogd of the last start if it still runs.
func (l *Libvirt) virtlogd() (Process, bool) {
	for _, p := range l.procs {
		if p.Name == "virtlogd" && p.alive() {
			return p, true
		}
	}
	return Process{}, false
}

// stopDaemon stops libvirtd alone, like `systemctl stop libvirtd` on a
// host: guests and virtlogd keep running, and start takes them over again.
func (l *Libvirt) stopDaemon() error {
	if l.proc == nil {
		return nil
	}
	return l.proc.stop(15 * time.Second)
}

// signal sends sig to libvirtd if it still runs.
func (l *Libvirt) signal(sig syscall.Signal) error {
	if len(l.procs) == 0 || !l.procs[0].alive() {
		return fmt.Errorf("signal libvirtd of %s: not running", l.dir)
	}
	if err := syscall.Kill(l.procs[0].PID, sig); err != nil {
		return fmt.Errorf("signal libvirtd (pid %d): %w", l.procs[0].PID, err)
	}
	return nil
}

// libvirtScript runs in a fresh mount namespace (made private by the Go
// runtime): it hides the system's libvirt state behind DIR/root, starts
// virtlogd there and becomes libvirtd in the lab's network namespace. With
// LAB_MOUNTED set it runs in the mount namespace of an earlier start and only
// becomes libvirtd; LAB_LISTEN holds libvirtd's extra flags.
const libvirtScript = `
if [ -z "$LAB_MOUNTED" ]; then
	R="$LAB_DIR/root"
	for d in etc run lib cache log; do mkdir -p "$R/$d"; done
	for t in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
		[ -d "$t" ] || mkdir -p "$t"
	done
	mount --bind "$R/etc" /etc/libvirt
	mount --bind "$R/run" /run/libvirt
	mount --bind "$R/lib" /var/lib/libvirt
	mount --bind "$R/cache" /var/cache/libvirt
	mount --bind "$R/log" /var/log/libvirt
	virtlogd -d -f "$LAB_DIR/virtlogd.conf" -p "$LAB_DIR/virtlogd.pid"
fi
cp "$LAB_DIR/qemu.conf" /etc/libvirt/qemu.conf
if [ -n "$LAB_NETNS" ]; then
	exec ip netns exec "$LAB_NETNS" libvirtd -f "$LAB_DIR/libvirtd.conf" -p "$LAB_DIR/libvirtd.pid" $LAB_LISTEN
fi
exec libvirtd -f "$LAB_DIR/libvirtd.conf" -p "$LAB_DIR/libvirtd.pid" $LAB_LISTEN
`

func (l *Libvirt) writeFiles() error {
	for _, d := range []string{"run", filepath.Join("root", "run")} {
		if err := os.MkdirAll(filepath.Join(l.dir, d), 0o755); err != nil {
			return err
		}
	}
	// Inside the mount namespace the default socket paths lead to DIR/run
	// too, so that a program there that knows no socket= (virt-ssh-helper
	// of a qemu+ssh connection, for one) finds this libvirtd.
	for _, s := range []string{"libvirt-sock", "libvirt-sock-ro"} {
		link := filepath.Join(l.dir, "root", "run", s)
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Symlink(filepath.Join(l.dir, "run", s), link); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf(`# vmprov test lab: a private libvirtd reachable only through DIR/run.
unix_sock_dir = %q
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
`, filepath.Join(l.dir, "run"))
	if l.tcp.IsValid() {
		// Read only with --listen, which LAB_LISTEN adds.
		conf += fmt.Sprintf(`# and over TCP, unauthenticated: qemu+tcp://%s/system
listen_tls = 0
listen_tcp = 1
tcp_port = "%d"
listen_addr = %q
auth_tcp = "none"
`, l.tcp, LibvirtTCPPort, l.tcp)
	}
	files := map[string]string{
		"libvirtd.conf": conf,
		"virtlogd.conf": fmt.Sprintf("log_outputs = \"3:file:%s\"\n", filepath.Join(l.dir, "virtlogd.log")),
		// Root without a security driver: guests' files live in test temp
		// dirs that the libvirt-qemu user cannot traverse.
		"qemu.conf": `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
stdio_handler = "logd"
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(l.dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CapabilitiesCache keeps libvirt's QEMU capability probes between lab
// libvirtds: each one has a private /var/cache/libvirt, and probing QEMU
// costs seconds under TCG while a cached probe starts libvirtd in well under
// one. libvirtd checks every cached probe against the QEMU binary, itself and
// the host, and probes again when one is stale.
const CapabilitiesCache = "/var/cache/vmprov-lab/qemu-capabilities"

func (l *Libvirt) capsDir() string {
	return filepath.Join(l.dir, "root", "cache", "qemu", "capabilities")
}

// copyCaps copies the probe files of from into to, each by an atomic rename,
// so that concurrent labs never read a partial file. Errors only cost time,
// so they are ignored.
func copyCaps(from, to string) {
	files, _ := filepath.Glob(filepath.Join(from, "*.xml"))
	if len(files) == 0 || os.MkdirAll(to, 0o755) != nil {
		return
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		dst := filepath.Join(to, filepath.Base(f))
		if old, err := os.ReadFile(dst); err == nil && string(old) == string(b) {
			continue
		}
		tmp, err := os.CreateTemp(to, ".caps-*")
		if err != nil {
			continue
		}
		_, werr := tmp.Write(b)
		if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), dst) != nil {
			_ = os.Remove(tmp.Name())
		}
	}
}

func (l *Libvirt) socket() string { return filepath.Join(l.dir, "run", "libvirt-sock") }

// URI is the connection URI of this libvirtd.
func (l *Libvirt) URI() string { return "qemu:///system?socket=" + l.socket() }

// PoolDir is the target directory of the PoolName storage pool.
func (l *Libvirt) PoolDir() string { return filepath.Join(l.dir, "pool") }

// DomainLog is the path of the QEMU log of domain name.
func (l *Libvirt) DomainLog(name string) string {
	return filepath.Join(l.dir, "root", "log", "qemu", name+".log")
}

// HostPath is where this process sees path p of libvirtd's mount
// namespace: the files under /var/lib/libvirt (per-VM NVRAM, for one) are
// under DIR/root/lib here. Other paths are the same in both.
func (l *Libvirt) HostPath(p string) string {
	for _, m := range [][2]string{{"/var/lib/libvirt", "lib"}, {"/etc/libvirt", "etc"}, {"/run/libvirt", "run"},
		{"/var/cache/libvirt", "cache"}, {"/var/log/libvirt", "log"}} {
		if rest, ok := strings.CutPrefix(p, m[0]+"/"); ok {
			return filepath.Join(l.dir, "root", m[1], rest)
		}
	}
	return p
}

// Processes identifies libvirtd and virtlogd, for state files.
func (l *Libvirt) Processes() []Process { return append([]Process(nil), l.procs...) }

// Virsh runs `virsh -c URI ARGS...` with a 30 s limit and returns its output.
func (l *Libvirt) Virsh(ctx context.Context, args ...string) (string, error) {
	return run(ctx, append([]string{"virsh", "-q", "-c", l.URI()}, args...)...)
}

func (l *Libvirt) createPool(ctx context.Context) error {
	if err := os.MkdirAll(l.PoolDir(), 0o755); err != nil {
		return err
	}
	// A pool persisted by an earlier run in the same dir is reused.
	if _, err := l.Virsh(ctx, "pool-info", PoolName); err != nil {
		if _, err := l.Virsh(ctx, "pool-define-as", PoolName, "dir", "--target", l.PoolDir()); err != nil {
			return err
		}
	}
	out, err := l.Virsh(ctx, "pool-info", PoolName)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "running") {
		if _, err := l.Virsh(ctx, "pool-start", PoolName); err != nil {
			return err
		}
	}
	return nil
}

// Stop destroys every running guest (QEMU outlives libvirtd otherwise), then
// stops libvirtd and virtlogd by PID. Stopping twice is harmless.
func (l *Libvirt) Stop() error {
	return stopLibvirt(l.dir, l.procs, l.proc, l.log)
}

// stopLibvirt is Stop for a libvirtd that may have been started by another
// process (Down).
func stopLibvirt(dir string, procs []Process, own *child, log *slog.Logger) error {
	l := &Libvirt{dir: dir}
	var errs []error
	ctx := context.Background()
	// A paused libvirtd (Hypervisor.Pause) would hang virsh.
	for _, p := range procs {
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGCONT)
		}
	}
	if len(procs) > 0 && procs[0].alive() {
		if out, err := l.Virsh(ctx, "list", "--name"); err == nil {
			for _, name := range strings.Fields(out) {
				if _, err := l.Virsh(ctx, "destroy", name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for _, p := range procs {
		var err error
		if own != nil && p.PID == own.PID {
			err = own.stop(15 * time.Second)
		} else {
			err = p.Kill(15 * time.Second)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Guests libvirtd could not destroy: their pid files are in the private
	// /run/libvirt, which is DIR/root/run.
	pids, _ := filepath.Glob(filepath.Join(dir, "root", "run", "qemu", "*.pid"))
	for _, f := range pids {
		p, err := readPIDFile("qemu "+strings.TrimSuffix(filepath.Base(f), ".pid"), f)
		if err != nil || !strings.HasPrefix(procComm(p.PID), "qemu") {
			continue
		}
		if err := p.Kill(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if log != nil {
		log.Info("libvirtd stopped", "file", filepath.Join(dir, "libvirtd.log"), "err", err)
	}
	return err
}

// readPIDFile reads a daemon's pid file and records its start time.
func readPIDFile(name, path string) (Process, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Process{}, fmt.Errorf("%s pid: %w", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return Process{}, fmt.Errorf("%s pid in %s: %w", name, path, err)
	}
	st, err := procStartTime(pid)
	if err != nil {
		return Process{}, fmt.Errorf("%s pid %d from %s: not running: %w", name, pid, path, err)
	}
	return Process{Name: name, PID: pid, StartTime: st}, nil
}

func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
