package fleet_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

type closer struct{ n *atomic.Int32 }

func (c closer) Close() error { c.n.Add(1); return nil }

// TestDeadline: a member that hangs is unreachable after the member
// deadline, later calls to it fail at once, and the others answer.
func TestDeadline(t *testing.T) {
	fakes := map[string]*hvtest.Fake{"test:///hv1": hvtest.NewFake(), "test:///hv2": hvtest.NewFake()}
	fakes["test:///hv2"].Hang()
	t.Cleanup(fakes["test:///hv2"].Unhang)
	var opens, closes atomic.Int32
	f := fleet.New(fleet.Config{
		Members: []fleet.Member{{Name: "hv1", URI: "test:///hv1"}, {Name: "hv2", URI: "test:///hv2"}, {Name: "hv3", URI: "test:///hv3"}},
		Timeout: 200 * time.Millisecond,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			opens.Add(1)
			if m.URI == "test:///hv3" {
				return nil, nil, errors.New("connection refused")
			}
			return fakes[m.URI], closer{&closes}, nil
		},
	})
	start := time.Now()
	rs := fleet.Each(t.Context(), f, func(ctx context.Context, _ fleet.Member, hv virt.Hypervisor) (virt.Node, error) {
		return hv.Node(ctx)
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Each took %s with a member deadline of 200ms", d)
	}
	if rs[0].Err != nil || rs[0].Value.MemoryMiB == 0 {
		t.Errorf("hv1 = %+v, %v; want its node", rs[0].Value, rs[0].Err)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(rs[i].Err, fleet.ErrUnreachable) {
			t.Errorf("%s error = %v, want ErrUnreachable", rs[i].Member.Name, rs[i].Err)
		}
	}
	if got := fleet.Failed(rs); len(got) != 2 || got[0].Member.Name != "hv2" || got[1].Member.Name != "hv3" {
		t.Errorf("Failed = %v, want hv2 and hv3", got)
	}
	// Once unreachable, at once: no second wait, no second connection.
	start = time.Now()
	hv2, err := f.Hypervisor(t.Context(), "hv2")
	if err == nil {
		_, err = hv2.Get(t.Context(), "x")
	}
	if !errors.Is(err, fleet.ErrUnreachable) || time.Since(start) > 100*time.Millisecond {
		t.Errorf("second call to hv2 = %v after %s, want ErrUnreachable at once", err, time.Since(start))
	}
	if _, err := f.Hypervisor(t.Context(), "hv3"); !errors.Is(err, fleet.ErrUnreachable) {
		t.Errorf("hv3 again: %v", err)
	}
	if _, err := f.Hypervisor(t.Context(), "hv1"); err != nil {
		t.Fatal(err)
	}
	if n := opens.Load(); n != 3 {
		t.Errorf("%d connections opened, want one per member (3)", n)
	}
	if err := f.Close(); err != nil || closes.Load() != 2 {
		t.Errorf("Close = %v, closed %d, want the 2 opened connections closed", err, closes.Load())
	}
}

// TestConnectDeadline: an Opener that blocks makes the member unreachable
// after the deadline.
func TestConnectDeadline(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := fleet.New(fleet.Config{
		Members: []fleet.Member{{Name: "hv1", URI: "qemu+ssh://hv1/system"}},
		Timeout: 100 * time.Millisecond,
		Open: func(context.Context, fleet.Member) (virt.Hypervisor, io.Closer, error) {
			<-release
			return hvtest.NewFake(), nil, nil
		},
	})
	_, err := f.Hypervisor(t.Context(), "hv1")
	if !errors.Is(err, fleet.ErrUnreachable) {
		t.Fatalf("Hypervisor = %v, want ErrUnreachable", err)
	}
	for _, want := range []string{"hv1 (qemu+ssh://hv1/system)", "100ms", "libvirt.timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestChangesNotCutShort: a change that takes longer than the member
// deadline runs to its end and leaves the member reachable.
func TestChangesNotCutShort(t *testing.T) {
	fake := hvtest.NewFake()
	f := fleet.New(fleet.Config{
		Members: []fleet.Member{{Name: "hv1", URI: "test:///hv1"}},
		Timeout: 100 * time.Millisecond,
		Open:    func(context.Context, fleet.Member) (virt.Hypervisor, io.Closer, error) { return fake, nil, nil },
	})
	hv, err := f.Hypervisor(t.Context(), "hv1")
	if err != nil {
		t.Fatal(err)
	}
	fake.Hang()
	time.AfterFunc(400*time.Millisecond, fake.Unhang)
	start := time.Now()
	err = hv.Start(t.Context(), "slow")
	if took := time.Since(start); took < 300*time.Millisecond || errors.Is(err, fleet.ErrUnreachable) {
		t.Errorf("Start returned %v after %s; want the change's own outcome after the hang, past the 100ms deadline", err, took)
	}
	if _, err := hv.Node(t.Context()); err != nil {
		t.Errorf("Node after a slow change: %v, want the member still reachable", err)
	}
}
