package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
)

// waitInterval is how often `vmprov wait` reads DNS by default.
const waitInterval = 5 * time.Second

func (app *App) waitCommand() *cobra.Command {
	var (
		forState          string
		timeout, interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait NAME --for STATE [--timeout D]",
		Short: "Wait until a host reaches a build state (install, installing, installed), reading DNS",
		Long: `wait reads the host's TXT record from DNS (dns.server, not vmprov serve) every
--interval and prints each build state it sees, with the time it saw it. It exits
0 when the host is in --for, 1 when --timeout passes first, and 2 when the name
is not a host in DNS or a flag is wrong.`,
		Example: "  vmprov wait web1 --for installed --timeout 45m",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			want, err := inventory.ParseState(forState)
			if err != nil {
				return usageError{fmt.Errorf("--for: %w", err)}
			}
			if timeout <= 0 || interval <= 0 {
				return usageError{fmt.Errorf("--timeout %s and --interval %s must be positive", timeout, interval)}
			}
			return app.withOrchestrator(false, func(o *orchestrator.Orchestrator) error {
				return app.wait(cmd.Context(), o, args[0], want, timeout, interval)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&forState, "for", string(inventory.StateInstalled), "build state to wait for: install, installing or installed")
	f.DurationVar(&timeout, "timeout", 45*time.Minute, "give up after this long (exit 1)")
	f.DurationVar(&interval, "interval", waitInterval, "how often to read DNS")
	return cmd
}

// wait polls the build state of name until it is want or timeout passes.
// A DNS error is reported and polled again; only a name that is not a host
// ends it early.
func (app *App) wait(ctx context.Context, o *orchestrator.Orchestrator, name string, want inventory.State, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last, seen := "", false
	for {
		st, ok, err := o.BuildState(ctx, name)
		switch {
		case errors.Is(err, orchestrator.ErrNotFound) || errors.Is(err, orchestrator.ErrInvalid):
			return usageError{fmt.Errorf("wait %s: %w", name, err)}
		case err != nil && ctx.Err() == nil:
			fmt.Fprintf(app.Stderr, "vmprov: wait %s: %v (trying again)\n", name, err)
		case err == nil:
			now := string(st)
			if !ok {
				now = "no boot intent"
			}
			if !seen || now != last {
				fmt.Fprintf(app.Stdout, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339), name, now)
				last, seen = now, true
			}
			if ok && st == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if !seen {
				last = "unknown (DNS did not answer)"
			}
			return fmt.Errorf("wait %s: still %s after %s, not %s", name, last, timeout, want)
		case <-time.After(interval):
		}
	}
}
