package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/netboot/tftp"
)

// tftpServer returns the TFTP server rooted at serve.dir/tftp, falling
// back to serve.loader_dirs for plain names, or nil when
// serve.tftp is "off" (or --tftp ""). mkdir creates a missing root; without
// it a missing root means no server. build marks hosts installing when
// their installer's per-host file is sent (nil: no writes, for explain).
func tftpServer(c *config.Config, policy netboot.Policy, booter netboot.Booter, log *slog.Logger, mkdir bool, build tftp.BuildWriter) (*tftp.Server, error) {
	if !c.Serve.TFTPEnabled() {
		return nil, nil
	}
	root := filepath.Join(c.Serve.Dir, "tftp")
	if mkdir {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return tftp.New(tftp.Config{Root: root, LoaderDirs: c.Serve.LoaderDirs, Policy: policy, Booter: booter, Render: tftp.Templates(booter), Build: build, Log: log,
		SignedGrubConfigs: serveconfig.ArchMap(c.Serve.SignedGrubConfigs), Trees: tftpTrees(c, log, mkdir)})
}

// tftpTrees are the folders TFTP serves behind serve.dir/tftp for the
// signed GRUB chain (docs/design.md, "Secure Boot"): serve.dir/assets as
// assets/, where signed GRUB, which has no HTTP, loads the kernel and
// initrd that HTTP serves at {boot.url}/assets, then the folders of
// serve.asset_dirs under assets/PREFIX/, as HTTP falls back to them. (Its
// shim and GRUB come from serve.loader_dirs.) mkdir creates a missing
// serve.dir/assets; missing folders are left out.
func tftpTrees(c *config.Config, log *slog.Logger, mkdir bool) []tftp.Tree {
	var trees []tftp.Tree
	dir := filepath.Join(c.Serve.Dir, "assets")
	if mkdir {
		_ = os.MkdirAll(dir, 0o755) // a failure shows as the missing folder
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		trees = append(trees, tftp.Tree{Prefix: "assets", Dir: dir})
	} else {
		log.Debug("tftp: no assets/ for signed GRUB: no such folder", "file", dir)
	}
	for _, d := range c.Serve.AssetDirs {
		if fi, err := os.Stat(d.Dir); err != nil || !fi.IsDir() {
			log.Debug("tftp: serve.asset_dirs folder missing, skipped", "file", d.Dir)
			continue
		}
		trees = append(trees, tftp.Tree{Prefix: "assets/" + d.Prefix, Dir: d.Dir})
	}
	return trees
}

// loaderUse is a TFTP loader file and the settings that name it.
type loaderUse struct {
	name     string
	settings []string // serve.loaders[7], serve.secure_boot.loaders[7], ...
	arches   []string
}

// missingLoaders returns the files of serve.loaders and serve.secure_boot.loaders
// that TFTP would answer "not found": in neither serve.dir/tftp nor, for a plain
// name, serve.loader_dirs. Each file once, with every setting that names it, in the
// order of the architectures.
func missingLoaders(c *config.Config) []loaderUse {
	root := filepath.Join(c.Serve.Dir, "tftp")
	var out []loaderUse
	index := map[string]int{}
	add := func(table string, m map[uint16]string) {
		arches := make([]uint16, 0, len(m))
		for a := range m {
			arches = append(arches, a)
		}
		slices.Sort(arches)
		for _, a := range arches {
			name := m[a]
			if name == "" || loaderFound(root, c.Serve.LoaderDirs, name) {
				continue
			}
			i, ok := index[name]
			if !ok {
				i, index[name] = len(out), len(out)
				out = append(out, loaderUse{name: name})
			}
			out[i].settings = append(out[i].settings, fmt.Sprintf("%s[%d]", table, a))
			if s := strconv.Itoa(int(a)); !slices.Contains(out[i].arches, s) {
				out[i].arches = append(out[i].arches, s)
			}
		}
	}
	add("serve.loaders", c.Serve.Loaders)
	add("serve.secure_boot.loaders", c.Serve.SecureBoot.Loaders)
	return out
}

// loaderFound reports whether TFTP finds name: in root, or, a plain name, in one of
// dirs.
func loaderFound(root string, dirs []string, name string) bool {
	name = strings.TrimPrefix(name, "/")
	if isFile(filepath.Join(root, filepath.FromSlash(name))) {
		return true
	}
	if strings.Contains(name, "/") {
		return false
	}
	return slices.ContainsFunc(dirs, func(d string) bool { return isFile(filepath.Join(d, name)) })
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// debianIPXE are the loaders Debian's package ipxe installs in /usr/lib/ipxe.
var debianIPXE = []string{"ipxe.efi", "snponly.efi", "undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.lkrn"}

// loaderFix says how to provide the missing loader name: the Debian package that
// installs it into serve.loader_dirs' defaults (Debian's netboot installer for its
// shims and GRUBs, ipxe for its iPXE builds), or, for a file no package ships, a
// file of one's own in root.
func loaderFix(name string, arches []string, root string) string {
	base := path.Base(name)
	into := fmt.Sprintf("put %s in %s", name, root)
	switch {
	case strings.HasPrefix(base, "bootnet") || strings.HasPrefix(base, "grub"):
		pkg := "debian-installer-12-netboot-amd64"
		if strings.Contains(base, "aa64") || slices.Contains(arches, "11") {
			pkg = "debian-installer-12-netboot-arm64"
		}
		return fmt.Sprintf("install the Debian package %s, or %s", pkg, into)
	case slices.Contains(debianIPXE, base):
		return fmt.Sprintf("install the Debian package ipxe, or %s", into)
	}
	return fmt.Sprintf("no Debian package ships it: %s (e.g. an iPXE built for the architecture), or remove the entry", into)
}

// logMissingLoaders warns of each loader TFTP cannot find (missingLoaders),
// which would otherwise show only as TFTP's "not found" to the booting machine.
func logMissingLoaders(c *config.Config, log *slog.Logger) {
	root := filepath.Join(c.Serve.Dir, "tftp")
	for _, m := range missingLoaders(c) {
		log.Warn("tftp: loader file found neither in serve.dir/tftp nor in serve.loader_dirs: machines of its architecture get TFTP's not found",
			"file", m.name, "arch", strings.Join(m.arches, ","), "config", strings.Join(m.settings, ","),
			"fix", loaderFix(m.name, m.arches, root))
	}
}
