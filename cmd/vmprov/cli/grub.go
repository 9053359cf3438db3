package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot/grubimage"
)

// grubCommand is `vmprov grub build` (issue 4): seed 001's GRUB netboot
// image for UEFI PXE clients and Intel Macs.
func (app *App) grubCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grub",
		Short: "Build the GRUB netboot EFI image that fetches each host's grub.cfg over TFTP",
	}
	cmd.AddCommand(app.grubBuildCommand())
	return cmd
}

func (app *App) grubBuildCommand() *cobra.Command {
	var (
		opts   grubimage.Options
		server string
		dryRun bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "build [--out FILE]",
		Short: "Build the GRUB netboot EFI image with grub-mkimage (seed 001's mactel64.efi)",
		Long: `Build GRUB's netboot EFI image with grub-mkimage, as seed 001 does by hand: the
modules it needs embedded, and an early configuration that fetches
PREFIX/FORMAT/grub.cfg-01-<mac> over TFTP, the per-host file vmprov serve
generates from DNS. Put the image under serve.dir/tftp and name it as the
loader of client architectures 7 and 9 (serve.loaders) or as a BSDP boot file.

Defaults come from the configuration when there is one: --out is
serve.dir/tftp/ + the first bsdp.images bootfile (else mactel64.efi), --server
is serve.server_ipv4. Without a configuration --out is ./mactel64.efi and GRUB
asks the next-server of the firmware's DHCP answer. The output is replaced
atomically, only if it is a regular file; the same inputs give the same image.`,
		Example: `  vmprov grub build
  vmprov grub build --out /var/lib/vmprov/tftp/mactel64.efi --server 192.0.2.1 --dhcp
  vmprov grub build --modules normal,configfile,net,efinet,tftp,http,linux --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := app.optionalConfig()
			if err != nil {
				return err
			}
			if opts.Output == "" {
				opts.Output = grubOutput(c)
			}
			if server != "" {
				a, err := netip.ParseAddr(server)
				if err != nil || !a.Is4() {
					return usageError{fmt.Errorf("--server %q: want the TFTP server's IPv4 address", server)}
				}
				opts.Server = a
			} else if c != nil && c.Serve.ServerIPv4.Is4() {
				opts.Server = c.Serve.ServerIPv4
			}
			if dryRun {
				p, err := grubimage.NewPlan(opts)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(app.Stdout, p)
				}
				fmt.Fprintf(app.Stdout, "%s %s\n\n%s", p.Mkimage, strings.Join(p.Args(p.Output, "grub.cfg-net"), " "), p.Config)
				return nil
			}
			res, err := grubimage.Build(cmd.Context(), opts, app.logger())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(app.Stdout, res)
			}
			state := "built"
			if !res.Changed {
				state = "unchanged"
			}
			fmt.Fprintf(app.Stdout, "%s %s  %d bytes  sha256 %s\n", state, res.Output, res.Size, res.SHA256)
			fmt.Fprintf(app.Stdout, "  GRUB %s %s, prefix %s, fetches %s\n", orUnknown(res.GrubVersion), res.Format, res.Prefix, res.ConfigPath)
			fmt.Fprintf(app.Stdout, "  modules: %s\n", strings.Join(res.Modules, " "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Output, "out", "", "image file to write (default serve.dir/tftp/mactel64.efi, or ./mactel64.efi without a configuration)")
	f.StringVar(&opts.Prefix, "prefix", grubimage.DefaultPrefix, "GRUB prefix (grub-mkimage -p): where GRUB fetches its files and the per-host grub.cfg")
	f.StringVar(&opts.Format, "format", grubimage.DefaultFormat, "image format (grub-mkimage -O); EFI formats only")
	f.StringSliceVar(&opts.Modules, "modules", nil, "modules to embed, comma-separated or repeated (default seed 001's list that --grub-dir has, plus linux and http)")
	f.StringVar(&opts.GrubDir, "grub-dir", "", "GRUB module directory (grub-mkimage -d; default /usr/lib/grub/FORMAT)")
	f.StringVar(&server, "server", "", "TFTP server address GRUB uses (default serve.server_ipv4, else the DHCP next-server)")
	f.BoolVar(&opts.DHCP, "dhcp", false, "run net_bootp before fetching, as seed 001 does (for Macs booted through BSDP)")
	f.StringVar(&opts.Mkimage, "grub-mkimage", grubimage.DefaultMkimage, "grub-mkimage program")
	f.BoolVar(&dryRun, "dry-run", false, "print the grub-mkimage command and the embedded configuration; build nothing")
	outputFlag(cmd, &output)
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"x86_64-efi", "i386-efi", "arm64-efi"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// optionalConfig loads the configuration when one is named (--config,
// $VMPROV_CONFIG) or the default file exists, and returns nil otherwise.
func (app *App) optionalConfig() (*config.Config, error) {
	if app.configPath == "" && os.Getenv(config.EnvPath) == "" {
		if _, err := os.Stat(config.DefaultPath); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return app.config()
}

// grubOutput is the default image path: where vmprov serve's TFTP server
// finds it, under the name Macs ask for through BSDP.
func grubOutput(c *config.Config) string {
	if c == nil {
		return grubimage.DefaultOutput
	}
	name := grubimage.DefaultOutput
	if len(c.BSDP.Images) > 0 && c.BSDP.Images[0].BootFile != "" {
		name = filepath.FromSlash(strings.TrimPrefix(c.BSDP.Images[0].BootFile, "/"))
	}
	return filepath.Join(c.Serve.Dir, "tftp", name)
}
