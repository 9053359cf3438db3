package grubimage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Modules maps each module of a GRUB module directory to the modules it
// depends on (moddep.lst).
type Modules map[string][]string

// Has reports whether the directory has module m.
func (m Modules) Has(name string) bool {
	_, ok := m[name]
	return ok
}

// Names returns the module names, sorted.
func (m Modules) Names() []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// maxModDep bounds moddep.lst; Debian's x86_64-efi one is under 8 KiB.
const maxModDep = 1 << 20

// ReadModules reads dir/moddep.lst and keeps the modules whose NAME.mod
// is in dir too (what grub-mkimage can embed). dir must also hold
// kernel.img.
func ReadModules(dir string) (Modules, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("grub image: %w: %s: install Debian package %s (or pass --grub-dir)", ErrNoGrubDir, dir, DebianPackage)
	}
	b, err := os.ReadFile(filepath.Join(dir, "moddep.lst"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("grub image: %w: %s has no moddep.lst: not a GRUB module directory (install Debian package %s)", ErrNoGrubDir, dir, DebianPackage)
		}
		return nil, fmt.Errorf("grub image: %w", err)
	}
	if len(b) > maxModDep {
		return nil, fmt.Errorf("grub image: %s/moddep.lst: larger than %d bytes", dir, maxModDep)
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel.img")); err != nil {
		return nil, fmt.Errorf("grub image: %w: %s has no kernel.img (install Debian package %s)", ErrNoGrubDir, dir, DebianPackage)
	}
	mods, err := ParseModDep(b)
	if err != nil {
		return nil, fmt.Errorf("grub image: %s/moddep.lst: %w", dir, err)
	}
	for n := range mods {
		if _, err := os.Stat(filepath.Join(dir, n+".mod")); err != nil {
			delete(mods, n)
		}
	}
	return mods, nil
}

// ParseModDep decodes moddep.lst: one line per module, "NAME: DEP DEP...".
// Blank lines are skipped; a line without a colon or with an invalid name
// is an error.
func ParseModDep(b []byte) (Modules, error) {
	mods := Modules{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxModDep)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, deps, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !validName(name) {
			return nil, fmt.Errorf("line %d: %q is not NAME: DEPS", n, line)
		}
		ds := strings.Fields(deps)
		for _, d := range ds {
			if !validName(d) {
				return nil, fmt.Errorf("line %d: dependency %q is not a module name", n, d)
			}
		}
		mods[name] = append(mods[name], ds...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return mods, nil
}

// readModinfo returns grub_modinfo_target_cpu, grub_modinfo_platform and
// grub_version from dir/modinfo.sh, or empty strings.
func readModinfo(dir string) (cpu, platform, version string) {
	b, err := os.ReadFile(filepath.Join(dir, "modinfo.sh"))
	if err != nil {
		return "", "", ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "grub_modinfo_target_cpu":
			cpu = v
		case "grub_modinfo_platform":
			platform = v
		case "grub_version":
			version = v
		}
	}
	return cpu, platform, version
}
