package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
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
	// build writes build states with serve.tsig, doneSecret keys the
	// callback tokens (docs/design.md, "A host's life"). Nil for explain,
	// which writes nothing.
	build      httpboot.BuildWriter
	doneSecret []byte
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
	if b.tftp, err = tftpServer(c, b.policy, b.booter, log, opt.makeTFTPRoot, opt.build); err != nil {
		return nil, err
	}
	if b.tftp != nil {
		b.tftp.SetLimits(c.Serve.Limits.TFTPTransfers, c.Serve.Limits.TFTPTransfersPerClient)
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
	b.web = httpboot.New(httpboot.Config{Policy: b.policy, Booter: b.booter, Dir: c.Serve.Dir, LoaderDirs: c.Serve.LoaderDirs, AssetDirs: serveconfig.AssetDirs(c), Log: log, Metrics: b.metrics,
		PublicMACScripts: c.Serve.PublicMACScripts, MaxConnections: c.Serve.Limits.HTTPConnections,
		Build: opt.build, DoneSecret: opt.doneSecret})
	exported := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		b.policy.Cache().Collector(),
		b.web.Collector(),
	}
	if m, ok := opt.build.(interface{ Collector() prometheus.Collector }); ok {
		exported = append(exported, m.Collector()) // vmprov_build_transitions_total, HTTP and TFTP
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

	build, doneSecret, err := app.buildWriter(c)
	if err != nil {
		return err
	}
	svc, err := newBootService(c, d, log, serviceOptions{makeTFTPRoot: true, build: build, doneSecret: doneSecret})
	if err != nil {
		return err
	}
	defer svc.Close()
	tftpLog := c.Serve.TFTP
	var tftpConns []*net.UDPConn
	if svc.tftp != nil {
		addrs, err := tftpAddrs(c)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			ua, err := net.ResolveUDPAddr("udp", a)
			if err == nil {
				var conn *net.UDPConn
				if conn, err = net.ListenUDP("udp", ua); err == nil {
					defer conn.Close()
					tftpConns = append(tftpConns, conn)
					continue
				}
			}
			return fmt.Errorf("serve.tftp %s: %w", a, err)
		}
		tftpLog = strings.Join(addrs, ",")
		logMissingLoaders(c, log)
	}
	checkFileLimit(log, c.Serve.Limits.Files()+len(tftpConns))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.web.Serve(ctx, httpLn, shutdownTimeout) })
	if svc.v4 != nil {
		g.Go(func() error { return svc.v4.Serve(ctx) })
	}
	if svc.v6 != nil {
		g.Go(func() error { return svc.v6.Serve(ctx) })
	}
	for _, conn := range tftpConns {
		g.Go(func() error { return svc.tftp.ServeConn(ctx, conn) })
	}
	log.Info("vmprov serve started", "http", httpLn.Addr().String(), "tftp", tftpLog,
		"iface", strings.Join(c.Serve.Interfaces, ","), "zone", c.DNS.Zone)
	err = g.Wait()
	log.Info("vmprov serve stopped")
	return err
}

// buildWriter is how serve records build states: its own DNS client,
// signing with serve.tsig (which the DNS server may restrict to TXT
// updates), and the callback token secret every instance shares.
func (app *App) buildWriter(c *config.Config) (*buildstate.Writer, []byte, error) {
	s, err := c.Serve.LoadTSIG()
	if err != nil {
		return nil, nil, err
	}
	if s.Warning != "" {
		app.logger().Warn(s.Warning)
	}
	d, err := dnsupdate.New(dnsupdate.Config{
		Server: c.DNS.Server, KeyName: s.Name, Algorithm: s.Algorithm, Secret: s.Secret, Log: app.logger(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("serve.tsig: %w", err)
	}
	secret, warning, err := c.Serve.DoneSecret(s)
	if err != nil {
		return nil, nil, err
	}
	if warning != "" {
		app.logger().Warn(warning)
	}
	return buildstate.NewWriter(d, c.DNS.Zone), secret, nil
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

// tftpAddrs is where TFTP listens: serve.tftp when it names an address.
// When it names only a port (":69", the default) and serve.interfaces is
// set, that port on each IPv4 and global IPv6 address of those interfaces,
// so TFTP answers on the serving networks only; link-local IPv6 is left
// out, as DHCPv6 names a global address in tftp:// URLs (docs/design.md).
// Without serve.interfaces, or when serve.server_ipv4 (the next-server
// DHCPv4 names) is not one of those addresses, as a shared address that
// moves between instances is not, every address. Addresses are read once,
// at start.
func tftpAddrs(c *config.Config) ([]string, error) {
	host, port, err := net.SplitHostPort(c.Serve.TFTP)
	if err != nil {
		return nil, fmt.Errorf("serve.tftp %q is not [ADDRESS]:PORT: %w", c.Serve.TFTP, err)
	}
	if host != "" || len(c.Serve.Interfaces) == 0 {
		return []string{c.Serve.TFTP}, nil
	}
	var addrs []string
	seen := map[netip.Addr]bool{}
	add := func(ip netip.Addr) {
		if !seen[ip] {
			seen[ip] = true
			addrs = append(addrs, net.JoinHostPort(ip.String(), port))
		}
	}
	for _, name := range c.Serve.Interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("serve.interfaces: %s: %w: name an interface of this host", name, err)
		}
		ifAddrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("serve.interfaces: %s: %w", name, err)
		}
		n := len(addrs)
		for _, a := range ifAddrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if ip = ip.Unmap(); !ok || ip.Is6() && !ip.IsGlobalUnicast() {
				continue
			}
			add(ip)
		}
		if len(addrs) == n {
			return nil, fmt.Errorf("serve.interfaces: %s has no address for TFTP to listen on: give it one, or set serve.tftp to an address (e.g. 0.0.0.0:69)", name)
		}
	}
	if ip := c.Serve.ServerIPv4; ip.IsValid() && !seen[ip.Unmap()] {
		return []string{c.Serve.TFTP}, nil
	}
	return addrs, nil
}

// checkFileLimit warns when the process may open fewer files than serve's
// bounds need (deploy/vmprov-serve.service sets LimitNOFILE for the
// default serve.limits).
func checkFileLimit(log *slog.Logger, need int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < uint64(need) {
		log.Warn("the open file limit is below what serve.limits can use: raise LimitNOFILE (ulimit -n) or lower serve.limits",
			"limit", rl.Cur, "need", need)
	}
}
