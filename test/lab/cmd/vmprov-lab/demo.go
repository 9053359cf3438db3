package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

type demoOptions struct {
	Dir, Netns, Vmprov string
	Log                *slog.Logger
}

// stepError names the step that failed and where to look.
type stepError struct {
	step string
	logs []string
	err  error
}

func (e *stepError) Error() string {
	s := fmt.Sprintf("step %q failed: %v", e.step, e.err)
	if len(e.logs) > 0 {
		s += "\n  logs: " + strings.Join(e.logs, "\n        ")
	}
	return s
}

func (e *stepError) Unwrap() error { return e.err }

// runDemo is `make lab`: the lab up with `vmprov serve`, then the seed 000
// workflow with the real CLI, a VM on the dual-stack VLAN 135 and one on
// the IPv6-only VLAN 136, their boot timelines, their DNS records and
// `vmprov list`. Everything stays up for `make lab-down`. It fails when a
// boot does not show the requests the boot chain must make.
func runDemo(ctx context.Context, w io.Writer, o demoOptions) error {
	began := time.Now()
	var (
		l   *lab.Lab
		env *demo.Env
	)
	n, total := 0, 7
	step := func(title string, logs func() []string, fn func() error) error {
		n++
		t0 := time.Now()
		fmt.Fprintf(w, "\n==> [%d/%d] %s\n", n, total, title)
		if err := fn(); err != nil {
			var ls []string
			if logs != nil {
				ls = logs()
			}
			return &stepError{step: title, logs: ls, err: err}
		}
		fmt.Fprintf(w, "    done in %.1fs\n", time.Since(t0).Seconds())
		return nil
	}
	labLogs := func() []string {
		st, err := lab.ReadState(o.Dir)
		if err != nil {
			return []string{filepath.Join(o.Dir, lab.StateFile)}
		}
		var ls []string
		for _, p := range st.Processes {
			ls = append(ls, fmt.Sprintf("%s: %s", p.Name, p.Log))
		}
		return ls
	}
	serveLogs := func() []string {
		if env == nil {
			return labLogs()
		}
		return []string{"vmprov serve: " + env.ServeLog, "libvirtd: " + filepath.Join(o.Dir, "libvirt", "libvirtd.log")}
	}

	err := step("lab up: namespace "+o.Netns+", bridges br135 + br136 (IPv6-only), BIND, libvirtd, radvd", labLogs, func() error {
		fmt.Fprintf(w, "    (an earlier lab in %s is torn down first)\n", o.Dir)
		var err error
		l, err = lab.Up(ctx, lab.Options{Dir: o.Dir, Netns: o.Netns, Log: o.Log, More: []lab.Bridge{lab.IPv6OnlyBridge()}})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    BIND %s zone %s, reverse zones %s\n", l.State.DNS, l.State.Zone, strings.Join(l.State.ReverseZones, " "))
		fmt.Fprintf(w, "    libvirt %s\n", l.State.LibvirtURI)
		return nil
	})
	if err != nil {
		return err
	}
	err = step("vmprov serve in the namespace (DHCPv4, DHCPv6, HTTP, TFTP)", labLogs, func() error {
		var err error
		env, err = demo.Setup(ctx, l, o.Vmprov, filepath.Join(l.Dir, "vmprov"), o.Log)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    pid %d, config %s\n    log %s\n", env.Serve.Process().PID, env.Config, env.ServeLog)
		fmt.Fprintf(w, "    boot.url %s, boot.url_v6 %s\n", env.BootURL, env.BootURL6)
		return nil
	})
	if err != nil {
		return err
	}

	b4 := &demo.Boot{}
	b6 := &demo.Boot{}
	var start4, start6 time.Time
	args4 := []string{"--vlan", "135", "--ip", "192.0.2.10", "--distro", "core"}
	args6 := []string{"--vlan", "136", "--distro", "core", "--memory", "512", "--vcpus", "1", "--disk-size", "1"}
	err = step("vmprov create (the real CLI): demo1 on VLAN 135, demo6 IPv6-only on VLAN 136", serveLogs, func() error {
		fmt.Fprintf(w, "    $ vmprov create --name demo1 %s\n", strings.Join(args4, " "))
		h, s, err := env.Create(ctx, "demo1", args4...)
		if err != nil {
			return err
		}
		b4.Host, start4 = h, s
		fmt.Fprintf(w, "    demo1: %s mac %s ipv4 %s ipv6 %s\n", h.FQDN, h.MAC, h.IPv4, h.IPv6)
		fmt.Fprintf(w, "    $ vmprov create --name demo6 %s\n", strings.Join(args6, " "))
		h, s, err = env.Create(ctx, "demo6", args6...)
		if err != nil {
			return err
		}
		b6.Host, start6 = h, s
		fmt.Fprintf(w, "    demo6: %s mac %s (SLAAC) ipv6 %s\n", h.FQDN, h.MAC, h.IPv6)
		return nil
	})
	if err != nil {
		return err
	}

	var failed []error
	follow := func(b *demo.Boot, start time.Time) func() error {
		return func() error {
			fmt.Fprintf(w, "    %8s  %-40s %s\n", "since", "client", "event")
			last := time.Now()
			spec := demo.BootSpec{
				Each: func(ev demo.Event) {
					fmt.Fprintf(w, "    %s\n", ev)
					last = time.Now()
				},
				Until: func(bt *demo.Boot) bool {
					if env.Booted(bt) {
						return true
					}
					if time.Since(last) > 20*time.Second {
						fmt.Fprintf(w, "    ... %s: waiting, %.0fs since create (SeaBIOS and iPXE under TCG; console %s)\n",
							bt.Host.Name, time.Since(start).Seconds(), consolePath(bt))
						last = time.Now()
					}
					return false
				},
			}
			if err := env.FollowBoot(ctx, b, start, spec); err != nil {
				return err
			}
			if b.Cmdline != "" {
				fmt.Fprintf(w, "    kernel command line, as the stand-in kernel got it from iPXE:\n      %s\n", b.Cmdline)
				for _, m := range b.Modules {
					fmt.Fprintf(w, "      initrd: %s\n", m)
				}
			}
			if err := env.Check(b); err != nil {
				failed = append(failed, err)
				fmt.Fprintf(w, "    NOT AS EXPECTED:\n      %s\n", strings.ReplaceAll(err.Error(), "\n", "\n      "))
			} else {
				fmt.Fprintf(w, "    as expected: DHCP boot file, %d requests in order, kernel command line\n", len(b.Timeline.Requests()))
			}
			return nil
		}
	}
	vmLogs := func(name string) func() []string {
		return func() []string {
			return append(serveLogs(), "console: "+filepath.Join(env.Dir, name+"-console.log"),
				"qemu: "+l.Libvirt.DomainLog(name))
		}
	}
	if err := step("demo1 boots: DHCPv4, /mac/…, /pxedust, bootstrap, install script, kernel, initrd", vmLogs("demo1"), follow(b4, start4)); err != nil {
		return err
	}
	if err := step("demo6 boots over IPv6 only: SLAAC, DHCPv6, /pxedust from its IPv6 address, …", vmLogs("demo6"), follow(b6, start6)); err != nil {
		return err
	}

	err = step("DNS: what the lab BIND answers for the hosts", labLogs, func() error {
		dig := func(args ...string) error {
			out, err := l.Netns.Exec(ctx, append([]string{"dig", "@" + hostOf(l.State.DNS), "+short"}, args...)...)
			if err != nil {
				return err
			}
			ans := strings.Join(strings.Fields(out), " ")
			if ans == "" {
				ans = "(no record)"
			}
			fmt.Fprintf(w, "    $ dig %-52s %s\n", strings.Join(args, " "), ans)
			return nil
		}
		for _, b := range []*demo.Boot{b4, b6} {
			h := b.Host
			if err := dig(h.FQDN, "A"); err != nil {
				return err
			}
			if err := dig(h.FQDN, "AAAA"); err != nil {
				return err
			}
			for _, a := range h.Addrs() {
				if err := dig("-x", a.String()); err != nil {
					return err
				}
			}
			if err := dig(h.FQDN, "TXT"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = step("vmprov list", serveLogs, func() error {
		out, err := env.Vmprov(ctx, "list")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(strings.TrimRight(string(out), "\n"), "\n", "\n    "))
		return nil
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(w, `
Note: the kernel and initrd served under %s/assets are small local stand-ins
(the "kernel" is a multiboot program that prints its command line and halts), so
no OS gets installed. To install for real, point boot.assets in %s
at a mirror (e.g. boot.assets: "http://mirror.example.org/pub", holding
centos/7/os/x86_64/...), or put real files under %s.
Debian 12's real installer needs nothing copied: serve serves it from the package
debian-installer-12-netboot-amd64 (serve.asset_dirs), so
  ip netns exec %s %s --config %s create --name di1 --vlan 135 --ip 192.0.2.40 --distro bookworm --memory 1024
boots d-i with its preseed up to the mirror, which the lab lacks (give one with --txt mirror=URL).

The lab stays up (%.0fs in all): vmprov serve (pid %d), BIND, libvirtd and radvd in
namespace %s; try
  ip netns exec %s %s --config %s list
  ip netns exec %s dig @%s demo1.%s ANY
Remove everything with: make lab-down
`, env.BootURL, env.Config, filepath.Join(env.Dir, "serve", "assets"), l.State.Netns, env.Bin, env.Config, time.Since(began).Seconds(), env.Serve.Process().PID,
		l.State.Netns, l.State.Netns, env.Bin, env.Config, l.State.Netns, hostOf(l.State.DNS), strings.TrimSuffix(l.State.Zone, "."))
	if len(failed) > 0 {
		return fmt.Errorf("the boot timelines are not as expected:\n%w", errors.Join(failed...))
	}
	return nil
}

func consolePath(b *demo.Boot) string {
	if b.Console == nil {
		return "(none)"
	}
	return b.Console.Path
}

// hostOf returns the host part of an address:port.
func hostOf(addrPort string) string {
	if i := strings.LastIndex(addrPort, ":"); i > 0 {
		return strings.Trim(addrPort[:i], "[]")
	}
	return addrPort
}
