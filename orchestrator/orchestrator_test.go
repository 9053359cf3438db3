package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// testConfig is the lab's VLAN 135 with documentation prefixes.
func testConfig(t testing.TB, server, pool string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(fmt.Sprintf(`
dns: {server: %q, zone: example.com., ttl: 60}
libvirt: {uri: "test:///default", domain_type: qemu, pool: %q}
boot: {url: "http://192.0.2.1"}
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64", dns_servers: [192.0.2.1]}
  - {id: 136, bridge: br136, ipv6: "2001:db8:136::/64"}
`, server, pool)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type env struct {
	cfg  *config.Config
	dns  *dnsupdate.Client
	bind *lab.BIND
}

// newEnv starts a real BIND and a signed client for it.
func newEnv(t testing.TB, pool string) *env {
	t.Helper()
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return &env{cfg: testConfig(t, b.Addr().String(), pool), dns: c, bind: b}
}

func (e *env) orchestrator(t testing.TB, hv orchestrator.Hypervisor) *orchestrator.Orchestrator {
	t.Helper()
	o, err := orchestrator.New(orchestrator.Config{Config: e.cfg, DNS: e.dns, Hypervisor: hv, Rand: zeros{}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// records returns what DNS answers for name and type, in presentation form.
func (e *env) records(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	ans, err := e.dns.Lookup(t.Context(), name, qtype)
	if err != nil {
		t.Fatalf("lookup %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	var out []string
	for _, rr := range ans.Records {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return out
}

// assertNoHost checks DNS holds nothing of the host: no A, AAAA, TXT, and
// no PTR for its addresses.
func (e *env) assertNoHost(t *testing.T, name string, addrs ...string) {
	t.Helper()
	fqdn := name + ".example.com."
	for _, q := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		if got := e.records(t, fqdn, q); len(got) > 0 {
			t.Errorf("%s %s left in DNS: %v", fqdn, dns.TypeToString[q], got)
		}
	}
	for _, a := range addrs {
		if got := e.records(t, inventory.ReverseName(netip.MustParseAddr(a)), dns.TypePTR); len(got) > 0 {
			t.Errorf("PTR of %s left in DNS: %v", a, got)
		}
	}
}

var uniq atomic.Int64

// unique returns a name not used before in this process: the libvirt test
// driver's state is shared by every connection of a process.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, uniq.Add(1)) }

func testDriver(t testing.TB) *libvirtconn.Libvirt {
	t.Helper()
	lv, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lv.Close() })
	return lv
}

// TestCreateDestroy runs seed 000's workflow through the real code path:
// real BIND, the libvirt test driver.
func TestCreateDestroy(t *testing.T) {
	e := newEnv(t, "default-pool")
	lv := testDriver(t)
	o := e.orchestrator(t, lv)
	ctx := t.Context()
	name := unique("test-centos7")

	p, err := o.Create(ctx, orchestrator.Request{Name: name, VLAN: 135, IPv4: netip.MustParseAddr("192.0.2.172"),
		Distro: "core", Script: "test.ipxe", Vars: []inventory.Var{{Key: "puppet_environment", Value: "prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	fqdn := name + ".example.com."
	// VLAN 135 + x.x.2.172: 02:04:06:08:7(2&0xf):ac.
	if p.MAC != "02:04:06:08:72:ac" {
		t.Errorf("MAC = %s", p.MAC)
	}
	for _, c := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{fqdn, dns.TypeA, []string{"192.0.2.172"}},
		{fqdn, dns.TypeAAAA, []string{"2001:db8:135:0:4:6ff:fe08:72ac"}},
		{fqdn, dns.TypeTXT, []string{`"filename=test.ipxe" "distribution=core" "puppet_environment=prod" "state=install" "build_id=00000000"`}},
		{"172.2.0.192.in-addr.arpa.", dns.TypePTR, []string{fqdn}},
		{inventory.ReverseName(netip.MustParseAddr("2001:db8:135:0:4:6ff:fe08:72ac")), dns.TypePTR, []string{fqdn}},
	} {
		if diff := cmp.Diff(c.want, e.records(t, c.name, c.qtype)); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", c.name, dns.TypeToString[c.qtype], diff)
		}
	}
	d, err := lv.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != virt.StateRunning || d.MAC != "02:04:06:08:72:ac" || d.Bridge != "br135" || d.Meta.VLAN != 135 || d.Meta.Distro != "core" {
		t.Errorf("domain = %+v", d)
	}
	xml := strings.ReplaceAll(d.XML, "'", `"`)
	for _, want := range []string{`<boot dev="hd"/>`, `<boot dev="network"/>`, `useserial="yes"`, `<model type="virtio"/>`} {
		if !strings.Contains(xml, want) {
			t.Errorf("domain XML lacks %s", want)
		}
	}

	shown, err := o.Show(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if shown.MAC != p.MAC || shown.IPv4 == nil || *shown.IPv4 != *p.IPv4 || shown.Distro != "core" || len(shown.Records) != 5 {
		t.Errorf("Show = %+v", shown)
	}
	list, err := o.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list, func(p *orchestrator.Plan) bool {
		return p.Name == name && p.Power == virt.StateRunning && p.State == "install"
	}) {
		t.Errorf("List lacks %s", name)
	}

	if err := o.Destroy(ctx, name); err != nil {
		t.Fatal(err)
	}
	e.assertNoHost(t, name, "192.0.2.172", "2001:db8:135:0:4:6ff:fe08:72ac")
	if _, err := lv.Get(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("domain still there after destroy: %v", err)
	}
	if err := o.Destroy(ctx, name); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("second destroy = %v, want ErrNotFound", err)
	}
}

func TestCreateIPv6Only(t *testing.T) {
	e := newEnv(t, "default")
	hv := hvtest.NewFake()
	o := e.orchestrator(t, hv)
	p, err := o.Create(t.Context(), orchestrator.Request{Name: "web6", VLAN: 135, Distro: "xenial"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.MAC, "2a:4a:6a:") || p.IPv4 != nil || p.IPv6 == nil {
		t.Fatalf("plan = %+v", p)
	}
	mac, _ := inventory.ParseHexHyp(p.MAC)
	want, _ := inventory.EUI64(netip.MustParsePrefix("2001:db8:135::/64"), mac)
	if *p.IPv6 != want {
		t.Errorf("IPv6 = %s, want EUI-64 %s", p.IPv6, want)
	}
	if got := e.records(t, "web6.example.com.", dns.TypeAAAA); !slices.Equal(got, []string{want.String()}) {
		t.Errorf("AAAA = %v", got)
	}
	if got := e.records(t, "web6.example.com.", dns.TypeA); len(got) != 0 {
		t.Errorf("A = %v, want none", got)
	}
}

// TestRollback makes each step fail and checks that nothing is left.
func TestRollback(t *testing.T) {
	e := newEnv(t, "default")
	for _, tt := range []struct {
		op       hvtest.Op
		want     []string
		leftover bool
	}{
		{hvtest.OpCreateDisk, []string{"disk", "rolled back: DNS records removed"}, false},
		{hvtest.OpDefine, []string{"define domain", "disk deleted", "DNS records removed"}, false},
		{hvtest.OpStart, []string{"start domain", "domain undefined", "disk deleted", "DNS records removed"}, false},
	} {
		t.Run(fmt.Sprint(tt.op), func(t *testing.T) {
			hv := hvtest.NewFake()
			hv.FailOn(tt.op, "", errors.New("injected failure"))
			o := e.orchestrator(t, hv)
			name := unique("rb")
			_, err := o.Create(t.Context(), orchestrator.Request{Name: name, IPv4: netip.MustParseAddr("192.0.2.50"), Distro: "core"})
			if err == nil {
				t.Fatal("Create succeeded")
			}
			for _, w := range append(tt.want, "injected failure", name) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			e.assertNoHost(t, name, "192.0.2.50", "2001:db8:135:0:4:6ff:fe08:7032")
			hv.ClearFailures()
			if ds, _ := hv.List(t.Context()); len(ds) != 0 {
				t.Errorf("domains left: %v", ds)
			}
			if vs := hv.Volumes("default"); len(vs) != 0 {
				t.Errorf("volumes left: %v", vs)
			}
		})
	}
}

func TestRollbackMissingPool(t *testing.T) {
	e := newEnv(t, "no-such-pool")
	o := e.orchestrator(t, testDriver(t))
	name := unique("nopool")
	_, err := o.Create(t.Context(), orchestrator.Request{Name: name, IPv4: netip.MustParseAddr("192.0.2.51"), Distro: "core"})
	if err == nil || !strings.Contains(err.Error(), "no-such-pool") || !strings.Contains(err.Error(), "DNS records removed") {
		t.Fatalf("Create = %v", err)
	}
	e.assertNoHost(t, name, "192.0.2.51")
}

func TestDNSRefused(t *testing.T) {
	t.Run("zone not served", func(t *testing.T) {
		e := newEnv(t, "default")
		e.cfg.DNS.Zone = "other.example."
		hv := hvtest.NewFake()
		o := e.orchestrator(t, hv)
		_, err := o.Create(t.Context(), orchestrator.Request{Name: "x1", IPv4: netip.MustParseAddr("192.0.2.52"), Distro: "core"})
		if err == nil || !strings.Contains(err.Error(), "other.example.") || !strings.Contains(err.Error(), e.bind.Addr().String()) {
			t.Fatalf("Create = %v, want an error naming zone and server", err)
		}
		if calls := hv.Calls(); slices.ContainsFunc(calls, func(c hvtest.Call) bool { return c.Op != hvtest.OpGet }) {
			t.Errorf("hypervisor was changed: %v", calls)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		e := newEnv(t, "default")
		c, err := dnsupdate.New(dnsupdate.Config{Server: e.bind.Addr().String(), KeyName: "vmprov.", Algorithm: "hmac-sha256", Secret: lab.GenerateSecret()})
		if err != nil {
			t.Fatal(err)
		}
		o, err := orchestrator.New(orchestrator.Config{Config: e.cfg, DNS: c, Hypervisor: hvtest.NewFake()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = o.Create(t.Context(), orchestrator.Request{Name: "x2", IPv4: netip.MustParseAddr("192.0.2.53"), Distro: "core"})
		if err == nil || !strings.Contains(err.Error(), "vmprov.") {
			t.Fatalf("Create = %v, want an error naming the key", err)
		}
		e.assertNoHost(t, "x2", "192.0.2.53")
	})
}

func TestNameTaken(t *testing.T) {
	e := newEnv(t, "default")
	o := e.orchestrator(t, hvtest.NewFake())
	ctx := t.Context()
	if _, err := o.Create(ctx, orchestrator.Request{Name: "db1", IPv4: netip.MustParseAddr("192.0.2.20"), Distro: "core"}); err != nil {
		t.Fatal(err)
	}
	// Same name, other address: refused by the forward prerequisite.
	o2 := e.orchestrator(t, hvtest.NewFake())
	_, err := o2.Create(ctx, orchestrator.Request{Name: "db1", IPv4: netip.MustParseAddr("192.0.2.21"), Distro: "core"})
	if !errors.Is(err, orchestrator.ErrNameExists) {
		t.Fatalf("Create = %v, want ErrNameExists", err)
	}
	// Other name, same address: refused by the reverse prerequisite; the
	// forward records it had added are removed again.
	_, err = o2.Create(ctx, orchestrator.Request{Name: "db2", IPv4: netip.MustParseAddr("192.0.2.20"), Distro: "core"})
	if !errors.Is(err, orchestrator.ErrNameExists) || !strings.Contains(err.Error(), "reverse name") {
		t.Fatalf("Create = %v, want ErrNameExists for the reverse name", err)
	}
	e.assertNoHost(t, "db2")
	if got := e.records(t, "db1.example.com.", dns.TypeA); !slices.Equal(got, []string{"192.0.2.20"}) {
		t.Errorf("db1 A = %v", got)
	}
	if got := e.records(t, "20.2.0.192.in-addr.arpa.", dns.TypePTR); !slices.Equal(got, []string{"db1.example.com."}) {
		t.Errorf("PTR = %v", got)
	}
}

// TestConcurrentCreate: two creates of one name at once, exactly one wins.
func TestConcurrentCreate(t *testing.T) {
	e := newEnv(t, "default")
	hv := hvtest.NewFake()
	const n = 4
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := e.orchestrator(t, hv)
			_, errs[i] = o.Create(context.Background(), orchestrator.Request{Name: "race", IPv4: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), Distro: "core"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, orchestrator.ErrNameExists):
			t.Errorf("loser error = %v, want ErrNameExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates succeeded, want 1: %v", won, errs)
	}
	if got := e.records(t, "race.example.com.", dns.TypeA); len(got) != 1 {
		t.Errorf("A = %v, want one address", got)
	}
	if ds, _ := hv.List(t.Context()); len(ds) != 1 {
		t.Errorf("%d domains, want 1", len(ds))
	}
}

func TestValidation(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:53", "default")
	fake := dnstestFake()
	hv := hvtest.NewFake()
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: fake, Hypervisor: hv})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	for _, tt := range []struct {
		name string
		r    orchestrator.Request
		want []string
	}{
		{"bad name", orchestrator.Request{Name: "Bad_Name", VLAN: 135, Distro: "core"}, []string{"Bad_Name"}},
		{"unknown vlan", orchestrator.Request{Name: "a", VLAN: 999, Distro: "core"}, []string{"999", "135"}},
		{"outside subnet", orchestrator.Request{Name: "a", VLAN: 135, IPv4: ip("198.51.100.5"), Distro: "core"}, []string{"198.51.100.5", "192.0.2.0/24"}},
		{"no vlan for ip", orchestrator.Request{Name: "a", IPv4: ip("198.51.100.5"), Distro: "core"}, []string{"198.51.100.5", "no configured VLAN"}},
		{"gateway", orchestrator.Request{Name: "a", IPv4: ip("192.0.2.1"), Distro: "core"}, []string{"192.0.2.1", "gateway"}},
		{"unknown distro", orchestrator.Request{Name: "a", VLAN: 135, Distro: "windows"}, []string{"windows"}},
		{"bad txt", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Vars: []inventory.Var{{Key: "x", Value: "a b"}}}, []string{"x="}},
		{"txt name with dash", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Vars: []inventory.Var{{Key: "puppet-env", Value: "prod"}}}, []string{`--txt puppet-env=prod: `, `name "puppet-env": character '-' at 6 (want [A-Za-z_][A-Za-z0-9_]*)`}},
		{"txt value with parenthesis", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Vars: []inventory.Var{{Key: "role", Value: "a(b)"}}}, []string{"--txt role=a(b)", "'('"}},
		{"txt twice", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Vars: []inventory.Var{{Key: "x", Value: "1"}, {Key: "x", Value: "2"}}}, []string{"set twice", "x=2"}},
		{"txt filename", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Vars: []inventory.Var{{Key: "filename", Value: "x.ipxe"}}}, []string{"filename=x.ipxe", "--script"}},
		{"script parent", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Script: "../x"}, []string{`--script ../x`, `".."`}},
		{"script absolute", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Script: "/x.ipxe"}, []string{`"/x.ipxe"`, "absolute"}},
		{"no ipv4 on v6 vlan", orchestrator.Request{Name: "a", VLAN: 136, IPv4: ip("192.0.2.9"), Distro: "core"}, []string{"136", "no ipv4"}},
		{"neither", orchestrator.Request{Name: "a", Distro: "core"}, []string{"--vlan"}},
		{"boot from cdrom", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Boot: []string{"cdrom"}}, []string{"--boot cdrom", `"cdrom"`}},
		{"boot twice", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Boot: []string{"network", "network"}}, []string{"--boot network,network", "twice"}},
		{"unknown arch", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Arch: "arm64"}, []string{`--arch "arm64"`, "aarch64"}},
		{"aarch64 with SeaBIOS", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Arch: "aarch64", Firmware: "bios"}, []string{"--arch aarch64", "--firmware efi", "not bios"}},
		{"arch twice", orchestrator.Request{Name: "a", VLAN: 135, Distro: "core", Arch: "aarch64", Vars: []inventory.Var{{Key: "arch", Value: "aarch64"}}}, []string{"--txt arch=", "--arch"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, run := range []func() error{
				func() error { _, err := o.Create(t.Context(), tt.r); return err },
				func() error { _, err := o.Plan(t.Context(), tt.r); return err },
			} {
				err := run()
				if !errors.Is(err, orchestrator.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			}
		})
	}
	if fake.Applied() != 0 || slices.ContainsFunc(hv.Calls(), func(c hvtest.Call) bool { return c.Op != hvtest.OpGet }) {
		t.Errorf("invalid requests changed something: %d DNS changes, calls %v", fake.Applied(), hv.Calls())
	}
}

// TestHostValidation: host add and reinstall refuse what `vmprov serve`
// would refuse, before anything is written, with or without VLANs.
func TestHostValidation(t *testing.T) {
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	for _, c := range []struct{ name, config string }{
		{"vlans", "dns: {zone: example.com.}\nvlans: [{id: 135, ipv4: 192.0.2.0/24}]\n"},
		{"no vlans", "dns: {zone: example.com.}\n"}, // bare metal needs none
	} {
		t.Run(c.name, func(t *testing.T) { testHostValidation(t, c.config, mac) })
	}
}

func testHostValidation(t *testing.T, cfgText string, mac net.HardwareAddr) {
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	fake := dnstestFake()
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: fake})
	if err != nil {
		t.Fatal(err)
	}
	// sm1 exists with a valid intent, for reinstall.
	if _, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm1", MAC: mac, Distro: "core"}); err != nil {
		t.Fatal(err)
	}
	applied := fake.Applied()
	for _, tt := range []struct {
		name   string
		script string
		vars   []inventory.Var
		distro string
		want   []string
	}{
		{"txt name with dash", "", []inventory.Var{{Key: "puppet-env", Value: "prod"}}, "core", []string{"--txt puppet-env=prod", `'-' at 6`}},
		{"txt value with parenthesis", "", []inventory.Var{{Key: "role", Value: "a(b)"}}, "core", []string{"--txt role=a(b)", "'('"}},
		{"txt distribution", "", []inventory.Var{{Key: "distribution", Value: "noble"}}, "core", []string{"distribution=noble", "--distro"}},
		{"script parent", "../x", nil, "core", []string{"--script ../x", `".."`}},
		{"txt state", "", []inventory.Var{{Key: "state", Value: "installed"}}, "core", []string{"--txt state=installed", "build record"}},
		{"txt build id", "", []inventory.Var{{Key: "build_id", Value: "00"}}, "core", []string{"--txt build_id=00", "build record"}},
		{"unknown distro", "", nil, "plan9", []string{`"plan9"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addErr := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm2", MAC: mac, Distro: tt.distro, Script: tt.script, Vars: tt.vars})
			_, reErr := o.Reinstall(t.Context(), "sm1", tt.distro, tt.script, tt.vars)
			for _, err := range []error{addErr, reErr} {
				if !errors.Is(err, orchestrator.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			}
		})
	}
	if fake.Applied() != applied {
		t.Errorf("invalid requests changed DNS %d times", fake.Applied()-applied)
	}
}

// TestReinstallKeptVariable: a variable kept from a TXT record written before
// the boot service's rules applied (puppet-env) is not written again.
func TestReinstallKeptVariable(t *testing.T) {
	cfg, err := config.Parse([]byte("dns: {zone: example.com.}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fake := dnstestFake()
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: "old.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
		Txt: []string{"distribution=core", "puppet-env=prod"}}
	if err := fake.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.com.", Add: []dns.RR{txt}}); err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: fake})
	if err != nil {
		t.Fatal(err)
	}
	applied := fake.Applied()
	_, err = o.Reinstall(t.Context(), "old", "rocky9", "", nil)
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), `"puppet-env"`) || !strings.Contains(err.Error(), "old.example.com.") {
		t.Errorf("err = %v, want ErrInvalid naming puppet-env and the record", err)
	}
	if fake.Applied() != applied {
		t.Error("reinstall wrote the TXT record")
	}
	// A refused value kept from the record is replaced with --txt.
	if err := fake.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.com.", RemoveName: []string{"old.example.com."},
		Add: []dns.RR{&dns.TXT{Hdr: txt.Hdr, Txt: []string{"distribution=core", "role=a(b)"}}}}); err != nil {
		t.Fatal(err)
	}
	p, err := o.Reinstall(t.Context(), "old", "rocky9", "", []inventory.Var{{Key: "role", Value: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"distribution=rocky9", "role=web", "state=install"}, p.Host().Intent.Without(inventory.KeyBuildID).TXT()); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
}
