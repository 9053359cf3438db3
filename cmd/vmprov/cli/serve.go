package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp4"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/httpboot"
)

// shutdownTimeout bounds how long serve drains open transfers on SIGTERM.
const shutdownTimeout = 10 * time.Second

func (app *App) serveCommand() *cobra.Command {
	var (
		httpAddr, tftpAddr string
		interfaces         []string
		noDHCP             bool
		jsonLogs           bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the boot service: DHCPv4, DHCPv6, BSDP, TFTP and HTTP, deciding everything from DNS",
		Long: `serve answers only clients DNS identifies (strict MAC, SLAAC MAC or a MAC._mac
CNAME, confirmed by forward and reverse records), so any number of identical
instances can serve one VLAN. DHCP listens on serve.interfaces; HTTP and TFTP
on serve.http and serve.tftp. SIGTERM drains open transfers and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.config()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("http") {
				c.Serve.HTTP = httpAddr
			}
			if cmd.Flags().Changed("tftp") {
				c.Serve.TFTP = tftpAddr
			}
			if cmd.Flags().Changed("interfaces") {
				c.Serve.Interfaces = interfaces
			}
			if noDHCP {
				c.Serve.Interfaces = nil
			}
			if c.Boot.URL == "" && c.Boot.URLv6 == "" {
				return fmt.Errorf("boot.url is empty: set the URL clients reach this service at, e.g. http://192.0.2.1")
			}
			if jsonLogs {
				app.log = slog.New(slog.NewJSONHandler(app.Stderr, &slog.HandlerOptions{Level: app.level()}))
			}
			return app.serve(cmd.Context(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&httpAddr, "http", "", "HTTP listen address (default serve.http)")
	f.StringVar(&tftpAddr, "tftp", "", `TFTP listen address, "off" or "" to disable (default serve.tftp)`)
	f.StringSliceVar(&interfaces, "interfaces", nil, "DHCP interfaces (default serve.interfaces)")
	f.BoolVar(&noDHCP, "no-dhcp", false, "serve only HTTP and TFTP (DHCP comes from elsewhere)")
	f.BoolVar(&jsonLogs, "log-json", false, "log in JSON")
	return cmd
}

func (app *App) level() slog.Level {
	if app.verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// serve wires the boot servers to one DNS policy and runs them until ctx
// ends or one fails.
func (app *App) serve(ctx context.Context, c *config.Config) error {
	log := app.logger()
	d, err := app.dnsClient(c)
	if err != nil {
		return err
	}
	policy := netboot.NewDNSPolicy(c, d, log.With("proto", "policy"))

	// Open every socket before serving anything, so a bad address fails at
	// once and nothing half-starts.
	httpLn, err := net.Listen("tcp", c.Serve.HTTP)
	if err != nil {
		return fmt.Errorf("serve.http %s: %w", c.Serve.HTTP, err)
	}
	defer httpLn.Close()

	collectors := []httpboot.Collector{policy}
	var v4 *dhcp4.Server
	var v6 *dhcp6.Server
	if len(c.Serve.Interfaces) > 0 {
		if v4, err = dhcp4.New(dhcp4.Config{Policy: policy, Cfg: c, Log: log}); err != nil {
			return err
		}
		collectors = append(collectors, v4)
		if hasIPv6(c) {
			duid, err := serverDUID(c)
			if err != nil {
				return err
			}
			v6, err = dhcp6.New(dhcp6.Config{Policy: policy, Cfg: c, Log: log, ServerDUID: duid,
				AnswerUnidentified: c.Serve.DHCPv6.AnswerUnidentified})
			if err != nil {
				return err
			}
			collectors = append(collectors, v6)
		}
	}
	tftpSrv, err := app.tftpServer(c, policy, log)
	if err != nil {
		return err
	}
	if tftpSrv != nil {
		defer tftpSrv.Close()
		collectors = append(collectors, tftpSrv)
	}
	web := httpboot.New(httpboot.Config{Policy: policy, Boot: c.Boot, Dir: c.Serve.Dir, Log: log, Collectors: collectors})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return web.Serve(ctx, httpLn, shutdownTimeout) })
	if v4 != nil {
		g.Go(func() error { return v4.Serve(ctx) })
	}
	if v6 != nil {
		g.Go(func() error { return v6.Serve(ctx) })
	}
	if tftpSrv != nil {
		g.Go(func() error { return tftpSrv.Serve(ctx, c.Serve.TFTP) })
	}
	log.Info("vmprov serve started", "http", httpLn.Addr().String(), "tftp", c.Serve.TFTP,
		"iface", strings.Join(c.Serve.Interfaces, ","), "zone", c.DNS.Zone)
	err = g.Wait()
	log.Info("vmprov serve stopped")
	return err
}

// serverDUID is serve.dhcp6.server_duid decoded; nil lets the DHCPv6
// server derive a DUID-LL from its first interface.
func serverDUID(c *config.Config) (dhcpv6.DUID, error) {
	b, err := c.Serve.DHCPv6.DUID()
	if err != nil || b == nil {
		return nil, err
	}
	d, err := dhcpv6.DUIDFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("serve.dhcp6.server_duid %q: %w: give a DUID-LLT, DUID-EN, DUID-LL or DUID-UUID", c.Serve.DHCPv6.ServerDUID, err)
	}
	return d, nil
}

func hasIPv6(c *config.Config) bool {
	for _, v := range c.VLANs {
		if v.IPv6.IsValid() {
			return true
		}
	}
	return false
}
