package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp4"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/httpboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/netboot/tftp"
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
			app.jsonLogs = jsonLogs
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

// bootService is the boot service's parts for one configuration, wired
// to one DNS policy and one Booter: what vmprov serve runs and vmprov
// explain asks.
type bootService struct {
	policy *netboot.DNSPolicy
	booter netboot.Booter
	v4     *dhcp4.Server // nil without DHCP interfaces
	v6     *dhcp6.Server // nil without DHCP interfaces or IPv6 VLANs
	tftp   *tftp.Server  // nil when serve.tftp is off
	web    *httpboot.Server
	// metrics holds the metrics of the parts above, of the Go runtime and
	// of the process; web serves it on /metrics. One registry per service,
	// none global.
	metrics *prometheus.Registry
}

// Close releases the TFTP root.
func (b *bootService) Close() {
	if b.tftp != nil {
		b.tftp.Close()
	}
}

// serviceOptions are what serve and explain wire differently.
type serviceOptions struct {
	// duid overrides the DHCPv6 server DUID; nil: serve.dhcp6.server_duid,
	// else derived from the first interface.
	duid dhcpv6.DUID
	// makeTFTPRoot creates serve.dir/tftp when it is missing; without it a
	// missing root means no TFTP server.
	makeTFTPRoot bool
}

// newBootService maps c onto the servers' configurations and registers
// their metrics, the Go runtime's and the process's in the service's own
// registry; registering is cheap, so vmprov explain, which serves no
// /metrics, pays little for it.
func newBootService(c *config.Config, r netboot.Resolver, log *slog.Logger, opt serviceOptions) (*bootService, error) {
	b := &bootService{
		policy:  netboot.NewDNSPolicy(serveconfig.Policy(c, log.With("proto", "policy")), r),
		booter:  serveconfig.Booter(c),
		metrics: prometheus.NewRegistry(),
	}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	var err error
	if b.tftp, err = tftpServer(c, b.policy, b.booter, log, opt.makeTFTPRoot); err != nil {
		return nil, err
	}
	duid := opt.duid
	common := serveconfig.DHCP(c, b.policy, log)
	if len(c.Serve.Interfaces) > 0 {
		b.v4, err = dhcp4.New(dhcp4.Config{
			DHCPConfig: common, ServerIPv4: c.Serve.ServerIPv4,
			BSDPPriority: c.BSDP.Priority, BSDPImages: serveconfig.BSDPImages(c),
		})
		if err != nil {
			return nil, err
		}
		if hasIPv6(c) {
			if duid == nil {
				if duid, err = serverDUID(c); err != nil {
					return nil, err
				}
			}
			b.v6, err = dhcp6.New(dhcp6.Config{
				DHCPConfig: common, ServerDUID: duid,
				AnswerUnidentified: c.Serve.DHCPv6.AnswerUnidentified,
			})
			if err != nil {
				return nil, err
			}
		}
	}
	b.web = httpboot.New(httpboot.Config{Policy: b.policy, Booter: b.booter, Dir: c.Serve.Dir, Log: log, Metrics: b.metrics,
		PublicMACScripts: c.Serve.PublicMACScripts})
	exported := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		b.policy.Cache().Collector(),
		b.web.Collector(),
	}
	if b.tftp != nil {
		exported = append(exported, b.tftp.Collector())
	}
	if b.v4 != nil {
		exported = append(exported, b.v4.Collector())
	}
	if b.v6 != nil {
		exported = append(exported, b.v6.Collector())
	}
	for _, m := range exported {
		if err := b.metrics.Register(m); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	ok = true
	return b, nil
}

// serve wires the boot servers to one DNS policy and runs them until ctx
// ends or one fails.
func (app *App) serve(ctx context.Context, c *config.Config) error {
	log := app.logger()
	d, err := app.dnsClient(c)
	if err != nil {
		return err
	}

	// Open every socket before serving anything, so a bad address fails at
	// once and nothing half-starts.
	httpLn, err := net.Listen("tcp", c.Serve.HTTP)
	if err != nil {
		return fmt.Errorf("serve.http %s: %w", c.Serve.HTTP, err)
	}
	defer httpLn.Close()

	svc, err := newBootService(c, d, log, serviceOptions{makeTFTPRoot: true})
	if err != nil {
		return err
	}
	defer svc.Close()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.web.Serve(ctx, httpLn, shutdownTimeout) })
	if svc.v4 != nil {
		g.Go(func() error { return svc.v4.Serve(ctx) })
	}
	if svc.v6 != nil {
		g.Go(func() error { return svc.v6.Serve(ctx) })
	}
	if svc.tftp != nil {
		g.Go(func() error { return svc.tftp.Serve(ctx, c.Serve.TFTP) })
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
