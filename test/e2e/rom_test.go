package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ipxebuild "github.com/vmprov/vmprov/ipxe-build"
	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// romBuildDeadline bounds `vmprov ipxe build` of the ROM: minutes on two
// shared cores without a cache entry, instant with one.
const romBuildDeadline = 30 * time.Minute

// TestROM builds bin/1af41000.rom from the iPXE tree at $IPXE_SRC with
// `vmprov ipxe build` (the lab's boot.url and boot.url_v6 embedded; cached
// under $XDG_CACHE_HOME/vmprov/ipxe) and boots two VMs that `vmprov create`
// gives it as <rom file=…/> through libvirt.rom, in the lab of the demo
// scenario (test/lab/demo):
//
//   - rom4 on VLAN 135 (br135) with an IPv4 address: the embedded script's
//     DHCPv4 gets vmprov serve's ACK, and the script asks
//     /mac/<hexhyp>/ipxe (404) and /pxedust over IPv4, then the host's
//     chain to the kernel and initrd. It never asks /boot.ipxe: the script
//     is in the ROM.
//   - rom6 on VLAN 136 (br136, IPv6 only, no DHCPv4 answer for anyone): the
//     script's DHCPv4 fails, it configures IPv6 from the lab's router
//     adverts (SLAAC) and asks /pxedust of boot.url_v6 from its EUI-64
//     address, then the chain.
//
// With the multiboot stand-in kernel, the kernel command line each VM
// booted must carry its firstboot URL of the right family.
func TestROM(t *testing.T) {
	src := os.Getenv("IPXE_SRC")
	if src == "" {
		t.Skip("IPXE_SRC is not set: point it at an iPXE source tree (git clone https://github.com/ipxe/ipxe) to build bin/1af41000.rom and boot it in the lab")
	}
	if testing.Short() {
		t.Skip("builds iPXE and boots two VMs for minutes")
	}
	requireDemoLab(t)
	if err := ipxebuild.CheckToolchain(ipxebuild.Toolchain{}, []string{ipxebuild.DefaultTarget}); err != nil {
		t.Skipf("cannot build iPXE here: %v", err)
	}
	tmp := t.TempDir()
	bin := buildVmprov(t, tmp)
	e := setupDemo(t, bin, lab.IPv6OnlyBridge())
	if e.BootURL6 == "" {
		t.Fatal("the demo scenario configured no boot.url_v6 for the IPv6-only bridge")
	}
	rom := buildROM(t, bin, src, filepath.Join(tmp, "ipxe-out"), e.BootURL, e.BootURL6)
	setLibvirtROM(t, e.Config, rom)

	small := []string{"--distro", "core", "--memory", "256", "--vcpus", "1", "--disk-size", "1"}
	vms := []struct {
		name, base string
		args       []string
	}{
		{"rom4", e.BootURL, []string{"--vlan", "135", "--ip", "192.0.2.12"}},
		{"rom6", e.BootURL6, []string{"--vlan", "136"}},
	}
	// Both VMs boot at once; each subtest follows one.
	boots := make([]*demo.Boot, len(vms))
	starts := make([]time.Time, len(vms))
	for i, vm := range vms {
		h, start, err := e.Create(t.Context(), vm.name, append(vm.args, small...)...)
		if err != nil {
			t.Fatal(err)
		}
		boots[i], starts[i] = &demo.Boot{Host: h, Timeline: demo.Timeline{Host: h, Start: start}}, start
		t.Cleanup(func() {
			if b := boots[i]; b.Console != nil {
				if t.Failed() {
					t.Logf("--- %s ---\n%s", b.Console.Path, demo.Tail(b.Console.Path, 40))
				}
				_ = b.Console.Close()
			}
			if t.Failed() {
				t.Logf("--- %s ---\n%s", e.Lab.Libvirt.DomainLog(vm.name), demo.Tail(e.Lab.Libvirt.DomainLog(vm.name), 20))
			}
			if err := e.Destroy(context.Background(), vm.name); err != nil {
				t.Errorf("%v", err)
			}
		})
		x, err := e.Lab.Libvirt.Virsh(t.Context(), "dumpxml", vm.name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(x, "<rom file='"+rom+"'/>") {
			t.Fatalf("domain %s has no <rom file='%s'/>:\n%s", vm.name, rom, x)
		}
		t.Logf("created %s: mac %s, addresses %v", vm.name, h.MAC, h.Addrs())
	}

	for i, vm := range vms {
		t.Run(vm.name, func(t *testing.T) {
			b := boots[i]
			h := b.Host
			if h.IPv4.IsValid() != (vm.name == "rom4") || !h.IPv6.IsValid() {
				t.Fatalf("%s has IPv4 %v and IPv6 %v", vm.name, h.IPv4, h.IPv6)
			}
			err := e.FollowBoot(t.Context(), b, starts[i], demo.BootSpec{Timeout: demo.BootTimeout,
				Each: func(ev demo.Event) { t.Log(ev) }})
			if err != nil {
				t.Fatal(err)
			}
			ack, acked := b.Timeline.First(demo.DHCP4, "dhcp4 ACK")
			switch {
			case h.IPv4.IsValid() && !acked:
				t.Errorf("no DHCPv4 ACK logged for %s", h.MAC)
			case h.IPv4.IsValid() && (ack.Line.Class != "ipxe" || ack.Line.File != e.BootURL+"/boot.ipxe"):
				t.Errorf("DHCPv4 ACK of %s: class %q file %q, want class ipxe file %s/boot.ipxe", h.MAC, ack.Line.Class, ack.Line.File, e.BootURL)
			case !h.IPv4.IsValid():
				for _, ev := range b.Timeline.Events {
					if ev.Kind == demo.DHCP4 && ev.Line.Msg != "dhcp4 listening" {
						t.Errorf("vmprov serve answered the IPv6-only %s over DHCPv4: %s", h.MAC, ev)
					}
				}
			}
			// The ROM's script configures net0 itself: one DHCPv4
			// exchange on the IPv4 VLAN, one DHCPv6 exchange (after
			// router adverts) on the IPv6-only one.
			k, msg := demo.DHCP4, "dhcp4 ACK"
			if !h.IPv4.IsValid() {
				k, msg = demo.DHCP6, "dhcp6 REPLY"
			}
			if n := countEvents(b.Timeline, k, msg); n != 1 {
				t.Errorf("%d %s answers for %s, want 1", n, msg, vm.name)
			}
			logDHCPToPXEDust(t, b.Timeline, k)
			// The script is embedded: the chain of a VM that fetched
			// /boot.ipxe, without that fetch.
			want := slices.DeleteFunc(demo.WantRequests(h), func(r demo.Request) bool { return r.File == "/boot.ipxe" })
			if got := b.Timeline.Requests(); !slices.Equal(got, want) {
				t.Errorf("requests of %s\n  got  %v\n  want %v", vm.name, got, want)
			}
			family := h.IPv4
			if !family.IsValid() {
				family = h.IPv6
			}
			for _, ev := range b.Timeline.Events {
				if ev.Kind == demo.HTTP && ev.Line.IP != family.String() {
					t.Errorf("%s asked %s from %s, want from %s", vm.name, ev.Line.File, ev.Line.IP, family)
				}
			}
			if e.EchoKernel && b.Console != nil {
				t.Logf("kernel command line: %s", b.Cmdline)
				if w := "firstboot=" + vm.base + "/bootstrap/install/core/firstboot"; !slices.Contains(strings.Fields(b.Cmdline), w) {
					t.Errorf("%s: kernel command line %q lacks %s", vm.name, b.Cmdline, w)
				}
			}
		})
	}
}

// buildROM runs `vmprov ipxe build` of the ROM with bootURL and bootURL6
// embedded and returns the ROM's path under out, after checking that the
// manifest has the script, with both URLs, in the ROM.
func buildROM(t *testing.T, bin, src, out, bootURL, bootURL6 string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), romBuildDeadline)
	defer cancel()
	began := time.Now()
	c := exec.CommandContext(ctx, bin, "ipxe", "build", "--src", src, "--out", out,
		"--target", ipxebuild.DefaultTarget, "--boot-url", bootURL, "--boot-url-v6", bootURL6)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("vmprov ipxe build: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("vmprov ipxe build in %v:\n%s", time.Since(began).Round(time.Second), stdout.Bytes())
	m, err := ipxebuild.ReadManifest(filepath.Join(out, ipxebuild.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Outputs {
		if o.Target != ipxebuild.DefaultTarget {
			continue
		}
		if !o.ScriptEmbedded {
			t.Fatalf("%s: boot script not embedded", o.Target)
		}
		for _, u := range []string{bootURL + "/pxedust", bootURL6 + "/pxedust"} {
			if !strings.Contains(m.Script.Content, u) {
				t.Fatalf("embedded script does not chain %s:\n%s", u, m.Script.Content)
			}
		}
		rom := filepath.Join(out, o.Target)
		if _, err := os.Stat(rom); err != nil {
			t.Fatal(err)
		}
		return rom
	}
	t.Fatalf("no %s in the build's outputs %+v", ipxebuild.DefaultTarget, m.Outputs)
	return ""
}

// setLibvirtROM sets libvirt.rom in the demo scenario's config file, which
// only `vmprov create` reads: the running serve is not affected.
func setLibvirtROM(t testing.TB, config, rom string) {
	t.Helper()
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	const key = "\nlibvirt: {"
	if n := bytes.Count(b, []byte(key)); n != 1 {
		t.Fatalf("%s: %d lines start with %q, want 1: cannot add libvirt.rom\n%s", config, n, strings.TrimSpace(key), b)
	}
	b = bytes.Replace(b, []byte(key), []byte(fmt.Sprintf("%s rom: %q,", key, rom)), 1)
	if err := os.WriteFile(config, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// countEvents returns how many events of kind k with message msg tl has.
func countEvents(tl demo.Timeline, k demo.Kind, msg string) int {
	n := 0
	for _, ev := range tl.Events {
		if ev.Kind == k && ev.Line.Msg == msg {
			n++
		}
	}
	return n
}
