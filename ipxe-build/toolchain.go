package ipxebuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Toolchain says where build tools and headers are looked for. The zero value means the
// process's $PATH and the real root directory.
type Toolchain struct {
	Path string // PATH-style list searched for commands, and given to make; empty means $PATH
	Root string // prefix for header and data file checks (usr/include/lzma.h, ...); empty means /
}

// ErrMissingTools is wrapped by the error CheckToolchain returns.
var ErrMissingTools = errors.New("missing build tools")

// requirement is one piece of the toolchain: any of the commands or files satisfies it.
type requirement struct {
	what       string
	pkg        string   // Debian package providing it
	commands   []string // found on Toolchain.Path: all of them, or one if anyCommand
	anyCommand bool
	files      []string // found under Toolchain.Root
}

// requirements returns what building targets needs, in check order.
func requirements(targets []string) []requirement {
	reqs := []requirement{
		{what: "C compiler", pkg: "gcc", commands: []string{"gcc"}},
		{what: "linker and objcopy", pkg: "binutils", commands: []string{"ld", "objcopy"}},
		{what: "make", pkg: "make", commands: []string{"make"}},
		{what: "perl", pkg: "perl", commands: []string{"perl"}},
		{what: "LZMA headers (util/zbin)", pkg: "liblzma-dev", files: []string{"usr/include/lzma.h"}},
	}
	var iso, fat bool
	for _, t := range targets {
		switch filepath.Ext(t) {
		case ".iso":
			iso = true
			if strings.Contains(t, "efi") {
				fat = true
			}
		case ".usb", ".img", ".sdsk":
			fat = true
		}
	}
	if iso {
		reqs = append(reqs,
			requirement{what: "isolinux.bin", pkg: "isolinux", files: []string{
				"usr/lib/ISOLINUX/isolinux.bin", "usr/lib/syslinux/isolinux.bin", "usr/share/syslinux/isolinux.bin"}},
			requirement{what: "ldlinux.c32", pkg: "syslinux-common", files: []string{
				"usr/lib/syslinux/modules/bios/ldlinux.c32", "usr/share/syslinux/ldlinux.c32"}},
			requirement{what: "ISO image writer", pkg: "genisoimage",
				commands: []string{"genisoimage", "mkisofs", "xorrisofs"}, anyCommand: true},
		)
	}
	if fat {
		reqs = append(reqs, requirement{what: "FAT image tools", pkg: "mtools", commands: []string{"mformat", "mcopy"}})
	}
	return reqs
}

// found reports whether r is satisfied: one of its files exists, or its commands do.
func (tc Toolchain) found(r requirement) bool {
	for _, f := range r.files {
		if _, err := os.Stat(filepath.Join(tc.root(), f)); err == nil {
			return true
		}
	}
	if len(r.commands) == 0 {
		return false
	}
	for _, c := range r.commands {
		ok := tc.lookPath(c)
		if r.anyCommand && ok {
			return true
		}
		if !r.anyCommand && !ok {
			return false
		}
	}
	return !r.anyCommand
}

func (tc Toolchain) root() string {
	if tc.Root == "" {
		return "/"
	}
	return tc.Root
}

func (tc Toolchain) path() string {
	if tc.Path == "" {
		return os.Getenv("PATH")
	}
	return tc.Path
}

// lookPath reports whether an executable file named name is on tc's PATH.
func (tc Toolchain) lookPath(name string) bool { return findIn(tc.path(), name) != "" }

// findIn returns the first executable file called name in the PATH-style list path, or "".
func findIn(path, name string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// command resolves name on the PATH of env (the build environment, whose PATH is the
// toolchain's), so that the tools run are the ones CheckToolchain found.
func command(env []string, name, pkg string) (string, error) {
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if p := findIn(path, name); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s: install it with: apt-get install -y --no-install-recommends %s", ErrMissingTools, name, pkg)
}

// CheckToolchain reports every missing piece needed to build targets, naming the Debian
// packages to install, before anything is copied or compiled.
func CheckToolchain(tc Toolchain, targets []string) error {
	var missing, pkgs []string
	for _, r := range requirements(targets) {
		if tc.found(r) {
			continue
		}
		missing = append(missing, r.what)
		if !slices.Contains(pkgs, r.pkg) {
			pkgs = append(pkgs, r.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: install them with: apt-get install -y --no-install-recommends %s",
		ErrMissingTools, strings.Join(missing, ", "), strings.Join(pkgs, " "))
}
