package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Namespace is a named network namespace, as `ip netns` manages them
// (/run/netns/NAME).
type Namespace struct {
	Name string
}

// NewNamespace creates the network namespace name with lo up and IPv6
// duplicate address detection off, so that addresses added later are usable
// at once. A namespace of that name left over from an earlier run is deleted
// first.
func NewNamespace(ctx context.Context, name string) (*Namespace, error) {
	if name == "" || strings.ContainsAny(name, "/ \t\n") || name == "." || name == ".." {
		return nil, fmt.Errorf("create namespace: invalid name %q", name)
	}
	ns := &Namespace{Name: name}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
		if err := ns.Delete(ctx); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	err := ns.Do(func() error {
		for _, k := range []string{"all", "default", "lo"} {
			if err := writeSysctl("net/ipv6/conf/"+k+"/accept_dad", "0"); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		_, err = ns.IP(ctx, "link", "set", "lo", "up")
	}
	if err != nil {
		_ = ns.Delete(ctx)
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	return ns, nil
}

// Delete removes the namespace. Interfaces inside it (bridge, veth ends, the
// taps of guests) go with it. Deleting a namespace that does not exist is not
// an error.
func (ns *Namespace) Delete(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join("/run/netns", ns.Name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := run(ctx, "ip", "netns", "delete", ns.Name); err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
	}
	return nil
}

// IP runs `ip -n NAME ARGS...` and returns its output.
func (ns *Namespace) IP(ctx context.Context, args ...string) (string, error) {
	return run(ctx, append([]string{"ip", "-n", ns.Name}, args...)...)
}

// Exec runs a short command inside the namespace (`ip netns exec`) and
// returns its combined output.
func (ns *Namespace) Exec(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", ns.Name}, argv...)...)
}

// Do runs fn on an OS thread that has joined the namespace and waits for it.
//
// Sockets that fn opens belong to the namespace for their whole life, so the
// usual pattern is to create listeners, packet conns or DHCP clients inside
// fn and use them from any goroutine afterwards. Goroutines that fn starts do
// NOT run in the namespace, and neither does anything that resolves interface
// names lazily after fn returns. The thread is discarded afterwards if it
// cannot return to its original namespace.
func (ns *Namespace) Do(fn func() error) error {
	target, err := unix.Open(filepath.Join("/run/netns", ns.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("enter namespace %s: %w", ns.Name, err)
	}
	defer unix.Close(target)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", ns.Name, err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: setns: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime ends it with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", ns.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Dial opens a connection from inside the namespace; the connection may be
// used from any goroutine.
func (ns *Namespace) Dial(network, address string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.Dial(network, address)
		return err
	})
	return c, err
}

// Bridge describes a Linux bridge inside a namespace.
type Bridge struct {
	Name string       // e.g. "br135"
	IPv4 netip.Prefix // the bridge's own address and subnet, e.g. 192.0.2.1/24; zero = none
	IPv6 netip.Prefix // e.g. 2001:db8:135::1/64; zero = none
}

// AddBridge creates the bridge in the namespace, up, with its addresses (no
// DAD), forwarding at once (no STP delay), multicast snooping off so that
// router adverts and DHCPv6 multicast reach every port, and router adverts
// ignored on the bridge itself.
func (ns *Namespace) AddBridge(ctx context.Context, br Bridge) error {
	if err := validIfName(br.Name); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	if _, err := ns.IP(ctx, "link", "add", br.Name, "type", "bridge",
		"forward_delay", "0", "stp_state", "0", "mcast_snooping", "0"); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	// The bridge is the router of its segment: it must not configure
	// itself from the adverts it sends.
	if err := ns.Do(func() error {
		return writeSysctl("net/ipv6/conf/"+br.Name+"/accept_ra", "0")
	}); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	if err := ns.setAddrs(ctx, br.Name, br.IPv4, br.IPv6); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	if _, err := ns.IP(ctx, "link", "set", br.Name, "up"); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	return nil
}

// setAddrs disables DAD on dev and adds the valid prefixes to it.
func (ns *Namespace) setAddrs(ctx context.Context, dev string, addrs ...netip.Prefix) error {
	if err := ns.Do(func() error {
		return writeSysctl("net/ipv6/conf/"+dev+"/accept_dad", "0")
	}); err != nil {
		return err
	}
	for _, p := range addrs {
		if !p.IsValid() {
			continue
		}
		args := []string{"addr", "add", p.String(), "dev", dev}
		if p.Addr().Is6() {
			args = append(args, "nodad")
		}
		if _, err := ns.IP(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// VethEnd is one end of a veth pair.
type VethEnd struct {
	Netns  string           // namespace holding this end; required
	Name   string           // interface name, at most 15 bytes
	Master string           // optional bridge in Netns that this end joins
	MAC    net.HardwareAddr // optional; the kernel picks one otherwise
	Addrs  []netip.Prefix   // optional addresses, added without DAD
}

// AddVeth creates a veth pair with one end in each namespace (both may be the
// same), sets MACs, addresses and masters as given and brings both ends up.
// Deleting either end, or its namespace, removes the pair.
func AddVeth(ctx context.Context, a, b VethEnd) error {
	for _, e := range []VethEnd{a, b} {
		if e.Netns == "" {
			return fmt.Errorf("add veth %s: no namespace given", e.Name)
		}
		if err := validIfName(e.Name); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
	}
	nsA, nsB := &Namespace{Name: a.Netns}, &Namespace{Name: b.Netns}
	if _, err := nsA.IP(ctx, "link", "add", a.Name, "type", "veth", "peer", "name", b.Name, "netns", b.Netns); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", a.Name, b.Name, err)
	}
	for _, x := range []struct {
		ns *Namespace
		e  VethEnd
	}{{nsA, a}, {nsB, b}} {
		if err := x.ns.setupEnd(ctx, x.e); err != nil {
			_, _ = nsA.IP(ctx, "link", "del", a.Name)
			return fmt.Errorf("add veth %s/%s: %w", a.Name, b.Name, err)
		}
	}
	return nil
}

func (ns *Namespace) setupEnd(ctx context.Context, e VethEnd) error {
	if e.MAC != nil {
		if _, err := ns.IP(ctx, "link", "set", e.Name, "address", e.MAC.String()); err != nil {
			return err
		}
	}
	if e.Master != "" {
		if _, err := ns.IP(ctx, "link", "set", e.Name, "master", e.Master); err != nil {
			return err
		}
	}
	if err := ns.setAddrs(ctx, e.Name, e.Addrs...); err != nil {
		return err
	}
	_, err := ns.IP(ctx, "link", "set", e.Name, "up")
	return err
}

// writeSysctl writes a /proc/sys value for the calling thread's namespace.
func writeSysctl(key, value string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

func validIfName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid name %q: 1-15 bytes, no '/', ':' or spaces", name)
	}
	return nil
}
