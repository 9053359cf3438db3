// Command vmprov provisions KVM virtual machines and bare-metal hosts with
// DNS as its only database.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmprov/vmprov/cmd/vmprov/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
