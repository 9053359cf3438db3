// Package virt is vmprov's view of a hypervisor: the Hypervisor port the VM
// workflow (package orchestrator) drives and the libvirt domain XML vmprov
// writes and reads back (built with libvirtxml, pure Go). The adapter that
// implements the port on a libvirt connection is virt/libvirtconn, the only
// package linking libvirt itself (cgo).
//
// A vmprov domain carries vmprov's metadata element (namespace
// MetadataNamespace) with its VLAN, distribution and FQDN; List returns only
// such domains, so vmprov never lists or manages what it did not define.
// hvtest holds the conformance suite every Hypervisor passes and an
// in-memory fake that passes it too.
package virt

import (
	"context"
	"errors"
	"slices"
)

// Hypervisor defines, starts, stops and removes virtual machines and their
// disks by name.
//
// Contract, shared by every implementation (hvtest.Conformance checks it):
//   - CreateDisk creates the qcow2 volume NAME.qcow2 of sizeBytes (> 0) in the
//     storage pool and returns its path. A volume of that name that already
//     exists is ErrExists and is left alone: a rollback that deletes "its"
//     disk must never delete one vmprov did not create. A pool that does not
//     exist is ErrPoolNotFound.
//   - DeleteDisk deletes NAME.qcow2; an absent volume is nil, an absent pool
//     ErrPoolNotFound.
//   - Define persists domainXML after the hypervisor has validated it (libvirt:
//     VIR_DOMAIN_DEFINE_VALIDATE). A domain of that name that already exists
//     (defined, or running transient) is ErrExists and is not modified;
//     invalid XML is an error that carries the hypervisor's reason.
//   - Start boots a defined domain; an already running domain is nil, an
//     absent one ErrNotFound.
//   - Destroy stops a domain at once (power off); a domain that is not
//     running or does not exist is nil.
//   - Undefine removes the definition, its managed save image, snapshot
//     metadata and UEFI NVRAM; an absent domain is nil. As in libvirt, a
//     running domain keeps running as a transient domain until Destroy, which
//     then removes it completely; to remove a VM call Destroy, then Undefine.
//   - Get returns any domain by name with its current State; an absent one is
//     ErrNotFound. Meta is zero for a domain vmprov did not define.
//   - List returns the domains that carry vmprov metadata, in no particular
//     order.
//   - Node returns the hypervisor's capacity (memory, CPUs), its bridges
//     (network interfaces of type bridge, by name, sorted) and what every
//     defined or running domain commits of it, vmprov's or not: Domains,
//     MemoryCommittedMiB (each domain's maximum memory) and VCPUsCommitted.
//     Defining a domain of M MiB and V vCPUs raises the committed figures by
//     M and V; undefining it (when not running) lowers them again.
//
// Every method is safe for concurrent use on different names. ctx is checked
// before each call to the hypervisor; a call that has started is not
// interrupted (libvirt calls block and cannot be cancelled), and a method that
// has changed something reports that change's true outcome even if ctx ended
// meanwhile, so that a rollback sees what really happened.
type Hypervisor interface {
	CreateDisk(ctx context.Context, pool, name string, sizeBytes uint64) (path string, err error)
	DeleteDisk(ctx context.Context, pool, name string) error
	Define(ctx context.Context, domainXML string) error
	Start(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	Undefine(ctx context.Context, name string) error
	Get(ctx context.Context, name string) (Domain, error)
	List(ctx context.Context) ([]Domain, error)
	Node(ctx context.Context) (Node, error)
}

// Node is a hypervisor's capacity and what its domains commit of it, the
// figures placement across a fleet of hypervisors decides on
// (docs/design.md, "Many hypervisors").
type Node struct {
	MemoryMiB uint64   `json:"memory_mib"` // the host's memory
	CPUs      int      `json:"cpus"`       // the host's logical CPUs
	Bridges   []string `json:"bridges"`    // its bridge interfaces, sorted
	// Domains counts every defined or running domain, vmprov's or not.
	Domains            int    `json:"domains"`
	MemoryCommittedMiB uint64 `json:"memory_committed_mib"`
	VCPUsCommitted     int    `json:"vcpus_committed"`
}

// HasBridge reports whether the node has the bridge name.
func (n Node) HasBridge(name string) bool { return slices.Contains(n.Bridges, name) }

// Errors a Hypervisor returns wrapped; check them with errors.Is.
var (
	// ErrNotFound: the domain does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a domain or volume of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrPoolNotFound: the storage pool does not exist.
	ErrPoolNotFound = errors.New("storage pool not found")
)

// Domain states as virsh names them. Domain.State holds one of these.
const (
	StateRunning     = "running"
	StateShutOff     = "shut off"
	StatePaused      = "paused"
	StateIdle        = "idle"
	StateInShutdown  = "in shutdown"
	StateCrashed     = "crashed"
	StatePMSuspended = "pmsuspended"
	StateNoState     = "no state"
)

// Domain is a virtual machine as the hypervisor reports it. The fields after
// XML are read from XML by ParseDomain.
type Domain struct {
	Name  string
	State string // one of the State constants; empty when read from XML alone
	XML   string // the domain XML the hypervisor returned (live XML when running)
	Meta  Metadata
	// MAC, Bridge: the first network interface's MAC (lowercase, colons)
	// and, if it is of type bridge, its bridge.
	MAC    string
	Bridge string
	// DiskPath is the source file of the first disk device.
	DiskPath string
	// Boot is the boot order of <os> (<boot dev=…/>); empty when the
	// domain orders its devices otherwise.
	Boot []string
	// MemoryMiB and VCPUs size the domain (<memory>, <vcpu>).
	MemoryMiB uint64
	VCPUs     uint
}

// Metadata is what vmprov records in a domain's <metadata> element, in its
// own XML namespace (MetadataNamespace).
type Metadata struct {
	VLAN   int
	Distro string
	FQDN   string
}

// VolumeName is the name of a VM's disk volume in its storage pool.
func VolumeName(name string) string { return name + ".qcow2" }
