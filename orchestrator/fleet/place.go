package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vmprov/vmprov/orchestrator/virt"
)

// Need is what a new VM needs of its hypervisor.
type Need struct {
	Bridge    string // its VLAN's bridge
	MemoryMiB uint64
	VCPUs     int
}

// Status is one member as placement sees it: its node, or why it could not
// be asked.
type Status struct {
	Member Member
	Node   virt.Node
	Err    error
}

// Limit is the memory vmprov may commit on the member: its cap
// (memory_mib) or else the host's memory.
func (s Status) Limit() uint64 {
	if s.Member.MemoryMiB > 0 {
		return s.Member.MemoryMiB
	}
	return s.Node.MemoryMiB
}

// Rejection is a member placement left out, and why.
type Rejection struct {
	Hypervisor string `json:"hypervisor"`
	Reason     string `json:"reason"`
}

// Choice is where a VM may go: Candidates in the order to try them (the
// first is the choice; the others are tried when defining or starting on
// an earlier one fails), and every member left out with the reason.
type Choice struct {
	Candidates []Status
	Rejected   []Rejection
}

// Place ranks the members for a VM that needs need (docs/design.md, "Many
// hypervisors"). A candidate is reachable, has the bridge and has room:
// its committed memory plus need.MemoryMiB stays within its Limit. Among
// candidates the one with the least memory committed relative to its Limit
// comes first, then the one with fewer vCPUs committed, then name order;
// the same figures always give the same order. on, when not empty, pins the
// VM to that member: it is the only candidate, or the error says why it
// cannot take the VM. The error, when no member can take the VM, lists
// every member with its reason.
func Place(members []Status, need Need, on string) (Choice, error) {
	var c Choice
	found, allDown := false, true
	for _, s := range members {
		if on != "" && s.Member.Name != on {
			continue
		}
		found = true
		if why := unfit(s, need); why != "" {
			c.Rejected = append(c.Rejected, Rejection{Hypervisor: s.Member.Name, Reason: why})
			allDown = allDown && errors.Is(s.Err, ErrUnreachable)
			continue
		}
		c.Candidates = append(c.Candidates, s)
	}
	if on != "" && !found {
		var names []string
		for _, s := range members {
			names = append(names, s.Member.Name)
		}
		return c, &NoRoomError{Msg: fmt.Sprintf("--on %s: no such hypervisor: use one of %s (hypervisors: in the configuration)", on, strings.Join(sortedNames(names), ", "))}
	}
	slices.SortStableFunc(c.Candidates, func(a, b Status) int {
		// a.committed/a.limit against b.committed/b.limit, without floats.
		ra := a.Node.MemoryCommittedMiB * b.Limit()
		rb := b.Node.MemoryCommittedMiB * a.Limit()
		return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(a.Node.VCPUsCommitted, b.Node.VCPUsCommitted),
			strings.Compare(a.Member.Name, b.Member.Name))
	})
	if len(c.Candidates) == 0 {
		var why []string
		for _, r := range c.Rejected {
			why = append(why, r.Hypervisor+": "+r.Reason)
		}
		e := &NoRoomError{Msg: "no hypervisor can take this VM: " + strings.Join(why, "; "), Unreachable: allDown && len(c.Rejected) > 0}
		if on != "" {
			e.Msg = fmt.Sprintf("--on %s cannot take this VM: %s", on, strings.Join(why, "; "))
		}
		return c, e
	}
	return c, nil
}

// ErrNoRoom marks a VM that no member of the fleet can take.
var ErrNoRoom = errors.New("no hypervisor can take the VM")

// NoRoomError is Place's refusal. It is ErrNoRoom, and also ErrUnreachable
// when every member it considered was unreachable.
type NoRoomError struct {
	Msg         string
	Unreachable bool
}

func (e *NoRoomError) Error() string { return e.Msg }

// Is reports whether target is ErrNoRoom, or ErrUnreachable when every
// member was unreachable.
func (e *NoRoomError) Is(target error) bool {
	return target == ErrNoRoom || e.Unreachable && target == ErrUnreachable
}

// unfit says why s cannot take a VM that needs need, or "" if it can.
func unfit(s Status, need Need) string {
	if s.Err != nil {
		if errors.Is(s.Err, ErrUnreachable) {
			msg := s.Err.Error()
			if _, cause, ok := strings.Cut(msg, ErrUnreachable.Error()+": "); ok {
				msg = cause // the member is named already
			}
			return "unreachable: " + msg
		}
		return "error: " + s.Err.Error()
	}
	if !s.Node.HasBridge(need.Bridge) {
		has := "no bridges"
		if len(s.Node.Bridges) > 0 {
			has = "bridges " + strings.Join(s.Node.Bridges, ", ")
		}
		return fmt.Sprintf("no bridge %s (it has %s)", need.Bridge, has)
	}
	if lim := s.Limit(); s.Node.MemoryCommittedMiB+need.MemoryMiB > lim {
		free := uint64(0)
		if lim > s.Node.MemoryCommittedMiB {
			free = lim - s.Node.MemoryCommittedMiB
		}
		return fmt.Sprintf("not enough memory: the VM needs %d MiB, %d of %d MiB are free", need.MemoryMiB, free, lim)
	}
	return ""
}

// Overcommitted reports whether a member's node, read after defining a VM
// on it, holds more than its Limit: then a concurrent create took the room
// meanwhile, and the VM must go elsewhere (docs/design.md, "Many
// hypervisors").
func Overcommitted(s Status) bool { return s.Node.MemoryCommittedMiB > s.Limit() }
