package cli

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
)

func (app *App) hostCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Register bare-metal hosts: A/AAAA, PTR, TXT and the MAC._mac CNAME",
	}
	cmd.AddCommand(app.hostAddCommand(), app.hostRemoveCommand(), app.hostListCommand(), app.hostShowCommand())
	return cmd
}

// parseVars parses repeated --txt KEY=VALUE flags. Only the syntax: the
// orchestrator checks names and values by the rules of `vmprov serve`
// (templates.CheckIntent) and says which flag a refused value came from.
func parseVars(txt []string) ([]inventory.Var, error) {
	var vars []inventory.Var
	for _, kv := range txt {
		k, v, ok := splitKV(kv)
		if !ok {
			return nil, usageError{fmt.Errorf("--txt %q is not KEY=VALUE", kv)}
		}
		vars = append(vars, inventory.Var{Key: k, Value: v})
	}
	return vars, nil
}

func parseAddr(flag, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, usageError{fmt.Errorf("--%s %q is not an IP address", flag, s)}
	}
	return a, nil
}

func (app *App) hostAddCommand() *cobra.Command {
	var (
		r             orchestrator.HostRequest
		mac, ip4, ip6 string
		txt           []string
		output        string
	)
	cmd := &cobra.Command{
		Use:     "add --name NAME --mac MAC [--ip ADDR] [--ipv6 ADDR] --distro DISTRO",
		Short:   "Publish a bare-metal host in DNS in one prerequisite-guarded update",
		Example: "  vmprov host add --name sm1 --mac 00:25:90:96:c4:9a --ip 172.22.10.55 --distro core --script test.ipxe\n  vmprov host add --name sm2 --mac 00:25:90:96:c4:9b --ip 172.22.10.56 --distro bookworm --firmware efi-secure",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if r.Name == "" || mac == "" || r.Distro == "" {
				return usageError{fmt.Errorf("--name, --mac and --distro are required")}
			}
			m, err := net.ParseMAC(mac)
			if err != nil || len(m) != 6 {
				return usageError{fmt.Errorf("--mac %q is not a MAC address like 00:25:90:96:c4:9a", mac)}
			}
			r.MAC = m
			if r.IPv4, err = parseAddr("ip", ip4); err != nil {
				return err
			}
			if r.IPv6, err = parseAddr("ipv6", ip6); err != nil {
				return err
			}
			if r.Vars, err = parseVars(txt); err != nil {
				return err
			}
			return app.printPlan(false, output, "", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
				return o.AddHost(cmd.Context(), r)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Name, "name", "", "host name (an RFC 1123 label)")
	f.StringVar(&mac, "mac", "", "the host's MAC address")
	f.StringVar(&ip4, "ip", "", "IPv4 address (A + PTR)")
	f.StringVar(&ip6, "ipv6", "", "IPv6 address (AAAA + PTR)")
	f.StringVar(&r.Distro, "distro", "", "distribution to install (TXT distribution=)")
	f.StringVar(&r.Script, "script", "", "bootstrap script under bootstrap/SITE/ (TXT filename=)")
	f.StringArrayVar(&txt, "txt", nil, "extra boot variable KEY=VALUE (TXT), repeatable")
	f.StringVar(&r.Firmware, "firmware", "", "bios, efi or efi-secure: efi-secure (UEFI with Secure Boot, TXT firmware=efi-secure) gets the signed shim → GRUB → kernel chain instead of iPXE (Debian releases only: Debian's shim boots Debian's kernels)")
	outputFlag(cmd, &output)
	return cmd
}

func (app *App) hostRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a bare-metal host's records, its _mac CNAME included",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.withOrchestrator(false, func(o *orchestrator.Orchestrator) error {
				if err := o.RemoveHost(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(app.Stdout, "removed %s\n", args[0])
				return nil
			})
		},
	}
}

func (app *App) hostListCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List bare-metal hosts (every MAC._mac CNAME) with their records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return app.withOrchestrator(false, func(o *orchestrator.Orchestrator) error {
				ps, err := o.ListHosts(cmd.Context())
				if err != nil {
					return err
				}
				if output == "json" {
					if ps == nil {
						ps = []*orchestrator.Plan{}
					}
					return writeJSON(app.Stdout, ps)
				}
				fmt.Fprintf(app.Stdout, "%-20s %-10s %-17s %-15s %-28s %s\n", "NAME", "STATE", "MAC", "IPV4", "IPV6", "DISTRO")
				for _, p := range ps {
					fmt.Fprintf(app.Stdout, "%-20s %-10s %-17s %-15s %-28s %s\n", p.Name, orDash(p.State), p.MAC, addrOrDash(p.IPv4), addrOrDash(p.IPv6), p.Distro)
				}
				return nil
			})
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func (app *App) hostShowCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a bare-metal host's MAC and DNS records, its _mac CNAME included",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return app.printPlan(false, output, "", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
				return o.ShowHost(cmd.Context(), args[0])
			})
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func (app *App) reinstallCommand() *cobra.Command {
	var (
		distro, script, output string
		txt                    []string
		now                    bool
	)
	cmd := &cobra.Command{
		Use:     "reinstall NAME --distro DISTRO",
		Short:   "Rewrite the TXT boot intent of a VM or host (state=install); it installs on its next network boot",
		Example: "  vmprov reinstall test-centos7 --distro rocky9\n  vmprov reinstall web1 --distro trixie --now   # power-cycle the VM too",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if distro == "" {
				return usageError{fmt.Errorf("--distro is required")}
			}
			vars, err := parseVars(txt)
			if err != nil {
				return err
			}
			return app.printPlan(now, output, "", func(o *orchestrator.Orchestrator) (*orchestrator.Plan, error) {
				if now {
					return o.ReinstallNow(cmd.Context(), args[0], distro, script, vars)
				}
				return o.Reinstall(cmd.Context(), args[0], distro, script, vars)
			})
		},
	}
	cmd.Flags().StringVar(&distro, "distro", "", "distribution to install (TXT distribution=)")
	cmd.Flags().StringVar(&script, "script", "", "bootstrap script (TXT filename=)")
	cmd.Flags().StringArrayVar(&txt, "txt", nil, "boot variable KEY=VALUE to set (TXT), repeatable")
	cmd.Flags().BoolVar(&now, "now", false, "power-cycle the VM through libvirt (bare metal: not configured)")
	outputFlag(cmd, &output)
	return cmd
}
