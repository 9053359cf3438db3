package cli

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

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
