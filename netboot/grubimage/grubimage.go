// Package grubimage builds the GRUB netboot EFI image the boot service hands
// to UEFI PXE clients (and, as the BSDP boot file, to Intel Macs).
//
// It wraps grub-mkimage as seed 001 runs it by hand:
//
//	grub-mkimage -d /usr/lib/grub/x86_64-efi/ -O x86_64-efi -o mactel64.efi \
//	  -p '(tftp)/boot/grub' -c grub.cfg-net normal configfile net efinet tftp ...
//
// with an embedded early configuration (NetConfig) that makes GRUB fetch
// the per-host grub.cfg-01-<mac> that vmprov serve's TFTP server generates
// (package netboot/tftp), GRUB writing the MAC of the interface it booted
// from in lowercase hex separated by colons. Modules are checked against the
// module directory (moddep.lst) before grub-mkimage runs, the image written
// is read back (Inspect) and checked to be an EFI application holding that
// configuration and prefix, and only then does it replace the output file.
//
// grub-mkimage writes no time stamps: the same GRUB modules, options and
// configuration give the same image, byte for byte.
package grubimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Defaults of Options.
const (
	DefaultFormat  = "x86_64-efi"
	DefaultPrefix  = "(tftp)/boot/grub"
	DefaultMkimage = "grub-mkimage"
	// DefaultOutput is seed 001's image name, the default BSDP boot file.
	DefaultOutput = "mactel64.efi"
	// DebianPackage holds grub-mkimage and the x86_64-efi modules.
	DebianPackage = "grub-efi-amd64-bin"
)

// DefaultGrubDir is where Debian installs the modules of format.
func DefaultGrubDir(format string) string { return "/usr/lib/grub/" + format }

// requiredModules must be in the module directory for a netboot image.
var requiredModules = []string{"normal", "configfile", "net", "efinet", "tftp"}

// optionalModules follow seed 001's list (linuxefi where the GRUB build has
// it: upstream GRUB ≥ 2.04 loads EFI kernels with linux), plus linux and
// http, which vmprov's per-host grub.cfg uses to fetch the installer kernel
// and initrd from the mirror. Each is embedded when the directory has it.
var optionalModules = []string{"efi_gop", "efi_uga", "all_video", "gzio", "part_gpt", "ext2", "echo", "linuxefi", "linux", "http"}

// DefaultModules returns the modules a netboot image embeds when Options
// names none: seed 001's list, filtered by what avail (the module directory,
// see ReadModules) has, plus linux and http.
func DefaultModules(avail Modules) []string {
	out := slices.Clone(requiredModules)
	for _, m := range optionalModules {
		if avail.Has(m) {
			out = append(out, m)
		}
	}
	return out
}

// Options are the inputs of a build.
type Options struct {
	// Output is the image file written; default DefaultOutput. It is
	// replaced atomically, and only if it is a regular file or absent.
	Output string
	// Format is grub-mkimage's -O; default DefaultFormat. Only EFI
	// formats (*-efi) are built: the configuration uses efinet.
	Format string
	// Prefix is grub-mkimage's -p, where GRUB looks for its files and the
	// per-host grub.cfg; default DefaultPrefix.
	Prefix string
	// GrubDir is grub-mkimage's -d; default DefaultGrubDir(Format).
	GrubDir string
	// Modules are embedded in the image; default DefaultModules. Each
	// must be in GrubDir's moddep.lst; grub-mkimage adds dependencies.
	Modules []string
	// Server, when valid, is set as GRUB's net_default_server (the TFTP
	// server); zero means the next-server of the DHCP answer the firmware
	// booted with.
	Server netip.Addr
	// DHCP adds net_bootp before fetching the per-host configuration, as
	// seed 001 does, for firmware that does not hand GRUB its own DHCP
	// answer (Macs booted through BSDP). Off, GRUB uses the firmware's.
	DHCP bool
	// Mkimage is the grub-mkimage program; default DefaultMkimage on PATH.
	Mkimage string
}

// Plan is a build resolved from Options: the exact grub-mkimage command
// and the embedded configuration. It runs nothing.
type Plan struct {
	Output  string   `json:"output"`
	Format  string   `json:"format"`
	Prefix  string   `json:"prefix"`
	GrubDir string   `json:"grub_dir"`
	Modules []string `json:"modules"`
	Mkimage string   `json:"mkimage"`
	// Config is the embedded grub.cfg-net.
	Config string `json:"config"`
	// ConfigPath is what the configuration fetches:
	// PREFIX/FORMAT/grub.cfg-01-$net_default_mac.
	ConfigPath string `json:"config_path"`
	// GrubVersion is grub_version from GrubDir/modinfo.sh, if present.
	GrubVersion string `json:"grub_version,omitempty"`
}

// Args returns grub-mkimage's arguments, configPath being the file the
// configuration is written to.
func (p *Plan) Args(output, configPath string) []string {
	args := []string{"-d", p.GrubDir, "-O", p.Format, "-o", output, "-p", p.Prefix, "-c", configPath}
	return append(args, p.Modules...)
}

// Errors the caller may test with errors.Is.
var (
	// ErrNoMkimage: grub-mkimage is not installed.
	ErrNoMkimage = errors.New("grub-mkimage not found: install Debian package " + DebianPackage)
	// ErrNoGrubDir: the module directory is missing or has no moddep.lst.
	ErrNoGrubDir = errors.New("no GRUB module directory")
	// ErrUnknownModule: a module is not in the module directory.
	ErrUnknownModule = errors.New("unknown GRUB module")
	// ErrInvalid: an option is malformed.
	ErrInvalid = errors.New("invalid option")
	// ErrNotRegular: the output exists and is not a regular file.
	ErrNotRegular = errors.New("output is not a regular file")
)

// NewPlan validates opts, fills the defaults, reads the module directory
// and renders the configuration.
func NewPlan(opts Options) (*Plan, error) {
	p := &Plan{Output: opts.Output, Format: opts.Format, Prefix: opts.Prefix, GrubDir: opts.GrubDir, Mkimage: opts.Mkimage}
	if p.Output == "" {
		p.Output = DefaultOutput
	}
	if p.Format == "" {
		p.Format = DefaultFormat
	}
	if p.Prefix == "" {
		p.Prefix = DefaultPrefix
	}
	if p.GrubDir == "" {
		p.GrubDir = DefaultGrubDir(p.Format)
	}
	if p.Mkimage == "" {
		p.Mkimage = DefaultMkimage
	}
	if !strings.HasSuffix(p.Format, "-efi") || !validName(p.Format) {
		return nil, fmt.Errorf("grub image: %w: format %q: vmprov builds EFI netboot images only (x86_64-efi, i386-efi, arm64-efi)", ErrInvalid, p.Format)
	}
	if err := validPrefix(p.Prefix); err != nil {
		return nil, err
	}
	if opts.Server.IsValid() && !opts.Server.Is4() {
		// GRUB 2.06's tftp speaks IPv4 only from an efinet DHCPv4 boot.
		return nil, fmt.Errorf("grub image: %w: server %s is not an IPv4 address", ErrInvalid, opts.Server)
	}
	avail, err := ReadModules(p.GrubDir)
	if err != nil {
		return nil, err
	}
	cpu, platform, version := readModinfo(p.GrubDir)
	if cpu != "" && cpu+"-"+platform != p.Format {
		return nil, fmt.Errorf("grub image: %w: %s holds %s-%s modules, not %s: pass --grub-dir %s", ErrInvalid, p.GrubDir, cpu, platform, p.Format, DefaultGrubDir(p.Format))
	}
	p.GrubVersion = version
	p.Modules = slices.Clone(opts.Modules)
	if len(p.Modules) == 0 {
		p.Modules = DefaultModules(avail)
	}
	seen := map[string]bool{}
	var missing []string
	for _, m := range p.Modules {
		if !validName(m) || strings.HasPrefix(m, "-") {
			return nil, fmt.Errorf("grub image: %w: module name %q", ErrInvalid, m)
		}
		if seen[m] {
			return nil, fmt.Errorf("grub image: %w: module %s named twice", ErrInvalid, m)
		}
		seen[m] = true
		if !avail.Has(m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		hint := "see " + filepath.Join(p.GrubDir, "moddep.lst") + " for the modules this GRUB has"
		if slices.Contains(missing, "linuxefi") && avail.Has("linux") {
			hint = "this GRUB loads EFI kernels with linux: use linux instead of linuxefi"
		}
		return nil, fmt.Errorf("grub image: %w: %s not in %s: %s", ErrUnknownModule, strings.Join(missing, ", "), p.GrubDir, hint)
	}
	for _, m := range requiredModules {
		if !seen[m] {
			return nil, fmt.Errorf("grub image: %w: modules must include %s (a netboot image needs %s)", ErrInvalid, m, strings.Join(requiredModules, " "))
		}
	}
	p.ConfigPath = p.Prefix + "/" + p.Format + "/grub.cfg-01-$net_default_mac"
	cfg, err := NetConfig(NetConfigInput{Format: p.Format, Prefix: p.Prefix, ConfigPath: p.ConfigPath, Server: opts.Server, DHCP: opts.DHCP})
	if err != nil {
		return nil, err
	}
	p.Config = string(cfg)
	return p, nil
}

// Result describes a built image.
type Result struct {
	Plan
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Changed is false when Output held this image already.
	Changed bool `json:"changed"`
}

// Build runs grub-mkimage for opts into a temporary file beside the
// output, checks the image (an EFI application for the format, holding the
// configuration and prefix asked for) and renames it over the output.
// A failed build leaves the output as it was. log may be nil.
func Build(ctx context.Context, opts Options, log *slog.Logger) (*Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Mkimage == "" {
		opts.Mkimage = DefaultMkimage
	}
	mk, err := exec.LookPath(opts.Mkimage)
	if err != nil {
		return nil, fmt.Errorf("grub image: %s: %w", opts.Mkimage, ErrNoMkimage)
	}
	p, err := NewPlan(opts)
	if err != nil {
		return nil, err
	}
	old, err := checkOutput(p.Output)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(p.Output)
	tmp, err := os.MkdirTemp(dir, ".vmprov-grub-")
	if err != nil {
		return nil, fmt.Errorf("grub image: output directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	cfgFile := filepath.Join(tmp, "grub.cfg-net")
	if err := os.WriteFile(cfgFile, []byte(p.Config), 0o644); err != nil {
		return nil, fmt.Errorf("grub image: %w", err)
	}
	img := filepath.Join(tmp, "image.efi")
	start := time.Now()
	cmd := exec.CommandContext(ctx, mk, p.Args(img, cfgFile)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("grub image: %s: %w: %s", mk, err, strings.TrimSpace(out.String()))
	}
	b, err := os.ReadFile(img)
	if err != nil {
		return nil, fmt.Errorf("grub image: %w", err)
	}
	im, err := Inspect(b)
	if err != nil {
		return nil, fmt.Errorf("grub image: %s made an image vmprov cannot read: %w", mk, err)
	}
	if err := im.Check(p); err != nil {
		return nil, fmt.Errorf("grub image: %s: %w", mk, err)
	}
	sum := sha256.Sum256(b)
	res := &Result{Plan: *p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Changed: !bytes.Equal(old, sum[:])}
	if res.Changed {
		if err := os.Chmod(img, 0o644); err != nil {
			return nil, fmt.Errorf("grub image: %w", err)
		}
		if _, err := checkOutput(p.Output); err != nil { // replaced meanwhile?
			return nil, err
		}
		if err := os.Rename(img, p.Output); err != nil {
			return nil, fmt.Errorf("grub image: %w", err)
		}
	}
	log.Debug("grub image", "file", p.Output, "bytes", res.Size, "sha256", res.SHA256, "changed", res.Changed, "dur", time.Since(start))
	return res, nil
}

// checkOutput refuses an output that exists and is not a regular file
// (symbolic links included), and returns the SHA-256 of a regular one.
func checkOutput(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("grub image: output: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("grub image: %w: %s is a %s: remove it or choose another --out", ErrNotRegular, path, describeMode(fi.Mode()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("grub image: output: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "non-regular file"
}

// validName accepts GRUB module and format names: letters, digits, "_" and "-".
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validPrefix accepts GRUB paths like (tftp)/boot/grub or
// (tftp,192.0.2.1)/boot/grub: nothing GRUB's parser would split or expand.
func validPrefix(s string) error {
	if s == "" || len(s) > 200 {
		return fmt.Errorf("grub image: %w: prefix %q: empty or too long", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'\\$;#&|<>{}`", c) >= 0 {
			return fmt.Errorf("grub image: %w: prefix %q: character %q is not allowed", ErrInvalid, s, c)
		}
	}
	if !strings.HasPrefix(s, "(") && !strings.HasPrefix(s, "/") {
		return fmt.Errorf("grub image: %w: prefix %q: want a GRUB path like %s", ErrInvalid, s, DefaultPrefix)
	}
	if strings.HasSuffix(s, "/") {
		return fmt.Errorf("grub image: %w: prefix %q: drop the trailing /", ErrInvalid, s)
	}
	return nil
}

//go:embed files/grub.cfg-net
var files embed.FS

// NetConfigInput is the input of NetConfig.
type NetConfigInput struct {
	Format     string     // x86_64-efi
	Prefix     string     // (tftp)/boot/grub
	ConfigPath string     // the per-host configuration GRUB fetches
	Server     netip.Addr // net_default_server; zero: from DHCP
	DHCP       bool       // run net_bootp first
}

// NetConfig renders the configuration embedded in the image (seed 001's
// grub.cfg-net): optionally DHCP and a fixed TFTP server, a greeting on the
// console, then configfile of the per-host grub.cfg-01-<mac>.
//
// GRUB runs it before normal mode with its rescue parser, which knows no
// comments and no conditionals and stops at the first line it cannot run:
// the template has neither. The modules are in the image, so nothing is
// insmod-ed from the prefix. If configfile fails GRUB goes on to normal
// mode, which (GRUB ≥ 2.04, prefix on the network) asks for
// PREFIX/grub.cfg-01-<mac with hyphens>, PREFIX/grub.cfg-<IP in hex>... and
// PREFIX/grub.cfg: netboot/tftp generates the first of those too.
func NetConfig(in NetConfigInput) ([]byte, error) {
	t, err := template.New("grub.cfg-net").Option("missingkey=error").ParseFS(files, "files/grub.cfg-net")
	if err != nil {
		return nil, fmt.Errorf("grub image: template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, in); err != nil {
		return nil, fmt.Errorf("grub image: template: %w", err)
	}
	return b.Bytes(), nil
}
