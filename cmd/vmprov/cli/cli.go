// Package cli is vmprov's command line: the cobra commands and the only
// place that wires concrete parts (DNS client, libvirt adapter, boot
// servers) together.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/fleet"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
)

// App holds what every command shares: flags, streams and the lazily
// loaded configuration.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	configPath string
	connect    string
	verbose    bool
	jsonLogs   bool // serve --log-json
	cfg        *config.Config
	log        *slog.Logger
}

// Run executes the command line args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "vmprov: %v\n", err)
		var ue usageError
		switch {
		case errors.As(err, &ue):
			return 2
		case errors.Is(err, fleet.ErrUnreachable):
			return ExitUnreachable
		}
		return 1
	}
	return 0
}

// ExitUnreachable is the exit code of a command that could not reach a
// hypervisor it needed: list shows what the others hold, destroy changes
// nothing.
const ExitUnreachable = 3

// usageError marks a command line the user must correct.
type usageError struct{ error }

func (app *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "vmprov",
		Short: "Provision KVM virtual machines and bare-metal hosts, with DNS as the only database",
		Long: `vmprov takes machines from nothing to installed: KVM virtual machines through
libvirt, and physical PCs, servers and Intel Macs through its own network boot
service. Everything it knows about a host lives in DNS (RFC 2136 updates signed
with TSIG): A/AAAA, PTR, a TXT boot intent and, for bare metal, a _mac CNAME.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&app.configPath, "config", "", "configuration file (default $"+config.EnvPath+", else "+config.DefaultPath+")")
	pf.StringVar(&app.connect, "connect", "", "libvirt URI, overriding libvirt.uri (e.g. qemu+ssh://hv1/system)")
	pf.BoolVarP(&app.verbose, "verbose", "v", false, "log debug messages")
	root.AddCommand(app.createCommand(), app.destroyCommand(), app.listCommand(), app.showCommand())
	for _, c := range app.extraCommands() {
		root.AddCommand(c)
	}
	return root
}

// logger is every command's logger, made once: to stderr, in text or
// (serve --log-json) JSON, at Debug with -v and Info otherwise.
func (app *App) logger() *slog.Logger {
	if app.log == nil {
		opts := &slog.HandlerOptions{Level: slog.LevelInfo}
		if app.verbose {
			opts.Level = slog.LevelDebug
		}
		var h slog.Handler = slog.NewTextHandler(app.Stderr, opts)
		if app.jsonLogs {
			h = slog.NewJSONHandler(app.Stderr, opts)
		}
		app.log = slog.New(h)
	}
	return app.log
}

// config loads and validates the configuration once.
func (app *App) config() (*config.Config, error) {
	if app.cfg != nil {
		return app.cfg, nil
	}
	c, err := config.Load(config.Path(app.configPath))
	if err != nil {
		return nil, err
	}
	if app.connect != "" {
		c.Libvirt.URI = app.connect
	}
	app.cfg = c
	return c, nil
}

// dnsClient returns the signed RFC 2136 client of dns.server.
func (app *App) dnsClient(c *config.Config) (*dnsupdate.Client, error) {
	s, err := c.DNS.TSIG.LoadSecret()
	if err != nil {
		return nil, err
	}
	if s.Warning != "" {
		app.logger().Warn(s.Warning)
	}
	return dnsupdate.New(dnsupdate.Config{
		Server: c.DNS.Server, KeyName: s.Name, Algorithm: s.Algorithm, Secret: s.Secret,
		Log: app.logger(),
	})
}

// orchestrator wires DNS and, when withHV, libvirt. The returned close
// function releases the libvirt connection.
func (app *App) orchestrator(withHV bool) (*orchestrator.Orchestrator, func(), error) {
	c, err := app.config()
	if err != nil {
		return nil, nil, err
	}
	d, err := app.dnsClient(c)
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() {}
	var fl *fleet.Fleet
	if withHV {
		fl = app.fleet(c)
		closeFn = func() { fl.Close() }
	}
	o, err := orchestrator.New(orchestrator.Config{Config: c, DNS: d, Fleet: fl, Log: app.logger()})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return o, closeFn, nil
}

// fleet is the command's hypervisors: hypervisors: from the configuration,
// each connected on first use through libvirt with keepalives, connecting
// and questions bounded by libvirt.timeout; or the one of libvirt.uri
// (--connect overrides both), with no deadline but libvirt's own.
func (app *App) fleet(c *config.Config) *fleet.Fleet {
	var members []fleet.Member
	if app.connect == "" {
		for _, h := range c.Hypervisors {
			members = append(members, fleet.Member{Name: h.Name, URI: h.URI, MemoryMiB: h.MemoryMiB})
		}
	}
	timeout := c.Libvirt.Timeout.Duration
	if len(members) == 0 {
		// One hypervisor: nothing to protect from it, and its connection
		// may ask for a password.
		members, timeout = []fleet.Member{{URI: c.Libvirt.URI}}, 0
	}
	log := app.logger()
	return fleet.New(fleet.Config{
		Members: members,
		Timeout: timeout,
		Log:     log,
		Open: func(_ context.Context, m fleet.Member) (virt.Hypervisor, io.Closer, error) {
			l := log
			if m.Name != "" {
				l = log.With("hypervisor", m.Name)
			}
			lv, err := libvirtconn.Open(m.URI, l)
			if err != nil {
				return nil, nil, err
			}
			return lv, lv, nil
		},
	})
}

// withOrchestrator runs do with the orchestrator (libvirt too when withHV)
// and releases it: the body every DNS and VM command shares.
func (app *App) withOrchestrator(withHV bool, do func(*orchestrator.Orchestrator) error) error {
	o, closeFn, err := app.orchestrator(withHV)
	if err != nil {
		return err
	}
	defer closeFn()
	return do(o)
}

// printPlan runs do with the orchestrator and prints the plan it returns
// as output says: JSON, or text after header (when not empty). It is the
// RunE body of create, host add, reinstall and show.
func (app *App) printPlan(withHV bool, output, header string, do func(*orchestrator.Orchestrator) (*orchestrator.Plan, error)) error {
	return app.withOrchestrator(withHV, func(o *orchestrator.Orchestrator) error {
		p, err := do(o)
		if err != nil {
			return err
		}
		if output == "json" {
			return writeJSON(app.Stdout, p)
		}
		if header != "" {
			fmt.Fprintln(app.Stdout, header)
		}
		writePlan(app.Stdout, p)
		return nil
	})
}

// outputFlag adds -o/--output with text and json.
func outputFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVarP(v, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func checkOutput(v string) error {
	if v != "text" && v != "json" {
		return usageError{fmt.Errorf("--output %q: use text or json", v)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePlan prints a plan as text.
func writePlan(w io.Writer, p *orchestrator.Plan) {
	fmt.Fprintf(w, "name:   %s\nfqdn:   %s\n", p.Name, p.FQDN)
	if p.VLAN != 0 {
		fmt.Fprintf(w, "vlan:   %d (bridge %s)\n", p.VLAN, p.Bridge)
	}
	if p.MAC != "" {
		fmt.Fprintf(w, "mac:    %s\n", p.MAC)
	}
	if p.Hypervisor != "" {
		fmt.Fprintf(w, "hypervisor: %s\n", p.Hypervisor)
	}
	if p.IPv4 != nil {
		fmt.Fprintf(w, "ipv4:   %s\n", p.IPv4)
	}
	if p.IPv6 != nil {
		fmt.Fprintf(w, "ipv6:   %s\n", p.IPv6)
	}
	if p.Distro != "" {
		fmt.Fprintf(w, "distro: %s\n", p.Distro)
	}
	if p.State != "" {
		fmt.Fprintf(w, "state:  %s\n", p.State)
	}
	if p.Power != "" {
		fmt.Fprintf(w, "power:  %s\n", p.Power)
	}
	if len(p.Boot) > 0 {
		fmt.Fprintf(w, "boot:   %s\n", strings.Join(p.Boot, ","))
	}
	if len(p.Candidates) > 1 {
		fmt.Fprintf(w, "then:   %s (tried in this order if it fails)\n", strings.Join(p.Candidates[1:], ", "))
	}
	for _, r := range p.Rejected {
		fmt.Fprintf(w, "not %s: %s\n", r.Hypervisor, r.Reason)
	}
	for _, m := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
	if len(p.Records) > 0 {
		fmt.Fprintln(w, "records:")
		for _, r := range p.Records {
			fmt.Fprintf(w, "  %-50s %-5s %s\n", r.Name, r.Type, r.Data)
		}
	}
}

func splitKV(s string) (string, string, bool) {
	k, v, ok := strings.Cut(s, "=")
	return k, v, ok && k != ""
}
