package bench

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// pxeVendorClass is what x64 UEFI PXE firmware sends as option 60; with
// option 93 = 7 it makes vmprov answer with the TFTP loader snponly.efi, the
// boot file every peer is configured with too.
const pxeVendorClass = "PXEClient:Arch:00007:UNDI:003016"

// dhcpServer is one DHCPv4 server under comparison.
type dhcpServer struct {
	name  string
	start func(e *env) *proc
}

func dhcpServers() []dhcpServer {
	return []dhcpServer{
		{"vmprov", (*env).startVmprovDHCP},
		{"kea", (*env).startKea},
		{"dnsmasq", (*env).startDnsmasq},
	}
}

// startVmprovDHCP starts vmprov serve and waits for its DHCPv4 service,
// which opens its sockets after the HTTP health check answers.
func (e *env) startVmprovDHCP() *proc {
	e.tb.Helper()
	p := e.startVmprov()
	e.waitDHCP(p)
	return p
}

// startKea runs kea-dhcp4 with a memfile lease database and every host as
// a reservation by hardware address, with vmprov's options and boot file.
func (e *env) startKea() *proc {
	e.tb.Helper()
	var res []map[string]any
	for _, h := range e.hosts {
		res = append(res, map[string]any{"hw-address": h.MAC.String(), "ip-address": h.IP.String(), "hostname": h.Name})
	}
	srv := serverPrefix.Addr().String()
	p := e.runKea("kea-dhcp4", "kea", "Dhcp4", map[string]any{
		"interfaces-config":            map[string]any{"interfaces": []string{serverIf}, "dhcp-socket-type": "udp"},
		"lease-database":               map[string]any{"type": "memfile", "persist": false},
		"host-reservation-identifiers": []string{"hw-address"},
		"valid-lifetime":               3600,
		"multi-threading":              map[string]any{"enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 64},
		"option-data": []map[string]any{
			{"name": "routers", "data": srv},
			{"name": "domain-name-servers", "data": srv},
			{"name": "domain-name", "data": strings.TrimSuffix(zone, ".")},
			{"name": "tftp-server-name", "data": srv},
		},
		"subnet4": []map[string]any{{
			"id": 1, "subnet": serverPrefix.Masked().String(),
			"next-server": srv, "boot-file-name": bootFile,
			"reservations": res,
		}},
	})
	e.waitDHCP(p)
	return p
}

// runKea starts Kea's daemon (kea-dhcp4, kea-dhcp6) in the server
// namespace with the configuration conf under key (Dhcp4, Dhcp6), its log,
// lease, PID and lock files in the folder sub of the run's directory.
func (e *env) runKea(daemon, sub, key string, conf map[string]any) *proc {
	e.tb.Helper()
	dir := filepath.Join(e.dir, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.tb.Fatal(err)
	}
	conf["loggers"] = []map[string]any{{
		"name":           daemon,
		"output_options": []map[string]any{{"output": filepath.Join(dir, "kea.log")}},
		"severity":       "INFO",
	}}
	b, err := json.MarshalIndent(map[string]any{key: conf}, "", " ")
	if err != nil {
		e.tb.Fatal(err)
	}
	file := filepath.Join(dir, daemon+".json")
	writeFile(e.tb, file, b)
	return start(e.tb, daemon, e.srv, filepath.Join(dir, "kea.out"),
		[]string{"KEA_PIDFILE_DIR=" + dir, "KEA_LOCKFILE_DIR=" + dir}, daemon, "-c", file)
}

// startDnsmasq runs dnsmasq as a DHCP-only server with one static
// dhcp-host line per host. Like Kea's memfile with persist false it keeps
// leases in memory only (leasefile-ro): with a lease file dnsmasq rewrites
// and fsyncs the whole file on every ACK, which caps it near 250 leases/s
// for 1000 hosts here and stalls it for seconds when the disk is busy.
func (e *env) startDnsmasq() *proc {
	e.tb.Helper()
	dir := filepath.Join(e.dir, "dnsmasq")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.tb.Fatal(err)
	}
	srv := serverPrefix.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, `port=0
interface=%s
bind-interfaces
no-resolv
no-hosts
no-ping
user=root
dhcp-range=%s,static,%s,1h
dhcp-lease-max=100000
dhcp-boot=%s,,%s
dhcp-option=option:router,%s
dhcp-option=option:dns-server,%s
dhcp-option=option:tftp-server,"%s"
domain=%s
leasefile-ro
pid-file=%s
log-facility=%s
`, serverIf, serverPrefix.Masked().Addr(), net.IP(net.CIDRMask(serverPrefix.Bits(), 32)).String(), bootFile, srv, srv, srv, srv,
		strings.TrimSuffix(zone, "."), filepath.Join(dir, "pid"), filepath.Join(dir, "dnsmasq.log"))
	for _, h := range e.hosts {
		fmt.Fprintf(&b, "dhcp-host=%s,%s,%s\n", h.MAC, h.IP, h.Name)
	}
	file := filepath.Join(dir, "dnsmasq.conf")
	writeFile(e.tb, file, []byte(b.String()))
	p := start(e.tb, "dnsmasq", e.srv, filepath.Join(dir, "dnsmasq.out"), nil, "dnsmasq", "-k", "-C", file)
	e.waitDHCP(p)
	return p
}

// waitDHCP waits until the server offers the first host its address.
func (e *env) waitDHCP(p *proc) {
	e.tb.Helper()
	waitReady(e.tb, p, p.name, func() error {
		r, err := e.newRelay()
		if err != nil {
			return err
		}
		defer r.close()
		got := r.exchange([]*dhcpv4.DHCPv4{r.discover(e.tb, e.hosts[0].MAC)}, 1, 300*time.Millisecond)
		if len(got) == 0 {
			return errors.New("no DHCPOFFER")
		}
		return nil
	})
}

// relay is a DHCPv4 relay agent in the client namespace, the way perfdhcp
// talks to a server: requests unicast from giaddr:67, replies back there.
type relay struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	giaddr net.IP
}

func (e *env) newRelay() (*relay, error) {
	r := &relay{
		server: &net.UDPAddr{IP: serverPrefix.Addr().AsSlice(), Port: dhcpv4.ServerPort},
		giaddr: clientPrefix.Addr().AsSlice(),
	}
	err := e.cli.Do(func() error {
		var err error
		r.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: r.giaddr, Port: dhcpv4.ServerPort})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return r, nil
}

func (r *relay) close() { r.conn.Close() }

// mods are the options of the PXE client perfdhcp imitates (-o 60, -o 93).
func (r *relay) mods() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithRelay(r.giaddr),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(pxeVendorClass)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionHostName, dhcpv4.OptionDomainName, dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName),
	}
}

func (r *relay) discover(tb testing.TB, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.NewDiscovery(mac, r.mods()...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (r *relay) request(tb testing.TB, offer *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.NewRequestFromOffer(offer, r.mods()...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// exchange sends reqs, keeping at most window of them unanswered, and
// returns the replies by transaction ID. It stops timeout after the last
// send or the last reply, whichever is later.
func (r *relay) exchange(reqs []*dhcpv4.DHCPv4, window int, timeout time.Duration) map[dhcpv4.TransactionID]*dhcpv4.DHCPv4 {
	pkts := make([][]byte, len(reqs))
	keys := make([]dhcpv4.TransactionID, len(reqs))
	for i, m := range reqs {
		pkts[i], keys[i] = m.ToBytes(), m.TransactionID
	}
	return exchange(r.conn, r.server, pkts, keys, func(b []byte) (dhcpv4.TransactionID, *dhcpv4.DHCPv4, bool) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			return dhcpv4.TransactionID{}, nil, false
		}
		return m.TransactionID, m, true
	}, window, timeout)
}

// lease is what a client learns from an OFFER or ACK: the fields every
// server under comparison must agree on.
type lease struct {
	Type       string
	IP         string
	NextServer string
	File       string
	Mask       string
	Router     string
	DNS        string
	Domain     string
	Hostname   string
	TFTPServer string
	LeaseTime  time.Duration
}

func leaseOf(m *dhcpv4.DHCPv4) lease {
	file := m.BootFileName
	if file == "" {
		file = m.BootFileNameOption()
	}
	join := func(ips []net.IP) string {
		var s []string
		for _, ip := range ips {
			s = append(s, ip.String())
		}
		return strings.Join(s, ",")
	}
	return lease{
		Type:       m.MessageType().String(),
		IP:         m.YourIPAddr.String(),
		NextServer: m.ServerIPAddr.String(),
		File:       file,
		Mask:       net.IP(m.SubnetMask()).String(),
		Router:     join(m.Router()),
		DNS:        join(m.DNS()),
		Domain:     m.DomainName(),
		Hostname:   m.HostName(),
		TFTPServer: m.TFTPServerName(),
		LeaseTime:  m.IPAddressLeaseTime(0),
	}
}

// wantLease is the lease every server must give h.
func wantLease(h host, typ string) lease {
	srv := serverPrefix.Addr().String()
	return lease{
		Type: typ, IP: h.IP.String(), NextServer: srv, File: bootFile,
		Mask: net.IP(net.CIDRMask(serverPrefix.Bits(), 32)).String(), Router: srv, DNS: srv,
		Domain: strings.TrimSuffix(zone, "."), Hostname: h.Name, TFTPServer: srv, LeaseTime: time.Hour,
	}
}

// dora runs DISCOVER-OFFER-REQUEST-ACK for every host in hs through a
// relay and returns the leases offered and acknowledged, by host name.
func (e *env) dora(tb testing.TB, hs []host) (offers, acks map[string]lease) {
	tb.Helper()
	r, err := e.newRelay()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.close()
	byXID := map[dhcpv4.TransactionID]string{}
	var ds []*dhcpv4.DHCPv4
	for _, h := range hs {
		d := r.discover(tb, h.MAC)
		byXID[d.TransactionID] = h.Name
		ds = append(ds, d)
	}
	offers, acks = map[string]lease{}, map[string]lease{}
	var reqs []*dhcpv4.DHCPv4
	for xid, o := range r.exchange(ds, 16, 2*time.Second) {
		offers[byXID[xid]] = leaseOf(o)
		if o.MessageType() == dhcpv4.MessageTypeOffer {
			reqs = append(reqs, r.request(tb, o))
		}
	}
	for xid, a := range r.exchange(reqs, 16, 2*time.Second) {
		acks[byXID[xid]] = leaseOf(a)
	}
	return offers, acks
}

// sweep sends a DISCOVER for every host and fails tb unless each one is
// offered its reservation. For vmprov this also fills the DNS cache.
func (e *env) sweep(tb testing.TB, server string) {
	tb.Helper()
	r, err := e.newRelay()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.close()
	want := map[dhcpv4.TransactionID]host{}
	var ds []*dhcpv4.DHCPv4
	for _, h := range e.hosts {
		d := r.discover(tb, h.MAC)
		want[d.TransactionID] = h
		ds = append(ds, d)
	}
	got := r.exchange(ds, 32, 3*time.Second)
	bad := 0
	for xid, h := range want {
		o, ok := got[xid]
		if !ok || o.MessageType() != dhcpv4.MessageTypeOffer || !o.YourIPAddr.Equal(h.IP.AsSlice()) {
			if bad < 5 {
				tb.Errorf("%s: %s (%s) not offered %s: %v", server, h.Name, h.MAC, h.IP, o)
			}
			bad++
		}
	}
	if bad > 0 {
		tb.Fatalf("%s: %d of %d hosts not offered their reservation", server, bad, len(e.hosts))
	}
}

// macFile writes the hosts' MACs for perfdhcp -M.
func (e *env) macFile() string { return e.macFileOf("macs.txt", e.hosts) }

// macFileOf writes the MACs of hs to the file name for perfdhcp -M.
func (e *env) macFileOf(name string, hs []host) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintln(&b, h.MAC)
	}
	p := filepath.Join(e.dir, name)
	writeFile(e.tb, p, []byte(b.String()))
	return p
}

// perfdhcp runs perfdhcp in the client namespace against the server:
// DHCPv4 DORA (family 4) through the server address as a relay would, or
// DHCPv6 Solicit-Advertise-Request-Reply (family 6) from the client
// interface's link-local address to All_DHCP_Relay_Agents_and_Servers,
// rate exchanges a second for seconds, or n exchanges when n > 0, each
// from a MAC of the reservations picked at random (a DUID-LL in DHCPv6).
// It returns the final report; exit status 3 (some exchanges incomplete)
// is not an error.
func (e *env) perfdhcp(tb testing.TB, family int, macs string, rate, seconds, n int) (PerfdhcpReport, string) {
	tb.Helper()
	var args []string
	if family == 6 {
		args = []string{"perfdhcp", "-6", "-l", clientIf, "-M", macs}
	} else {
		args = []string{"perfdhcp", "-4", "-M", macs,
			"-o", "60," + hex.EncodeToString([]byte(pxeVendorClass)), "-o", "93,0007"}
	}
	args = append(args, "-W", "1000000", "-r", strconv.Itoa(rate))
	if n > 0 {
		args = append(args, "-n", strconv.Itoa(n))
	} else {
		args = append(args, "-p", strconv.Itoa(seconds))
	}
	if family != 6 {
		args = append(args, serverPrefix.Addr().String())
	}
	limit := time.Duration(seconds)*time.Second + 30*time.Second
	if n > 0 {
		limit = time.Duration(n/max(rate, 1))*time.Second + 30*time.Second
	}
	out, err := runIn(tb.Context(), e.cli, limit, args...)
	var xe interface{ ExitCode() int }
	if err != nil && !(errors.As(err, &xe) && xe.ExitCode() == 3) {
		tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	rep, perr := ParsePerfdhcp(out)
	if perr != nil {
		tb.Fatalf("%v\n%s", perr, out)
	}
	return rep, out
}
