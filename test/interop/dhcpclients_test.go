package interop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/test/lab"
)

// lease4 is what a DHCPv4 client got, as it reports it.
type lease4 struct {
	IP       string
	Mask     string
	Router   string
	DNS      string
	Domain   string
	HostName string
	Lease    int
}

// lease6 is what a DHCPv6 client got in its IA_NA, and its options.
type lease6 struct {
	Addr      string
	Preferred int
	Valid     int
	T1, T2    int // renew and rebind
	DNS       string
	Search    string
}

func want4(h host) lease4 {
	return lease4{IP: h.IPv4.String(), Mask: "255.255.255.0", Router: router4.Addr().String(),
		DNS: dnsServer4.String(), Domain: "example.com", HostName: h.Name, Lease: leaseTime}
}

func want6(h host) lease6 {
	return lease6{Addr: h.IPv6.String(), Preferred: leaseTime, Valid: leaseTime,
		T1: leaseTime / 2, T2: leaseTime * 4 / 5, DNS: dnsServer6.String(), Search: "example.com"}
}

// client is one DHCP client program. run starts it in ns, waits (bounded)
// until it reports its lease, checks what it reported and configured, and
// returns the environment it handed its hook when it bound: everything it
// took from the answer.
type client struct {
	name string
	bins []string
	host host
	run  func(t *testing.T, c *clientRun) map[string]string
}

// perRun are the hook variables that differ between two runs of a client
// whatever the server answers: times, PIDs, the client's DUID-LLT (which
// holds a time). perStack differ between the stacks by design and are
// checked on their own: the server identifier (the server's address on its
// link), its DHCPv6 DUID (from its interface's MAC), and the relay's
// address (udhcpc reports giaddr).
var (
	perRun   = []string{"pid", "new_expiry", "new_starts", "new_life_starts", "new_dhcp6_client_id"}
	perStack = []string{"new_dhcp_server_identifier", "serverid", "new_dhcp6_server_id", "giaddr"}
)

// clientRun is one run of a client on one stack.
type clientRun struct {
	stack *stack
	ns    *lab.Namespace
	host  host
	dir   string // the client's files: config, hook records, leases, log
}

// TestDHCPClients runs each client against `vmprov serve`, directly on the
// VLAN's bridge and through dhcrelay, and checks that it got its host's
// address from DNS with the VLAN's options, the same both ways.
func TestDHCPClients(t *testing.T) {
	clients := []client{
		{name: "dhclient4", bins: []string{"dhclient"}, host: newHost(t, "dhc-dhclient4", "192.0.2.21"), run: runDhclient4},
		{name: "dhclient6", bins: []string{"dhclient"}, host: newHost(t, "dhc-dhclient6", "192.0.2.22"), run: runDhclient6},
		{name: "udhcpc", bins: []string{"udhcpc"}, host: newHost(t, "dhc-udhcpc", "192.0.2.23"), run: runUdhcpc},
		{name: "dhcpcd", bins: []string{"dhcpcd", "unshare", "mount", "sh"}, host: newHost(t, "dhc-dhcpcd", "192.0.2.24"), run: runDhcpcd},
	}
	bins := []string{"go", "ip", "sysctl", "named", "dhcrelay"}
	for _, c := range clients {
		bins = append(bins, c.bins...)
	}
	lab.RequireRoot(t, bins...)
	if _, err := os.Stat("/var/lib/dhcpcd"); err != nil {
		t.Skipf("needs /var/lib/dhcpcd, which package dhcpcd-base creates (test/install-deps.sh): %v", err)
	}

	bin := buildVmprov(t)
	var hosts []host
	for _, c := range clients {
		hosts = append(hosts, c.host)
	}

	var mu sync.Mutex
	got := map[string]map[string]map[string]string{} // stack → client → what it reported
	t.Run("stacks", func(t *testing.T) {
		for _, st := range []struct {
			name string
			new  func(*testing.T, string, []host) *stack
		}{{"direct", newDirectStack}, {"relayed", newRelayedStack}} {
			t.Run(st.name, func(t *testing.T) {
				t.Parallel()
				s := st.new(t, bin, hosts)
				runs := make([]*clientRun, len(clients))
				for i, c := range clients {
					dir := filepath.Join(s.Dir, c.name)
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					runs[i] = &clientRun{stack: s, ns: s.Clients.ClientForTest(t, c.host.MAC), host: c.host, dir: dir}
				}
				s.startRelays(t)
				// After the clients' subtests, before serve stops.
				t.Cleanup(func() {
					if lines := s.silent(); len(lines) > 0 {
						t.Errorf("%s stack: vmprov serve left requests of known clients unanswered:\n%s", s.Name, strings.Join(lines, "\n"))
					}
				})
				for i, c := range clients {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						r := c.run(t, runs[i])
						mu.Lock()
						defer mu.Unlock()
						if got[s.Name] == nil {
							got[s.Name] = map[string]map[string]string{}
						}
						got[s.Name][c.name] = r
					})
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	// Each client reported every option of its answer to its hook: through
	// the relays it must have got the same ones as directly.
	for _, c := range clients {
		direct, relayed := got["direct"][c.name], got["relayed"][c.name]
		if len(direct) == 0 || len(relayed) == 0 {
			t.Fatalf("%s: no report from a stack: direct %d, relayed %d variables", c.name, len(direct), len(relayed))
		}
		for _, k := range slices.Concat(perRun, perStack) {
			delete(direct, k)
			delete(relayed, k)
		}
		if diff := cmp.Diff(direct, relayed); diff != "" {
			t.Errorf("%s: the relayed answer differs from the direct one, hook environment (-direct +relayed):\n%s", c.name, diff)
		}
	}
}

// buildVmprov builds the vmprov command into a temporary directory.
func buildVmprov(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vmprov")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/vmprov/vmprov/cmd/vmprov").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// hookScript is the hook every client runs instead of its packaged one
// (which would rewrite the machine's /etc/resolv.conf): it runs configure,
// which configures the interface the way the packaged script would, so
// that the interface shows what the client would use, and then records the
// environment of the event in DIR/EVENT.env: what the client reports.
const hookScript = `#!/bin/sh
# Hook of a DHCP client in vmprov's test/interop.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dir=%q
event=${reason:-$1}
%s
env | LC_ALL=C sort >"$dir/$event.env.tmp" && mv "$dir/$event.env.tmp" "$dir/$event.env"
exit 0
`

func (r *clientRun) writeHook(t *testing.T, configure string) string {
	t.Helper()
	path := filepath.Join(r.dir, "hook.sh")
	if err := os.WriteFile(path, fmt.Appendf(nil, hookScript, r.dir, configure), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// event waits until the hook has recorded one of events and returns the
// environment it recorded. It fails t when p exits first or time runs out.
func (r *clientRun) event(t *testing.T, p *proc, events ...string) map[string]string {
	t.Helper()
	var env map[string]string
	err := poll(t.Context(), clientTimeout, func() error {
		for _, ev := range events {
			if b, err := os.ReadFile(filepath.Join(r.dir, ev+".env")); err == nil {
				env = parseEnv(string(b))
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return stop(err)
		}
		return fmt.Errorf("%s reported none of %v", p.name, events)
	})
	if err != nil {
		t.Fatalf("%v\n--- %s ---\n%s", err, p.log, tail(p.log, 40))
	}
	return env
}

func parseEnv(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// checkAddr checks that the client's eth0 carries addr (and, for IPv4,
// that the interface shows it with the subnet's prefix length).
func (r *clientRun) checkAddr(t *testing.T, family, want string) {
	t.Helper()
	out, err := r.ns.IP(t.Context(), family, "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, " "+want+" ") {
		t.Errorf("%s stack: eth0 does not carry %s:\n%s", r.stack.Name, want, out)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}

// unquote strips the quotes and the final dot dhclient puts around names.
func unquote(s string) string {
	return strings.TrimSuffix(strings.Trim(s, `"`), ".")
}

// dhclientConf is Debian's dhclient.conf request list: what dhclient asks
// for on an installed system.
const dhclientConf = `# dhclient.conf of vmprov's test/interop: Debian's request list.
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, time-offset, routers,
	domain-name, domain-name-servers, domain-search, host-name,
	dhcp6.name-servers, dhcp6.domain-search, dhcp6.fqdn, dhcp6.sntp-servers,
	netbios-name-servers, netbios-scope, interface-mtu,
	rfc3442-classless-static-routes, ntp-servers;
`

// startDhclient runs ISC dhclient in the foreground (-d), trying once (-1),
// with its own configuration, lease file, PID file and hook. Started again
// with the same lease file, it is a rebooted machine that asks for the
// address it had.
func (r *clientRun) startDhclient(t *testing.T, family, configure, log string) (*proc, string) {
	t.Helper()
	conf := filepath.Join(r.dir, "dhclient.conf")
	if err := os.WriteFile(conf, []byte(dhclientConf), 0o644); err != nil {
		t.Fatal(err)
	}
	leases := filepath.Join(r.dir, "dhclient.leases")
	hook := r.writeHook(t, configure)
	p := startProc(t, r.ns.Name, "dhclient "+family, filepath.Join(r.dir, log),
		"dhclient", family, "-d", "-1", "-v", "-cf", conf, "-lf", leases,
		"-pf", filepath.Join(r.dir, "dhclient.pid"), "-sf", hook, "eth0")
	return p, leases
}

// stopClient stops a client that keeps running after its lease, failing t
// if it cannot.
func stopClient(t *testing.T, p *proc) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// The hooks configure what the packaged scripts would: the address and the
// default route (which a bound client's unicast renewals take).
const (
	dhclient4Configure = `case $event in BOUND|REBOOT|RENEW|REBIND)
	ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
	ip -4 route replace default via "${new_routers%% *}" dev "$interface";;
esac`
	dhclient6Configure = `case $event in BOUND6|REBOOT6|RENEW6|REBIND6)
	ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad;;
esac`
	udhcpcConfigure = `case $event in bound|renew)
	ip -4 addr replace "$ip/$mask" dev "$interface"
	ip -4 route replace default via "${router%% *}" dev "$interface";;
esac`
)

func dhclientEnv4(env map[string]string) lease4 {
	return lease4{IP: env["new_ip_address"], Mask: env["new_subnet_mask"], Router: env["new_routers"],
		DNS: env["new_domain_name_servers"], Domain: env["new_domain_name"], HostName: env["new_host_name"],
		Lease: atoi(env["new_dhcp_lease_time"])}
}

// runDhclient4: dhclient -4 reports its lease in its hook's environment
// (BOUND) and its lease file. Restarted, it asks for the same address in
// INIT-REBOOT (RFC 2131 section 3.2) and must get it back (REBOOT).
func runDhclient4(t *testing.T, r *clientRun) map[string]string {
	want := want4(r.host)
	p, leases := r.startDhclient(t, "-4", dhclient4Configure, "dhclient.log")
	env := r.event(t, p, "BOUND")
	got := dhclientEnv4(env)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s stack: dhclient -4 hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	if id := env["new_dhcp_server_identifier"]; id != r.stack.ServerID.String() {
		t.Errorf("%s stack: dhclient -4 was answered by server %q, want %s", r.stack.Name, id, r.stack.ServerID)
	}
	var file lease4
	err := poll(t.Context(), clientTimeout, func() error {
		b, err := os.ReadFile(leases)
		if err != nil {
			return err
		}
		file = parseDhclientLease4(string(b))
		if file.IP == "" {
			return fmt.Errorf("no lease in %s", leases)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, file); diff != "" {
		t.Errorf("%s stack: dhclient -4 lease file (-want +got):\n%s", r.stack.Name, diff)
	}
	r.checkAddr(t, "-4", r.host.IPv4.String()+"/24")

	stopClient(t, p)
	p, _ = r.startDhclient(t, "-4", dhclient4Configure, "dhclient-reboot.log")
	if diff := cmp.Diff(want, dhclientEnv4(r.event(t, p, "REBOOT"))); diff != "" {
		t.Errorf("%s stack: dhclient -4 after a reboot (INIT-REBOOT), hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	return env
}

// parseDhclientLease4 reads the last lease of a dhclient -4 lease file.
func parseDhclientLease4(s string) lease4 {
	var l lease4
	i := strings.LastIndex(s, "lease {")
	if i < 0 {
		return l
	}
	for line := range strings.SplitSeq(s[i:], "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		switch {
		case len(f) == 2 && f[0] == "fixed-address":
			l.IP = f[1]
		case len(f) == 3 && f[0] == "option":
			switch f[1] {
			case "subnet-mask":
				l.Mask = f[2]
			case "routers":
				l.Router = f[2]
			case "domain-name-servers":
				l.DNS = f[2]
			case "domain-name":
				l.Domain = unquote(f[2])
			case "host-name":
				l.HostName = unquote(f[2])
			case "dhcp-lease-time":
				l.Lease = atoi(f[2])
			}
		}
	}
	return l
}

func dhclientEnv6(env map[string]string) lease6 {
	return lease6{Addr: env["new_ip6_address"], Preferred: atoi(env["new_preferred_life"]), Valid: atoi(env["new_max_life"]),
		T1: atoi(env["new_renew"]), T2: atoi(env["new_rebind"]),
		DNS: env["new_dhcp6_name_servers"], Search: unquote(env["new_dhcp6_domain_search"])}
}

// runDhclient6: dhclient -6 (stateful: a DUID-LLT of eth0's MAC, an IA_NA)
// reports the address and options in its hook's environment (BOUND6) and
// its lease file. Restarted, it confirms the address it had
// (RFC 8415 section 18.2.3) and keeps it.
func runDhclient6(t *testing.T, r *clientRun) map[string]string {
	want := want6(r.host)
	p, leases := r.startDhclient(t, "-6", dhclient6Configure, "dhclient.log")
	env := r.event(t, p, "BOUND6")
	got := dhclientEnv6(env)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s stack: dhclient -6 hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	var file lease6
	err := poll(t.Context(), clientTimeout, func() error {
		b, err := os.ReadFile(leases)
		if err != nil {
			return err
		}
		file = parseDhclientLease6(string(b))
		if file.Addr == "" {
			return fmt.Errorf("no lease6 in %s", leases)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, file); diff != "" {
		t.Errorf("%s stack: dhclient -6 lease file (-want +got):\n%s", r.stack.Name, diff)
	}
	r.checkAddr(t, "-6", r.host.IPv6.String()+"/"+env["new_ip6_prefixlen"])

	// Restarted with its lease, dhclient -6 sends a Confirm and, told
	// Success, binds the lease again without calling its hook: its log is
	// what it reports.
	stopClient(t, p)
	p, _ = r.startDhclient(t, "-6", dhclient6Configure, "dhclient-reboot.log")
	err = poll(t.Context(), clientTimeout, func() error {
		b, _ := os.ReadFile(p.log)
		log := string(b)
		confirm := strings.Index(log, "XMT: Confirm on eth0")
		success := strings.Index(log, `message status code Success`)
		bound := strings.Index(log, "PRC: Bound to lease")
		if confirm >= 0 && success > confirm && bound > success {
			return nil
		}
		if err := p.exited(); err != nil {
			return stop(err)
		}
		return errors.New("no Confirm answered with Success and the lease bound again")
	})
	if err != nil {
		t.Errorf("%s stack: dhclient -6 after a reboot: %v\n--- %s ---\n%s", r.stack.Name, err, p.log, tail(p.log, 30))
	}
	r.checkAddr(t, "-6", r.host.IPv6.String()+"/"+env["new_ip6_prefixlen"])
	return env
}

// parseDhclientLease6 reads the last lease6 of a dhclient -6 lease file.
func parseDhclientLease6(s string) lease6 {
	var l lease6
	i := strings.LastIndex(s, "lease6 {")
	if i < 0 {
		return l
	}
	for line := range strings.SplitSeq(s[i:], "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		switch {
		case len(f) == 3 && f[0] == "iaaddr" && f[2] == "{":
			l.Addr = f[1]
		case len(f) == 2 && f[0] == "renew":
			l.T1 = atoi(f[1])
		case len(f) == 2 && f[0] == "rebind":
			l.T2 = atoi(f[1])
		case len(f) == 2 && f[0] == "preferred-life":
			l.Preferred = atoi(f[1])
		case len(f) == 2 && f[0] == "max-life":
			l.Valid = atoi(f[1])
		case len(f) == 3 && f[0] == "option" && f[1] == "dhcp6.name-servers":
			l.DNS = f[2]
		case len(f) == 3 && f[0] == "option" && f[1] == "dhcp6.domain-search":
			l.Search = unquote(f[2])
		}
	}
	return l
}

func udhcpcEnv(env map[string]string) lease4 {
	return lease4{IP: env["ip"], Mask: env["subnet"], Router: env["router"], DNS: env["dns"],
		Domain: env["domain"], HostName: env["hostname"], Lease: atoi(env["lease"])}
}

// runUdhcpc: busybox udhcpc in the foreground, giving up after 5 one-second
// discovers (-n), reports its lease to its hook (bound). SIGUSR1 makes it
// renew at once: a REQUEST unicast to the server from the bound address
// (RENEWING, RFC 2131 section 4.4.5), past the relay, which vmprov serve
// must answer and which must keep the lease (renew).
func runUdhcpc(t *testing.T, r *clientRun) map[string]string {
	want := want4(r.host)
	hook := r.writeHook(t, udhcpcConfigure)
	p := startProc(t, r.ns.Name, "udhcpc", filepath.Join(r.dir, "udhcpc.log"),
		"udhcpc", "-f", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", hook)
	env := r.event(t, p, "bound")
	got := udhcpcEnv(env)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s stack: udhcpc hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	if env["serverid"] != r.stack.ServerID.String() {
		t.Errorf("%s stack: udhcpc was answered by server %q, want %s", r.stack.Name, env["serverid"], r.stack.ServerID)
	}
	// The ACK names the relay that forwarded it (giaddr); a direct one
	// names none.
	wantGI := ""
	if r.stack.Relay != nil {
		wantGI = router4.Addr().String()
	}
	if env["giaddr"] != wantGI {
		t.Errorf("%s stack: udhcpc's ACK has giaddr %q, want %q", r.stack.Name, env["giaddr"], wantGI)
	}
	r.checkAddr(t, "-4", r.host.IPv4.String()+"/24")

	if err := syscall.Kill(p.pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	renew := r.event(t, p, "renew")
	if diff := cmp.Diff(want, udhcpcEnv(renew)); diff != "" {
		t.Errorf("%s stack: udhcpc after renewing (unicast to the server), hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	// vmprov serve itself must have answered the unicast renewal, which
	// reaches it routed, past the relay, without giaddr. (dhcrelay also
	// relays the copy it sees pass on its way to the router, so udhcpc may
	// take either answer; serve's log tells them apart.)
	err := poll(t.Context(), clientTimeout, func() error {
		if logHas(r.stack.ServeLog, func(m map[string]any) bool {
			_, relayed := m["giaddr"]
			return m["msg"] == "dhcp4 ACK" && m["mac"] == r.host.MAC.String() && m["state"] == "renewing" && !relayed
		}) {
			return nil
		}
		return errors.New("no ACK to the unicast renewal (RENEWING, RFC 2131 section 4.4.5) without giaddr in its log")
	})
	if err != nil {
		t.Errorf("%s stack: vmprov serve: %v\n%s", r.stack.Name, err, tail(r.stack.ServeLog, 20))
	}
	return env
}

// dhcpcdConf is the dhcpcd configuration: IPv4 only, the options Debian's
// dhcpcd.conf requests, the MAC as client identifier, and no ARP probing
// or IPv4LL, which would only add seconds.
const dhcpcdConf = `# dhcpcd.conf of vmprov's test/interop.
clientid
option domain_name_servers, domain_name, domain_search, host_name
option classless_static_routes
option interface_mtu
require dhcp_server_identifier
ipv4only
noarp
noipv4ll
`

// startDhcpcd runs dhcpcd in the foreground (-B) in a private mount
// namespace (ip netns exec makes one) with a fresh /run and the run's db
// directory as /var/lib/dhcpcd, so neither its lease, DUID nor secret
// touches the machine's, and in a PID namespace of its own, whose end
// takes and reaps the privilege separation helpers dhcpcd forks.
func (r *clientRun) startDhcpcd(t *testing.T) (p *proc, db string) {
	t.Helper()
	conf := filepath.Join(r.dir, "dhcpcd.conf")
	if err := os.WriteFile(conf, []byte(dhcpcdConf), 0o644); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(r.dir, "db")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := r.writeHook(t, "")
	p = startProc(t, r.ns.Name, "dhcpcd", filepath.Join(r.dir, "dhcpcd.log"),
		"unshare", "--pid", "--fork", "sh", "-ec", `mount -t tmpfs -o mode=0755 vmprov-interop /run
mkdir /run/dhcpcd
mount --bind "$1" /var/lib/dhcpcd
shift
exec "$@"`, "sh", db,
		"dhcpcd", "-f", conf, "-c", hook, "-B", "-d", "-4", "-t", strconv.Itoa(int(clientTimeout/time.Second)), "eth0")
	return p, db
}

func dhcpcdEnv(env map[string]string) lease4 {
	return lease4{IP: env["new_ip_address"], Mask: env["new_subnet_mask"], Router: env["new_routers"],
		DNS: env["new_domain_name_servers"], Domain: env["new_domain_name"], HostName: env["new_host_name"],
		Lease: atoi(env["new_dhcp_lease_time"])}
}

// runDhcpcd: dhcpcd configures eth0 itself (address and default route),
// reports the lease to its hook (BOUND) and keeps the ACK in its lease
// file. Restarted, it asks for the leased address again (INIT-REBOOT) and
// must get it (REBOOT).
func runDhcpcd(t *testing.T, r *clientRun) map[string]string {
	want := want4(r.host)
	p, db := r.startDhcpcd(t)
	env := r.event(t, p, "BOUND")
	got := dhcpcdEnv(env)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s stack: dhcpcd hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	if env["new_dhcp_server_identifier"] != r.stack.ServerID.String() {
		t.Errorf("%s stack: dhcpcd was answered by server %q, want %s", r.stack.Name, env["new_dhcp_server_identifier"], r.stack.ServerID)
	}
	r.checkAddr(t, "-4", r.host.IPv4.String()+"/24")
	out, err := r.ns.IP(t.Context(), "-4", "route", "show", "default")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "default via "+router4.Addr().String()+" dev eth0") {
		t.Errorf("%s stack: dhcpcd set no default route via %s:\n%s", r.stack.Name, router4.Addr(), out)
	}
	// The lease file is the ACK as dhcpcd received it.
	b, err := os.ReadFile(filepath.Join(db, "eth0.lease"))
	if err != nil {
		t.Fatalf("%s stack: dhcpcd lease file: %v", r.stack.Name, err)
	}
	ack, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatalf("%s stack: dhcpcd lease file: %v", r.stack.Name, err)
	}
	file := lease4{IP: ack.YourIPAddr.String(), Mask: net.IP(ack.SubnetMask()).String(), Router: joinIPs(ack.Router()),
		DNS: joinIPs(ack.DNS()), Domain: ack.DomainName(), HostName: ack.HostName(), Lease: int(ack.IPAddressLeaseTime(0) / time.Second)}
	if diff := cmp.Diff(want, file); diff != "" {
		t.Errorf("%s stack: dhcpcd lease file (-want +got):\n%s", r.stack.Name, diff)
	}

	stopClient(t, p)
	p, _ = r.startDhcpcd(t)
	if diff := cmp.Diff(want, dhcpcdEnv(r.event(t, p, "REBOOT"))); diff != "" {
		t.Errorf("%s stack: dhcpcd after a reboot (INIT-REBOOT), hook environment (-want +got):\n%s", r.stack.Name, diff)
	}
	r.checkAddr(t, "-4", r.host.IPv4.String()+"/24")
	return env
}

func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, " ")
}
