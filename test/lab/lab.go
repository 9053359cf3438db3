package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options configures Up. Zero fields take the defaults in their comments.
type Options struct {
	Dir       string         // required: configs, logs, guest disks and state.json
	Netns     string         // "vmprov-lab"
	Bridge    Bridge         // br135 with 192.0.2.1/24 and 2001:db8:135::1/64
	More      []Bridge       // further bridges, e.g. IPv6OnlyBridge(); see Up
	DNS       netip.AddrPort // where BIND listens in the namespace: the bridge's IPv4 address, port 53
	Zone      string         // TestZone; reverse zones follow from the bridge's prefixes
	NoLibvirt bool           // do not start libvirtd
	NoRadvd   bool           // do not start radvd
	Log       *slog.Logger   // nil: discard
}

// State is what Up started, as recorded in DIR/state.json.
type State struct {
	Netns        string        `json:"netns"`
	Bridge       string        `json:"bridge"`
	IPv4         string        `json:"ipv4,omitempty"` // the bridge's address, e.g. 192.0.2.1/24
	IPv6         string        `json:"ipv6,omitempty"` // e.g. 2001:db8:135::1/64
	More         []BridgeState `json:"more_bridges,omitempty"`
	DNS          string        `json:"dns"` // BIND's address:port inside the namespace
	Zone         string        `json:"zone"`
	ReverseZones []string      `json:"reverse_zones"`
	KeyFile      string        `json:"key_file"` // tsig-keygen style key clause for dns.tsig.secret_file
	LibvirtURI   string        `json:"libvirt_uri,omitempty"`
	Pool         string        `json:"pool,omitempty"`
	Processes    []Process     `json:"processes"` // in start order

	Fleet []HypervisorState `json:"fleet,omitempty"` // hypervisors of Lab.StartFleet
}

// BridgeState records one of Options.More.
type BridgeState struct {
	Name string `json:"name"`
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
}

// IPv6OnlyBridge is the lab's IPv6-only segment: br136 with
// 2001:db8:136::1/64 and no IPv4 address, for Options.More.
func IPv6OnlyBridge() Bridge {
	return Bridge{Name: "br136", IPv6: netip.MustParsePrefix("2001:db8:136::1/64")}
}

// Lab is a running lab: a namespace with a bridge, BIND, and optionally
// libvirtd and radvd.
type Lab struct {
	Dir     string
	Netns   *Namespace
	BIND    *BIND
	Libvirt *Libvirt // nil with Options.NoLibvirt
	Radvd   *Radvd   // nil with Options.NoRadvd or without an IPv6 prefix
	More    []*Radvd // radvd of the Options.More bridges that have IPv6
	Daemons []*Daemon
	Fleet   *Fleet // set by StartFleet
	State   State
	log     *slog.Logger
}

// StateFile is the name of the state record inside the lab directory.
const StateFile = "state.json"

// Up brings the lab up in opts.Dir: namespace, bridge, BIND on opts.DNS with
// the forward zone and the reverse zones of the bridge's prefixes (key
// "vmprov.", hmac-sha256, fresh secret in DIR/bind/tsig.key), libvirtd with
// the PoolName pool, and radvd advertising the bridge's IPv6 prefix. A lab
// already up in Dir is torn down first. On failure everything started so far
// is torn down again.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	dir := opts.Dir
	if err := Down(dir); err != nil {
		return nil, fmt.Errorf("lab up: tear down earlier lab: %w", err)
	}
	l := &Lab{Dir: dir, log: opts.Log}
	if err := l.up(ctx, opts); err != nil {
		return nil, errors.Join(fmt.Errorf("lab up: %w", err), l.Close())
	}
	return l, nil
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("no directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = dir
	if o.Netns == "" {
		o.Netns = "vmprov-lab"
	}
	if o.Bridge.Name == "" {
		o.Bridge = Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24"), IPv6: netip.MustParsePrefix("2001:db8:135::1/64")}
	}
	if !o.DNS.IsValid() {
		switch {
		case o.Bridge.IPv4.IsValid():
			o.DNS = netip.AddrPortFrom(o.Bridge.IPv4.Addr(), 53)
		case o.Bridge.IPv6.IsValid():
			o.DNS = netip.AddrPortFrom(o.Bridge.IPv6.Addr(), 53)
		default:
			return errors.New("no DNS address and the bridge has none")
		}
	}
	if o.Zone == "" {
		o.Zone = TestZone
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (l *Lab) up(ctx context.Context, opts Options) error {
	st := &l.State
	st.Netns, st.Bridge, st.Zone = opts.Netns, opts.Bridge.Name, opts.Zone
	if opts.Bridge.IPv4.IsValid() {
		st.IPv4 = opts.Bridge.IPv4.String()
	}
	if opts.Bridge.IPv6.IsValid() {
		st.IPv6 = opts.Bridge.IPv6.String()
	}
	prefixes := []netip.Prefix{opts.Bridge.IPv4, opts.Bridge.IPv6}
	for _, b := range opts.More {
		bs := BridgeState{Name: b.Name}
		if b.IPv4.IsValid() {
			bs.IPv4 = b.IPv4.String()
		}
		if b.IPv6.IsValid() {
			bs.IPv6 = b.IPv6.String()
		}
		st.More = append(st.More, bs)
		prefixes = append(prefixes, b.IPv4, b.IPv6)
	}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		z, err := ReverseZone(p.Masked())
		if err != nil {
			return err
		}
		st.ReverseZones = append(st.ReverseZones, z)
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return err
	}
	// A new lab starts from nothing: no zone journals, domain definitions
	// or volumes of an earlier lab in the same directory.
	for _, sub := range []string{"bind", "libvirt", "radvd", "fleet"} {
		if err := os.RemoveAll(filepath.Join(l.Dir, sub)); err != nil {
			return err
		}
	}
	if old, err := filepath.Glob(filepath.Join(l.Dir, "radvd-*")); err == nil {
		for _, d := range old {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
	}
	// Record the namespace before creating it, so that Down finds it.
	if err := l.save(); err != nil {
		return err
	}
	ns, err := NewNamespace(ctx, opts.Netns)
	if err != nil {
		return err
	}
	l.Netns = ns
	for _, b := range append([]Bridge{opts.Bridge}, opts.More...) {
		if err := ns.AddBridge(ctx, b); err != nil {
			return err
		}
	}

	bindDir := filepath.Join(l.Dir, "bind")
	if err := os.MkdirAll(bindDir, 0o755); err != nil {
		return err
	}
	l.BIND, err = StartBIND(ctx, BINDConfig{
		Dir: bindDir, Listen: opts.DNS, Zone: opts.Zone, ReverseZones: st.ReverseZones,
		KeyName: "vmprov.", Algorithm: "hmac-sha256", Secret: GenerateSecret(), Netns: ns.Name,
	}, opts.Log)
	if err != nil {
		return err
	}
	st.DNS, st.KeyFile = opts.DNS.String(), l.BIND.KeyFile()
	st.Processes = append(st.Processes, l.BIND.Process())
	if err := l.save(); err != nil {
		return err
	}

	if !opts.NoLibvirt {
		lvDir := filepath.Join(l.Dir, "libvirt")
		if err := os.MkdirAll(lvDir, 0o755); err != nil {
			return err
		}
		l.Libvirt, err = StartLibvirt(ctx, lvDir, ns.Name, opts.Log)
		if err != nil {
			return err
		}
		st.LibvirtURI, st.Pool = l.Libvirt.URI(), PoolName
		st.Processes = append(st.Processes, l.Libvirt.Processes()...)
		if err := l.save(); err != nil {
			return err
		}
	}

	if !opts.NoRadvd && opts.Bridge.IPv6.IsValid() {
		rDir := filepath.Join(l.Dir, "radvd")
		if err := os.MkdirAll(rDir, 0o755); err != nil {
			return err
		}
		l.Radvd, err = StartRadvd(ctx, RadvdConfig{
			Dir: rDir, Netns: ns.Name, Interface: opts.Bridge.Name, Prefix: opts.Bridge.IPv6.Masked(),
		}, opts.Log)
		if err != nil {
			return err
		}
		st.Processes = append(st.Processes, l.Radvd.Process())
		if err := l.save(); err != nil {
			return err
		}
	}
	for _, b := range opts.More {
		if opts.NoRadvd || !b.IPv6.IsValid() {
			continue
		}
		rDir := filepath.Join(l.Dir, "radvd-"+b.Name)
		if err := os.MkdirAll(rDir, 0o755); err != nil {
			return err
		}
		r, err := StartRadvd(ctx, RadvdConfig{
			Dir: rDir, Netns: ns.Name, Interface: b.Name, Prefix: b.IPv6.Masked(), Other: true,
		}, opts.Log)
		if err != nil {
			return err
		}
		l.More = append(l.More, r)
		st.Processes = append(st.Processes, r.Process())
		if err := l.save(); err != nil {
			return err
		}
	}
	opts.Log.Info("lab up", "file", filepath.Join(l.Dir, StateFile))
	return nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.Dir, StateFile))
}

// Close tears the lab down like Down, reaping the daemons this process
// started. Closing twice is harmless.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.Daemons) - 1; i >= 0; i-- {
		errs = append(errs, l.Daemons[i].Stop())
	}
	if l.Fleet != nil {
		errs = append(errs, l.Fleet.Close())
	}
	for _, r := range l.More {
		errs = append(errs, r.Stop())
	}
	if l.Radvd != nil {
		errs = append(errs, l.Radvd.Stop())
	}
	if l.Libvirt != nil {
		errs = append(errs, l.Libvirt.Stop())
	}
	if l.BIND != nil {
		errs = append(errs, l.BIND.Stop())
	}
	errs = append(errs, Down(l.Dir))
	return errors.Join(errs...)
}

// ReadState reads DIR/state.json; it returns an error wrapping
// os.ErrNotExist when no lab was brought up in dir.
func ReadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// Down tears down the lab recorded in DIR/state.json, from any process:
// guests are destroyed, daemons, radvd, libvirtd, virtlogd and named are
// stopped by PID (only if the PID still belongs to the recorded process), then
// the fleet's hypervisors (sshd, guests, libvirtd, virtlogd, their
// namespaces), the namespace is deleted and state.json is removed. Without a
// state file it does nothing.
func Down(dir string) error {
	st, err := ReadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	var errs []error
	var lv []Process
	for i := len(st.Processes) - 1; i >= 0; i-- {
		p := st.Processes[i]
		if p.Name == "libvirtd" || p.Name == "virtlogd" {
			lv = append([]Process{p}, lv...)
			continue
		}
		if len(lv) > 0 {
			errs = append(errs, stopLibvirt(filepath.Join(dir, "libvirt"), lv, nil, nil))
			lv = nil
		}
		errs = append(errs, p.Kill(10*time.Second))
	}
	if len(lv) > 0 {
		errs = append(errs, stopLibvirt(filepath.Join(dir, "libvirt"), lv, nil, nil))
	}
	// After the lab's daemons, which may be the fleet's clients.
	errs = append(errs, downFleet(st.Fleet))
	if st.Netns != "" {
		errs = append(errs, (&Namespace{Name: st.Netns}).Delete(context.Background()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// ReverseZone returns the reverse zone of p, e.g. "2.0.192.in-addr.arpa."
// for 192.0.2.0/24 or "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa." for
// 2001:db8:135::/64. p must end on an octet (IPv4) or nibble (IPv6)
// boundary.
func ReverseZone(p netip.Prefix) (string, error) {
	a := p.Masked().Addr()
	b := a.AsSlice()
	var labels []string
	if a.Is4() {
		if p.Bits()%8 != 0 {
			return "", fmt.Errorf("reverse zone of %v: prefix length not a multiple of 8", p)
		}
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			labels = append(labels, fmt.Sprint(b[i]))
		}
		return strings.Join(append(labels, "in-addr.arpa."), "."), nil
	}
	if p.Bits()%4 != 0 {
		return "", fmt.Errorf("reverse zone of %v: prefix length not a multiple of 4", p)
	}
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		nib := b[i/2] >> 4
		if i%2 == 1 {
			nib = b[i/2] & 0xf
		}
		labels = append(labels, fmt.Sprintf("%x", nib))
	}
	return strings.Join(append(labels, "ip6.arpa."), "."), nil
}
