// Command vmprov-lab brings the vmprov lab (README.md, "Two commands") up and
// down: a network namespace with bridges br135 (192.0.2.1/24,
// 2001:db8:135::1/64) and br136 (IPv6-only, 2001:db8:136::1/64), BIND with
// the example.com. zone and its reverse zones on 192.0.2.1:53, a private
// libvirtd with the vmprov storage pool, radvd for SLAAC and, given a vmprov
// binary, `vmprov serve` with a generated configuration. `demo` then runs the
// seed 000 workflow in it (see the demo package) and leaves it up.
//
//	vmprov-lab up --dir DIR [--netns NAME] [--vmprov BIN] [--no-libvirt] [--no-radvd] [--fleet] [-v]
//	vmprov-lab demo --dir DIR --vmprov BIN [--netns NAME] [-v]
//	vmprov-lab config --dir DIR --serve-dir DIR [--key-file F] [--http-port N] [--tftp ADDR]
//	vmprov-lab down --dir DIR
//	vmprov-lab status --dir DIR
//
// up --fleet also starts the hypervisors of lab.DefaultFleet, each a libvirtd
// in a namespace of its own on the lab's bridges, and prints their URIs,
// which work inside the lab's namespace.
//
// config prints the vmprov configuration of the lab in DIR, as demo writes
// it, for a `vmprov serve` run elsewhere (test/provision.sh installs it for
// the systemd unit).
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
	"path/filepath"
	"syscall"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
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

const usage = "usage: vmprov-lab up|demo|config|down|status --dir DIR [flags]"

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
	fleet := fs.Bool("fleet", false, "also start hypervisors hv1 (qemu+ssh), hv2 and hv3 (qemu+tcp) (up)")
	vmprov := fs.String("vmprov", "", "vmprov binary: start `vmprov serve` in the lab (up; required by demo)")
	verbose := fs.Bool("v", false, "log progress to stderr")
	serveDir := fs.String("serve-dir", "", "serve.dir of the configuration (config; required)")
	keyFile := fs.String("key-file", "", "dns.tsig.secret_file of the configuration (config; default: the lab's key)")
	httpPort := fs.Int("http-port", demo.HTTPPort, "serve.http port, also in the boot URLs (config)")
	tftp := fs.String("tftp", "", "serve.tftp (config; default :69, port 69 on every address of serve.interfaces)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return errors.New(usage)
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	switch args[0] {
	case "up":
		opts := lab.Options{Dir: *dir, Netns: *netns, NoLibvirt: *noLibvirt, NoRadvd: *noRadvd, Log: log,
			More: []lab.Bridge{lab.IPv6OnlyBridge()}}
		l, err := lab.Up(ctx, opts)
		if err != nil {
			return err
		}
		var f *lab.Fleet
		if *fleet {
			if f, err = l.StartFleet(ctx, lab.DefaultFleet()); err != nil {
				return errors.Join(err, l.Close())
			}
		}
		if *vmprov != "" {
			e, err := demo.Setup(ctx, l, *vmprov, filepath.Join(l.Dir, "vmprov"), log)
			if err != nil {
				return errors.Join(err, l.Close())
			}
			fmt.Fprintf(stdout, "vmprov      serve pid %d, config %s, log %s\n", e.Serve.Process().PID, e.Config, e.ServeLog)
			if f != nil {
				if err := e.UseFleet(f, "10s", nil); err != nil {
					return errors.Join(err, l.Close())
				}
				fmt.Fprintf(stdout, "fleet       config %s: ip netns exec %s %s --config %s hypervisors\n", e.Config, l.State.Netns, *vmprov, e.Config)
			}
		}
		printState(stdout, l.Dir, l.State)
		return nil
	case "demo":
		if *vmprov == "" {
			return errors.New("demo needs --vmprov BIN: " + usage)
		}
		return runDemo(ctx, stdout, demoOptions{Dir: *dir, Netns: *netns, Vmprov: *vmprov, Log: log})
	case "config":
		if *serveDir == "" {
			return errors.New("config needs --serve-dir DIR: " + usage)
		}
		st, err := lab.ReadState(*dir)
		if err != nil {
			return err
		}
		c, err := demo.LabConfig(st, demo.ConfigOptions{KeyFile: *keyFile, ServeDir: *serveDir, HTTPPort: *httpPort, TFTP: *tftp})
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, c.YAML)
		return err
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
	for _, b := range st.More {
		fmt.Fprintf(w, "bridge      %s %s %s\n", b.Name, b.IPv4, b.IPv6)
	}
	fmt.Fprintf(w, "dns         %s zone %s reverse %v\n", st.DNS, st.Zone, st.ReverseZones)
	fmt.Fprintf(w, "tsig key    %s\n", st.KeyFile)
	if st.LibvirtURI != "" {
		fmt.Fprintf(w, "libvirt     %s pool %s\n", st.LibvirtURI, st.Pool)
	}
	for _, p := range st.Processes {
		fmt.Fprintf(w, "process     %-9s pid %-7d log %s\n", p.Name, p.PID, p.Log)
	}
	for _, h := range st.Fleet {
		fmt.Fprintf(w, "hypervisor  %s %s on %v, namespace %s\n", h.Name, h.URI, h.Bridges, h.Netns)
		for _, p := range h.Processes {
			fmt.Fprintf(w, "process     %-9s pid %-7d log %s\n", p.Name, p.PID, p.Log)
		}
	}
	fmt.Fprintf(w, "state       %s/%s\n", dir, lab.StateFile)
}
