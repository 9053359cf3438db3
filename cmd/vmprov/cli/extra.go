package cli

import "github.com/spf13/cobra"

// extraCommands are the commands beyond the VM workflow.
func (app *App) extraCommands() []*cobra.Command {
	return []*cobra.Command{app.hostCommand(), app.reinstallCommand(), app.waitCommand(), app.serveCommand(), app.explainCommand(), app.ipxeCommand(), app.grubCommand(), app.hypervisorsCommand()}
}
