package cli

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	ipxebuild "github.com/vmprov/vmprov/ipxe-build"
)

// ipxeCommand is `vmprov ipxe build|install` (issue 5).
func (app *App) ipxeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipxe",
		Short: "Build iPXE with IPv6 and the boot script embedded, and install the ROM for QEMU",
	}
	cmd.AddCommand(app.ipxeBuildCommand(), app.ipxeInstallCommand())
	return cmd
}

func (app *App) ipxeBuildCommand() *cobra.Command {
	var (
		opts      ipxebuild.BuildOptions
		serial    bool
		options   []string
		output    string
		bootURL   string
		bootURLv6 string
	)
	cmd := &cobra.Command{
		Use:   "build (--src DIR | --git URL [--ref COMMIT])",
		Short: "Build iPXE targets reproducibly (cached by the hash of every input)",
		Long: `Build iPXE from a local tree (--src, never modified) or a pinned commit of a git
repository (--git, default commit ` + ipxebuild.DefaultCommit[:12] + `), with IPv6 enabled,
the site options of ipxe.options and the boot script (/boot.ipxe, from boot.url and
boot.url_v6) embedded. Outputs land in --out with manifest.json and build.log.`,
		Example: `  vmprov ipxe build --src ~/src/ipxe --out ./ipxe-out
  vmprov ipxe build --git ` + ipxebuild.DefaultGitURL + ` --target bin/1af41000.rom --target bin-x86_64-efi/ipxe.efi
  vmprov ipxe build --src ~/src/ipxe --serial --option DOWNLOAD_PROTO_HTTPS -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if (opts.SrcDir == "") == (opts.GitURL == "") {
				return usageError{fmt.Errorf("give exactly one of --src DIR and --git URL")}
			}
			if opts.Ref != "" && opts.GitURL == "" {
				return usageError{fmt.Errorf("--ref needs --git")}
			}
			opts.BootURL, opts.BootURLv6 = bootURL, bootURLv6
			if bootURL == "" {
				c, err := app.config()
				if err != nil {
					return fmt.Errorf("%w (or pass --boot-url)", err)
				}
				opts.BootURL, opts.BootURLv6 = c.Boot.URL, c.Boot.URLv6
				opts.Options = slices.Clone(c.IPXE.Options)
				opts.Serial = c.IPXE.Serial
			}
			opts.Options = append(opts.Options, options...)
			if cmd.Flags().Changed("serial") {
				opts.Serial = serial
			}
			m, err := ipxebuild.Build(cmd.Context(), opts, app.logger())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(app.Stdout, m)
			}
			state := "built"
			if m.Cached {
				state = "cached"
			}
			fmt.Fprintf(app.Stdout, "%s (key %s, iPXE %s)\n", state, m.Key[:12], orUnknown(m.Source.Commit))
			for _, o := range m.Outputs {
				fmt.Fprintf(app.Stdout, "  %s/%s  %d bytes  sha256 %s\n", opts.OutDir, o.Target, o.Size, o.SHA256)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.SrcDir, "src", "", "local iPXE source tree (top directory or src/)")
	f.StringVar(&opts.GitURL, "git", "", "fetch iPXE from this git repository, e.g. "+ipxebuild.DefaultGitURL)
	f.StringVar(&opts.Ref, "ref", "", "commit (or tag/branch) to build with --git (default "+ipxebuild.DefaultCommit+")")
	f.StringArrayVar(&opts.Targets, "target", nil, "make target, repeatable (default "+ipxebuild.DefaultTarget+"; also "+strings.Join(ipxebuild.KnownTargets()[1:], ", ")+")")
	f.StringVar(&opts.OutDir, "out", "ipxe-out", "output directory")
	f.BoolVar(&serial, "serial", false, "add a serial console (overrides ipxe.serial)")
	f.StringArrayVar(&options, "option", nil, "extra config/general.h switch to #define, repeatable (added to ipxe.options)")
	f.StringVar(&bootURL, "boot-url", "", "boot service URL to embed (overrides boot.url; then no config is read)")
	f.StringVar(&bootURLv6, "boot-url-v6", "", "boot service URL for IPv6-only clients (with --boot-url)")
	f.IntVarP(&opts.Jobs, "jobs", "j", 0, "parallel make jobs (default: number of CPUs)")
	f.StringVar(&opts.CacheDir, "cache-dir", "", "build cache (default $XDG_CACHE_HOME/vmprov/ipxe)")
	f.BoolVar(&opts.NoCache, "no-cache", false, "always build; neither read nor write the cache")
	outputFlag(cmd, &output)
	_ = cmd.RegisterFlagCompletionFunc("target", cobra.FixedCompletions(ipxebuild.KnownTargets(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (app *App) ipxeInstallCommand() *cobra.Command {
	var (
		path   string
		check  bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "install ROM",
		Short: "Install a built ROM where QEMU loads it (atomically, keeping PATH.orig)",
		Long: `Install ROM (e.g. ipxe-out/bin/1af41000.rom) at --path on this hypervisor: the
first install keeps the original as PATH.orig, and the new ROM replaces PATH
atomically. With --check, only compare PATH with ROM (exit 1 if they differ).
Seed 000's paths: /usr/share/ipxe/1af41000.rom (EL7+), /usr/share/gpxe/virtio-net.rom (EL6).`,
		Example: `  vmprov ipxe install ipxe-out/bin/1af41000.rom
  vmprov ipxe install ipxe-out/bin/1af41000.rom --path /usr/share/gpxe/virtio-net.rom
  vmprov ipxe install ipxe-out/bin/1af41000.rom --check`,
		Args: exactArgs(1, "ROM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if remote(app.connect) {
				return fmt.Errorf("ipxe install: --connect %s is a remote hypervisor; upload through libvirt is not wired yet: run vmprov ipxe install on that host", app.connect)
			}
			rom := args[0]
			if check {
				want, err := ipxebuild.Check(rom)
				if err != nil {
					return err
				}
				got, err := ipxebuild.Check(path)
				if err != nil {
					return err
				}
				if output == "json" {
					if err := writeJSON(app.Stdout, map[string]any{"rom": want, "installed": got, "match": want.SHA256 == got.SHA256}); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(app.Stdout, "%s  sha256 %s\n%s  sha256 %s\n", rom, want.SHA256, path, got.SHA256)
				}
				if want.SHA256 != got.SHA256 {
					return fmt.Errorf("ipxe install --check: %s differs from %s", path, rom)
				}
				return nil
			}
			res, err := ipxebuild.InstallLocal(cmd.Context(), rom, path, app.logger())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(app.Stdout, res)
			}
			if !res.Changed {
				fmt.Fprintf(app.Stdout, "%s already holds this ROM (sha256 %s)\n", res.Dest, res.SHA256)
				return nil
			}
			fmt.Fprintf(app.Stdout, "installed %s (sha256 %s)\n", res.Dest, res.SHA256)
			if res.Backup != "" {
				fmt.Fprintf(app.Stdout, "original kept as %s\n", res.Backup)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "path", ipxebuild.DefaultROMPath, "where QEMU loads the virtio-net ROM")
	f.BoolVar(&check, "check", false, "compare the installed ROM with ROM and change nothing")
	outputFlag(cmd, &output)
	return cmd
}

// remote reports whether a libvirt URI names another host (qemu+ssh://hv1/system).
func remote(uri string) bool {
	if uri == "" {
		return false
	}
	u, err := url.Parse(uri)
	return err == nil && u.Host != ""
}

func orUnknown(s string) string {
	if s == "" {
		return "commit unknown"
	}
	return s
}
