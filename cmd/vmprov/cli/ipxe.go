package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	ipxebuild "github.com/vmprov/vmprov/ipxe-build"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
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
		path    string
		connect []string
		pool    string
		check   bool
		output  string
	)
	cmd := &cobra.Command{
		Use:   "install ROM [--path FILE | --connect URI... [--pool POOL]]",
		Short: "Install a built ROM where QEMU loads it: a local file, or a volume uploaded through libvirt",
		Long: `Install ROM (e.g. ipxe-out/bin/1af41000.rom) for QEMU's virtio-net interfaces.
ROM must be a PCI option ROM; anything else is refused before anything changes.

With hypervisors: in the configuration and neither --connect nor --path, ROM goes to
every hypervisor of the fleet, as if each were named with --connect.

Without --connect, on this hypervisor: ROM replaces --path atomically, and the first
install keeps the original as PATH.orig. Seed 000's paths: /usr/share/ipxe/1af41000.rom
(EL7+), /usr/share/gpxe/virtio-net.rom (EL6). QEMU then loads it for every VM.

With --connect (repeatable, one per hypervisor; local or remote URIs), through libvirt:
ROM is uploaded (virStorageVolUpload, no SSH or scp) into the storage pool --pool
(default libvirt.pool) as the volume ` + ipxebuild.ROMVolumePrefix + `NAME-SHA256[:12]` + ipxebuild.ROMVolumeSuffix + `, read back
and compared. The name follows the content: the same ROM is never uploaded twice, and a
new build never overwrites the file running VMs use. The command prints the volume's
path and the libvirt.rom line that makes vmprov create give every VM interface that
ROM (<rom file=.../>).

With --check nothing changes: the installed ROM (--path), or every vmprov ROM volume of
the pool on each --connect hypervisor (read back through libvirt), is listed with its
sha256 and whether it is ROM; exit 1 if a hypervisor does not have ROM.`,
		Example: `  vmprov ipxe install ipxe-out/bin/1af41000.rom
  vmprov ipxe install ipxe-out/bin/1af41000.rom --path /usr/share/gpxe/virtio-net.rom
  vmprov ipxe install ipxe-out/bin/1af41000.rom --connect qemu+ssh://hv1/system --connect qemu+ssh://hv2/system
  vmprov ipxe install ipxe-out/bin/1af41000.rom --connect qemu+ssh://hv1/system --check -o json`,
		Args: exactArgs(1, "ROM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if len(connect) > 0 && cmd.Flags().Changed("path") {
				return usageError{fmt.Errorf("--path is where this machine's QEMU loads the ROM; with --connect the ROM goes into a storage pool (--pool): give one or the other")}
			}
			if len(connect) == 0 && cmd.Flags().Changed("pool") {
				return usageError{fmt.Errorf("--pool needs --connect URI")}
			}
			rom, err := ipxebuild.ReadROM(args[0])
			if err != nil {
				return err
			}
			if len(connect) == 0 && !cmd.Flags().Changed("path") && !cmd.Flags().Changed("pool") {
				// With a fleet, every hypervisor of it by default.
				if c, err := app.config(); err == nil && app.connect == "" {
					for _, h := range c.Hypervisors {
						connect = append(connect, h.URI)
					}
				}
			}
			if len(connect) == 0 {
				if check {
					return app.ipxeCheckLocal(rom, path, output)
				}
				return app.ipxeInstallLocal(cmd, rom, path, output)
			}
			configured := ""
			if pool == "" {
				c, err := app.config()
				if err != nil {
					return fmt.Errorf("%w (or pass --pool)", err)
				}
				pool, configured = c.Libvirt.Pool, c.Libvirt.ROM
			}
			if check {
				return app.ipxeCheckRemote(cmd, rom, connect, pool, output)
			}
			return app.ipxeInstallRemote(cmd, rom, connect, pool, configured, output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "path", ipxebuild.DefaultROMPath, "where this machine's QEMU loads the virtio-net ROM (without --connect)")
	// Shadows the root --connect, which stays usable before the command name.
	f.StringArrayVar(&connect, "connect", nil, "libvirt URI of a hypervisor to upload ROM to, repeatable (e.g. qemu+ssh://hv1/system)")
	f.StringVar(&pool, "pool", "", "storage pool for the ROM volume with --connect (default libvirt.pool)")
	f.BoolVar(&check, "check", false, "report which ROM each hypervisor has (by sha256) and change nothing")
	outputFlag(cmd, &output)
	return cmd
}

// localHypervisor names this machine in ipxe install's reports.
const localHypervisor = "local"

// romInstall is ipxe install's report on one hypervisor.
type romInstall struct {
	Hypervisor string `json:"hypervisor"` // "local" or the libvirt URI
	Pool       string `json:"pool,omitempty"`
	Volume     string `json:"volume,omitempty"`
	Path       string `json:"path,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Changed    bool   `json:"changed"`
	Backup     string `json:"backup,omitempty"`
	Error      string `json:"error,omitempty"`
}

type romInstallReport struct {
	ROM         ipxebuild.ROM `json:"rom"`
	Hypervisors []romInstall  `json:"hypervisors"`
	// Config is the configuration line that makes vmprov create use the
	// uploaded volume, when every hypervisor has it at the same path.
	Config string `json:"config,omitempty"`
}

// romCheck is ipxe install --check's report on one hypervisor.
type romCheck struct {
	Hypervisor string              `json:"hypervisor"`
	Pool       string              `json:"pool,omitempty"`
	Files      []ipxebuild.ROMFile `json:"files"`
	Match      bool                `json:"match"`
	Error      string              `json:"error,omitempty"`
}

type romCheckReport struct {
	ROM         ipxebuild.ROM `json:"rom"`
	Hypervisors []romCheck    `json:"hypervisors"`
	Match       bool          `json:"match"` // every hypervisor has ROM
}

func (app *App) ipxeInstallLocal(cmd *cobra.Command, rom ipxebuild.ROM, path, output string) error {
	res, err := ipxebuild.InstallLocal(cmd.Context(), rom.Path, path, app.logger())
	if err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(app.Stdout, romInstallReport{ROM: rom, Hypervisors: []romInstall{{
			Hypervisor: localHypervisor, Path: res.Dest, SHA256: res.SHA256, Changed: res.Changed, Backup: res.Backup,
		}}})
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
}

func (app *App) ipxeCheckLocal(rom ipxebuild.ROM, path, output string) error {
	hv := romCheck{Hypervisor: localHypervisor, Files: []ipxebuild.ROMFile{}}
	if got, err := ipxebuild.Check(path); err != nil {
		hv.Error = err.Error()
	} else {
		hv.Match = got.SHA256 == rom.SHA256
		hv.Files = append(hv.Files, ipxebuild.ROMFile{Path: got.Path, Size: got.Size, SHA256: got.SHA256, Match: hv.Match})
	}
	return app.writeCheck(romCheckReport{ROM: rom, Hypervisors: []romCheck{hv}, Match: hv.Match}, output)
}

func (app *App) ipxeInstallRemote(cmd *cobra.Command, rom ipxebuild.ROM, uris []string, pool, configured, output string) error {
	rep := romInstallReport{ROM: rom}
	var errs []error
	for _, uri := range uris {
		res, err := withVolumes(app, uri, func(vs virt.VolumeStore) (ipxebuild.VolumeResult, error) {
			return ipxebuild.InstallVolume(cmd.Context(), vs, pool, rom, app.logger())
		})
		hv := romInstall{Hypervisor: uri, Pool: pool, Volume: res.Volume, Path: res.Path, SHA256: res.SHA256, Changed: res.Changed}
		if err != nil {
			err = poolHint(err)
			hv.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", uri, err))
		}
		rep.Hypervisors = append(rep.Hypervisors, hv)
	}
	paths := map[string]bool{}
	for _, hv := range rep.Hypervisors {
		if hv.Error == "" {
			paths[hv.Path] = true
		}
	}
	if len(paths) == 1 && len(errs) == 0 {
		rep.Config = "libvirt.rom: " + rep.Hypervisors[0].Path
	}
	if output == "json" {
		if err := writeJSON(app.Stdout, rep); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	for _, hv := range rep.Hypervisors {
		switch {
		case hv.Error != "":
			fmt.Fprintf(app.Stdout, "%s: FAILED (see below)\n", hv.Hypervisor)
		case hv.Changed:
			fmt.Fprintf(app.Stdout, "%s: uploaded %s (pool %s, sha256 %s)\n", hv.Hypervisor, hv.Path, hv.Pool, hv.SHA256)
		default:
			fmt.Fprintf(app.Stdout, "%s: %s already holds this ROM (pool %s, sha256 %s)\n", hv.Hypervisor, hv.Path, hv.Pool, hv.SHA256)
		}
	}
	switch {
	case rep.Config != "" && configured == rep.Hypervisors[0].Path:
		fmt.Fprintf(app.Stdout, "libvirt.rom already names %s\n", configured)
	case rep.Config != "":
		fmt.Fprintf(app.Stdout, "Set this in the vmprov configuration so that vmprov create gives every VM interface this ROM:\nlibvirt:\n  rom: %s\n", rep.Hypervisors[0].Path)
	case len(paths) > 1:
		fmt.Fprintf(app.Stdout, "The ROM's path differs between hypervisors, but libvirt.rom names one path for all: give pool %s the same target directory on every hypervisor.\n", pool)
	}
	return errors.Join(errs...)
}

func (app *App) ipxeCheckRemote(cmd *cobra.Command, rom ipxebuild.ROM, uris []string, pool, output string) error {
	rep := romCheckReport{ROM: rom, Match: true}
	for _, uri := range uris {
		res, err := withVolumes(app, uri, func(vs virt.VolumeStore) (ipxebuild.VolumeCheck, error) {
			return ipxebuild.CheckVolumes(cmd.Context(), vs, pool, rom)
		})
		hv := romCheck{Hypervisor: uri, Pool: pool, Files: res.Files, Match: res.Match}
		if hv.Files == nil {
			hv.Files = []ipxebuild.ROMFile{}
		}
		if err != nil {
			hv.Error = poolHint(err).Error()
		}
		rep.Match = rep.Match && hv.Match
		rep.Hypervisors = append(rep.Hypervisors, hv)
	}
	return app.writeCheck(rep, output)
}

// withVolumes opens a libvirt connection to uri for the length of fn.
func withVolumes[T any](app *App, uri string, fn func(virt.VolumeStore) (T, error)) (T, error) {
	lv, err := libvirtconn.Open(uri, app.logger())
	if err != nil {
		var zero T
		return zero, err
	}
	defer lv.Close()
	return fn(lv)
}

// poolHint adds the command's own way out to a missing pool error.
func poolHint(err error) error {
	if errors.Is(err, virt.ErrPoolNotFound) {
		return fmt.Errorf("%w, or pass --pool", err)
	}
	return err
}

// writeCheck prints an --check report and fails unless every hypervisor has
// the ROM.
func (app *App) writeCheck(rep romCheckReport, output string) error {
	if output == "json" {
		if err := writeJSON(app.Stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(app.Stdout, "ROM %s  %d bytes  sha256 %s\n", rep.ROM.Path, rep.ROM.Size, rep.ROM.SHA256)
		for _, hv := range rep.Hypervisors {
			where := hv.Hypervisor
			if hv.Pool != "" {
				where += " (pool " + hv.Pool + ")"
			}
			state := "has ROM"
			switch {
			case hv.Error != "":
				state = "ERROR: " + hv.Error
			case !hv.Match && len(hv.Files) == 0:
				state = "MISMATCH: no vmprov ROM volume"
			case !hv.Match:
				state = "MISMATCH"
			}
			fmt.Fprintf(app.Stdout, "%s: %s\n", where, state)
			for _, f := range hv.Files {
				what := "differs"
				switch {
				case f.Error != "":
					what = "unreadable: " + f.Error
				case f.Match:
					what = "match"
				}
				fmt.Fprintf(app.Stdout, "  %s  %d bytes  sha256 %s  %s\n", f.Path, f.Size, f.SHA256, what)
			}
		}
	}
	var (
		missing []string
		errs    []error
	)
	for _, hv := range rep.Hypervisors {
		switch {
		case hv.Error != "":
			errs = append(errs, fmt.Errorf("%s: %s", hv.Hypervisor, hv.Error))
		case !hv.Match:
			missing = append(missing, hv.Hypervisor)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("ipxe install --check: %s (sha256 %s) is not installed on %s", rep.ROM.Path, rep.ROM.SHA256[:12], strings.Join(missing, ", ")))
	}
	return errors.Join(errs...)
}

func orUnknown(s string) string {
	if s == "" {
		return "commit unknown"
	}
	return s
}
