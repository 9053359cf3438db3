package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
	"github.com/vmprov/vmprov/netboot/dhcp4"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/templates"
)

func (app *App) explainCommand() *cobra.Command {
	var (
		mac, ip  string
		firmware string
		full     bool
		output   string
	)
	var names []string
	for _, r := range netboot.Firmwares() {
		names = append(names, r.Name)
	}
	cmd := &cobra.Command{
		Use:   "explain (NAME | --mac MAC | --ip ADDR) [--firmware F]",
		Short: "Show what vmprov serve answers a client, from live DNS, before it boots",
		Long: `explain asks the boot service's own code what it would answer one client:
how DNS identifies it (strict MAC, SLAAC MAC, _mac CNAME, FCrDNS) or why it
does not; the DHCPv4 and DHCPv6 answers for the chosen firmware (address,
options, boot file or URL); the boot file of every firmware; the per-host
TFTP files; the /pxedust script and the chain it starts; and the installer's
kernel, initrd and command line. Nothing is sent to the network but DNS
queries. A client DNS does not know exits 1 with what was checked.`,
		Example: `  vmprov explain demo1
  vmprov explain --mac 02:04:06:08:70:0a --firmware efi
  vmprov explain --ip 192.0.2.10 -o json`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var q explainQuery
			given := 0
			if len(args) == 1 {
				q.name, given = args[0], given+1
			}
			if mac != "" {
				m, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":"))
				if err != nil || len(m) != 6 {
					return usageError{fmt.Errorf("--mac %q is not a MAC address like 02:04:06:08:73:ac", mac)}
				}
				q.mac, given = m, given+1
			}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return usageError{fmt.Errorf("--ip %q is not an IP address", ip)}
				}
				q.addr, given = a.Unmap(), given+1
			}
			if given != 1 {
				return usageError{errors.New("give one of NAME, --mac MAC or --ip ADDR")}
			}
			fw, err := netboot.ParseFirmware(firmware)
			if err != nil {
				return usageError{fmt.Errorf("--firmware: %w", err)}
			}
			q.firmware, q.firmwareName = fw, firmware
			c, err := app.config()
			if err != nil {
				return err
			}
			d, err := app.dnsClient(c)
			if err != nil {
				return err
			}
			x, err := explain(cmd.Context(), c, d, q)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(app.Stdout, x); err != nil {
					return err
				}
			} else {
				x.write(app.Stdout, full)
			}
			if x.Unknown != "" {
				return fmt.Errorf("%s is not known to the boot service: %s", x.Query, x.Unknown)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&mac, "mac", "", "explain the client with this MAC (what DHCP sees)")
	f.StringVar(&ip, "ip", "", "explain the client at this address (what HTTP and TFTP see)")
	f.StringVar(&firmware, "firmware", "ipxe", "the client's firmware: "+strings.Join(names, ", "))
	f.BoolVar(&full, "full", false, "print every rendered file, not only the /pxedust script")
	_ = cmd.RegisterFlagCompletionFunc("firmware", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd, &output)
	return cmd
}

// explainQuery is who to explain.
type explainQuery struct {
	name         string
	mac          net.HardwareAddr
	addr         netip.Addr
	firmware     netboot.Firmware
	firmwareName string
}

// Explanation is what vmprov serve answers one client (-o json).
type Explanation struct {
	Query    string `json:"query"`
	Firmware string `json:"firmware"`
	// Unknown is why the boot service does not know the client; empty
	// when it does.
	Unknown string        `json:"unknown,omitempty"`
	Host    *explainHost  `json:"host,omitempty"`
	DHCPv4  *explainDHCP  `json:"dhcp4,omitempty"`
	DHCPv6  *explainDHCP  `json:"dhcp6,omitempty"`
	Boot    []explainBoot `json:"boot_files,omitempty"`
	TFTP    []explainFile `json:"tftp,omitempty"`
	HTTP    []explainFile `json:"http,omitempty"`
	// Install is what the installer boots, as install/default.ipxe and
	// grub.cfg compute it.
	Install *templates.InstallBoot `json:"install,omitempty"`
	Notes   []string               `json:"notes,omitempty"`
}

type explainHost struct {
	FQDN   string `json:"fqdn"`
	MAC    string `json:"mac,omitempty"`
	IPv4   string `json:"ipv4,omitempty"`
	IPv6   string `json:"ipv6,omitempty"`
	VLAN   int    `json:"vlan,omitempty"`
	Bridge string `json:"bridge,omitempty"`
	TXT    string `json:"txt,omitempty"`
	// State is the build state (docs/design.md, "A host's life"); empty
	// for a host without a boot intent.
	State string `json:"state,omitempty"`
	// IdentifiedBy is how DHCP identifies the client (by its MAC).
	IdentifiedBy string `json:"identified_by,omitempty"`
	// ConfirmedBy is how HTTP and TFTP identify it (FCrDNS of its address).
	ConfirmedBy string `json:"confirmed_by,omitempty"`
}

// explainDHCP is one DHCP server's answer: the reply to the client's
// request after the offer/advertise (ACK, Reply), or why there is none.
type explainDHCP struct {
	Server    string   `json:"server"`
	Interface string   `json:"interface"`
	Type      string   `json:"type,omitempty"`
	Address   string   `json:"address,omitempty"`
	Lease     string   `json:"lease,omitempty"`
	Options   []string `json:"options,omitempty"`
	File      string   `json:"file,omitempty"`
	// NextServer is the DHCPv4 siaddr of a TFTP boot file.
	NextServer  string   `json:"next_server,omitempty"`
	VendorClass string   `json:"vendor_class,omitempty"`
	BSDPImages  []string `json:"bsdp_images,omitempty"`
	// Log is what serve logs for the exchange.
	Log []string `json:"log,omitempty"`
	// Why is why there is no answer.
	Why string `json:"why,omitempty"`
}

// explainBoot is the boot answer of one firmware, by the protocol it
// asks over.
type explainBoot struct {
	Firmware string `json:"firmware"`
	DHCPv4   string `json:"dhcp4,omitempty"`
	DHCPv6   string `json:"dhcp6,omitempty"`
	TFTP     string `json:"tftp,omitempty"`
}

// explainFile is one file a client would fetch and what it gets.
type explainFile struct {
	Path   string `json:"path"`
	Status string `json:"status"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
	Body   string `json:"body,omitempty"`
	Why    string `json:"why,omitempty"`
}

// explain builds the Explanation of q with the servers vmprov serve runs for
// c, reading DNS through r; no socket is opened.
func explain(ctx context.Context, c *config.Config, r *dnsupdate.Client, q explainQuery) (*Explanation, error) {
	rec := &logRecorder{}
	duid, err := serverDUID(c)
	if err != nil {
		return nil, err
	}
	if duid == nil {
		// The DUID of the serving machine's interface is unknown here; it
		// only names the server in Server Identifier options.
		duid = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x53, 0x00}}
	}
	svc, err := newBootService(c, r, slog.New(rec), serviceOptions{duid: duid})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	x := &Explanation{Firmware: q.firmwareName}

	// Who: the MAC DHCP sees and the address HTTP and TFTP see.
	mac, addr := q.mac, q.addr
	switch {
	case q.name != "":
		x.Query = q.name
		fqdn, err := hostFQDN(q.name, c.DNS.Zone)
		if err != nil {
			return nil, usageError{err}
		}
		addr, mac, err = lookupName(ctx, r, c, fqdn)
		if err != nil {
			return nil, err
		}
		if !addr.IsValid() {
			x.Unknown = fmt.Sprintf("%s has no A or AAAA record: create it with vmprov create or vmprov host add", fqdn)
			return x, nil
		}
	case mac != nil:
		x.Query = "MAC " + mac.String()
	default:
		x.Query = "address " + addr.String()
	}

	var d netboot.Decision
	if addr.IsValid() {
		d, err = svc.policy.Decide(ctx, netboot.Client{Addr: addr})
		switch {
		case errors.Is(err, netboot.ErrUnknown):
			x.Unknown = reason(err)
			return x, nil
		case err != nil:
			return nil, fmt.Errorf("explain %s: %w", x.Query, err)
		}
		x.Host = describeHost(d, c)
		x.Host.ConfirmedBy = d.By
		if mac == nil {
			mac = d.Host.MAC
		}
	}
	if mac != nil {
		dm, err := svc.policy.Decide(ctx, netboot.Client{MAC: mac})
		switch {
		case errors.Is(err, netboot.ErrUnknown):
			if x.Host == nil {
				x.Unknown = reason(err)
				return x, nil
			}
			x.Notes = append(x.Notes, "DHCP does not identify MAC "+mac.String()+": "+reason(err))
		case err != nil:
			return nil, fmt.Errorf("explain %s: %w", x.Query, err)
		default:
			if x.Host == nil {
				d = dm
				x.Host = describeHost(d, c)
			}
			x.Host.IdentifiedBy = dm.By
			x.Host.MAC = mac.String()
			d.Host.MAC = mac
		}
	}
	if x.Host == nil {
		x.Unknown = "no MAC or address to identify the client by"
		return x, nil
	}
	if !addr.IsValid() { // known by MAC: HTTP and TFTP see its address
		addr = d.Host.IPv4
		if !addr.IsValid() {
			addr = d.Host.IPv6
		}
		if addr.IsValid() {
			if da, err := svc.policy.Decide(ctx, netboot.Client{Addr: addr}); err == nil {
				x.Host.ConfirmedBy = da.By
			} else {
				x.Notes = append(x.Notes, "HTTP and TFTP do not confirm "+addr.String()+": "+reason(err))
			}
		}
	}

	vlan := d.VLAN
	if x.Host.IdentifiedBy != "" {
		x.DHCPv4 = explainDHCPv4(ctx, svc, c, rec, vlan, mac, d, q.firmware)
		x.DHCPv6 = explainDHCPv6(ctx, svc, c, rec, vlan, mac, d, q.firmware)
	}
	x.Boot = bootTable(svc.booter, d, c, vlan)
	if svc.tftp != nil && d.Host.IPv4.IsValid() && len(d.Host.MAC) == 6 {
		hexhyp := inventory.HexHyp(d.Host.MAC)
		names := []string{"grub.cfg-01-" + hexhyp, "pxelinux.cfg/01-" + hexhyp}
		if name := signedGrubName(c, d); name != "" {
			names = append(names, name) // what signed GRUB reads
		}
		for _, name := range names {
			f := explainFile{Path: name}
			b, err := svc.tftp.Read(ctx, name, d.Host.IPv4)
			if err != nil {
				f.Status, f.Why = "error", err.Error()
			} else {
				f.Status = "sent"
				f.setBody(b)
			}
			x.TFTP = append(x.TFTP, f)
		}
	} else if svc.tftp == nil {
		x.Notes = append(x.Notes, "TFTP: off (serve.tftp) or no serve.dir/tftp here")
	}
	x.HTTP = httpChain(svc, addr, d)
	if d.Host.Intent.State() == inventory.StateInstalled {
		x.Notes = append(x.Notes, "installed: every firmware boots the local disk (no boot file, the iPXE exit script, local-boot GRUB and PXELINUX files); vmprov reinstall installs it again")
	} else if len(d.Host.Intent) > 0 {
		inst, err := templates.Install(svc.booter.TemplateHost(d, addr.Is6()))
		if err != nil {
			x.Notes = append(x.Notes, "install: "+err.Error())
		} else {
			x.Install = &inst
		}
	}
	return x, nil
}

// reason is the policy's reason without the package's sentinel text.
func reason(err error) string {
	s := err.Error()
	s = strings.TrimSuffix(s, ": "+netboot.ErrUnknown.Error())
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "decide ") {
		s = s[i+2:]
	}
	return s
}

// hostFQDN is NAME.zone for a short name; a name with dots must be in the zone.
func hostFQDN(name, zone string) (string, error) {
	zone = dns.Fqdn(strings.ToLower(zone))
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if label, ok := strings.CutSuffix(n, "."+strings.TrimSuffix(zone, ".")); ok {
		n = label
	}
	if err := inventory.ValidateName(n); err != nil {
		return "", err
	}
	return n + "." + zone, nil
}

// lookupName returns the address HTTP and TFTP would see from fqdn (its A
// record, else its AAAA) and, for bare metal, the MAC of its _mac CNAME
// (found with a zone transfer; nil when there is none or no transfer is
// allowed: the MAC is then derived from the addresses).
func lookupName(ctx context.Context, r *dnsupdate.Client, c *config.Config, fqdn string) (netip.Addr, net.HardwareAddr, error) {
	var addr netip.Addr
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		a, err := r.Lookup(ctx, fqdn, qt)
		if err != nil {
			return netip.Addr{}, nil, fmt.Errorf("explain %s: %w", fqdn, err)
		}
		for _, rr := range a.Records {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			}
			if x, ok := netip.AddrFromSlice(ip); ok && (!addr.IsValid() || x.Unmap().Less(addr)) && (!addr.IsValid() || addr.Is4() == x.Unmap().Is4()) {
				addr = x.Unmap()
			}
		}
		if addr.IsValid() {
			break
		}
	}
	rrs, err := r.Transfer(ctx, dns.Fqdn(c.DNS.Zone))
	if err != nil {
		return addr, nil, nil
	}
	for _, rr := range rrs {
		cn, ok := rr.(*dns.CNAME)
		if !ok || !strings.EqualFold(cn.Target, fqdn) {
			continue
		}
		label, _, _ := strings.Cut(cn.Hdr.Name, ".")
		if mac, err := inventory.ParseHexHyp(label); err == nil {
			return addr, mac, nil
		}
	}
	return addr, nil, nil
}

func describeHost(d netboot.Decision, c *config.Config) *explainHost {
	h := &explainHost{FQDN: d.Host.FQDN, VLAN: d.VLAN.ID, Bridge: d.VLAN.Bridge}
	if d.Host.MAC != nil {
		h.MAC = d.Host.MAC.String()
	}
	if d.Host.IPv4.IsValid() {
		h.IPv4 = d.Host.IPv4.String()
	}
	if d.Host.IPv6.IsValid() {
		h.IPv6 = d.Host.IPv6.String()
	}
	if txt := d.Host.Intent.TXT(); len(txt) > 0 {
		h.TXT = `"` + strings.Join(txt, `" "`) + `"`
		h.State = string(d.Host.Intent.State())
	}
	return h
}

// serverV4 is the address of the serving machine on vlan's IPv4 subnet:
// serve.server_ipv4, else boot.url's host when it is an address on the
// subnet, else the gateway. serve reads it from its interface instead.
func serverV4(c *config.Config, vlan netboot.VLAN) (netip.Addr, string) {
	if c.Serve.ServerIPv4.Is4() {
		return c.Serve.ServerIPv4, "serve.server_ipv4"
	}
	if a, ok := urlAddr(c.Boot.URL); ok && a.Is4() && vlan.IPv4.Contains(a) {
		return a, "the boot.url host"
	}
	if vlan.Gateway.Is4() {
		return vlan.Gateway, "assumed: the VLAN gateway; serve uses its interface's address"
	}
	return netip.Addr{}, ""
}

// serverV6 is the serving machine's global address on vlan's /64:
// boot.url_v6's (or boot.url's) host when it is one.
func serverV6(c *config.Config, vlan netboot.VLAN) (netip.Addr, string) {
	for _, u := range []string{c.Boot.URLv6, c.Boot.URL} {
		if a, ok := urlAddr(u); ok && a.Is6() && vlan.IPv6.Contains(a) {
			return a, "the boot URL host"
		}
	}
	return netip.Addr{}, "unknown: serve uses its interface's global address"
}

func urlAddr(s string) (netip.Addr, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(u.Hostname())
	return a.Unmap(), err == nil
}

// dhcp4Request is the DHCPv4 request firmware fw sends: its vendor class,
// user class and architecture (PXE 2.1, UEFI 2.5 section 24.7.2, RFC 4578).
func dhcp4Request(mt dhcpv4.MessageType, mac net.HardwareAddr, fw netboot.Firmware, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	opts := []dhcpv4.Modifier{dhcpv4.WithMessageType(mt), dhcpv4.WithHwAddr(mac), dhcpv4.WithTransactionID(dhcpv4.TransactionID{0x76, 0x6d, 0x70, 0x76})}
	arch := fmt.Sprintf("%05d", uint16(fw.Arch))
	switch fw.Kind {
	case netboot.KindIPXE:
		opts = append(opts, dhcpv4.WithUserClass(netboot.UserClassIPXE, false),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier(netboot.ClassPXE+":Arch:"+arch+":UNDI:002001")))
	case netboot.KindPXE:
		opts = append(opts, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(netboot.ClassPXE+":Arch:"+arch+":UNDI:002001")))
	case netboot.KindHTTP:
		opts = append(opts, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(netboot.ClassHTTP+":Arch:"+arch+":UNDI:003000")))
	case netboot.KindBSDP:
		opts = append(opts, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(bsdp.VendorClass+"/i386/MacBookPro11,1")))
	}
	if fw.HasArch && fw.Kind != netboot.KindBSDP {
		opts = append(opts, dhcpv4.WithOption(dhcpv4.OptClientArch(iana.Arch(fw.Arch))))
	}
	return dhcpv4.New(append(opts, mods...)...)
}

// explainDHCPv4 runs the client's DHCPv4 exchange through serve's handler:
// DISCOVER, then REQUEST of the offered address (an Intel Mac: INFORM[LIST]).
func explainDHCPv4(ctx context.Context, svc *bootService, c *config.Config, rec *logRecorder, vlan netboot.VLAN, mac net.HardwareAddr, d netboot.Decision, fw netboot.Firmware) *explainDHCP {
	out := &explainDHCP{Interface: vlan.Bridge}
	switch {
	case svc.v4 == nil:
		out.Why = "serve answers no DHCP: serve.interfaces is empty"
		return out
	case !vlan.IPv4.IsValid():
		out.Why = fmt.Sprintf("VLAN %d has no IPv4 subnet: DHCPv4 does not serve it", vlan.ID)
		return out
	}
	srv, from := serverV4(c, vlan)
	if !srv.IsValid() {
		out.Why = "no server address known for VLAN " + fmt.Sprint(vlan.ID) + ": set serve.server_ipv4"
		return out
	}
	out.Server = srv.String() + " (" + from + ")"
	in := dhcp4.Ingress{Interface: vlan.Bridge, VLAN: vlan.ID, ServerIP: srv}
	rec.reset()
	var resp *dhcpv4.DHCPv4
	var err error
	if fw.Kind == netboot.KindBSDP && d.Host.IPv4.IsValid() {
		list := bsdp.Message{Type: bsdp.MessageTypeList, Version: bsdp.Version1_1, MaxMessageSize: 1500}
		var req *dhcpv4.DHCPv4
		req, err = dhcp4Request(dhcpv4.MessageTypeInform, mac, fw, dhcpv4.WithClientIP(net.IP(d.Host.IPv4.AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, list.Encode())))
		if err == nil {
			resp, err = svc.v4.Handle(ctx, req, in)
		}
	} else {
		var req *dhcpv4.DHCPv4
		req, err = dhcp4Request(dhcpv4.MessageTypeDiscover, mac, fw)
		if err == nil {
			resp, err = svc.v4.Handle(ctx, req, in)
		}
		if err == nil && resp != nil && resp.MessageType() == dhcpv4.MessageTypeOffer {
			req, err = dhcp4Request(dhcpv4.MessageTypeRequest, mac, fw,
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(srv.AsSlice()))),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(resp.YourIPAddr)))
			if err == nil {
				resp, err = svc.v4.Handle(ctx, req, in)
			}
		}
	}
	if !out.answered(rec, err, resp == nil) {
		return out
	}
	out.Type = resp.MessageType().String()
	if !resp.YourIPAddr.IsUnspecified() {
		out.Address = resp.YourIPAddr.String()
	}
	if l := resp.IPAddressLeaseTime(0); l > 0 {
		out.Lease = l.String()
	}
	if m := resp.SubnetMask(); m != nil {
		ones, _ := m.Size()
		out.Options = append(out.Options, fmt.Sprintf("subnet mask /%d", ones))
	}
	if rs := resp.Router(); len(rs) > 0 {
		out.Options = append(out.Options, "router "+joinIPs(rs))
	}
	if ds := resp.DNS(); len(ds) > 0 {
		out.Options = append(out.Options, "dns "+joinIPs(ds))
	}
	if s := resp.DomainName(); s != "" {
		out.Options = append(out.Options, "domain "+s)
	}
	if s := resp.HostName(); s != "" {
		out.Options = append(out.Options, "hostname "+s)
	}
	out.File = resp.BootFileName
	if s := resp.BootFileNameOption(); s != "" {
		out.File = s
	}
	if out.File != "" && !resp.ServerIPAddr.IsUnspecified() && !strings.Contains(out.File, "://") {
		out.NextServer = resp.ServerIPAddr.String()
	}
	out.VendorClass = resp.ClassIdentifier()
	if raw := resp.Options.Get(dhcpv4.OptionVendorSpecificInformation); raw != nil && fw.Kind == netboot.KindBSDP {
		if m, err := bsdp.Decode(raw); err == nil {
			for _, im := range m.Images {
				out.BSDPImages = append(out.BSDPImages, fmt.Sprintf("%s %s", im.ID, im.Name))
			}
		}
	}
	return out
}

// answered records serve's log of the exchange and says whether it ended
// in a reply; if not, Why says what happened instead.
func (d *explainDHCP) answered(rec *logRecorder, err error, none bool) bool {
	d.Log = rec.lines()
	switch {
	case err != nil:
		d.Why = err.Error()
	case none:
		d.Why = "no answer (see log)"
	default:
		return true
	}
	return false
}

func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// dhcp6Message adds what firmware fw says about itself to a DHCPv6
// message: user class (RFC 8415 section 21.15), vendor class (enterprise
// 343) and client architecture (RFC 5970).
func dhcp6Options(m *dhcpv6.Message, fw netboot.Firmware) {
	arch := fmt.Sprintf("%05d", uint16(fw.Arch))
	switch fw.Kind {
	case netboot.KindIPXE:
		m.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte(netboot.UserClassIPXE)}})
		m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(netboot.ClassPXE + ":Arch:" + arch + ":UNDI:003010")}})
	case netboot.KindHTTP:
		m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(netboot.ClassHTTP + ":Arch:" + arch + ":UNDI:003000")}})
	}
	if fw.HasArch && (fw.Kind == netboot.KindIPXE || fw.Kind == netboot.KindPXE || fw.Kind == netboot.KindHTTP) {
		m.AddOption(dhcpv6.OptClientArchType(iana.Arch(fw.Arch)))
	}
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList, dhcpv6.OptionBootfileURL))
}

// explainDHCPv6 runs the client's DHCPv6 exchange through serve's handler:
// Solicit, then Request of the advertised address.
func explainDHCPv6(ctx context.Context, svc *bootService, c *config.Config, rec *logRecorder, vlan netboot.VLAN, mac net.HardwareAddr, d netboot.Decision, fw netboot.Firmware) *explainDHCP {
	if !vlan.IPv6.IsValid() {
		return nil
	}
	out := &explainDHCP{Interface: vlan.Bridge}
	if svc.v6 == nil {
		out.Why = "serve answers no DHCPv6: serve.interfaces is empty"
		return out
	}
	if fw.Kind == netboot.KindBSDP {
		out.Why = "BSDP runs over DHCPv4 only"
		return out
	}
	srv, from := serverV6(c, vlan)
	out.Server = from
	if srv.IsValid() {
		out.Server = srv.String() + " (" + from + ")"
	}
	ll, _ := inventory.EUI64(netip.MustParsePrefix("fe80::/64"), mac)
	in := dhcp6.Ingress{Interface: vlan.Bridge, VLAN: vlan.ID, ServerIP: srv, Source: ll}
	client := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}
	xid := dhcpv6.TransactionID{0x76, 0x6d, 0x70}
	iaid := [4]byte{mac[2], mac[3], mac[4], mac[5]}
	rec.reset()
	sol := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: xid}
	sol.AddOption(dhcpv6.OptClientID(client))
	sol.AddOption(&dhcpv6.OptIANA{IaId: iaid})
	dhcp6Options(sol, fw)
	adv, err := svc.v6.Handle(ctx, sol, in)
	var resp *dhcpv6.Message
	if err == nil && adv != nil {
		a, _ := adv.(*dhcpv6.Message)
		resp = a
		if a != nil && a.MessageType == dhcpv6.MessageTypeAdvertise {
			req := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeRequest, TransactionID: xid}
			req.AddOption(dhcpv6.OptClientID(client))
			req.AddOption(dhcpv6.OptServerID(svc.v6.ServerDUID()))
			ia := &dhcpv6.OptIANA{IaId: iaid}
			if got := a.Options.OneIANA(); got != nil {
				if ad := got.Options.OneAddress(); ad != nil {
					ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ad.IPv6Addr})
				}
			}
			req.AddOption(ia)
			dhcp6Options(req, fw)
			var r dhcpv6.DHCPv6
			r, err = svc.v6.Handle(ctx, req, in)
			resp, _ = r.(*dhcpv6.Message)
		}
	}
	if !out.answered(rec, err, resp == nil) {
		return out
	}
	out.Type = resp.MessageType.String()
	if ia := resp.Options.OneIANA(); ia != nil {
		if ad := ia.Options.OneAddress(); ad != nil {
			out.Address = ad.IPv6Addr.String()
			out.Lease = ad.ValidLifetime.String()
		}
	}
	if ds := resp.Options.DNS(); len(ds) > 0 {
		out.Options = append(out.Options, "dns "+joinIPs(ds))
	}
	if dl := resp.Options.DomainSearchList(); dl != nil {
		out.Options = append(out.Options, "search "+strings.Join(dl.Labels, " "))
	}
	out.File = resp.Options.BootFileURL()
	for _, vc := range resp.Options.VendorClasses() {
		for _, d := range vc.Data {
			out.VendorClass = string(d)
		}
	}
	return out
}

// signedGrubName is the name of serve.signed_grub_cfg that the host's
// signed GRUB reads, if it boots that chain: arm64 UEFI's (11) for a host
// whose TXT says arch=aarch64, which serve.loaders hands Debian's shim by
// default, else x64 UEFI's (7) for a Secure Boot host (firmware=efi-secure).
func signedGrubName(c *config.Config, d netboot.Decision) string {
	if a, _ := d.Host.Intent.Get(inventory.KeyArch); a == templates.ArchARM64 {
		return c.Serve.SignedGrubConfigs[uint16(netboot.ArchUEFIARM64)]
	}
	if d.Host.Intent.SecureBoot() {
		return c.Serve.SignedGrubConfigs[uint16(netboot.ArchUEFIx64)]
	}
	return ""
}

// bootTable is the boot answer of every firmware in the table for d, over
// the protocols it uses: DHCPv4 (not on an IPv6-only VLAN), DHCPv6 (on a
// VLAN with IPv6; not for Macs) and TFTP (GRUB and PXELINUX).
func bootTable(b netboot.Booter, d netboot.Decision, c *config.Config, vlan netboot.VLAN) []explainBoot {
	srv4, _ := serverV4(c, vlan)
	srv6, _ := serverV6(c, vlan)
	var out []explainBoot
	for _, r := range netboot.Firmwares() {
		row := explainBoot{Firmware: r.Name}
		answer := func(via netboot.Via, srv netip.Addr) string {
			return describeAnswer(b.Answer(d, netboot.Query{Firmware: r.Firmware, Via: via, Server: srv}))
		}
		switch r.Firmware.Kind {
		case netboot.KindGRUB, netboot.KindPXELinux, netboot.KindSignedGRUB:
			row.TFTP = answer(netboot.ViaTFTP, netip.Addr{})
		default:
			if vlan.IPv4.IsValid() {
				row.DHCPv4 = answer(netboot.ViaDHCPv4, srv4)
			}
			if vlan.IPv6.IsValid() && r.Firmware.Kind != netboot.KindBSDP {
				row.DHCPv6 = answer(netboot.ViaDHCPv6, srv6)
			}
		}
		out = append(out, row)
	}
	return out
}

func describeAnswer(a netboot.Answer) string {
	switch a.Action {
	case netboot.ActionFile:
		s := a.File
		if a.TFTPServer.IsValid() {
			s += " (TFTP from " + a.TFTPServer.String() + ")"
		}
		if a.VendorClass != "" {
			s += " + vendor class " + a.VendorClass
		}
		if a.SecureBoot {
			s += " (Secure Boot chain: TXT firmware=efi-secure)"
		}
		return s
	case netboot.ActionBSDP:
		return "BSDP image list (bsdp.images)"
	case netboot.ActionConfig:
		return "per-host " + a.Firmware.Kind.String() + " configuration over TFTP"
	case netboot.ActionLocal:
		switch a.Firmware.Kind {
		case netboot.KindGRUB, netboot.KindPXELinux, netboot.KindSignedGRUB:
			return "per-host " + a.Firmware.Kind.String() + " configuration over TFTP that boots the local disk (installed)"
		case netboot.KindIPXE:
			return "local disk: the iPXE script exits (installed)"
		}
		return "- local disk: no boot file (installed)"
	}
	return "- (" + a.Why + ")"
}

// httpChain follows the HTTP requests iPXE makes after DHCP, through
// serve's handler as the client at addr: the per-MAC script, /pxedust and
// the scripts it chains on this service.
func httpChain(svc *bootService, addr netip.Addr, d netboot.Decision) []explainFile {
	if !addr.IsValid() {
		return nil
	}
	base := svc.booter.BaseURL(addr.Is6())
	var out []explainFile
	get := func(path string) explainFile {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = netip.AddrPortFrom(addr, 40000).String()
		w := httptest.NewRecorder()
		svc.web.ServeHTTP(w, r)
		f := explainFile{Path: path, Status: fmt.Sprint(w.Code)}
		if w.Code == http.StatusOK {
			f.setBody(w.Body.Bytes())
		} else {
			f.Why = strings.TrimSpace(w.Body.String())
		}
		return f
	}
	if len(d.Host.MAC) == 6 {
		out = append(out, get("/mac/"+inventory.HexHyp(d.Host.MAC)+"/ipxe"))
	}
	f := get("/pxedust")
	out = append(out, f)
	for range 3 { // /pxedust → bootstrap script → install/default.ipxe
		next := chainTarget(f.Body, base)
		if next == "" || slices.ContainsFunc(out, func(e explainFile) bool { return e.Path == next }) {
			break
		}
		f = get(next)
		out = append(out, f)
	}
	return out
}

// chainTarget is the path of the first `chain` URL of script under base.
func chainTarget(script, base string) string {
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "chain" {
			continue
		}
		for _, f := range fields[1:] {
			if p, ok := strings.CutPrefix(f, base); ok && strings.HasPrefix(p, "/") {
				return p
			}
		}
	}
	return ""
}

func (f *explainFile) setBody(b []byte) {
	sum := sha256.Sum256(b)
	f.Bytes, f.SHA256, f.Body = len(b), hex.EncodeToString(sum[:]), string(b)
}

// write prints the explanation as text.
func (x *Explanation) write(w interface{ Write([]byte) (int, error) }, full bool) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("client:    %s\nfirmware:  %s\n", x.Query, x.Firmware)
	if x.Unknown != "" {
		p("unknown:   %s\n", x.Unknown)
		return
	}
	h := x.Host
	p("host:      %s\n", h.FQDN)
	if h.IdentifiedBy != "" {
		p("dhcp id:   %s\n", h.IdentifiedBy)
	}
	if h.ConfirmedBy != "" {
		p("http id:   %s\n", h.ConfirmedBy)
	}
	for _, kv := range [][2]string{{"mac", h.MAC}, {"ipv4", h.IPv4}, {"ipv6", h.IPv6}, {"txt", h.TXT}, {"state", h.State}} {
		if kv[1] != "" {
			p("%-10s %s\n", kv[0]+":", kv[1])
		}
	}
	if h.VLAN != 0 {
		p("vlan:      %d (bridge %s)\n", h.VLAN, h.Bridge)
	}
	for _, dh := range []struct {
		name string
		d    *explainDHCP
	}{{"DHCPv4", x.DHCPv4}, {"DHCPv6", x.DHCPv6}} {
		if dh.d == nil {
			continue
		}
		d := dh.d
		p("\n%s", dh.name)
		if d.Server != "" {
			p(" (server %s on %s)", d.Server, d.Interface)
		}
		p(":\n")
		if d.Why != "" {
			p("  no answer: %s\n", d.Why)
		} else {
			if d.Address != "" {
				p("  %s %s", d.Type, d.Address)
			} else {
				p("  %s, no address (the host has no address of this family on the VLAN)", d.Type)
			}
			if d.Lease != "" {
				p(", lease %s", d.Lease)
			}
			p("\n")
			if len(d.Options) > 0 {
				p("  options:     %s\n", strings.Join(d.Options, "; "))
			}
			switch {
			case d.File != "" && d.NextServer != "":
				p("  boot file:   %s from TFTP server %s\n", d.File, d.NextServer)
			case d.File != "":
				p("  boot file:   %s\n", d.File)
			default:
				p("  boot file:   none\n")
			}
			if d.VendorClass != "" {
				p("  vendor class: %s\n", d.VendorClass)
			}
			for _, im := range d.BSDPImages {
				p("  bsdp image:  %s\n", im)
			}
		}
		for _, l := range d.Log {
			p("  log: %s\n", l)
		}
	}
	if len(x.Boot) > 0 {
		p("\nboot file by firmware:\n")
		for _, b := range x.Boot {
			name := b.Firmware
			for _, v := range [][2]string{{"dhcp4", b.DHCPv4}, {"dhcp6", b.DHCPv6}, {"tftp", b.TFTP}} {
				if v[1] != "" {
					p("  %-11s %s: %s\n", name, v[0], v[1])
					name = ""
				}
			}
		}
	}
	printFiles := func(title string, files []explainFile, body func(explainFile) bool) {
		if len(files) == 0 {
			return
		}
		p("\n%s:\n", title)
		for _, f := range files {
			if f.Why != "" {
				p("  %s: %s (%s)\n", f.Path, f.Status, f.Why)
				continue
			}
			p("  %s: %s, %d bytes, sha256 %s\n", f.Path, f.Status, f.Bytes, f.SHA256)
			if body(f) {
				for _, l := range strings.Split(strings.TrimRight(f.Body, "\n"), "\n") {
					p("    | %s\n", l)
				}
			}
		}
	}
	printFiles("TFTP per-host files", x.TFTP, func(explainFile) bool { return full })
	printFiles("HTTP chain", x.HTTP, func(f explainFile) bool { return full || f.Path == "/pxedust" })
	if i := x.Install; i != nil {
		p("\ninstall (%s):\n  kernel:      %s\n  initrd:      %s\n  cmdline:     %s\n  answer file: %s\n", i.Distribution, i.Kernel, i.Initrd, i.Cmdline, i.AnswerFile)
	}
	for _, n := range x.Notes {
		p("\nnote: %s\n", n)
	}
}

// logRecorder keeps the servers' log lines of one exchange as text.
type logRecorder struct {
	mu    sync.Mutex
	attrs []slog.Attr
	out   *[]string
}

func (r *logRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		r.out = new([]string)
	}
	*r.out = nil
}

func (r *logRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		return nil
	}
	return slices.Clone(*r.out)
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	add := func(a slog.Attr) {
		if a.Key == "proto" || a.Key == "xid" || a.Key == "iface" || a.Key == "duid" || a.Value.String() == "" {
			return
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
	}
	for _, a := range r.attrs {
		add(a)
	}
	rec.Attrs(func(a slog.Attr) bool { add(a); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		r.out = new([]string)
	}
	*r.out = append(*r.out, b.String())
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		r.out = new([]string)
	}
	return &logRecorder{attrs: append(slices.Clone(r.attrs), as...), out: r.out}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }
