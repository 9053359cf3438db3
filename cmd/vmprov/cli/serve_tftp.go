package cli

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/tftp"
)

// tftpServer returns the TFTP server rooted at serve.dir/tftp, or nil when
// serve.tftp is "off" (or --tftp "").
func (app *App) tftpServer(c *config.Config, policy netboot.Policy, log *slog.Logger) (*tftp.Server, error) {
	if !c.Serve.TFTPEnabled() {
		return nil, nil
	}
	root := filepath.Join(c.Serve.Dir, "tftp")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	return tftp.New(tftp.Config{Root: root, Policy: policy, Render: tftp.Templates(c), Log: log})
}
