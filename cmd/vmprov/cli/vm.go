package cli

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/templates"
)

func (app *App) createCommand() *cobra.Command {
	var (
		r      orchestrator.Request
		ip     string
		txt    []string
		dryRun bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME (--vlan ID | --ip ADDR) --distro DISTRO",
		Short: "Create a VM: DNS records, disk, domain, start; undone on any failure",
		Example: `  vmprov create --name test-centos7 --vlan 135 --ip 192.168.35.172 --distro core --script test.ipxe
  vmprov create --name web6 --vlan 135 --distro xenial        # IPv6-only: random MAC + SLAAC
  vmprov create --name db1 --ip 192.168.35.20 --distro core --txt puppet_environment=prod
  vmprov create --name db2 --ip 192.168.35.21 --distro core --dry-run -o json
  vmprov create --name web1 --ip 192.168.35.30 --distro bookworm --boot network,hd
  vmprov create --name sb1 --ip 192.168.35.31 --distro bookworm --firmware efi-secure
  vmprov create --name db3 --ip 192.168.35.32 --distro core --on hv1     # pinned to a hypervisor of the fleet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if r.Name == "" || r.Distro == "" {
				return usageError{fmt.Errorf("--name and --distro are required")}
			}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return usageError{fmt.Errorf("--ip %q is not an IPv4 address", ip)}
				}
				r.IPv4 = a
			}
			var err error
			if r.Vars, err = parseVars(txt); err != nil {
				return err
			}
			if dryRun {
				return app.printPlan(true, output, "dry run: nothing was changed", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
					return o.Plan(cmd.Context(), r)
				})
			}
			return app.printPlan(true, output, "", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
				return o.Create(cmd.Context(), r)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Name, "name", "", "host name (an RFC 1123 label); the FQDN is NAME.dns.zone")
	f.IntVar(&r.VLAN, "vlan", 0, "VLAN id from the config (default: the VLAN whose subnet holds --ip)")
	f.StringVar(&ip, "ip", "", "IPv4 address; without it the host is IPv6-only (random MAC + SLAAC)")
	f.StringVar(&r.Distro, "distro", "", "distribution to install (TXT distribution=)")
	f.StringVar(&r.Script, "script", "", "bootstrap script under bootstrap/SITE/ (TXT filename=)")
	f.StringArrayVar(&txt, "txt", nil, "extra boot variable KEY=VALUE (TXT), repeatable")
	f.UintVar(&r.MemoryMiB, "memory", orchestrator.DefaultMemoryMiB, "memory in MiB")
	f.UintVar(&r.VCPUs, "vcpus", orchestrator.DefaultVCPUs, "virtual CPUs")
	f.UintVar(&r.DiskGiB, "disk-size", orchestrator.DefaultDiskGiB, "disk size in GiB")
	f.StringVar(&r.Firmware, "firmware", "", "bios (SeaBIOS), efi (OVMF) or efi-secure (OVMF with Secure Boot on q35 with SMM; TXT firmware=efi-secure: the signed shim → GRUB → kernel chain, Debian releases only) (default libvirt.firmware)")
	f.StringVar(&r.Netboot, "netboot", orchestrator.NetbootPXE, "how UEFI firmware boots from the network: pxe, or http (UEFI HTTP boot: the firmware's PXE boot options are turned off; needs --firmware efi)")
	f.StringVar(&r.Arch, "arch", "", "x86_64 (default) or aarch64: an arm64 VM with AAVMF (UEFI), booted by PXE under emulation (libvirt.domain_type qemu), that installs the arm64 installer of a distribution that has one (TXT arch=aarch64)")
	f.StringSliceVar(&r.Boot, "boot", nil, "boot order: hd,network (default; only an empty disk installs) or network,hd (installs whenever its build state says install, like bare metal)")
	f.StringVar(&r.On, "on", "", "hypervisor (a name from hypervisors: in the configuration) to create the VM on; default: placed on the one with the VLAN's bridge and the least memory committed")
	f.BoolVar(&dryRun, "dry-run", false, "print the plan, with the hypervisor placement chose and the ones it left out, and change nothing")
	outputFlag(cmd, &output)
	_ = cmd.RegisterFlagCompletionFunc("distro", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var names []string
		for _, d := range templates.Distributions() {
			names = append(names, d.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func (app *App) destroyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "destroy NAME",
		Short: "Stop and undefine a VM, delete its disk and remove all its DNS records",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.withOrchestrator(true, func(o *orchestrator.Orchestrator) error {
				if err := o.Destroy(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(app.Stdout, "destroyed %s\n", args[0])
				return nil
			})
		},
	}
}

func (app *App) listCommand() *cobra.Command {
	var (
		output  string
		orphans bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List vmprov-managed VMs of every hypervisor with their build state (install, installing, installed) and DNS records",
		Long: `List asks every hypervisor of the fleet (hypervisors:) at once, each within libvirt.timeout.
A hypervisor that is down or does not answer is named on standard error and the
exit code is 3; the VMs of the others are still listed.

--orphans lists the halves of VMs instead: vmprov domains whose name has no
records in DNS, and VM records in DNS with no domain on any hypervisor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return app.withOrchestrator(true, func(o *orchestrator.Orchestrator) error {
				if orphans {
					return app.listOrphans(cmd, o, output)
				}
				ps, err := o.List(cmd.Context())
				if ps == nil && err != nil {
					return err
				}
				if output == "json" {
					for _, p := range ps {
						p.DomainXML = ""
					}
					if ps == nil {
						ps = []*orchestrator.Plan{}
					}
					if jerr := writeJSON(app.Stdout, ps); jerr != nil {
						return jerr
					}
					return err
				}
				fleetCol := false
				for _, p := range ps {
					fleetCol = fleetCol || p.Hypervisor != ""
				}
				hv := func(p *orchestrator.Plan) string {
					if !fleetCol {
						return ""
					}
					return fmt.Sprintf("%-12s ", orDash(p.Hypervisor))
				}
				head := ""
				if fleetCol {
					head = fmt.Sprintf("%-12s ", "HYPERVISOR")
				}
				fmt.Fprintf(app.Stdout, "%-20s %s%-10s %-10s %-5s %-17s %-15s %-28s %s\n", "NAME", head, "STATE", "POWER", "VLAN", "MAC", "IPV4", "IPV6", "DISTRO")
				for _, p := range ps {
					fmt.Fprintf(app.Stdout, "%-20s %s%-10s %-10s %-5d %-17s %-15s %-28s %s\n", p.Name, hv(p), orDash(p.State), orDash(p.Power), p.VLAN, p.MAC, addrOrDash(p.IPv4), addrOrDash(p.IPv6), p.Distro)
				}
				for _, p := range ps {
					for _, w := range p.Warnings {
						fmt.Fprintf(app.Stderr, "vmprov: warning: %s: %s\n", p.Name, w)
					}
				}
				return err
			})
		},
	}
	outputFlag(cmd, &output)
	cmd.Flags().BoolVar(&orphans, "orphans", false, "list vmprov domains without DNS records and VM records without a domain")
	return cmd
}

func (app *App) listOrphans(cmd *cobra.Command, o *orchestrator.Orchestrator, output string) error {
	found, err := o.Orphans(cmd.Context())
	if found == nil && err != nil {
		var ue *orchestrator.UnreachableError
		if !errors.As(err, &ue) {
			return err
		}
	}
	if output == "json" {
		if found == nil {
			found = []orchestrator.Orphan{}
		}
		if jerr := writeJSON(app.Stdout, found); jerr != nil {
			return jerr
		}
		return err
	}
	if len(found) == 0 {
		if err != nil {
			fmt.Fprintln(app.Stdout, "no orphans on the hypervisors that answered")
		} else {
			fmt.Fprintln(app.Stdout, "no orphans")
		}
	}
	for _, x := range found {
		fmt.Fprintf(app.Stdout, "%-20s %-12s %s\n  %s\n", x.Name, orDash(x.Hypervisor), x.Kind, x.Detail)
	}
	return err
}

func (app *App) showCommand() *cobra.Command {
	return app.showCommandFor(true, "Show a host's DNS records and domain")
}

// showCommandFor shows a host; withHV joins its libvirt domain.
func (app *App) showCommandFor(withHV bool, short string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: short,
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return app.printPlan(withHV, output, "", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
				return o.Show(cmd.Context(), args[0])
			})
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addrOrDash(a *netip.Addr) string {
	if a == nil {
		return "-"
	}
	return a.String()
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("expected %s, got %d arguments", names, len(args))}
		}
		return nil
	}
}
