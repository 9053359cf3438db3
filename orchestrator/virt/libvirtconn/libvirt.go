// Package libvirtconn implements virt.Hypervisor on a libvirt connection
// with libvirt.org/go/libvirt (cgo, libvirt 9.0 or later). It is the only
// vmprov package that links libvirt; the VM workflow sees virt.Hypervisor
// only, and the command line wires this adapter in.
package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Libvirt is the virt.Hypervisor on one libvirt connection (any URI:
// qemu:///system, qemu+ssh://hv1/system, test:///default). It is safe for
// concurrent use; libvirt serialises what it must.
//
// Context: libvirt calls block and cannot be cancelled. Every method checks
// ctx before each libvirt call it makes, so a deadline stops a method between
// calls, never in the middle of one; a remote URI's own transport (ssh
// keepalives) bounds how long one call to a dead host may block.
type Libvirt struct {
	conn *libvirt.Connect
	uri  string
	log  *slog.Logger
	// noValidate is set once the driver has refused VIR_DOMAIN_DEFINE_VALIDATE
	// as an unsupported flag; Define then lets the driver parse without it.
	noValidate atomic.Bool
}

var _ virt.Hypervisor = (*Libvirt)(nil)

// Keepalive is how often a connection probes its libvirtd when idle
// (virConnectSetKeepAlive), and KeepaliveCount how many unanswered probes
// close it: a hypervisor that stops answering is noticed within about
// Keepalive × (KeepaliveCount+1), even in the middle of a call.
const (
	Keepalive      = 5 * time.Second
	KeepaliveCount = 3
)

// eventLoop is libvirt's default event loop, which keepalive messages need.
// libvirt keeps one per process (virEventRegisterDefaultImpl), so it is
// started once, by the first Open, and runs as long as the process does:
// vmprov's one piece of package state and its one goroutine without an
// owner, both libvirt's by design.
var eventLoop struct {
	once sync.Once
	err  error
}

func startEventLoop() error {
	eventLoop.once.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			eventLoop.err = wrap(err)
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	return eventLoop.err
}

// Open connects to libvirt at uri with keepalive probes (Keepalive) on
// connections to a libvirtd. log may be nil (discard).
func Open(uri string, log *slog.Logger) (*Libvirt, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	evErr := startEventLoop()
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, fmt.Errorf("open libvirt %s: %w (is libvirtd running and its socket reachable? check libvirt.uri in the vmprov configuration)", uri, wrap(err))
	}
	l := &Libvirt{conn: conn, uri: uri, log: log}
	switch {
	case evErr != nil:
		log.Debug("libvirt keepalive off: no event loop", "uri", uri, "err", evErr)
	default:
		// Drivers that run in this process (test:///) have no keepalive.
		if err := conn.SetKeepAlive(int(Keepalive/time.Second), KeepaliveCount); err != nil {
			log.Debug("libvirt keepalive off", "uri", uri, "err", wrap(err))
		}
	}
	return l, nil
}

// Close closes the connection.
func (l *Libvirt) Close() error {
	if _, err := l.conn.Close(); err != nil {
		return fmt.Errorf("close libvirt %s: %w", l.uri, wrap(err))
	}
	return nil
}

// URI is the URI the connection was opened with.
func (l *Libvirt) URI() string { return l.uri }

// libvirtError shows a libvirt error by its message (libvirt.Error's own
// text is a Go struct dump) and keeps it reachable with errors.As.
type libvirtError struct{ err libvirt.Error }

func (e libvirtError) Error() string { return e.err.Message }
func (e libvirtError) Unwrap() error { return e.err }

// wrap turns a libvirt.Error into a libvirtError; other errors pass through.
func wrap(err error) error {
	var le libvirt.Error
	if errors.As(err, &le) {
		return libvirtError{le}
	}
	return err
}

// code is the libvirt error number of err, or ERR_OK.
func code(err error) libvirt.ErrorNumber {
	var le libvirt.Error
	if errors.As(err, &le) {
		return le.Code
	}
	return libvirt.ERR_OK
}

// unsupportedFlags reports whether a driver refused a call's flags
// (virCheckFlags: "unsupported flags (0x...) in function ...").
func unsupportedFlags(err error) bool {
	var le libvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	return le.Code == libvirt.ERR_NO_SUPPORT ||
		le.Code == libvirt.ERR_INVALID_ARG && strings.Contains(le.Message, "unsupported flags")
}

// pool looks up an active storage pool; the caller frees it.
func (l *Libvirt) pool(ctx context.Context, op, name string) (*libvirt.StoragePool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p, err := l.conn.LookupStoragePoolByName(name)
	if code(err) == libvirt.ERR_NO_STORAGE_POOL {
		return nil, fmt.Errorf("%s: %w: pool %q does not exist on %s; create it with "+
			"`virsh -c %s pool-define-as %s dir --target /var/lib/libvirt/images && virsh -c %s pool-start %s && virsh -c %s pool-autostart %s` "+
			"or set libvirt.pool in the vmprov configuration to an existing pool",
			op, virt.ErrPoolNotFound, name, l.uri, l.uri, name, l.uri, name, l.uri, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: storage pool %q on %s: %w", op, name, l.uri, wrap(err))
	}
	active, err := p.IsActive()
	if err == nil && !active {
		err = fmt.Errorf("storage pool %q on %s is not active; start it with `virsh -c %s pool-start %s`", name, l.uri, l.uri, name)
	}
	if err != nil {
		_ = p.Free()
		return nil, fmt.Errorf("%s: %w", op, wrap(err))
	}
	return p, nil
}

// refresh rescans a pool so that volumes made outside libvirt are seen. It
// fails while another volume of the pool is being built; the lookup that
// follows is then against libvirt's current view, which is still correct
// for volumes libvirt made.
func (l *Libvirt) refresh(p *libvirt.StoragePool, pool string) {
	if err := p.Refresh(0); err != nil {
		l.log.Debug("storage pool refresh failed", "pool", pool, "err", wrap(err))
	}
}

// CreateDisk implements virt.Hypervisor.
func (l *Libvirt) CreateDisk(ctx context.Context, pool, name string, sizeBytes uint64) (string, error) {
	op := "create disk " + name
	if err := virt.CheckName(name); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if sizeBytes == 0 {
		return "", fmt.Errorf("%s: size 0: want a positive size", op)
	}
	p, err := l.pool(ctx, op, pool)
	if err != nil {
		return "", err
	}
	defer p.Free()
	l.refresh(p, pool)
	vol := virt.VolumeName(name)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if v, err := p.LookupStorageVolByName(vol); err == nil {
		path, _ := v.GetPath()
		_ = v.Free()
		return "", fmt.Errorf("%s: volume %s in pool %q (%s): %w", op, vol, pool, path, virt.ErrExists)
	} else if code(err) != libvirt.ERR_NO_STORAGE_VOL {
		return "", fmt.Errorf("%s: look up volume %s in pool %q: %w", op, vol, pool, wrap(err))
	}
	x, err := (&libvirtxml.StorageVolume{
		Name:       vol,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: sizeBytes},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	}).Marshal()
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	start := time.Now()
	v, err := p.StorageVolCreateXML(x, 0)
	if err != nil {
		if code(err) == libvirt.ERR_STORAGE_VOL_EXIST || strings.Contains(wrap(err).Error(), "already exists") {
			return "", fmt.Errorf("%s: volume %s in pool %q: %w", op, vol, pool, virt.ErrExists)
		}
		return "", fmt.Errorf("%s: libvirt refused volume %s in pool %q: %w", op, vol, pool, wrap(err))
	}
	defer v.Free()
	path, err := v.GetPath()
	if err != nil {
		return "", fmt.Errorf("%s: path of volume %s (created in pool %q): %w", op, vol, pool, wrap(err))
	}
	l.log.Info("disk created", "host", name, "file", path, "bytes", sizeBytes, "dur", time.Since(start))
	return path, nil
}

// DeleteDisk implements virt.Hypervisor.
func (l *Libvirt) DeleteDisk(ctx context.Context, pool, name string) error {
	op := "delete disk " + name
	if err := virt.CheckName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p, err := l.pool(ctx, op, pool)
	if err != nil {
		return err
	}
	defer p.Free()
	l.refresh(p, pool)
	vol := virt.VolumeName(name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	v, err := p.LookupStorageVolByName(vol)
	if code(err) == libvirt.ERR_NO_STORAGE_VOL {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: look up volume %s in pool %q: %w", op, vol, pool, wrap(err))
	}
	defer v.Free()
	path, _ := v.GetPath()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := v.Delete(libvirt.STORAGE_VOL_DELETE_NORMAL); err != nil {
		if code(err) == libvirt.ERR_NO_STORAGE_VOL {
			return nil
		}
		return fmt.Errorf("%s: volume %s in pool %q: %w", op, vol, pool, wrap(err))
	}
	l.log.Info("disk deleted", "host", name, "file", path)
	return nil
}

// lookup finds a domain by name; virt.ErrNotFound when absent. The caller frees it.
func (l *Libvirt) lookup(ctx context.Context, op, name string) (*libvirt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	d, err := l.conn.LookupDomainByName(name)
	if code(err) == libvirt.ERR_NO_DOMAIN {
		return nil, fmt.Errorf("%s: domain %q on %s: %w", op, name, l.uri, virt.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, wrap(err))
	}
	return d, nil
}

// Define implements virt.Hypervisor.
func (l *Libvirt) Define(ctx context.Context, domainXML string) error {
	var head libvirtxml.Domain
	if err := head.Unmarshal(domainXML); err != nil || head.Name == "" {
		if err == nil {
			err = errors.New("no <name>")
		}
		return fmt.Errorf("define domain: domain XML is not valid: %w", err)
	}
	op := "define domain " + head.Name
	switch d, err := l.lookup(ctx, op, head.Name); {
	case err == nil:
		_ = d.Free()
		return fmt.Errorf("%s: domain %q on %s: %w", op, head.Name, l.uri, virt.ErrExists)
	case !errors.Is(err, virt.ErrNotFound):
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	d, err := l.defineXML(domainXML)
	if err != nil {
		// Another definer may have won the race since the lookup:
		// "domain 'x' already exists with uuid ...".
		if code(err) == libvirt.ERR_DOM_EXIST ||
			code(err) == libvirt.ERR_OPERATION_FAILED && strings.Contains(wrap(err).Error(), "already exists") {
			return fmt.Errorf("%s: domain %q on %s: %w", op, head.Name, l.uri, virt.ErrExists)
		}
		return fmt.Errorf("%s: libvirt rejected domain XML: %w", op, wrap(err))
	}
	_ = d.Free()
	l.log.Info("domain defined", "host", head.Name)
	return nil
}

// defineXML defines with schema validation, or without it on a driver that
// does not know the flag.
func (l *Libvirt) defineXML(x string) (*libvirt.Domain, error) {
	if !l.noValidate.Load() {
		d, err := l.conn.DomainDefineXMLFlags(x, libvirt.DOMAIN_DEFINE_VALIDATE)
		if !unsupportedFlags(err) {
			return d, err
		}
		l.noValidate.Store(true)
		l.log.Warn("libvirt driver does not validate domain XML against its schema", "err", wrap(err))
	}
	return l.conn.DomainDefineXML(x)
}

// Start implements virt.Hypervisor.
func (l *Libvirt) Start(ctx context.Context, name string) error {
	op := "start domain " + name
	d, err := l.lookup(ctx, op, name)
	if err != nil {
		return err
	}
	defer d.Free()
	if running, err := isRunning(d); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	} else if running {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := d.Create(); err != nil {
		if code(err) == libvirt.ERR_OPERATION_INVALID {
			if running, _ := isRunning(d); running {
				return nil // started concurrently
			}
		}
		return fmt.Errorf("%s: %w", op, wrap(err))
	}
	l.log.Info("domain started", "host", name)
	return nil
}

func isRunning(d *libvirt.Domain) (bool, error) {
	s, _, err := d.GetState()
	if err != nil {
		return false, fmt.Errorf("state: %w", wrap(err))
	}
	return s != libvirt.DOMAIN_SHUTOFF && s != libvirt.DOMAIN_NOSTATE, nil
}

// Destroy implements virt.Hypervisor.
func (l *Libvirt) Destroy(ctx context.Context, name string) error {
	op := "destroy domain " + name
	d, err := l.lookup(ctx, op, name)
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Free()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := d.Destroy(); err != nil {
		// Not running, or gone (a transient domain) since the lookup.
		if c := code(err); c == libvirt.ERR_OPERATION_INVALID || c == libvirt.ERR_NO_DOMAIN {
			return nil
		}
		return fmt.Errorf("%s: %w", op, wrap(err))
	}
	l.log.Info("domain destroyed", "host", name)
	return nil
}

// Undefine implements virt.Hypervisor.
func (l *Libvirt) Undefine(ctx context.Context, name string) error {
	op := "undefine domain " + name
	d, err := l.lookup(ctx, op, name)
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Free()
	// Flags are tried in order until the driver accepts them (the test
	// driver, for one, knows no NVRAM).
	for _, flags := range []libvirt.DomainUndefineFlagsValues{
		libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
			libvirt.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.DOMAIN_UNDEFINE_NVRAM,
		libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.DOMAIN_UNDEFINE_NVRAM,
		libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
		0,
	} {
		if err = ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err = d.UndefineFlags(flags); !unsupportedFlags(err) {
			break
		}
	}
	switch c := code(err); {
	case err == nil:
		l.log.Info("domain undefined", "host", name)
		return nil
	case c == libvirt.ERR_NO_DOMAIN:
		return nil
	case c == libvirt.ERR_OPERATION_INVALID && strings.Contains(wrap(err).Error(), "transient"):
		return nil // already undefined, still running
	default:
		return fmt.Errorf("%s: %w", op, wrap(err))
	}
}

// Get implements virt.Hypervisor.
func (l *Libvirt) Get(ctx context.Context, name string) (virt.Domain, error) {
	op := "get domain " + name
	d, err := l.lookup(ctx, op, name)
	if err != nil {
		return virt.Domain{}, err
	}
	defer d.Free()
	dom, err := l.read(ctx, d)
	if code(err) == libvirt.ERR_NO_DOMAIN {
		return virt.Domain{}, fmt.Errorf("%s: domain %q on %s: %w", op, name, l.uri, virt.ErrNotFound)
	}
	if err != nil {
		return virt.Domain{}, fmt.Errorf("%s: %w", op, err)
	}
	return dom, nil
}

// read returns a domain's state and XML (live XML when it runs) as a
// virt.Domain.
func (l *Libvirt) read(ctx context.Context, d *libvirt.Domain) (virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return virt.Domain{}, err
	}
	s, _, err := d.GetState()
	if err != nil {
		return virt.Domain{}, wrap(err)
	}
	x, err := d.GetXMLDesc(0)
	if err != nil {
		return virt.Domain{}, wrap(err)
	}
	dom, err := virt.ParseDomain(x)
	if err != nil {
		return virt.Domain{}, err
	}
	dom.State = stateName(s)
	return dom, nil
}

func stateName(s libvirt.DomainState) string {
	switch s {
	case libvirt.DOMAIN_RUNNING:
		return virt.StateRunning
	case libvirt.DOMAIN_BLOCKED:
		return virt.StateIdle
	case libvirt.DOMAIN_PAUSED:
		return virt.StatePaused
	case libvirt.DOMAIN_SHUTDOWN:
		return virt.StateInShutdown
	case libvirt.DOMAIN_SHUTOFF:
		return virt.StateShutOff
	case libvirt.DOMAIN_CRASHED:
		return virt.StateCrashed
	case libvirt.DOMAIN_PMSUSPENDED:
		return virt.StatePMSuspended
	default:
		return virt.StateNoState
	}
}

// List implements virt.Hypervisor. A domain whose vmprov metadata cannot be read
// is left out with a warning rather than failing the whole list.
func (l *Libvirt) List(ctx context.Context) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	all, err := l.conn.ListAllDomains(0)
	if err != nil {
		return nil, fmt.Errorf("list domains on %s: %w", l.uri, wrap(err))
	}
	defer func() {
		for i := range all {
			_ = all[i].Free()
		}
	}()
	var out []virt.Domain
	for i := range all {
		dom, err := l.read(ctx, &all[i])
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("list domains: %w", ctx.Err())
		case code(err) == libvirt.ERR_NO_DOMAIN:
			continue // removed since the listing
		case err != nil:
			name, _ := all[i].GetName()
			l.log.Warn("domain skipped: unreadable XML", "host", name, "err", err)
			continue
		case dom.Meta != virt.Metadata{}: // vmprov metadata present (its VLAN is never 0)
			out = append(out, dom)
		}
	}
	return out, nil
}

// Node implements virt.Hypervisor: the host's memory and CPUs
// (virNodeGetInfo), its bridges (the interfaces libvirt's interface driver
// reports as type bridge) and every domain's maximum memory and vCPUs.
func (l *Libvirt) Node(ctx context.Context) (virt.Node, error) {
	op := "node of " + l.uri
	if err := ctx.Err(); err != nil {
		return virt.Node{}, fmt.Errorf("%s: %w", op, err)
	}
	info, err := l.conn.GetNodeInfo()
	if err != nil {
		return virt.Node{}, fmt.Errorf("%s: %w", op, wrap(err))
	}
	n := virt.Node{MemoryMiB: info.Memory >> 10, CPUs: int(info.Cpus)}
	if n.Bridges, err = l.bridges(ctx); err != nil {
		return virt.Node{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return virt.Node{}, fmt.Errorf("%s: %w", op, err)
	}
	all, err := l.conn.ListAllDomains(0)
	if err != nil {
		return virt.Node{}, fmt.Errorf("%s: list domains: %w", op, wrap(err))
	}
	defer func() {
		for i := range all {
			_ = all[i].Free()
		}
	}()
	for i := range all {
		di, err := all[i].GetInfo()
		if code(err) == libvirt.ERR_NO_DOMAIN {
			continue // removed since the listing
		}
		if err != nil {
			return virt.Node{}, fmt.Errorf("%s: domain info: %w", op, wrap(err))
		}
		n.Domains++
		n.MemoryCommittedMiB += (di.MaxMem + 1<<10 - 1) >> 10
		n.VCPUsCommitted += int(di.NrVirtCpu)
	}
	return n, nil
}

// bridges lists the host's bridge interfaces, active or not, sorted.
func (l *Libvirt) bridges(ctx context.Context) ([]string, error) {
	ifs, err := l.conn.ListAllInterfaces(libvirt.CONNECT_LIST_INTERFACES_ACTIVE | libvirt.CONNECT_LIST_INTERFACES_INACTIVE)
	if err != nil {
		return nil, fmt.Errorf("list interfaces (libvirt's interface driver): %w", wrap(err))
	}
	defer func() {
		for i := range ifs {
			_ = ifs[i].Free()
		}
	}()
	out := []string{}
	for i := range ifs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, err := ifs[i].GetXMLDesc(0)
		if err != nil {
			continue // gone since the listing
		}
		var iface libvirtxml.Interface
		if err := iface.Unmarshal(x); err != nil {
			return nil, fmt.Errorf("interface XML: %w", err)
		}
		if iface.Bridge != nil && iface.Name != "" {
			out = append(out, iface.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}
