// Package ipxebuild builds iPXE reproducibly with IPv6 enabled and vmprov's boot script
// embedded, and installs the ROM where QEMU loads it.
//
// Seed 000 edits config/general.h by hand, runs `make bin/1af41000.rom EMBED=myscript.ipxe`
// and copies the ROM to every KVM host. Build does the same from a local iPXE tree or a
// pinned upstream commit, without ever modifying the source: it checks the toolchain first,
// copies (or fetches) the tree into a scratch directory, writes config/local/general.h
// (IPv6 plus site options) and config/local/console.h, writes the script rendered by
// templates.BootScript (the one /boot.ipxe serves), runs make in src/, and writes the
// outputs and a manifest. Results are cached under a key hashing every input, so a second
// identical build returns at once.
//
// Installing the ROM: InstallLocal replaces QEMU's ROM file on this machine atomically;
// InstallVolume uploads it into a storage pool of any hypervisor through libvirt (a
// virt.VolumeStore) under a content-addressed name, which domains then reference with
// <rom file=.../> (libvirt.rom); CheckVolumes reads the pool's ROM volumes back and
// compares them by SHA-256.
package ipxebuild

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmprov/vmprov/templates"
)

const (
	// DefaultGitURL is the upstream iPXE repository.
	DefaultGitURL = "https://github.com/ipxe/ipxe.git"
	// DefaultCommit is the upstream commit built when --git is given without --ref.
	// Change it deliberately, after building and booting the ROM it produces.
	DefaultCommit = "0ab2277c40f1de56c736b9e7db7ee23d52509ec5"
	// DefaultTarget is the virtio-net PCI option ROM (vendor 1af4, device 1000) QEMU loads.
	DefaultTarget = "bin/1af41000.rom"
	// ScriptFile is the name of the embedded script in the scratch tree's src/.
	ScriptFile = "vmprov-embed.ipxe"
)

// KnownTargets are the targets vmprov documents and tests; Build accepts any
// bin[-PLATFORM]/FILE target iPXE knows.
func KnownTargets() []string {
	return []string{
		"bin/1af41000.rom", "bin/undionly.kpxe", "bin/ipxe.lkrn", "bin/ipxe.iso",
		"bin-x86_64-efi/ipxe.efi", "bin-x86_64-efi/snponly.efi",
	}
}

// BuildOptions are the inputs of Build. Exactly one of SrcDir and GitURL is set.
type BuildOptions struct {
	SrcDir string // a local iPXE tree (its top directory or its src/); never modified
	GitURL string // fetch iPXE from this repository instead
	Ref    string // with GitURL: commit, tag or branch; empty means DefaultCommit

	Targets []string // make targets relative to src/; empty means DefaultTarget
	OutDir  string   // outputs land at OutDir/TARGET, plus OutDir/manifest.json and build.log

	// BootURL and BootURLv6 (config boot.url, boot.url_v6) render the embedded script with
	// templates.BootScript. Script, when set, is embedded instead.
	BootURL, BootURLv6 string
	Script             []byte

	Options []string // extra config/general.h switches (config ipxe.options)
	Serial  bool     // serial console (config ipxe.serial)

	Jobs      int    // make -j; 0 means the number of CPUs
	CacheDir  string // cache root; empty means DefaultCacheDir()
	NoCache   bool   // neither read nor write the cache
	WorkDir   string // parent of the scratch directory; empty means os.TempDir()
	Toolchain Toolchain
}

// DefaultCacheDir returns $XDG_CACHE_HOME/vmprov/ipxe (or the platform equivalent).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ipxe cache: %w", err)
	}
	return filepath.Join(d, "vmprov", "ipxe"), nil
}

// validTarget reports whether t looks like an iPXE make target: bin/FILE or
// bin-PLATFORM/FILE, with no path tricks.
func validTarget(t string) bool {
	dir, file, ok := strings.Cut(t, "/")
	if !ok || file == "" || strings.Contains(file, "/") || file[0] == '.' || strings.Contains(t, "..") {
		return false
	}
	if dir != "bin" && !strings.HasPrefix(dir, "bin-") {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./", c) >= 0) {
			return false
		}
	}
	return true
}

// inputs is everything the cache key covers.
type inputs struct {
	Version int      `json:"version"`
	Source  Source   `json:"source"`
	Config  []Header `json:"config"`
	Script  string   `json:"script_sha256"`
	Targets []string `json:"targets"`
}

func (in inputs) key() string {
	s := in.Source
	s.Dir, s.GitURL, s.Ref = "", "", "" // where the tree lives is not what it is
	in.Source = s
	b, _ := json.Marshal(in)
	return sha256Hex(b)
}

// Build builds opts.Targets and writes them, manifest.json and build.log to opts.OutDir.
// log may be nil. The returned manifest has Cached set when the cache answered (then no
// toolchain is needed). The toolchain is checked before anything is copied or compiled.
// On error, nothing in OutDir but build.log has changed.
func Build(ctx context.Context, opts BuildOptions, log *slog.Logger) (*Manifest, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	targets, err := prepareTargets(opts.Targets)
	if err != nil {
		return nil, err
	}
	if opts.OutDir == "" {
		return nil, errors.New("ipxe build: no output directory (--out DIR)")
	}
	if (opts.SrcDir == "") == (opts.GitURL == "") {
		return nil, errors.New("ipxe build: give exactly one of --src DIR and --git URL")
	}
	script := opts.Script
	if script == nil {
		script, err = templates.BootScript(templates.BootInput{BootURL: opts.BootURL, BootURLv6: opts.BootURLv6})
		if err != nil {
			return nil, fmt.Errorf("ipxe build: embedded script: %w (set boot.url in the config)", err)
		}
	}
	general, err := GeneralHeader(opts.Options)
	if err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}
	headers := []Header{
		{Path: "config/local/general.h", SHA256: sha256Hex(general), Content: string(general)},
		{Path: "config/local/console.h", SHA256: sha256Hex(ConsoleHeader(opts.Serial)), Content: string(ConsoleHeader(opts.Serial))},
	}
	env := buildEnv(opts.Toolchain)

	var src Source
	var top string
	if opts.SrcDir != "" {
		if top, err = topDir(opts.SrcDir); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
		if src, err = identifyDir(ctx, env, top); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
	} else {
		ref := opts.Ref
		if ref == "" {
			ref = DefaultCommit
		}
		commit, err := resolveRef(ctx, env, opts.GitURL, ref)
		if err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
		src = Source{GitURL: opts.GitURL, Ref: ref, Commit: commit}
	}
	in := inputs{Version: 1, Source: src, Config: headers, Script: sha256Hex(script), Targets: targets}
	m := &Manifest{
		Version: 1, Key: in.key(), Source: src, Config: headers,
		Script:  Script{SHA256: in.Script, Content: string(script)},
		Targets: targets,
	}

	cacheDir := ""
	if !opts.NoCache {
		if cacheDir = opts.CacheDir; cacheDir == "" {
			if cacheDir, err = DefaultCacheDir(); err != nil {
				return nil, fmt.Errorf("ipxe build: %w (or pass --no-cache)", err)
			}
		}
		if hit, err := readCache(cacheDir, m.Key); err == nil {
			if err := publish(filepath.Join(cacheDir, m.Key), opts.OutDir, hit); err != nil {
				return nil, fmt.Errorf("ipxe build: %w", err)
			}
			hit.Cached = true
			log.Info("ipxe build cache hit", "key", m.Key, "file", opts.OutDir, "dur", time.Since(start))
			return hit, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			log.Warn("ipxe build cache entry unusable, rebuilding", "key", m.Key, "err", err)
		}
	}

	// Only a build needs the toolchain; check all of it before copying anything.
	if err := CheckToolchain(opts.Toolchain, targets); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}
	scratch, err := os.MkdirTemp(opts.WorkDir, "vmprov-ipxe-")
	if err != nil {
		return nil, fmt.Errorf("ipxe build: scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	tree := filepath.Join(scratch, "ipxe")
	if opts.SrcDir != "" {
		log.Info("ipxe build: copying source", "file", top)
		if err := copyTree(top, tree); err != nil {
			return nil, fmt.Errorf("ipxe build: copy %s: %w", top, err)
		}
	} else {
		log.Info("ipxe build: fetching source", "file", opts.GitURL, "commit", src.Commit)
		if err := checkout(ctx, env, opts.GitURL, src.Commit, tree); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
	}
	srcDir := filepath.Join(tree, "src")
	for _, h := range headers {
		p := filepath.Join(srcDir, filepath.FromSlash(h.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
		if err := os.WriteFile(p, []byte(h.Content), 0o644); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(srcDir, ScriptFile), script, 0o644); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}

	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	m.Make = append([]string{"-C", "src", "-j", strconv.Itoa(jobs)}, targets...)
	m.Make = append(m.Make, "EMBED="+ScriptFile)
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}
	logPath := filepath.Join(opts.OutDir, "build.log")
	if err := runMake(ctx, env, tree, m.Make, logPath, log); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}

	// Stage the outputs with their manifest, then move the whole entry into the cache.
	stage := filepath.Join(scratch, "out")
	for _, t := range targets {
		built := filepath.Join(srcDir, filepath.FromSlash(t))
		if err := copyFile(built, filepath.Join(stage, filepath.FromSlash(t))); err != nil {
			return nil, fmt.Errorf("ipxe build: make succeeded but %s is missing: %w", t, err)
		}
		sum, size, err := FileSHA256(built)
		if err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
		o := Output{Target: t, Size: size, SHA256: sum}
		if err := verifyOutput(built, script, &o); err != nil {
			return nil, fmt.Errorf("ipxe build: %w", err)
		}
		m.Outputs = append(m.Outputs, o)
	}
	m.Built = time.Now().UTC().Truncate(time.Second)
	if err := writeManifest(filepath.Join(stage, ManifestFile), m); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}
	entry := stage
	if cacheDir != "" {
		if entry, err = storeCache(cacheDir, m.Key, stage); err != nil {
			log.Warn("ipxe build: not cached", "err", err)
			entry = stage
		}
	}
	if err := publish(entry, opts.OutDir, m); err != nil {
		return nil, fmt.Errorf("ipxe build: %w", err)
	}
	for _, o := range m.Outputs {
		log.Info("ipxe build: built", "file", filepath.Join(opts.OutDir, o.Target), "bytes", o.Size, "sha256", o.SHA256)
	}
	log.Info("ipxe build done", "key", m.Key, "dur", time.Since(start))
	return m, nil
}

// prepareTargets validates, deduplicates and sorts targets (order does not change what
// make builds, and must not change the cache key).
func prepareTargets(targets []string) ([]string, error) {
	if len(targets) == 0 {
		return []string{DefaultTarget}, nil
	}
	out := slices.Clone(targets)
	for _, t := range out {
		if !validTarget(t) {
			return nil, fmt.Errorf("ipxe build: target %q is not bin/FILE or bin-PLATFORM/FILE (known: %s)", t, strings.Join(KnownTargets(), ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// buildEnv is the environment for git and make: ours, with PATH from the toolchain.
func buildEnv(tc Toolchain) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	return append(env, "PATH="+tc.path())
}

// runMake runs make in tree with args, writing its output to logPath and to log at Debug.
// Cancelling ctx kills make's whole process group.
func runMake(ctx context.Context, env []string, tree string, args []string, logPath string, log *slog.Logger) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tail := &tailBuffer{max: 40}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			tail.add(line)
			log.Debug("make", "line", line)
		}
		io.Copy(io.Discard, pr)
	}()
	bin, err := command(env, "make", "make")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = tree
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	log.Info("ipxe build: running make", "args", strings.Join(args, " "), "file", logPath)
	runErr := cmd.Run()
	pw.Close()
	<-done
	if runErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("make: %w", ctx.Err())
		}
		return fmt.Errorf("make %s: %w; last lines of %s:\n%s", strings.Join(args, " "), runErr, logPath, tail.String())
	}
	return nil
}

// tailBuffer keeps the last max lines.
type tailBuffer struct {
	max   int
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailBuffer) String() string {
	var b bytes.Buffer
	for _, l := range t.lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
