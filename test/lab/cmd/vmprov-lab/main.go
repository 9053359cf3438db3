// Command vmprov-lab brings the vmprov lab (TESTING.md) up and down: a
// network namespace with bridge br135, BIND with the example.com. zone and
// its reverse zones on 192.0.2.1:53, a private libvirtd with the vmprov
// storage pool, and radvd for SLAAC.
//
//	vmprov-lab up --dir DIR [--netns NAME] [--no-libvirt] [--no-radvd] [-v]
//	vmprov-lab down --dir DIR
//	vmprov-lab status --dir DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmprov/vmprov/test/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmprov-lab:", err)
		os.Exit(1)
	}
}

const usage = "usage: vmprov-lab up|down|status --dir DIR [flags]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("vmprov-lab "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lab directory (configs, logs, state.json); required")
	netns := fs.String("netns", "vmprov-lab", "network namespace name (up)")
	noLibvirt := fs.Bool("no-libvirt", false, "do not start libvirtd (up)")
	noRadvd := fs.Bool("no-radvd", false, "do not start radvd (up)")
	verbose := fs.Bool("v", false, "log progress to stderr")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "up":
		log := slog.New(slog.DiscardHandler)
		if *verbose {
			log = slog.New(slog.NewTextHandler(stderr, nil))
		}
		l, err := lab.Up(ctx, lab.Options{Dir: *dir, Netns: *netns, NoLibvirt: *noLibvirt, NoRadvd: *noRadvd, Log: log})
		if err != nil {
			return err
		}
		printState(stdout, l.Dir, l.State)
		return nil
	case "down":
		return lab.Down(*dir)
	case "status":
		st, err := lab.ReadState(*dir)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "no lab in %s\n", *dir)
			return nil
		}
		if err != nil {
			return err
		}
		printState(stdout, *dir, st)
		return nil
	default:
		return fmt.Errorf("unknown command %q: %s", args[0], usage)
	}
}

func printState(w io.Writer, dir string, st lab.State) {
	fmt.Fprintf(w, "namespace   %s (ip netns exec %s ...)\n", st.Netns, st.Netns)
	fmt.Fprintf(w, "bridge      %s %s %s\n", st.Bridge, st.IPv4, st.IPv6)
	fmt.Fprintf(w, "dns         %s zone %s reverse %v\n", st.DNS, st.Zone, st.ReverseZones)
	fmt.Fprintf(w, "tsig key    %s\n", st.KeyFile)
	if st.LibvirtURI != "" {
		fmt.Fprintf(w, "libvirt     %s pool %s\n", st.LibvirtURI, st.Pool)
	}
	for _, p := range st.Processes {
		fmt.Fprintf(w, "process     %-9s pid %-7d log %s\n", p.Name, p.PID, p.Log)
	}
	fmt.Fprintf(w, "state       %s/%s\n", dir, lab.StateFile)
}
