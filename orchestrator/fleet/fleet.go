// Package fleet is the set of hypervisors one vmprov command works on
// (docs/design.md, "Many hypervisors"): the members of `hypervisors:` or,
// without that list, the one hypervisor of libvirt.uri. It opens each
// member's connection at most once per command, bounds connecting and every
// question to a member (its node, a domain, the list of domains) by the
// member deadline (libvirt.timeout), so that one hypervisor that is down or
// hangs never holds up the others, and decides where a new VM goes (Place).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// ErrUnreachable marks a member that could not be connected to, or did not
// answer a call within the member deadline. Once a member is unreachable,
// every later call to it in the same command fails at once with the first
// error.
var ErrUnreachable = errors.New("hypervisor unreachable")

// Member is one hypervisor of the fleet.
type Member struct {
	// Name is the member's name in `hypervisors:`, recorded in its VMs' TXT
	// as hypervisor=NAME; empty for the unnamed fleet of one that
	// libvirt.uri or --connect makes.
	Name string
	URI  string
	// MemoryMiB caps what vmprov commits on the member; 0 is the host's
	// memory.
	MemoryMiB uint64
}

// Label is how messages name the member: its name and URI.
func (m Member) Label() string {
	if m.Name == "" {
		return m.URI
	}
	return m.Name + " (" + m.URI + ")"
}

// Opener connects to the member's hypervisor (at m.URI). The closer, if not
// nil, ends the connection. An Opener may block (libvirt connects
// synchronously): the fleet calls it in a goroutine and gives up after the
// member deadline.
type Opener func(ctx context.Context, m Member) (virt.Hypervisor, io.Closer, error)

// Config makes a Fleet.
type Config struct {
	Members []Member
	Open    Opener
	// Timeout is the member deadline: connecting, and each call. 0 means
	// no deadline but the caller's context.
	Timeout time.Duration
	Log     *slog.Logger // nil: discard
}

// Fleet is the fleet of one command. It is safe for concurrent use.
type Fleet struct {
	members []*member
	open    Opener
	timeout time.Duration
	log     *slog.Logger
}

type member struct {
	Member
	mu     sync.Mutex
	opened bool
	hv     virt.Hypervisor // wrapped with the deadline
	closer io.Closer
	down   error // set once the member is unreachable
}

// New returns the fleet of c.Members, in their order; nothing is connected
// yet.
func New(c Config) *Fleet {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{open: c.Open, timeout: c.Timeout, log: log}
	for _, m := range c.Members {
		f.members = append(f.members, &member{Member: m})
	}
	return f
}

// Single is the unnamed fleet of one hypervisor, already connected, that
// every call goes to without a deadline of the fleet's own.
func Single(uri string, hv virt.Hypervisor) *Fleet {
	f := New(Config{Members: []Member{{URI: uri}}})
	m := f.members[0]
	m.opened, m.hv = true, hv
	return f
}

// Named reports whether the fleet comes from `hypervisors:`: its members
// have names, VMs are placed among them and record where (TXT hypervisor=).
func (f *Fleet) Named() bool { return len(f.members) > 0 && f.members[0].Name != "" }

// Members returns the members in configuration order.
func (f *Fleet) Members() []Member {
	out := make([]Member, len(f.members))
	for i, m := range f.members {
		out[i] = m.Member
	}
	return out
}

// Member returns the member called name.
func (f *Fleet) Member(name string) (Member, bool) {
	if m := f.find(name); m != nil {
		return m.Member, true
	}
	return Member{}, false
}

func (f *Fleet) find(name string) *member {
	for _, m := range f.members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Only returns the fleet of the member called name alone, sharing its
// connection with f.
func (f *Fleet) Only(name string) (*Fleet, bool) {
	m := f.find(name)
	if m == nil {
		return nil, false
	}
	return &Fleet{members: []*member{m}, open: f.open, timeout: f.timeout, log: f.log}, true
}

// Names returns the members' names, in configuration order.
func (f *Fleet) Names() []string {
	var out []string
	for _, m := range f.members {
		out = append(out, m.Name)
	}
	return out
}

// Hypervisor returns the member called name, connected, with every
// question bounded by the member deadline. The error wraps ErrUnreachable when the
// member cannot be reached; it names the member and its URI.
func (f *Fleet) Hypervisor(ctx context.Context, name string) (virt.Hypervisor, error) {
	m := f.find(name)
	if m == nil {
		return nil, fmt.Errorf("no hypervisor %q in the fleet (%v)", name, f.Names())
	}
	return f.connect(ctx, m)
}

func (f *Fleet) connect(ctx context.Context, m *member) (virt.Hypervisor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down != nil {
		return nil, m.down
	}
	if m.opened {
		return m.hv, nil
	}
	type result struct {
		hv  virt.Hypervisor
		c   io.Closer
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	dctx, cancel := f.withDeadline(ctx)
	defer cancel()
	go func() {
		hv, c, err := f.open(dctx, m.Member)
		done <- result{hv, c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-dctx.Done():
		go func() { // the connection, if it comes, is nobody's
			if late := <-done; late.c != nil {
				_ = late.c.Close()
			}
		}()
		if err := ctx.Err(); err != nil {
			// The caller gave up; the member did nothing wrong.
			return nil, fmt.Errorf("hypervisor %s: connect: %w", m.Label(), err)
		}
		r.err = fmt.Errorf("connect: no answer within %s (libvirt.timeout)", f.timeout)
	}
	if r.err != nil {
		m.down = fmt.Errorf("hypervisor %s: %w: %w", m.Label(), ErrUnreachable, r.err)
		f.log.Debug("hypervisor unreachable", "hypervisor", m.Name, "uri", m.URI, "dur", time.Since(start), "err", r.err)
		return nil, m.down
	}
	m.opened, m.closer = true, r.c
	m.hv = &bounded{hv: r.hv, m: m, f: f}
	f.log.Debug("hypervisor connected", "hypervisor", m.Name, "uri", m.URI, "dur", time.Since(start))
	return m.hv, nil
}

// withDeadline is ctx bounded by the member deadline, if there is one.
func (f *Fleet) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.timeout)
}

// Close ends every connection the fleet opened.
func (f *Fleet) Close() error {
	var errs []error
	for _, m := range f.members {
		m.mu.Lock()
		if m.closer != nil {
			errs = append(errs, m.closer.Close())
			m.closer = nil
		}
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Each runs fn on every member at once, each with its connection (or the
// error that it is unreachable), and returns when all have returned. Results
// are in member order.
func Each[T any](ctx context.Context, f *Fleet, fn func(ctx context.Context, m Member, hv virt.Hypervisor) (T, error)) []Result[T] {
	out := make([]Result[T], len(f.members))
	var wg sync.WaitGroup
	for i, m := range f.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Member = m.Member
			hv, err := f.connect(ctx, m)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i].Value, out[i].Err = fn(ctx, m.Member, hv)
		}()
	}
	wg.Wait()
	return out
}

// Result is what Each got from one member.
type Result[T any] struct {
	Member Member
	Value  T
	Err    error
}

// Failed returns the results of rs that are errors, in order.
func Failed[T any](rs []Result[T]) []Result[T] {
	var out []Result[T]
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// bounded is a member's hypervisor with the member deadline on each
// question (Node, Get, List). A question that misses it marks the member
// unreachable; the call itself goes on in the background (libvirt calls
// cannot be cancelled) and its answer is dropped.
//
// Changes (disks, define, start, destroy, undefine) are not cut short: a
// change whose outcome is unknown cannot be rolled back with certainty, and
// a healthy hypervisor may well take longer than a question's deadline to
// start a large VM. A hypervisor that stops answering in the middle of one
// is noticed by libvirt's keepalive, which closes the connection and fails
// the call. Changes are tried even after a question to the member missed
// the deadline, so that rollbacks run.
type bounded struct {
	hv virt.Hypervisor
	m  *member
	f  *Fleet
}

var _ virt.Hypervisor = (*bounded)(nil)

// change runs a change on the member. It is not cut short, and it is
// tried even when a question to the member has timed out before: a
// rollback must try to undo what it did, and a slow question does not
// make a hypervisor refuse changes.
func change(ctx context.Context, _ *bounded, fn func(ctx context.Context) error) error {
	return fn(ctx)
}

// ask runs a question on the member within the member deadline. The
// question's context ends with the deadline, so an abandoned question stops
// between its libvirt calls.
func ask[T any](ctx context.Context, b *bounded, op string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	b.m.mu.Lock()
	down := b.m.down
	b.m.mu.Unlock()
	if down != nil {
		return zero, down
	}
	type result struct {
		v   T
		err error
	}
	dctx, cancel := b.f.withDeadline(ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		v, err := fn(dctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.DeadlineExceeded) || ctx.Err() != nil {
			return r.v, r.err
		}
		// The deadline ended it.
	case <-dctx.Done():
		// An answer that raced the deadline is still the true answer.
		select {
		case r := <-done:
			if !errors.Is(r.err, context.DeadlineExceeded) {
				return r.v, r.err
			}
		default:
		}
	}
	if err := ctx.Err(); err != nil {
		// The caller gave up; the member did nothing wrong.
		return zero, fmt.Errorf("hypervisor %s: %s: %w", b.m.Label(), op, err)
	}
	err := fmt.Errorf("hypervisor %s: %w: %s: no answer within %s (libvirt.timeout)", b.m.Label(), ErrUnreachable, op, b.f.timeout)
	b.m.mu.Lock()
	if b.m.down == nil {
		b.m.down = err
	}
	b.m.mu.Unlock()
	return zero, err
}

func (b *bounded) CreateDisk(ctx context.Context, pool, name string, size uint64) (path string, err error) {
	err = change(ctx, b, func(ctx context.Context) error {
		path, err = b.hv.CreateDisk(ctx, pool, name, size)
		return err
	})
	return path, err
}

func (b *bounded) DeleteDisk(ctx context.Context, pool, name string) error {
	return change(ctx, b, func(ctx context.Context) error { return b.hv.DeleteDisk(ctx, pool, name) })
}

func (b *bounded) Define(ctx context.Context, x string) error {
	return change(ctx, b, func(ctx context.Context) error { return b.hv.Define(ctx, x) })
}

func (b *bounded) Start(ctx context.Context, name string) error {
	return change(ctx, b, func(ctx context.Context) error { return b.hv.Start(ctx, name) })
}

func (b *bounded) Destroy(ctx context.Context, name string) error {
	return change(ctx, b, func(ctx context.Context) error { return b.hv.Destroy(ctx, name) })
}

func (b *bounded) Undefine(ctx context.Context, name string) error {
	return change(ctx, b, func(ctx context.Context) error { return b.hv.Undefine(ctx, name) })
}

func (b *bounded) Get(ctx context.Context, name string) (virt.Domain, error) {
	return ask(ctx, b, "get domain "+name, func(ctx context.Context) (virt.Domain, error) { return b.hv.Get(ctx, name) })
}

func (b *bounded) List(ctx context.Context) ([]virt.Domain, error) {
	return ask(ctx, b, "list domains", b.hv.List)
}

func (b *bounded) Node(ctx context.Context) (virt.Node, error) {
	return ask(ctx, b, "node info", b.hv.Node)
}

// sortedNames is names sorted, for messages.
func sortedNames(names []string) []string { return slices.Sorted(slices.Values(names)) }
