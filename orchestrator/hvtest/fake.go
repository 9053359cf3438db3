// Package hvtest checks that a virt.Hypervisor and a virt.VolumeStore keep
// their contracts (Conformance, VolumeConformance) and provides Fake, an
// in-memory Hypervisor and VolumeStore that passes the same suites, for tests
// of the VM workflow and of ROM uploads that need to make a hypervisor step
// fail on purpose.
package hvtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"libvirt.org/go/libvirtxml"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Op names a Hypervisor method, for failure injection and the call log.
type Op string

// The Hypervisor methods.
const (
	OpCreateDisk Op = "CreateDisk"
	OpDeleteDisk Op = "DeleteDisk"
	OpDefine     Op = "Define"
	OpStart      Op = "Start"
	OpDestroy    Op = "Destroy"
	OpUndefine   Op = "Undefine"
	OpGet        Op = "Get"
	OpList       Op = "List"
	OpNode       Op = "Node"
)

// The virt.VolumeStore methods.
const (
	OpUploadVolume   Op = "UploadVolume"
	OpDownloadVolume Op = "DownloadVolume"
	OpListVolumes    Op = "ListVolumes"
	OpDeleteVolume   Op = "DeleteVolume"
)

// Call is one method call the Fake received: the domain, disk or volume name
// ("" for List; the pool for ListVolumes; the <name> of the XML for Define,
// if it has one).
type Call struct {
	Op   Op
	Name string
}

// Fake is an in-memory virt.Hypervisor and virt.VolumeStore, safe for
// concurrent use. It keeps volumes per pool and domains by name with
// libvirt's semantics (see virt.Hypervisor and virt.VolumeStore), and accepts
// any domain XML that names a domain and a domain type; it does not validate
// against libvirt's schema.
type Fake struct {
	mu      sync.Mutex
	pools   map[string]map[string]*fakeVolume // pool → volume name → volume
	domains map[string]*fakeDomain
	fail    []failure
	calls   []Call
	node    virt.Node // capacity and bridges; the committed figures are computed
	block   chan struct{}
}

type fakeVolume struct {
	size uint64
	data []byte // nil for a disk made by CreateDisk
}

type fakeDomain struct {
	dom        virt.Domain // as parsed from the XML it was defined with
	running    bool
	persistent bool
}

type failure struct {
	op   Op
	name string
	err  error
}

var (
	_ virt.Hypervisor  = (*Fake)(nil)
	_ virt.VolumeStore = (*Fake)(nil)
)

// NewFake returns a Fake with the given storage pools, or with one pool named
// "default" (vmprov's default libvirt.pool) when none are given. A disk's
// path is /POOL/NAME.qcow2, an uploaded volume's /POOL/NAME.
func NewFake(pools ...string) *Fake {
	if len(pools) == 0 {
		pools = []string{"default"}
	}
	f := &Fake{pools: map[string]map[string]*fakeVolume{}, domains: map[string]*fakeDomain{},
		node: virt.Node{MemoryMiB: FakeMemoryMiB, CPUs: FakeCPUs, Bridges: []string{}}}
	for _, p := range pools {
		f.pools[p] = map[string]*fakeVolume{}
	}
	return f
}

// A Fake's capacity until SetNode.
const (
	FakeMemoryMiB = 64 << 10
	FakeCPUs      = 16
)

// SetNode sets the memory, CPUs and bridges Node reports; the committed
// figures are always those of the Fake's domains.
func (f *Fake) SetNode(memoryMiB uint64, cpus int, bridges ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.node = virt.Node{MemoryMiB: memoryMiB, CPUs: cpus, Bridges: slices.Sorted(slices.Values(bridges))}
	if f.node.Bridges == nil {
		f.node.Bridges = []string{}
	}
}

// Hang makes every later call block until ctx ends or Unhang, like a
// hypervisor that has stopped answering; the call then fails.
func (f *Fake) Hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block == nil {
		f.block = make(chan struct{})
	}
}

// Unhang releases the calls Hang blocked and ends the hang.
func (f *Fake) Unhang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block != nil {
		close(f.block)
		f.block = nil
	}
}

// FailOn makes every later call of op on name ("" = any name) fail with err,
// wrapped, without changing anything, until ClearFailures. The call is still
// logged.
func (f *Fake) FailOn(op Op, name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, failure{op, name, err})
}

// ClearFailures removes every failure FailOn set.
func (f *Fake) ClearFailures() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = nil
}

// Calls returns the calls received so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Volumes returns the names of a pool's volumes (disks NAME.qcow2 and uploaded
// volumes), sorted; nil for
// an unknown pool.
func (f *Fake) Volumes(pool string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for v := range f.pools[pool] {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// begin logs a call and returns the injected failure or ctx's error, if any.
// f.mu must be held; while the Fake hangs, begin releases it and waits.
func (f *Fake) begin(ctx context.Context, op Op, name string) error {
	f.calls = append(f.calls, Call{op, name})
	if b := f.block; b != nil {
		f.mu.Unlock()
		select {
		case <-b:
		case <-ctx.Done():
		}
		f.mu.Lock()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fake %s %s: hypervisor hangs: %w", op, name, err)
		}
		return fmt.Errorf("fake %s %s: hypervisor hung", op, name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake %s %s: %w", op, name, err)
	}
	for _, fl := range f.fail {
		if fl.op == op && (fl.name == "" || fl.name == name) {
			return fmt.Errorf("fake %s %s: injected failure: %w", op, name, fl.err)
		}
	}
	return nil
}

func (f *Fake) pool(op, pool string) (map[string]*fakeVolume, error) {
	p, ok := f.pools[pool]
	if !ok {
		return nil, fmt.Errorf("%s: pool %q: %w", op, pool, virt.ErrPoolNotFound)
	}
	return p, nil
}

// CreateDisk implements virt.Hypervisor.
func (f *Fake) CreateDisk(ctx context.Context, pool, name string, sizeBytes uint64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpCreateDisk, name); err != nil {
		return "", err
	}
	op := "create disk " + name
	if err := virt.CheckName(name); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if sizeBytes == 0 {
		return "", fmt.Errorf("%s: size 0: want a positive size", op)
	}
	p, err := f.pool(op, pool)
	if err != nil {
		return "", err
	}
	vol := virt.VolumeName(name)
	if _, ok := p[vol]; ok {
		return "", fmt.Errorf("%s: volume %s in pool %q: %w", op, vol, pool, virt.ErrExists)
	}
	p[vol] = &fakeVolume{size: sizeBytes}
	return "/" + pool + "/" + vol, nil
}

// DeleteDisk implements virt.Hypervisor.
func (f *Fake) DeleteDisk(ctx context.Context, pool, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpDeleteDisk, name); err != nil {
		return err
	}
	op := "delete disk " + name
	if err := virt.CheckName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p, err := f.pool(op, pool)
	if err != nil {
		return err
	}
	delete(p, virt.VolumeName(name))
	return nil
}

// Define implements virt.Hypervisor.
func (f *Fake) Define(ctx context.Context, domainXML string) error {
	var head libvirtxml.Domain
	parseErr := head.Unmarshal(domainXML)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpDefine, head.Name); err != nil {
		return err
	}
	if parseErr == nil && head.Type == "" {
		parseErr = errors.New("missing domain type attribute")
	}
	dom, err := virt.ParseDomain(domainXML)
	if parseErr == nil {
		parseErr = err
	}
	if parseErr != nil {
		return fmt.Errorf("define domain: fake rejected domain XML: %w", parseErr)
	}
	if _, ok := f.domains[dom.Name]; ok {
		return fmt.Errorf("define domain %s: %w", dom.Name, virt.ErrExists)
	}
	f.domains[dom.Name] = &fakeDomain{dom: dom, persistent: true}
	return nil
}

// Start implements virt.Hypervisor.
func (f *Fake) Start(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpStart, name); err != nil {
		return err
	}
	d, ok := f.domains[name]
	if !ok {
		return fmt.Errorf("start domain %s: %w", name, virt.ErrNotFound)
	}
	d.running = true
	return nil
}

// Destroy implements virt.Hypervisor.
func (f *Fake) Destroy(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpDestroy, name); err != nil {
		return err
	}
	if d, ok := f.domains[name]; ok {
		d.running = false
		if !d.persistent {
			delete(f.domains, name)
		}
	}
	return nil
}

// Undefine implements virt.Hypervisor.
func (f *Fake) Undefine(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpUndefine, name); err != nil {
		return err
	}
	if d, ok := f.domains[name]; ok {
		d.persistent = false
		if !d.running {
			delete(f.domains, name)
		}
	}
	return nil
}

// Get implements virt.Hypervisor.
func (f *Fake) Get(ctx context.Context, name string) (virt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpGet, name); err != nil {
		return virt.Domain{}, err
	}
	d, ok := f.domains[name]
	if !ok {
		return virt.Domain{}, fmt.Errorf("get domain %s: %w", name, virt.ErrNotFound)
	}
	return d.current(), nil
}

// List implements virt.Hypervisor.
func (f *Fake) List(ctx context.Context) ([]virt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpList, ""); err != nil {
		return nil, err
	}
	var out []virt.Domain
	for _, d := range f.domains {
		if d.dom.Meta != (virt.Metadata{}) {
			out = append(out, d.current())
		}
	}
	slices.SortFunc(out, func(a, b virt.Domain) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Node implements virt.Hypervisor.
func (f *Fake) Node(ctx context.Context) (virt.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpNode, ""); err != nil {
		return virt.Node{}, err
	}
	n := f.node
	n.Bridges = slices.Clone(n.Bridges)
	for _, d := range f.domains {
		n.Domains++
		n.MemoryCommittedMiB += d.dom.MemoryMiB
		n.VCPUsCommitted += int(d.dom.VCPUs)
	}
	return n, nil
}

func (d *fakeDomain) current() virt.Domain {
	dom := d.dom
	dom.State = virt.StateShutOff
	if d.running {
		dom.State = virt.StateRunning
	}
	return dom
}

// UploadVolume implements virt.VolumeStore.
func (f *Fake) UploadVolume(ctx context.Context, pool, name string, data []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpUploadVolume, name); err != nil {
		return "", err
	}
	op := "upload volume " + name
	if err := virt.CheckVolumeName(name); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if len(data) == 0 {
		return "", fmt.Errorf("%s: no data: want at least one byte", op)
	}
	p, err := f.pool(op, pool)
	if err != nil {
		return "", err
	}
	if _, ok := p[name]; ok {
		return "", fmt.Errorf("%s: volume %s in pool %q: %w", op, name, pool, virt.ErrExists)
	}
	p[name] = &fakeVolume{size: uint64(len(data)), data: slices.Clone(data)}
	return "/" + pool + "/" + name, nil
}

// DownloadVolume implements virt.VolumeStore. A disk made by CreateDisk reads
// as zeros.
func (f *Fake) DownloadVolume(ctx context.Context, pool, name string, limit int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpDownloadVolume, name); err != nil {
		return nil, err
	}
	op := "download volume " + name
	if err := virt.CheckVolumeName(name); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p, err := f.pool(op, pool)
	if err != nil {
		return nil, err
	}
	v, ok := p[name]
	if !ok {
		return nil, fmt.Errorf("%s: volume %s in pool %q: %w", op, name, pool, virt.ErrNotFound)
	}
	if int64(v.size) > limit {
		return nil, fmt.Errorf("%s: %d bytes, over %d: %w", op, v.size, limit, virt.ErrTooLarge)
	}
	if v.data == nil {
		return make([]byte, v.size), nil
	}
	return slices.Clone(v.data), nil
}

// ListVolumes implements virt.VolumeStore.
func (f *Fake) ListVolumes(ctx context.Context, pool string) ([]virt.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpListVolumes, pool); err != nil {
		return nil, err
	}
	p, err := f.pool("list volumes", pool)
	if err != nil {
		return nil, err
	}
	out := make([]virt.Volume, 0, len(p))
	for name, v := range p {
		out = append(out, virt.Volume{Name: name, Path: "/" + pool + "/" + name, Size: v.size})
	}
	slices.SortFunc(out, func(a, b virt.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteVolume implements virt.VolumeStore.
func (f *Fake) DeleteVolume(ctx context.Context, pool, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpDeleteVolume, name); err != nil {
		return err
	}
	op := "delete volume " + name
	if err := virt.CheckVolumeName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p, err := f.pool(op, pool)
	if err != nil {
		return err
	}
	delete(p, name)
	return nil
}
