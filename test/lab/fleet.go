package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HypervisorSpec describes one hypervisor of a fleet (Lab.StartFleet).
type HypervisorSpec struct {
	Name    string   // e.g. "hv1": names its namespace, directory and veth ends
	Bridges []string // lab bridges it has, e.g. {"br135"}; nil: all of them. The lab's first bridge is required: it carries the hypervisor's address.
	SSH     bool     // reached over qemu+ssh (an sshd of its own) rather than qemu+tcp
}

// DefaultFleet is the fleet of `vmprov-lab up --fleet` and of the fleet
// tests: hv1 over qemu+ssh and hv2 over qemu+tcp with br135 and br136, hv3
// over qemu+tcp with br135 only. The lab needs IPv6OnlyBridge in
// Options.More.
func DefaultFleet() []HypervisorSpec {
	return []HypervisorSpec{
		{Name: "hv1", Bridges: []string{"br135", "br136"}, SSH: true},
		{Name: "hv2", Bridges: []string{"br135", "br136"}},
		{Name: "hv3", Bridges: []string{"br135"}},
	}
}

// HypervisorState records a fleet hypervisor in DIR/state.json.
type HypervisorState struct {
	Name      string    `json:"name"`
	Netns     string    `json:"netns"`
	Addr      string    `json:"addr"`
	Bridges   []string  `json:"bridges"`
	Dir       string    `json:"dir"`
	URI       string    `json:"uri,omitempty"`       // from inside the lab's namespace
	LocalURI  string    `json:"local_uri,omitempty"` // from the host, over DIR/run/libvirt-sock
	Processes []Process `json:"processes"`           // libvirtd, virtlogd, sshd
}

// Fleet is a set of hypervisors attached to a lab, each a private libvirtd
// (see Libvirt) in a network namespace of its own whose bridges are joined to
// the lab's bridges of the same names by veth pairs: a guest on a
// hypervisor's br135 shares an L2 segment with everything on the lab's br135.
// Each hypervisor is reached from the lab's namespace over a real remote
// transport: qemu+tcp, or qemu+ssh through an sshd running in the
// hypervisor's mount and network namespaces.
//
// A Fleet and its Hypervisors are not safe for concurrent use.
type Fleet struct {
	Hypervisors []*Hypervisor // in spec order
	lab         *Lab
}

// Hypervisor is one libvirtd of a Fleet.
type Hypervisor struct {
	Name     string
	URI      string     // qemu+ssh://root@ADDR/system?... or qemu+tcp://ADDR/system, usable inside the lab's namespace
	LocalURI string     // the unix socket, usable from the host (the test's own checks)
	Netns    *Namespace // the hypervisor's namespace
	Addr     netip.Addr // its address on the lab's first bridge, e.g. 192.0.2.251
	Bridges  []string   // its bridges, as in the spec
	Libvirt  *Libvirt   // Virsh, DomainLog, PoolDir, HostPath on LocalURI
	ssh      bool
	sshd     *child
	index    int // in Lab.State.Fleet
	fleet    *Fleet
}

// FleetReadyTimeout bounds how long StartFleet and Restart wait for a
// hypervisor to answer on its remote URI.
const FleetReadyTimeout = 30 * time.Second

// maxFleet is the number of hypervisor addresses: .251 to .254 of a /24.
const maxFleet = 4

// StartFleet starts a hypervisor per spec, in order, and records each in
// DIR/state.json as it goes, so that Down stops them from any process.
// Hypervisor i (from 0) gets the address 251+i of the lab's first bridge's
// IPv4 prefix (192.0.2.251 for the first), on its own bridge of that name;
// its files are in DIR/fleet/NAME. StartFleet returns when every hypervisor
// answers on its remote URI from inside the lab's namespace. On failure the
// hypervisors started so far are stopped again. Lab.Close and Down stop the
// fleet, as does Fleet.Close.
func (l *Lab) StartFleet(ctx context.Context, specs []HypervisorSpec) (*Fleet, error) {
	specs = slices.Clone(specs)
	if err := l.checkFleet(specs); err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	fdir := filepath.Join(l.Dir, "fleet")
	if err := os.RemoveAll(fdir); err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	start := time.Now()
	f := &Fleet{lab: l}
	l.Fleet = f
	if slices.ContainsFunc(specs, func(s HypervisorSpec) bool { return s.SSH }) {
		if err := f.writeSSHClient(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("start fleet: %w", err), f.Close())
		}
	}
	for i, s := range specs {
		if err := f.start(ctx, i, s); err != nil {
			return nil, errors.Join(fmt.Errorf("start fleet: %s: %w", s.Name, err), f.Close())
		}
	}
	l.log.Info("fleet started", "n", len(specs), "dur", time.Since(start))
	return f, nil
}

// checkFleet validates specs against the lab and fills in their bridges.
func (l *Lab) checkFleet(specs []HypervisorSpec) error {
	if l.Fleet != nil || len(l.State.Fleet) > 0 {
		return errors.New("the lab has a fleet already")
	}
	if len(specs) == 0 || len(specs) > maxFleet {
		return fmt.Errorf("%d hypervisors: want 1 to %d", len(specs), maxFleet)
	}
	p, err := netip.ParsePrefix(l.State.IPv4)
	if err != nil || p.Bits() > 24 {
		return fmt.Errorf("the lab's bridge %s needs an IPv4 prefix of /24 or shorter, has %q", l.State.Bridge, l.State.IPv4)
	}
	bridges := []string{l.State.Bridge}
	for _, b := range l.State.More {
		bridges = append(bridges, b.Name)
	}
	seen := map[string]bool{}
	for i := range specs {
		s := &specs[i]
		if s.Name == "" || strings.ContainsAny(s.Name, "/ \t\n:") || seen[s.Name] {
			return fmt.Errorf("hypervisor name %q: want a unique, non-empty name without '/', ':' or spaces", s.Name)
		}
		seen[s.Name] = true
		if s.Bridges == nil {
			s.Bridges = bridges
		}
		if !slices.Contains(s.Bridges, l.State.Bridge) {
			return fmt.Errorf("hypervisor %s: bridges %v lack the lab's first bridge %s, which carries its address", s.Name, s.Bridges, l.State.Bridge)
		}
		for _, b := range s.Bridges {
			if !slices.Contains(bridges, b) {
				return fmt.Errorf("hypervisor %s: bridge %s is not one of the lab's %v", s.Name, b, bridges)
			}
			if err := validIfName(vethName(s.Name, b)); err != nil {
				return fmt.Errorf("hypervisor %s: veth to bridge %s: %w: use a shorter hypervisor name", s.Name, b, err)
			}
		}
	}
	return nil
}

// vethName names the lab's end of the veth pair joining hypervisor hv's
// bridge to the lab's bridge br; the other end, in the hypervisor's
// namespace, is "lab-" + br.
func vethName(hv, br string) string { return hv + "-" + br }

// hvAddr is the address of hypervisor i in the lab's IPv4 prefix.
func hvAddr(p netip.Prefix, i int) netip.Addr {
	b := p.Masked().Addr().As4()
	b[3] += byte(251 + i)
	return netip.AddrFrom4(b)
}

func (f *Fleet) dir() string { return filepath.Join(f.lab.Dir, "fleet") }

// start brings up hypervisor i.
func (f *Fleet) start(ctx context.Context, i int, s HypervisorSpec) error {
	l := f.lab
	p := netip.MustParsePrefix(l.State.IPv4)
	h := &Hypervisor{
		Name: s.Name, Netns: &Namespace{Name: l.State.Netns + "-" + s.Name}, Addr: hvAddr(p, i),
		Bridges: slices.Clone(s.Bridges), ssh: s.SSH, index: len(l.State.Fleet), fleet: f,
	}
	dir := filepath.Join(f.dir(), s.Name)
	// Record the namespace before creating it, so that Down finds it.
	l.State.Fleet = append(l.State.Fleet, HypervisorState{
		Name: h.Name, Netns: h.Netns.Name, Addr: h.Addr.String(), Bridges: h.Bridges, Dir: dir,
	})
	f.Hypervisors = append(f.Hypervisors, h)
	if err := l.save(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ns, err := NewNamespace(ctx, h.Netns.Name)
	if err != nil {
		return err
	}
	h.Netns = ns
	for _, b := range h.Bridges {
		br := Bridge{Name: b}
		if b == l.State.Bridge {
			br.IPv4 = netip.PrefixFrom(h.Addr, p.Bits())
		}
		if err := ns.AddBridge(ctx, br); err != nil {
			return err
		}
		if err := AddVeth(ctx,
			VethEnd{Netns: l.State.Netns, Name: vethName(h.Name, b), Master: b},
			VethEnd{Netns: ns.Name, Name: "lab-" + b, Master: b}); err != nil {
			return err
		}
	}
	h.Libvirt, err = startLibvirt(ctx, dir, ns.Name, h.Addr, l.log)
	if err != nil {
		return err
	}
	h.LocalURI = h.Libvirt.URI()
	h.URI = "qemu+tcp://" + h.Addr.String() + "/system"
	if h.ssh {
		// No-TTY: libvirt must never wait for a password or a host key
		// prompt; the wrapper's ssh_config has BatchMode too.
		cmd := strings.ReplaceAll(url.QueryEscape(filepath.Join(f.dir(), "ssh")), "%2F", "/")
		h.URI = "qemu+ssh://root@" + h.Addr.String() + "/system?command=" + cmd + "&no_tty=1"
		if err := h.writeSSHD(ctx); err != nil {
			return err
		}
		if err := h.startSSHD(); err != nil {
			return err
		}
	}
	if err := h.record(); err != nil {
		return err
	}
	return h.waitRemote(ctx)
}

// record writes the hypervisor's URIs and processes to state.json.
func (h *Hypervisor) record() error {
	l := h.fleet.lab
	st := &l.State.Fleet[h.index]
	st.URI, st.LocalURI = h.URI, h.LocalURI
	st.Processes = h.Libvirt.Processes()
	if h.sshd != nil {
		st.Processes = append(st.Processes, h.sshd.Process)
	}
	return l.save()
}

// waitRemote waits until the hypervisor answers on its remote URI.
func (h *Hypervisor) waitRemote(ctx context.Context) error {
	start := time.Now()
	err := poll(ctx, FleetReadyTimeout, func() error {
		if h.sshd != nil {
			if done, why := h.sshd.exited(); done {
				return stopPolling{fmt.Errorf("%s\n--- %s ---\n%s", why, h.sshd.Log, tail(h.sshd.Log, 20))}
			}
		}
		_, err := h.RemoteVirsh(ctx, "version")
		return err
	})
	if err != nil {
		return fmt.Errorf("%s does not answer: %w", h.URI, err)
	}
	h.fleet.lab.log.Info("hypervisor up", "host", h.Name, "uri", h.URI, "dur", time.Since(start))
	return nil
}

// RemoteVirsh runs `virsh -q -c URI ARGS...` inside the lab's namespace,
// over the hypervisor's remote transport, with a 30 s limit (shorter if ctx
// says so), and returns its combined output.
func (h *Hypervisor) RemoteVirsh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	argv := append([]string{"ip", "netns", "exec", h.fleet.lab.State.Netns, "virsh", "-q", "-c", h.URI}, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// virsh's ssh child may outlive a killed virsh, holding the output pipe.
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Hypervisor returns the fleet's hypervisor called name, or nil.
func (f *Fleet) Hypervisor(name string) *Hypervisor {
	for _, h := range f.Hypervisors {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Stop stops the hypervisor's libvirtd by PID (SIGTERM, and SIGCONT should
// it be paused; SIGKILL after 15 s), like `systemctl stop libvirtd` on a
// host: its guests keep running, and so do virtlogd and sshd, so a qemu+tcp
// connection is refused and a qemu+ssh one fails on the far side. Restart
// brings it back. Stopping a stopped hypervisor is harmless.
func (h *Hypervisor) Stop() error {
	if err := h.Libvirt.stopDaemon(); err != nil {
		return fmt.Errorf("stop hypervisor %s: %w", h.Name, err)
	}
	h.fleet.lab.log.Info("hypervisor stopped", "host", h.Name)
	return nil
}

// Restart stops the hypervisor's libvirtd if it runs, starts it again with
// the same directory, namespaces and configuration, and waits until it
// answers on its remote URI. Domains defined before are defined again; guests
// left running by Stop are taken over, since the new libvirtd runs in the
// mount namespace of the old one's virtlogd while that still runs. An sshd
// that is gone is started again.
func (h *Hypervisor) Restart(ctx context.Context) error {
	if err := h.Stop(); err != nil {
		return err
	}
	if err := h.Libvirt.start(ctx); err != nil {
		return errors.Join(fmt.Errorf("restart hypervisor %s: %w", h.Name, err), h.Libvirt.stopDaemon())
	}
	if h.ssh {
		if done, _ := h.sshd.exited(); done {
			if err := h.startSSHD(); err != nil {
				return fmt.Errorf("restart hypervisor %s: %w", h.Name, err)
			}
		}
	}
	if err := h.record(); err != nil {
		return fmt.Errorf("restart hypervisor %s: %w", h.Name, err)
	}
	if err := h.waitRemote(ctx); err != nil {
		return fmt.Errorf("restart hypervisor %s: %w", h.Name, err)
	}
	return nil
}

// Pause stops the hypervisor's libvirtd with SIGSTOP: connections are
// accepted by the kernel but never answered, as with a hung daemon. Resume,
// Stop, Restart, Close and Down continue it.
func (h *Hypervisor) Pause() error {
	if err := h.Libvirt.signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause hypervisor %s: %w", h.Name, err)
	}
	return nil
}

// Resume continues a paused libvirtd with SIGCONT.
func (h *Hypervisor) Resume() error {
	if err := h.Libvirt.signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume hypervisor %s: %w", h.Name, err)
	}
	return nil
}

// close stops everything of the hypervisor: sshd, guests, libvirtd,
// virtlogd, and its namespace.
func (h *Hypervisor) close() error {
	var errs []error
	if h.sshd != nil {
		errs = append(errs, h.sshd.stop(10*time.Second))
	}
	if h.Libvirt != nil {
		errs = append(errs, h.Libvirt.Stop())
	}
	return errors.Join(append(errs, h.Netns.Delete(context.Background()))...)
}

// Close stops every hypervisor of the fleet (guests included) and deletes
// their namespaces, and removes the fleet from the lab's state. Closing twice
// is harmless.
func (f *Fleet) Close() error {
	l := f.lab
	if l.Fleet != f {
		return nil
	}
	var errs []error
	for i := len(f.Hypervisors) - 1; i >= 0; i-- {
		errs = append(errs, f.Hypervisors[i].close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close fleet: %w", err)
	}
	l.State.Fleet, l.Fleet = nil, nil
	if err := l.save(); err != nil {
		return fmt.Errorf("close fleet: %w", err)
	}
	return nil
}

// downFleet stops recorded hypervisors from any process: sshd by PID,
// libvirtd and virtlogd like Down stops the lab's own, then deletes their
// namespaces.
func downFleet(hvs []HypervisorState) error {
	var errs []error
	for i := len(hvs) - 1; i >= 0; i-- {
		hs := hvs[i]
		var lv []Process
		for _, p := range hs.Processes {
			if p.Name == "libvirtd" || p.Name == "virtlogd" {
				lv = append(lv, p)
				continue
			}
			errs = append(errs, p.Kill(10*time.Second))
		}
		if len(lv) > 0 {
			errs = append(errs, stopLibvirt(hs.Dir, lv, nil, nil))
		}
		if hs.Netns != "" {
			errs = append(errs, (&Namespace{Name: hs.Netns}).Delete(context.Background()))
		}
	}
	return errors.Join(errs...)
}

// The ssh client side: a key pair, known_hosts with every hypervisor's host
// key, an ssh_config naming both, and a wrapper that libvirt runs as its ssh
// (the command= URI parameter), so that nothing under ~/.ssh is read or
// written.

func (f *Fleet) writeSSHClient(ctx context.Context) error {
	for _, bin := range []string{"ssh", "ssh-keygen", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w (install openssh-client, openssh-server)", err)
		}
	}
	key := filepath.Join(f.dir(), "id_ed25519")
	if _, err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmprov-lab", "-f", key); err != nil {
		return err
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	config := fmt.Sprintf(`# vmprov test lab: ssh to the fleet's hypervisors, nothing from ~/.ssh.
Host *
	User root
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	ConnectTimeout 5
	# sntrup761x25519, the default, costs 0.1 s a connection on a small VM.
	KexAlgorithms curve25519-sha256
	LogLevel ERROR
`, key, filepath.Join(f.dir(), "known_hosts"))
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"authorized_keys", string(pub), 0o600},
		{"known_hosts", "", 0o644},
		{"ssh_config", config, 0o644},
		{"ssh", "#!/bin/sh\nexec ssh -F " + shellQuote(filepath.Join(f.dir(), "ssh_config")) + " \"$@\"\n", 0o755},
	}
	for _, fl := range files {
		if err := os.WriteFile(filepath.Join(f.dir(), fl.name), []byte(fl.content), fl.mode); err != nil {
			return err
		}
	}
	return nil
}

func (h *Hypervisor) sshdDir() string { return filepath.Join(h.fleet.dir(), h.Name, "sshd") }

// writeSSHD writes the hypervisor's host key, adds it to known_hosts and
// writes its sshd_config.
func (h *Hypervisor) writeSSHD(ctx context.Context) error {
	dir := h.sshdDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if _, err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.Name, "-f", key); err != nil {
		return err
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	kh, err := os.OpenFile(filepath.Join(h.fleet.dir(), "known_hosts"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(kh, "%s %s\n", h.Addr, strings.Join(strings.Fields(string(pub))[:2], " "))
	if cerr := kh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// StrictModes no: the key files are under a test's temporary
	// directory. UsePAM no needs root's account not to be locked ("!").
	config := fmt.Sprintf(`# vmprov test lab: sshd of hypervisor %s, for qemu+ssh.
Port 22
ListenAddress %s
HostKey %s
PidFile %s
PermitRootLogin prohibit-password
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers root
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel INFO
`, h.Name, h.Addr, key, filepath.Join(dir, "sshd.pid"), filepath.Join(h.fleet.dir(), "authorized_keys"))
	return os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o644)
}

// startSSHD runs sshd in libvirtd's mount and network namespaces, where
// /run/libvirt/libvirt-sock leads to this libvirtd for virt-ssh-helper.
// The namespaces outlive a stopped libvirtd as long as sshd runs in them,
// and their /run/libvirt is DIR/root/run still, so sshd serves a restarted
// libvirtd too.
func (h *Hypervisor) startSSHD() error {
	// The privilege separation directory, which the system's ssh.service
	// would create: it is under /run, shared with the host.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	pid := h.Libvirt.Processes()[0].PID
	c, err := startChild("sshd", "", filepath.Join(h.sshdDir(), "sshd.log"),
		"nsenter", "-t", strconv.Itoa(pid), "-m", "-n", "--",
		"/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(h.sshdDir(), "sshd_config"))
	if err != nil {
		return err
	}
	h.sshd = c
	return nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
