package e2e

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/test/lab/demo"
)

// TestNetbootIPv4 creates a VM with `vmprov create` in the lab and follows
// it from SeaBIOS through iPXE's DHCPv4 exchange with `vmprov serve` to the
// kernel and initrd of its install script, asserting the HTTP requests the
// VM made, in order, and the kernel command line iPXE booted the stand-in
// kernel with (read back from the VM's serial console).
func TestNetbootIPv4(t *testing.T) {
	e := startDemo(t)
	b := boot(t, e, "demo1", "--vlan", "135", "--ip", "192.0.2.10", "--distro", "core",
		"--txt", "puppet_environment=e2e", "--memory", "256", "--vcpus", "1", "--disk-size", "1")
	h := b.Host
	if want := netip.MustParseAddr("192.0.2.10"); h.IPv4 != want {
		t.Fatalf("created host IPv4 = %v, want %v", h.IPv4, want)
	}
	hexhyp := strings.ReplaceAll(h.MAC, ":", "-")
	const boot = "http://192.0.2.1:8080"

	ack, ok := b.Timeline.First(demo.DHCP4, "dhcp4 ACK")
	if !ok {
		t.Errorf("no DHCPv4 ACK logged for %s", h.MAC)
	} else if want := boot + "/boot.ipxe"; ack.Line.File != want {
		t.Errorf("DHCPv4 ACK boot file = %q, want %q", ack.Line.File, want)
	}
	if ack.At > b.Timeline.Events[len(b.Timeline.Events)-1].At {
		t.Errorf("DHCPv4 ACK logged after the last request")
	}
	// One DHCPv4 exchange: iPXE's own, before it fetched /boot.ipxe, which
	// reuses the address it got instead of running DHCP again.
	checkOneDHCP(t, b.Timeline, demo.DHCP4, "dhcp4 ACK")
	logDHCPToPXEDust(t, b.Timeline, demo.DHCP4)

	var got []demo.Request
	for _, ev := range b.Timeline.Events {
		if ev.Kind == demo.HTTP {
			if ev.Line.IP != "192.0.2.10" {
				t.Errorf("%s from %s, want 192.0.2.10", ev.Line.File, ev.Line.IP)
			}
			got = append(got, demo.Request{Kind: ev.Kind, File: ev.Line.File, Status: ev.Line.Status})
		}
	}
	want := []demo.Request{
		{Kind: demo.HTTP, File: "/boot.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/mac/" + hexhyp + "/ipxe", Status: 404},
		{Kind: demo.HTTP, File: "/pxedust", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/example/default.ipxe", Status: 200}, // boot.site: the first label of dns.zone
		{Kind: demo.HTTP, File: "/bootstrap/install/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz", Status: 200},
		{Kind: demo.HTTP, File: "/assets/centos/7/os/x86_64/images/pxeboot/initrd.img", Status: 200},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HTTP requests of 192.0.2.10 (-want +got):\n%s", diff)
	}

	checkCmdline(t, b, boot, map[string]string{"puppet_environment": "e2e"})

	// vmprov explain predicts what serve answered this VM, byte for byte.
	checkExplain(t, e, b)

	// serve's /metrics counts what the boot did, DHCPv4 included, timed
	// the decisions of its DHCPv4 and HTTP answers, and has the Go
	// runtime's and the process's metrics.
	for _, s := range []struct {
		name   string
		labels []string
	}{
		{"vmprov_dhcp4_replies_total", []string{"type", "ack"}},
		{"vmprov_dns_queries_total", nil},
		{"vmprov_decision_duration_seconds_count", []string{"proto", "dhcp4"}},
		{"vmprov_decision_duration_seconds_count", []string{"proto", "http"}},
		{"process_resident_memory_bytes", nil},
		{"go_goroutines", nil},
	} {
		if v := metric(t, e, s.name, s.labels...); v < 1 {
			t.Errorf("/metrics %s%q = %v after a boot, want at least 1", s.name, s.labels, v)
		}
	}
}

// checkCmdline asserts the kernel command line install/default.ipxe makes
// iPXE boot distribution core with, as the stand-in kernel received it:
// the kernel and initrd from the mirror under base, the kickstart and
// repository, firstboot=, console= and the host's TXT variable
// variables hostVars, with URLs of base's address family.
func checkCmdline(t *testing.T, b *demo.Boot, base string, hostVars map[string]string) {
	t.Helper()
	if b.Cmdline == "" {
		t.Fatalf("the stand-in kernel printed no command line on the console (%s)", b.Console.Path)
	}
	t.Logf("kernel command line: %s", b.Cmdline)
	uri, args := cmdlineArgs(b.Cmdline)
	if want := base + "/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz"; uri != want {
		t.Errorf("kernel = %q, want %q", uri, want)
	}
	want := map[string]string{
		"inst.ks":     base + "/bootstrap/install/core/x86_64/ks.cfg",
		"inst.repo":   base + "/assets/centos/7/os/x86_64",
		"net.ifnames": "0",
		"firstboot":   base + "/bootstrap/install/core/firstboot",
		"console":     "ttyS0,115200",
	}
	for k, v := range hostVars {
		want[k] = v
	}
	gotSome := map[string]string{}
	for k := range want {
		if v, ok := args[k]; ok {
			gotSome[k] = v
		}
	}
	if diff := cmp.Diff(want, gotSome); diff != "" {
		t.Errorf("kernel command line %q (-want +got):\n%s", b.Cmdline, diff)
	}
	if want := []string{base + "/assets/centos/7/os/x86_64/images/pxeboot/initrd.img"}; !cmp.Equal(want, b.Modules) {
		t.Errorf("initrds = %q, want %q", b.Modules, want)
	}
}

// checkOneDHCP asserts that the boot's DHCP of kind k ended in exactly one
// answer msg (one exchange, "dhcp4 ACK" or "dhcp6 REPLY") and that no DHCP
// of that kind followed the client's request for /boot.ipxe: the boot
// script used the configuration the client had.
func checkOneDHCP(t *testing.T, tl demo.Timeline, k demo.Kind, msg string) {
	t.Helper()
	var answers []demo.Event
	script, fetched := time.Duration(0), false
	for _, ev := range tl.Events {
		switch {
		case ev.Kind == demo.HTTP && ev.Line.File == "/boot.ipxe" && !fetched:
			script, fetched = ev.At, true
		case ev.Kind == k && ev.Line.Msg == msg:
			answers = append(answers, ev)
		}
		if fetched && ev.Kind == k && ev.At > script {
			t.Errorf("%s after the client fetched /boot.ipxe at %.1fs, which should have used its configuration: %s", k, script.Seconds(), ev)
		}
	}
	if !fetched {
		t.Errorf("the client never fetched /boot.ipxe")
	}
	if len(answers) != 1 {
		t.Errorf("%d %s answers, want 1 (one exchange before /boot.ipxe):\n%v", len(answers), msg, answers)
	}
}

// logDHCPToPXEDust logs the time from the client's first DHCP message of
// kind k to its /pxedust request: the span the boot script and the DHCP
// answers decide (docs/design.md, "The boot chain"). Logged, never
// asserted: tests do not assert timings.
func logDHCPToPXEDust(t *testing.T, tl demo.Timeline, k demo.Kind) {
	t.Helper()
	first, ok := tl.First(k, "")
	if !ok {
		return
	}
	for _, ev := range tl.Events {
		if ev.Kind == demo.HTTP && ev.Line.File == "/pxedust" {
			t.Logf("first %s at %.1fs, /pxedust at %.1fs after create: %.1fs from DHCP to /pxedust (load average %s)",
				k, first.At.Seconds(), ev.At.Seconds(), (ev.At - first.At).Seconds(), loadAverage())
			return
		}
	}
}

// loadAverage is the first three fields of /proc/loadavg, for figures
// logged beside it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
