package ipxebuild

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuildRealIPXE builds bin/1af41000.rom (plus $IPXE_TARGETS, space-separated) from the
// iPXE tree at $IPXE_SRC with the real toolchain, then checks the ROM: a PCI option ROM
// for virtio-net (1af4:1000) whose link map has IPv6 and the requested commands, with the
// boot script in the image; that a second identical build is a cache hit; and, with QEMU
// installed, that the ROM boots as the virtio-net ROM and runs the embedded script.
func TestBuildRealIPXE(t *testing.T) {
	src := os.Getenv("IPXE_SRC")
	if src == "" {
		t.Skip("IPXE_SRC is not set: point it at an iPXE source tree (git clone https://github.com/ipxe/ipxe) to build a real ROM")
	}
	if err := CheckToolchain(Toolchain{}, []string{DefaultTarget}); err != nil {
		t.Skipf("cannot build iPXE here: %v", err)
	}
	targets := append([]string{DefaultTarget}, strings.Fields(os.Getenv("IPXE_TARGETS"))...)
	opts := BuildOptions{
		SrcDir:    src,
		Targets:   targets,
		OutDir:    filepath.Join(t.TempDir(), "out"),
		CacheDir:  filepath.Join(t.TempDir(), "cache"),
		BootURL:   "http://192.0.2.1",
		BootURLv6: "http://[2001:db8:135::1]",
		Options:   []string{"PING_CMD", "NSLOOKUP_CMD"},
		Serial:    true,
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	m, err := Build(t.Context(), opts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %v in %v from commit %q (tree %q)", targets, time.Since(start), m.Source.Commit, m.Source.TreeSHA256)

	var rom *Output
	for i := range m.Outputs {
		if m.Outputs[i].Target == DefaultTarget {
			rom = &m.Outputs[i]
		}
	}
	if rom == nil {
		t.Fatalf("no %s in %+v", DefaultTarget, m.Outputs)
	}
	for _, obj := range []string{"obj_ipv6", "obj_ping_cmd", "obj_nslookup_cmd"} {
		if !slices.Contains(rom.Objects, obj) {
			t.Errorf("%s not linked into %s (objects: %v)", obj, rom.Target, rom.Objects)
		}
	}
	if !rom.ScriptEmbedded {
		t.Errorf("boot script not found in %s.tmp", rom.Target)
	}
	info, err := Check(filepath.Join(opts.OutDir, DefaultTarget))
	if err != nil {
		t.Fatal(err)
	}
	if info.ROM == nil {
		t.Fatalf("%s is not a PCI option ROM", DefaultTarget)
	}
	if info.ROM.VendorID != 0x1af4 || info.ROM.DeviceID != 0x1000 || info.ROM.CodeType != 0 {
		t.Errorf("ROM header %+v, want virtio-net 1af4:1000 x86 BIOS code", *info.ROM)
	}
	if int64(info.ROM.Size) != info.Size || info.Size < 32*1024 || info.SHA256 != rom.SHA256 {
		t.Errorf("ROM size %d (header says %d), sha256 %s vs manifest %s", info.Size, info.ROM.Size, info.SHA256, rom.SHA256)
	}

	start = time.Now()
	again, err := Build(t.Context(), opts, log)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Key != m.Key {
		t.Errorf("second build not a cache hit (cached=%v)", again.Cached)
	}
	t.Logf("second build: cached=%v in %v", again.Cached, time.Since(start))

	bootROM(t, filepath.Join(opts.OutDir, DefaultTarget))
}

// bootROM boots QEMU (TCG) from the network with rom as the virtio-net option ROM, its NIC
// on a hub with no other port (no packet leaves QEMU). COM1 carries only iPXE's own serial
// console (CONSOLE_SERIAL); SeaBIOS's serial console is moved to COM2. The embedded script
// must try DHCPv4, then IPv6 (the ipv6 configurator exists only if NET_PROTO_IPV6 was
// linked), print its not-found message and exit 1, so that SeaBIOS moves on to the disk.
func bootROM(t *testing.T, rom string) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Log("qemu-system-x86_64 not installed (Debian package qemu-system-x86): ROM not booted")
		return
	}
	dir := t.TempDir()
	com1, com2, sercon := filepath.Join(dir, "com1.log"), filepath.Join(dir, "com2.log"), filepath.Join(dir, "sercon-port")
	if err := os.WriteFile(sercon, []byte{0xf8, 0x02}, 0o644); err != nil { // SeaBIOS on 0x2f8
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "pc,accel=tcg", "-m", "256", "-display", "none",
		"-nodefaults", "-no-reboot", "-serial", "file:"+com1, "-serial", "file:"+com2,
		"-fw_cfg", "name=etc/sercon-port,file="+sercon,
		"-netdev", "hubport,id=n0,hubid=0", "-device", "virtio-net-pci,netdev=n0,romfile="+rom, "-boot", "n")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill() // the QEMU this test started, by its PID
		<-exited
	}()
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.ReplaceAll(string(b), "\r", "")
	}
	ipxe := []string{
		"Configuring [dhcp]",
		"Configuring [ipv6]",
		"No netboot configuration was found for this machine",
		"Skipping to the next boot device",
	}
	for {
		got, bios := read(com1), read(com2)
		n := inOrder(got, ipxe)
		after := strings.Index(bios, "No netboot configuration was found")
		if n == len(ipxe) && after >= 0 && strings.Contains(bios[after:], "Booting from Hard Disk") {
			t.Logf("ROM booted; iPXE serial console:\n%s", got)
			return
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qemu exited: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			missing := "Booting from Hard Disk (COM2)"
			if n < len(ipxe) {
				missing = ipxe[n]
			}
			t.Fatalf("ROM boot never showed %q\nCOM1:\n%s\nCOM2:\n%s", missing, got, bios)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// inOrder returns how many of markers occur in s one after another.
func inOrder(s string, markers []string) int {
	for n, m := range markers {
		i := strings.Index(s, m)
		if i < 0 {
			return n
		}
		s = s[i+len(m):]
	}
	return len(markers)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
