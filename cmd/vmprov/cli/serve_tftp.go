package cli

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
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
	return tftp.New(tftp.Config{Root: root, LoaderDirs: c.Serve.LoaderDirs, Policy: policy, Booter: booter, Render: tftp.Templates(booter), Build: build, Log: log})
}
