package lab

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// OVMF is the UEFI firmware image OVMFForTest boots (Debian package ovmf).
const OVMF = "/usr/share/ovmf/OVMF.fd"

// OVMFForTest boots OVMF under QEMU (TCG, q35, 512 MiB) with one
// virtio-net NIC of MAC mac on a new tap device tap of the segment's
// bridge, with no option ROM on the NIC so that EDK2's own network stack
// runs, until t ends. extra are further QEMU arguments (e.g. -fw_cfg
// switches of EDK2). It returns the path of the serial console's log. On
// failure the test log gets QEMU's output and the console.
func (s *Segment) OVMFForTest(t testing.TB, mac net.HardwareAddr, tap string, extra ...string) string {
	t.Helper()
	for _, args := range [][]string{
		{"tuntap", "add", "dev", tap, "mode", "tap"},
		{"link", "set", tap, "master", s.Bridge.Name, "up"},
	} {
		if _, err := s.Router.IP(t.Context(), args...); err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
	serial := filepath.Join(t.TempDir(), "serial.log")
	argv := append([]string{"ip", "netns", "exec", s.Router.Name, "qemu-system-x86_64",
		"-nodefaults", "-display", "none", "-vga", "std", "-m", "512", "-machine", "q35,accel=tcg",
		"-bios", OVMF, "-serial", "file:" + serial,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac=" + mac.String()}, extra...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // `ip netns exec` execs QEMU: this is QEMU's PID
		_ = cmd.Wait()
		if t.Failed() {
			console, _ := os.ReadFile(serial)
			t.Logf("qemu: %s\nserial console:\n%s", out.String(), console)
		}
		_, _ = s.Router.IP(context.Background(), "link", "del", tap)
	})
	return serial
}
