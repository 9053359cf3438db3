package ipxebuild

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuildRealIPXE builds bin/1af41000.rom (plus $IPXE_TARGETS, space-separated) from the
// iPXE tree at $IPXE_SRC with the real toolchain, then checks the ROM: a PCI option ROM
// for virtio-net (1af4:1000) whose link map has IPv6 and the requested commands, with the
// boot script in the image; and that a second identical build is a cache hit.
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
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
