package dhcp4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/vmprov/vmprov/test/lab"
)

var capture = flag.Bool("capture", false, "re-record the client packets in testdata by running real clients (QEMU firmware, nclient4)")

// firmwareCaptures are the real clients whose DHCPDISCOVER is kept in
// testdata: Debian's iPXE and OVMF under QEMU. The NIC is a QEMU "socket"
// netdev whose frames go to a UDP port nobody answers, and filter-dump
// writes them to a pcap file, so no root and no network are needed.
var firmwareCaptures = []struct {
	name string
	mac  string
	args []string
}{
	// SeaBIOS runs the iPXE ROM QEMU ships for virtio-net (it matches
	// the modern device ID, hence disable-legacy).
	{"ipxe-bios-discover", "02:04:06:08:72:0a", []string{"-machine", "pc,accel=tcg", "-device", "virtio-net-pci,netdev=n0,mac=%s,disable-legacy=on"}},
	// OVMF's own PXE stack: no option ROM on the NIC.
	{"ovmf-pxe-discover", "02:04:06:08:72:0b", []string{"-machine", "q35,accel=tcg", "-bios", "/usr/share/ovmf/OVMF.fd", "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile="}},
	// OVMF's UEFI HTTP boot: PXE switched off through fw_cfg.
	{"ovmf-http-discover", "02:04:06:08:72:0c", []string{"-machine", "q35,accel=tcg", "-bios", "/usr/share/ovmf/OVMF.fd",
		"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n", "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
		"-device", "virtio-net-pci,netdev=n0,mac=%s,romfile="}},
	// iPXE's EFI driver (QEMU's default virtio-net ROM) under OVMF.
	{"ipxe-efi-discover", "02:04:06:08:72:0d", []string{"-machine", "q35,accel=tcg", "-bios", "/usr/share/ovmf/OVMF.fd", "-device", "virtio-net-pci,netdev=n0,mac=%s"}},
}

func TestCaptureFirmware(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to re-record the firmware packets in testdata")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("capture: needs qemu-system-x86_64 (qemu-system-x86), ovmf and ipxe-qemu")
	}
	for _, fc := range firmwareCaptures {
		t.Run(fc.name, func(t *testing.T) {
			pkt := captureFirmware(t, fc.mac, fc.args)
			writeTestdata(t, fc.name+".bin", pkt)
		})
	}
}

// captureFirmware boots QEMU with args and returns the first DHCPDISCOVER
// its NIC sends.
func captureFirmware(t *testing.T, mac string, args []string) []byte {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	local, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	localAddr := local.LocalAddr().String()
	local.Close() // QEMU binds it; a race with another process is harmless here
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	pcap := filepath.Join(t.TempDir(), "nic.pcap")
	argv := []string{"-nodefaults", "-vga", "std", "-display", "none", "-m", "512",
		"-netdev", fmt.Sprintf("socket,id=n0,udp=%s,localaddr=%s", sink.LocalAddr(), localAddr),
		"-object", "filter-dump,id=f0,netdev=n0,file=" + pcap}
	for _, a := range args {
		if bytes.Contains([]byte(a), []byte("%s")) {
			a = fmt.Sprintf(a, mac)
		}
		argv = append(argv, a)
	}
	cmd := exec.Command("qemu-system-x86_64", argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		b, err := os.ReadFile(pcap)
		if err != nil {
			continue
		}
		for _, p := range pcapDHCP(b) {
			req, err := dhcpv4.FromBytes(p)
			if err == nil && req.MessageType() == dhcpv4.MessageTypeDiscover && req.ClientHWAddr.String() == mac {
				return p
			}
		}
	}
	t.Fatalf("no DHCPDISCOVER from %s within 3 minutes; qemu said: %s", mac, out.String())
	return nil
}

// pcapDHCP returns the UDP payloads to port 67 of the Ethernet/IPv4 frames
// in a pcap file (as QEMU's filter-dump writes it: little-endian, 24-byte
// header, 16-byte record headers).
func pcapDHCP(b []byte) [][]byte {
	var out [][]byte
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		if off+16+n > len(b) {
			break
		}
		f := b[off+16 : off+16+n]
		off += 16 + n
		if len(f) < 14+20 || f[12] != 0x08 || f[13] != 0x00 {
			continue
		}
		ip := f[14:]
		ihl := int(ip[0]&0xf) * 4
		if ip[9] != 17 || len(ip) < ihl+8 {
			continue
		}
		udp := ip[ihl:]
		if binary.BigEndian.Uint16(udp[2:]) != dhcpv4.ServerPort {
			continue
		}
		ul := int(binary.BigEndian.Uint16(udp[4:]))
		if ul < 8 || ul > len(udp) {
			continue
		}
		out = append(out, append([]byte(nil), udp[8:ul]...))
	}
	return out
}

// TestCaptureNclient4 records the DHCPDISCOVER of insomniacslk's nclient4
// as it reaches the bridge of a lab segment.
func TestCaptureNclient4(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to re-record the nclient4 packet in testdata")
	}
	seg := lab.SegmentForTest(t)
	cli := seg.ClientForTest(t, net.HardwareAddr{0x02, 0x04, 0x06, 0x08, 0x72, 0x0e})
	var conn *net.UDPConn
	var client *nclient4.Client
	err := seg.Router.Do(func() error {
		var err error
		conn, err = server4.NewIPv4UDPConn(seg.Bridge.Name, &net.UDPAddr{Port: dhcpv4.ServerPort})
		return err
	})
	if err == nil {
		err = cli.Do(func() error {
			var err error
			client, err = nclient4.New("eth0", nclient4.WithTimeout(time.Second), nclient4.WithRetry(1))
			return err
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer client.Close()
	cctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	go func() { _, _ = client.DiscoverOffer(cctx) }()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no discover from nclient4: %v", err)
	}
	writeTestdata(t, "nclient4-discover.bin", buf[:n])
}

func writeTestdata(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/%s (%d bytes)", name, len(b))
}

// readTestdata reads a recorded packet.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("testdata/%s is missing: record it with go test -run Capture -capture", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}
