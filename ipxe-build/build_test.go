package ipxebuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/templates"
)

func TestHeaders(t *testing.T) {
	general, err := GeneralHeader([]string{"PING_CMD", "DOWNLOAD_PROTO_HTTPS", "NSLOOKUP_CMD", "PING_CMD", "NET_PROTO_IPV6"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/general-options.h.golden", general)
	plain, err := GeneralHeader(nil)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/general.h.golden", plain)
	golden.Check(t, "testdata/console-serial.h.golden", ConsoleHeader(true))
	golden.Check(t, "testdata/console.h.golden", ConsoleHeader(false))

	for _, bad := range []string{"", "ping_cmd", "PING CMD", "X\n#include </etc/passwd>", "1X"} {
		if _, err := GeneralHeader([]string{bad}); err == nil {
			t.Errorf("GeneralHeader(%q) accepted", bad)
		}
	}
}

// fakeTree copies testdata/fakeipxe to a temporary directory (so that tests can make it a
// git repository or change it) and returns its top directory.
func fakeTree(t *testing.T) string {
	t.Helper()
	top := filepath.Join(t.TempDir(), "ipxe")
	if err := copyTree(filepath.Join("testdata", "fakeipxe"), top); err != nil {
		t.Fatal(err)
	}
	return top
}

// fakeToolchain provides stub gcc, ld, objcopy and perl and an lzma.h, so that the fake
// build does not depend on what this machine has; make and sh are the real ones.
func fakeToolchain(t *testing.T) Toolchain {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	inc := filepath.Join(dir, "root", "usr", "include")
	for _, d := range []string{bin, inc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"gcc", "ld", "objcopy", "perl"} {
		if err := os.WriteFile(filepath.Join(bin, c), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(inc, "lzma.h"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed (Debian package make)")
	}
	return Toolchain{Path: bin + string(os.PathListSeparator) + os.Getenv("PATH"), Root: filepath.Join(dir, "root")}
}

// fakeLog points the fake Makefile's record at a fresh file and returns a reader for it.
func fakeLog(t *testing.T) (path string, read func() string) {
	path = filepath.Join(t.TempDir(), "make.log")
	t.Setenv("FAKE_IPXE_LOG", path)
	return path, func() string {
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
}

func fakeOptions(t *testing.T, top string) BuildOptions {
	return BuildOptions{
		SrcDir:    top,
		OutDir:    filepath.Join(t.TempDir(), "out"),
		CacheDir:  filepath.Join(t.TempDir(), "cache"),
		WorkDir:   t.TempDir(),
		BootURL:   "http://boot.example.com",
		BootURLv6: "http://[2001:db8:135::1]",
		Options:   []string{"PING_CMD", "DOWNLOAD_PROTO_HTTPS"},
		Serial:    true,
		Jobs:      2,
		Toolchain: fakeToolchain(t),
	}
}

func TestBuildFakeTree(t *testing.T) {
	top := fakeTree(t)
	before, err := hashTree(top, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	logPath, readLog := fakeLog(t)
	opts := fakeOptions(t, top)
	opts.SrcDir = filepath.Join(top, "src") // the src/ directory is accepted too
	opts.Targets = []string{"bin-x86_64-efi/ipxe.efi", "bin/1af41000.rom", "bin/1af41000.rom"}

	m, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}

	// make ran once per target, in src/, with -j and EMBED pointing at the script.
	wantLog := ""
	for _, target := range []string{"bin-x86_64-efi/ipxe.efi", "bin/1af41000.rom"} {
		if !strings.Contains(readLog(), "target "+target+"\nembed "+ScriptFile+"\n") {
			t.Errorf("make log lacks %s with EMBED=%s:\n%s", target, ScriptFile, readLog())
		}
		wantLog += "target " + target
	}
	if got := strings.Count(readLog(), "target "); got != 2 {
		t.Errorf("make built %d targets, want 2:\n%s", got, readLog())
	}
	if !strings.Contains(readLog(), "-j2") || !strings.Contains(readLog(), "cwd-has-makefile yes") {
		t.Errorf("make not run with -j2 in src/:\n%s", readLog())
	}

	// The headers and script the build saw.
	seen := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(logPath+".d", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	golden.Check(t, "testdata/fake-general.h.golden", seen("general.h"))
	golden.Check(t, "testdata/console-serial.h.golden", seen("console.h"))
	golden.Check(t, "testdata/embed.ipxe.golden", seen("embed.ipxe"))
	script, err := templates.BootScript(templates.BootInput{BootURL: opts.BootURL, BootURLv6: opts.BootURLv6})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(script), string(seen("embed.ipxe"))); diff != "" {
		t.Errorf("embedded script is not templates.BootScript (-want +got):\n%s", diff)
	}

	// The outputs and manifest in OutDir.
	for _, o := range m.Outputs {
		sum, size, err := FileSHA256(filepath.Join(opts.OutDir, o.Target))
		if err != nil || sum != o.SHA256 || size != o.Size {
			t.Errorf("output %s: sha256 %s size %d err %v; manifest %+v", o.Target, sum, size, err, o)
		}
	}
	if o := m.Outputs[1]; o.Target != DefaultTarget || !o.ScriptEmbedded || !cmp.Equal(o.Objects, []string{"obj_ipv6", "obj_ping"}) {
		t.Errorf("ROM output not verified: %+v", o)
	}
	rom, err := Check(filepath.Join(opts.OutDir, "bin", "1af41000.rom"))
	if err != nil || rom.ROM == nil || rom.ROM.VendorID != 0x1af4 || rom.ROM.DeviceID != 0x1000 {
		t.Errorf("fake ROM check = %+v, %v", rom, err)
	}
	onDisk, err := ReadManifest(filepath.Join(opts.OutDir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, onDisk, cmpopts.IgnoreFields(Manifest{}, "Cached")); diff != "" {
		t.Errorf("manifest.json differs from the returned manifest (-want +got):\n%s", diff)
	}
	want := &Manifest{
		Version: 1,
		Source:  Source{Dir: top},
		Config: []Header{
			{Path: "config/local/general.h", Content: string(seen("general.h"))},
			{Path: "config/local/console.h", Content: string(seen("console.h"))},
		},
		Script:  Script{SHA256: sha256Hex(script), Content: string(script)},
		Targets: []string{"bin-x86_64-efi/ipxe.efi", "bin/1af41000.rom"},
		Make:    []string{"-C", "src", "-j", "2", "bin-x86_64-efi/ipxe.efi", "bin/1af41000.rom", "EMBED=" + ScriptFile},
	}
	opt := cmp.Options{
		cmpopts.IgnoreFields(Manifest{}, "Key", "Built", "Outputs"),
		cmpopts.IgnoreFields(Source{}, "TreeSHA256", "LocalSHA256"),
		cmpopts.IgnoreFields(Header{}, "SHA256"),
	}
	if diff := cmp.Diff(want, m, opt); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if m.Source.TreeSHA256 == "" || len(m.Key) != 64 || m.Built.IsZero() || len(m.Outputs) != 2 || m.Cached {
		t.Errorf("manifest incomplete: %+v", m)
	}
	for _, h := range m.Config {
		if h.SHA256 != sha256Hex([]byte(h.Content)) {
			t.Errorf("header %s: sha256 does not match content", h.Path)
		}
	}

	// The source tree is untouched, and the scratch directory is gone.
	after, err := hashTree(top, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("source tree modified by the build")
	}
	if left, _ := os.ReadDir(opts.WorkDir); len(left) != 0 {
		t.Errorf("scratch left behind in %s: %v", opts.WorkDir, left)
	}
}

func TestBuildCache(t *testing.T) {
	top := fakeTree(t)
	_, readLog := fakeLog(t)
	opts := fakeOptions(t, top)
	first, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	builds := func() int { return strings.Count(readLog(), "target ") }

	// Same inputs, options in another order, a fresh OutDir: a hit that runs no make.
	again := opts
	again.OutDir = filepath.Join(t.TempDir(), "out2")
	again.Options = []string{"DOWNLOAD_PROTO_HTTPS", "PING_CMD", "PING_CMD"}
	again.Toolchain = Toolchain{Path: t.TempDir(), Root: t.TempDir()} // a hit needs no compiler
	second, err := Build(t.Context(), again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Key != first.Key || builds() != 1 {
		t.Errorf("second build: cached=%v key %s vs %s, make runs %d", second.Cached, second.Key, first.Key, builds())
	}
	if diff := cmp.Diff(first.Outputs, second.Outputs); diff != "" {
		t.Errorf("cached outputs differ (-first +second):\n%s", diff)
	}
	if _, err := Check(filepath.Join(again.OutDir, DefaultTarget)); err != nil {
		t.Errorf("cache hit did not publish the ROM: %v", err)
	}

	// A corrupted cache entry is rebuilt, not served.
	rom := filepath.Join(opts.CacheDir, first.Key, filepath.FromSlash(DefaultTarget))
	if err := os.WriteFile(rom, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := builds()
	m, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Cached || builds() != n+1 {
		t.Errorf("corrupt cache entry served: cached=%v", m.Cached)
	}

	// Each input that changes the result changes the key.
	changes := map[string]func(*BuildOptions){
		"serial":  func(o *BuildOptions) { o.Serial = false },
		"option":  func(o *BuildOptions) { o.Options = append(o.Options, "NSLOOKUP_CMD") },
		"script":  func(o *BuildOptions) { o.BootURL = "http://boot2.example.com" },
		"targets": func(o *BuildOptions) { o.Targets = []string{DefaultTarget, "bin/ipxe.lkrn"} },
		"source": func(o *BuildOptions) {
			if err := os.WriteFile(filepath.Join(top, "src", "core", "main.c"), []byte("int main(void) { return 1; }\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"local config": func(o *BuildOptions) {
			if err := os.WriteFile(filepath.Join(top, "src", "config", "local", "crypto.h"), []byte("/* x */\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, name := range []string{"serial", "option", "script", "targets", "source", "local config"} {
		t.Run(name, func(t *testing.T) {
			o := opts
			o.OutDir = filepath.Join(t.TempDir(), "out")
			changes[name](&o)
			n := builds()
			m, err := Build(t.Context(), o, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Cached || m.Key == first.Key || builds() == n {
				t.Errorf("cached=%v key unchanged=%v make runs %d→%d", m.Cached, m.Key == first.Key, n, builds())
			}
		})
	}

}

func TestBuildGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed (Debian package git)")
	}
	top := fakeTree(t)
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", top},
		{"-C", top, "add", "-A"},
		{"-C", top, "commit", "-q", "-m", "fake ipxe"},
		{"-C", top, "tag", "-a", "-m", "v1", "v1.0"},
	} {
		if _, err := git(t.Context(), env, args...); err != nil {
			t.Fatal(err)
		}
	}
	commit, err := git(t.Context(), env, "-C", top, "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	_, readLog := fakeLog(t)

	for _, ref := range []string{commit, "main", "v1.0"} {
		t.Run(ref, func(t *testing.T) {
			opts := fakeOptions(t, "")
			opts.GitURL, opts.Ref = "file://"+top, ref
			m, err := Build(t.Context(), opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Source.Commit != commit || m.Source.Ref != ref {
				t.Errorf("source = %+v, want commit %s", m.Source, commit)
			}
			if _, err := Check(filepath.Join(opts.OutDir, DefaultTarget)); err != nil {
				t.Error(err)
			}
		})
	}

	// A local clean git tree is identified by its commit, and gives the same key as the
	// same commit fetched: where a tree lives is not what it is.
	opts := fakeOptions(t, top)
	local, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if local.Source.Commit != commit || local.Source.Dirty || local.Source.TreeSHA256 != "" {
		t.Errorf("local git source = %+v", local.Source)
	}
	n := strings.Count(readLog(), "target ")
	opts.SrcDir, opts.GitURL, opts.Ref = "", "file://"+top, commit
	fetched, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !fetched.Cached || fetched.Key != local.Key || strings.Count(readLog(), "target ") != n {
		t.Errorf("same commit by git: cached=%v same key=%v", fetched.Cached, fetched.Key == local.Key)
	}

	// A tree inside another repository is not identified by that repository's commit.
	outer := t.TempDir()
	inner := filepath.Join(outer, "vendor", "ipxe")
	if err := copyTree(filepath.Join("testdata", "fakeipxe"), inner); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", outer}, {"-C", outer, "add", "-A"}, {"-C", outer, "commit", "-q", "-m", "outer"}} {
		if _, err := git(t.Context(), env, args...); err != nil {
			t.Fatal(err)
		}
	}
	nested, err := identifyDir(t.Context(), env, inner)
	if err != nil {
		t.Fatal(err)
	}
	if nested.Commit != "" || nested.Dirty || nested.TreeSHA256 == "" {
		t.Errorf("tree inside another repository: %+v", nested)
	}

	// A dirty tree falls back to a content hash.
	if err := os.WriteFile(filepath.Join(top, "src", "core", "main.c"), []byte("/* changed */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.SrcDir, opts.GitURL, opts.Ref = top, "", ""
	dirty, err := Build(t.Context(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !dirty.Source.Dirty || dirty.Source.TreeSHA256 == "" || dirty.Key == local.Key {
		t.Errorf("dirty source = %+v", dirty.Source)
	}

	opts.SrcDir, opts.GitURL, opts.Ref = "", "file://"+top, "no-such-branch"
	if _, err := Build(t.Context(), opts, nil); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("unknown ref: err = %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	top := fakeTree(t)
	fakeLog(t)
	tests := []struct {
		name string
		edit func(*BuildOptions)
		want string
	}{
		{"no source", func(o *BuildOptions) { o.SrcDir = "" }, "exactly one of --src DIR and --git URL"},
		{"two sources", func(o *BuildOptions) { o.GitURL = "file:///x" }, "exactly one"},
		{"not ipxe", func(o *BuildOptions) { o.SrcDir = t.TempDir() }, "not an iPXE source tree"},
		{"no out", func(o *BuildOptions) { o.OutDir = "" }, "--out"},
		{"bad target", func(o *BuildOptions) { o.Targets = []string{"../etc/passwd"} }, `"../etc/passwd"`},
		{"bad target dir", func(o *BuildOptions) { o.Targets = []string{"src/Makefile"} }, `"src/Makefile"`},
		{"bad option", func(o *BuildOptions) { o.Options = []string{"PING_CMD\n#include"} }, "not an iPXE config switch"},
		{"no boot URL", func(o *BuildOptions) { o.BootURL = "" }, "boot.url"},
		{"bad boot URL", func(o *BuildOptions) { o.BootURL = "http://boot example" }, "boot.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fakeOptions(t, top)
			tt.edit(&o)
			_, err := Build(t.Context(), o, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}

	t.Run("no git", func(t *testing.T) {
		o := fakeOptions(t, "")
		o.GitURL, o.Ref = "file://"+top, "main"
		o.Toolchain.Path = filepath.SplitList(o.Toolchain.Path)[0] // the stubs only
		_, err := Build(t.Context(), o, nil)
		if !errors.Is(err, ErrMissingTools) || !strings.Contains(err.Error(), "apt-get install -y --no-install-recommends git") {
			t.Errorf("err = %v, want missing git", err)
		}
	})

	t.Run("make fails", func(t *testing.T) {
		t.Setenv("FAKE_IPXE_FAIL", "something broke")
		o := fakeOptions(t, top)
		_, err := Build(t.Context(), o, nil)
		if err == nil || !strings.Contains(err.Error(), "fakebuild: bin/1af41000.rom: something broke") {
			t.Fatalf("err = %v, want the make output tail", err)
		}
		if _, err := os.Stat(filepath.Join(o.OutDir, ManifestFile)); !os.IsNotExist(err) {
			t.Errorf("manifest written for a failed build: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(o.OutDir, "build.log")); !strings.Contains(string(b), "something broke") {
			t.Errorf("build.log lacks the failure: %q", b)
		}
		if entries, _ := os.ReadDir(o.CacheDir); len(entries) != 0 {
			t.Errorf("failed build cached: %v", entries)
		}
	})

	t.Run("no IPv6 linked", func(t *testing.T) {
		t.Setenv("FAKE_IPXE_NO_IPV6", "1")
		_, err := Build(t.Context(), fakeOptions(t, top), nil)
		if err == nil || !strings.Contains(err.Error(), "linked without IPv6") {
			t.Errorf("err = %v, want linked without IPv6", err)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		t.Setenv("FAKE_IPXE_SLEEP", "60")
		o := fakeOptions(t, top)
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Build(ctx, o, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("cancelled build took %v", d)
		}
	})
}

func TestCheckToolchain(t *testing.T) {
	empty := Toolchain{Path: t.TempDir(), Root: t.TempDir()}
	tests := []struct {
		targets []string
		want    string
	}{
		{[]string{DefaultTarget}, "apt-get install -y --no-install-recommends gcc binutils make perl liblzma-dev"},
		{[]string{"bin/ipxe.iso"}, "gcc binutils make perl liblzma-dev isolinux syslinux-common genisoimage"},
		{[]string{"bin-x86_64-efi/ipxe.iso", "bin/ipxe.usb"}, "liblzma-dev isolinux syslinux-common genisoimage mtools"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.targets, ","), func(t *testing.T) {
			err := CheckToolchain(empty, tt.targets)
			if !errors.Is(err, ErrMissingTools) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}

	// With everything present the check passes; with one piece gone it names only that.
	full := fakeToolchain(t)
	bin := filepath.SplitList(full.Path)[0]
	full.Path = bin // nothing from this machine
	for _, c := range []string{"make", "xorrisofs", "mformat", "mcopy"} {
		if err := os.WriteFile(filepath.Join(bin, c), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/lib/ISOLINUX/isolinux.bin", "usr/lib/syslinux/modules/bios/ldlinux.c32"} {
		p := filepath.Join(full.Root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := []string{"bin/ipxe.iso", "bin-x86_64-efi/ipxe.iso"}
	if err := CheckToolchain(full, iso); err != nil {
		t.Errorf("complete toolchain: %v", err)
	}
	if err := os.Remove(filepath.Join(bin, "mcopy")); err != nil {
		t.Fatal(err)
	}
	err := CheckToolchain(full, iso)
	if err == nil || !strings.HasSuffix(err.Error(), "--no-install-recommends mtools") {
		t.Errorf("without mcopy: %v", err)
	}

	// Build checks before it copies anything.
	top := fakeTree(t)
	o := fakeOptions(t, top)
	o.Toolchain = empty
	if _, err := Build(t.Context(), o, nil); !errors.Is(err, ErrMissingTools) {
		t.Errorf("Build with no toolchain: %v", err)
	}
	if left, _ := os.ReadDir(o.WorkDir); len(left) != 0 {
		t.Errorf("Build copied the tree before checking the toolchain")
	}
}
