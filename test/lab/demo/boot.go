package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// BootTimeout bounds a VM's boot from create to its initrd request (and
// the stand-in kernel's output): SeaBIOS, an empty disk, iPXE's DHCP and the
// chain under TCG on a shared machine. Generous on purpose.
const BootTimeout = 6 * time.Minute

// BootSpec is one VM to create and follow.
type BootSpec struct {
	Name    string
	Args    []string      // `vmprov create` arguments after --name NAME
	Timeout time.Duration // BootTimeout when zero
	// Until ends the follow; default: the host fetched its initrd and,
	// with the multiboot stand-in kernel, that kernel printed its command
	// line on the console.
	Until func(*Boot) bool
	Each  func(Event) // optional: sees events as serve logs them
	// ConsoleURI is the libvirt URI of the hypervisor the VM runs on, for
	// its serial console; empty: the lab's libvirtd.
	ConsoleURI string
}

// Boot is a VM's boot as the lab saw it.
type Boot struct {
	Host     Host
	Timeline Timeline
	Console  *Console // nil if the console could not be opened
	// Cmdline and Modules are what the stand-in kernel printed (see
	// KernelCmdline); empty until it has.
	Cmdline string
	Modules []string
}

// InitrdPath is the HTTP path of distribution core's initrd under the
// default mirror (boot.url/assets).
const InitrdPath = "/assets/" + PXEBootPath + "/initrd.img"

// KernelPath is the HTTP path of distribution core's kernel.
const KernelPath = "/assets/" + PXEBootPath + "/vmlinuz"

// Booted is the default BootSpec.Until.
func (e *Env) Booted(b *Boot) bool {
	if !b.Timeline.Has(InitrdPath) {
		return false
	}
	return !e.EchoKernel || b.Console == nil || b.Cmdline != ""
}

// Boot creates the VM with `vmprov create` and follows its boot until
// spec.Until, recording its serial console to DIR/NAME-console.log. The
// returned Boot holds what was seen even when the error is not nil. The VM
// is left running.
func (e *Env) Boot(ctx context.Context, spec BootSpec) (*Boot, error) {
	h, start, err := e.Create(ctx, spec.Name, spec.Args...)
	b := &Boot{Host: h, Timeline: Timeline{Host: h, Start: start}}
	if err != nil {
		return b, err
	}
	return b, e.FollowBoot(ctx, b, start, spec)
}

// FollowBoot follows an already created VM's boot into b (see Boot).
func (e *Env) FollowBoot(ctx context.Context, b *Boot, start time.Time, spec BootSpec) error {
	if spec.Timeout == 0 {
		spec.Timeout = BootTimeout
	}
	if spec.Until == nil {
		spec.Until = e.Booted
	}
	if b.Console == nil {
		c, err := e.OpenConsoleAt(spec.ConsoleURI, b.Host.Name, filepath.Join(e.Dir, b.Host.Name+"-console.log"))
		if err != nil {
			e.log.Warn("no serial console", "name", b.Host.Name, "err", err)
		}
		b.Console = c
	}
	var err error
	b.Timeline, err = e.Follow(ctx, b.Host, start, spec.Timeout, func(t Timeline) bool {
		b.Timeline = t
		if b.Console != nil && b.Cmdline == "" {
			if cl, mods, ok := KernelCmdline(b.Console.Text()); ok {
				b.Cmdline, b.Modules = cl, mods
			}
		}
		return spec.Until(b)
	}, spec.Each)
	return err
}

// WantRequests is the HTTP requests, in order, that the boot chain
// (docs/design.md, "The boot chain") makes a VM with distribution core and
// the default bootstrap script send: the embedded script as /boot.ipxe (from
// the DHCP boot file), then over IPv4 the per-MAC script (404) and /pxedust,
// or over IPv6 (no DHCPv4 answer) /pxedust at once; the site bootstrap
// script, the install dispatch, and the kernel and initrd.
func WantRequests(h Host) []Request {
	want := []Request{{HTTP, "/boot.ipxe", 200}}
	if h.IPv4.IsValid() {
		want = append(want, Request{HTTP, "/mac/" + strings.ReplaceAll(h.MAC, ":", "-") + "/ipxe", 404})
	}
	return append(want,
		Request{HTTP, "/pxedust", 200},
		Request{HTTP, "/bootstrap/" + Site + "/default.ipxe", 200},
		Request{HTTP, "/bootstrap/install/default.ipxe", 200},
		Request{HTTP, KernelPath, 200},
		Request{HTTP, InitrdPath, 200},
	)
}

// DHCPReply returns the DHCP message that gave h its boot file: a DHCPv4
// ACK for hosts with IPv4, else a DHCPv6 Reply.
func DHCPReply(t Timeline) (Event, bool) {
	if t.Host.IPv4.IsValid() {
		return t.First(DHCP4, "dhcp4 ACK")
	}
	return t.First(DHCP6, "dhcp6 REPLY")
}

// Check compares a boot with what the boot chain must produce: the DHCP
// reply with BASE/boot.ipxe (boot.url, or boot.url_v6 for IPv6-only hosts),
// WantRequests in order, and, with the stand-in kernel, a command line with
// firstboot= and console=. The error lists every difference.
func (e *Env) Check(b *Boot) error {
	var errs []error
	base := e.BootURL
	if !b.Host.IPv4.IsValid() {
		base = e.BootURL6
	}
	if ev, ok := DHCPReply(b.Timeline); !ok {
		errs = append(errs, fmt.Errorf("%s: no DHCP reply logged for MAC %s", b.Host.Name, b.Host.MAC))
	} else if want := base + "/boot.ipxe"; ev.Line.File != want {
		errs = append(errs, fmt.Errorf("%s: DHCP boot file %q, want %q", b.Host.Name, ev.Line.File, want))
	}
	got, want := b.Timeline.Requests(), WantRequests(b.Host)
	if !slices.Equal(got, want) {
		errs = append(errs, fmt.Errorf("%s: requests\n  got  %v\n  want %v", b.Host.Name, got, want))
	}
	if e.EchoKernel && b.Console != nil {
		if b.Cmdline == "" {
			errs = append(errs, fmt.Errorf("%s: the stand-in kernel printed no command line (console: %s)", b.Host.Name, b.Console.Path))
		}
		for _, w := range []string{" firstboot=" + base + "/bootstrap/install/core/firstboot", " console=ttyS0,115200"} {
			if b.Cmdline != "" && !strings.Contains(b.Cmdline+" ", w+" ") {
				errs = append(errs, fmt.Errorf("%s: kernel command line %q lacks %q", b.Host.Name, b.Cmdline, strings.TrimSpace(w)))
			}
		}
	}
	return errors.Join(errs...)
}
