package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/orchestrator"
)

// hypervisorsCommand is `vmprov hypervisors`: the fleet at a glance.
func (app *App) hypervisorsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "hypervisors",
		Short: "Show each hypervisor of the fleet: reachable?, bridges, VMs, memory and vCPUs committed",
		Long: `hypervisors asks every hypervisor (hypervisors: in the configuration, else
libvirt.uri) at once, each of hypervisors: within libvirt.timeout, for what placement decides on:
its bridges, the memory every defined domain commits against its limit
(memory_mib, else the host's memory) and the vCPUs they commit. An unreachable
hypervisor is shown as such and the exit code is 3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return app.withOrchestrator(true, func(o *orchestrator.Orchestrator) error {
				hs, err := o.Hypervisors(cmd.Context())
				if hs == nil {
					return err
				}
				if output == "json" {
					if jerr := writeJSON(app.Stdout, hs); jerr != nil {
						return jerr
					}
					return err
				}
				fmt.Fprintf(app.Stdout, "%-12s %-11s %-4s %-20s %-10s %s\n", "NAME", "REACHABLE", "VMS", "MEMORY (MiB)", "VCPUS", "BRIDGES")
				for _, h := range hs {
					name := h.Name
					if name == "" {
						name = h.URI
					}
					if !h.Reachable {
						fmt.Fprintf(app.Stdout, "%-12s %-11s %s\n", name, "no", h.Error)
						continue
					}
					fmt.Fprintf(app.Stdout, "%-12s %-11s %-4d %-20s %-10s %s\n", name, "yes", h.VMs,
						fmt.Sprintf("%d / %d", h.Node.MemoryCommittedMiB, h.LimitMiB),
						fmt.Sprintf("%d / %d", h.Node.VCPUsCommitted, h.Node.CPUs), strings.Join(h.Node.Bridges, ","))
				}
				return err
			})
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
