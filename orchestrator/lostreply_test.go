package orchestrator_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/test/lab"
)

// lossyProxy stands between the client and a DNS server, UDP and TCP on one
// port. It passes everything on, except that the answer to one chosen
// UPDATE is lost: the proxy forwards the update, waits for the server's
// answer (so the server has applied it) and closes the client's connection
// instead of passing the answer back, as a failing network or a restarted
// load balancer would. The client's retry then meets its own first attempt.
type lossyProxy struct {
	addr, server string

	mu      sync.Mutex
	zone    string // the UPDATE to lose is the nth of this zone, counted from 1
	nth     int
	updates map[string]int // UPDATEs seen per zone
	lost    []string       // the updates whose answer was lost
}

func startLossyProxy(t *testing.T, server string) *lossyProxy {
	t.Helper()
	p := &lossyProxy{server: server, updates: map[string]int{}}
	var l net.Listener
	var pc net.PacketConn
	for range 20 {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
		l = nil
	}
	if l == nil {
		t.Fatal("no free UDP+TCP port on 127.0.0.1")
	}
	p.addr = l.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); pc.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serveTCP(c) })
		}
	})
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := slices.Clone(buf[:n])
			wg.Go(func() { p.serveUDP(pc, from, q) })
		}
	})
	return p
}

// loseAnswer makes the proxy lose the answer to the nth UPDATE of zone from
// now on.
func (p *lossyProxy) loseAnswer(zone string, nth int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.zone, p.nth, p.updates, p.lost = zone, nth, map[string]int{}, nil
}

// lostAnswers returns the updates whose answers were lost.
func (p *lossyProxy) lostAnswers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lost)
}

// shouldLose counts m and reports whether its answer is the one to lose.
func (p *lossyProxy) shouldLose(m *dns.Msg) bool {
	if m.Opcode != dns.OpcodeUpdate || len(m.Question) != 1 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	z := dns.CanonicalName(m.Question[0].Name)
	p.updates[z]++
	if z != p.zone || p.updates[z] != p.nth {
		return false
	}
	var what []string
	for _, rr := range m.Ns {
		what = append(what, rr.String())
	}
	p.lost = append(p.lost, strings.Join(what, "; "))
	return true
}

func (p *lossyProxy) serveUDP(pc net.PacketConn, from net.Addr, q []byte) {
	up, err := net.Dial("udp", p.server)
	if err != nil {
		return
	}
	defer up.Close()
	up.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := up.Write(q); err != nil {
		return
	}
	buf := make([]byte, 65535)
	n, err := up.Read(buf)
	if err != nil {
		return
	}
	pc.WriteTo(buf[:n], from)
}

func (p *lossyProxy) serveTCP(c net.Conn) {
	defer c.Close()
	req, err := readTCPMsg(c)
	if err != nil {
		return
	}
	up, err := net.Dial("tcp", p.server)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(req); err != nil {
		return
	}
	m := new(dns.Msg)
	if m.Unpack(req[2:]) == nil && p.shouldLose(m) {
		// The server answers, so it has applied or refused the update;
		// the client never hears which.
		readTCPMsg(up)
		return
	}
	// Anything else, a zone transfer's many messages included, passes.
	go func() {
		io.Copy(up, c)
		up.Close() // the client is done: so is the server's side
	}()
	io.Copy(c, up)
}

// readTCPMsg reads one length-prefixed DNS message, prefix included.
func readTCPMsg(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, 2+int(binary.BigEndian.Uint16(n[:])))
	copy(b, n[:])
	if _, err := io.ReadFull(c, b[2:]); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return b, nil
}

// zoneContents returns every record of the test zones but their SOAs, by
// zone transfer from the server itself, sorted.
func zoneContents(t *testing.T, c *dnsupdate.Client) []string {
	t.Helper()
	var out []string
	for _, z := range append([]string{lab.TestZone}, lab.TestReverseZones()...) {
		rrs, err := c.Transfer(t.Context(), z)
		if err != nil {
			t.Fatalf("transfer %s: %v", z, err)
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype != dns.TypeSOA {
				out = append(out, rr.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestLostUpdateAnswer: when the answer to one of the UPDATEs a command
// sends is lost after the server applied it, the client's retry fails the
// prerequisites its own first attempt made false. Create and host add must
// then still succeed, or fail having left nothing, and destroy and host
// remove must leave the zones as they were, as a zone transfer shows.
func TestLostUpdateAnswer(t *testing.T) {
	e := newEnv(t, "default")
	p := startLossyProxy(t, e.bind.Addr().String())
	name, alg, secret := e.bind.TSIG()
	client, err := dnsupdate.New(dnsupdate.Config{Server: p.addr, KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	const (
		fwd  = "example.com."
		rev4 = "2.0.192.in-addr.arpa."
		rev6 = "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
	)
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	nameTaken := func(host string, _ netip.Addr) string { return host + ".example.com. 60 IN A 192.0.2.250" }
	addressTaken := func(_ string, ip netip.Addr) string {
		return inventory.ReverseName(ip) + " 60 IN PTR other.example.com."
	}
	for i, tt := range []struct {
		name    string
		zone    string // lose the answer to the nth UPDATE of zone
		nth     int
		host    bool                                    // host add instead of create
		failOn  hvtest.Op                               // a create step that fails, "": none
		taken   func(host string, ip netip.Addr) string // a record of another host, there before
		wantErr []string                                // create fails with these; nil: succeeds
	}{
		// A create sends the forward claim, then one PTR claim per
		// address; destroy then removes the PTRs, then the name.
		{name: "forward claim", zone: fwd, nth: 1},
		{name: "IPv4 PTR claim", zone: rev4, nth: 1},
		{name: "IPv6 PTR claim", zone: rev6, nth: 1},
		{name: "destroy of the name", zone: fwd, nth: 2},
		{name: "destroy of the IPv4 PTR", zone: rev4, nth: 2},
		// A failing step rolls the claim back: PTRs first, then the name.
		{name: "rollback of the name", zone: fwd, nth: 2, failOn: hvtest.OpDefine,
			wantErr: []string{"define domain", "rolled back: disk deleted, DNS records removed"}},
		{name: "rollback of the IPv6 PTR", zone: rev6, nth: 2, failOn: hvtest.OpStart,
			wantErr: []string{"start domain", "rolled back: domain undefined, disk deleted, DNS records removed"}},
		// The name or address is another host's: the first attempt was
		// refused, and the read-back says so.
		{name: "forward claim of a taken name", zone: fwd, nth: 1, taken: nameTaken,
			wantErr: []string{"name exists: lost", "is already in zone example.com."}},
		{name: "PTR claim of a taken address", zone: rev4, nth: 1, taken: addressTaken,
			wantErr: []string{"name exists: reverse name", "the address is in use by another host"}},
		// host add: one forward UPDATE with the _mac CNAME.
		{name: "host add", zone: fwd, nth: 1, host: true},
		{name: "host add PTR", zone: rev4, nth: 1, host: true},
		{name: "host remove", zone: fwd, nth: 2, host: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host := fmt.Sprintf("lost%d", i)
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(60 + i)})
			if tt.taken != nil {
				rr, err := dns.NewRR(tt.taken(host, ip))
				if err != nil {
					t.Fatal(err)
				}
				zone := fwd
				if strings.HasSuffix(rr.Header().Name, rev4) {
					zone = rev4
				}
				if err := e.dns.Apply(t.Context(), dnsupdate.ChangeSet{Zone: zone, Add: []dns.RR{rr}}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.dns.Apply(t.Context(), dnsupdate.ChangeSet{Zone: zone, Remove: []dns.RR{rr}}) })
			}
			before := zoneContents(t, e.dns)
			hv := hvtest.NewFake()
			if tt.failOn != "" {
				hv.FailOn(tt.failOn, "", errors.New("injected failure"))
			}
			o, err := orchestrator.New(orchestrator.Config{Config: e.cfg, DNS: client, Hypervisor: hv})
			if err != nil {
				t.Fatal(err)
			}
			p.loseAnswer(tt.zone, tt.nth)
			var pl *orchestrator.Plan
			if tt.host {
				pl, err = o.AddHost(t.Context(), orchestrator.HostRequest{Name: host, MAC: mac(fmt.Sprintf("00:25:90:96:c4:%02x", i)),
					IPv4: ip, IPv6: netip.MustParseAddr(fmt.Sprintf("2001:db8:135::%d", 60+i)), Distro: "core"})
			} else {
				pl, err = o.Create(t.Context(), orchestrator.Request{Name: host, VLAN: 135, IPv4: ip, Distro: "core"})
			}
			switch {
			case tt.wantErr == nil && err != nil:
				// What it left shows below.
				t.Errorf("%s failed after a lost answer (%v): %v", tt.name, p.lostAnswers(), err)
			case tt.wantErr != nil:
				if err == nil {
					t.Fatal("create succeeded despite the injected failure")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "ROLLBACK FAILED") {
					t.Errorf("rollback reported a failure: %v", err)
				}
			default:
				// What DNS holds is what create printed.
				var want []string
				for _, r := range pl.Records {
					want = append(want, r.Name+" "+r.Type+" "+r.Data)
				}
				var got []string
				for _, rr := range zoneContents(t, e.dns) {
					if !slices.Contains(before, rr) {
						f := strings.Fields(rr)
						got = append(got, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
					}
				}
				if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
					t.Errorf("records added (-printed +in DNS):\n%s", diff)
				}
				if tt.host {
					err = o.RemoveHost(t.Context(), host)
				} else {
					err = o.Destroy(t.Context(), host)
				}
				if err != nil {
					t.Errorf("remove after a lost answer (%v): %v", p.lostAnswers(), err)
				}
			}
			if len(p.lostAnswers()) != 1 {
				t.Errorf("answers lost: %v, want one", p.lostAnswers())
			}
			if diff := cmp.Diff(before, zoneContents(t, e.dns)); diff != "" {
				t.Errorf("zones changed (-before +after):\n%s", diff)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestLostReinstallAnswer: a reinstall whose answer is lost after the
// server rewrote the TXT record succeeds, although its retry finds the old
// record gone.
func TestLostReinstallAnswer(t *testing.T) {
	e := newEnv(t, "default")
	p := startLossyProxy(t, e.bind.Addr().String())
	name, alg, secret := e.bind.TSIG()
	client, err := dnsupdate.New(dnsupdate.Config{Server: p.addr, KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(orchestrator.Config{Config: e.cfg, DNS: client, Rand: zeros{}})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("00:25:90:96:c4:9a")
	if _, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sm1", MAC: mac, Distro: "core"}); err != nil {
		t.Fatal(err)
	}
	p.loseAnswer(lab.TestZone, 1)
	if _, err := o.Reinstall(t.Context(), "sm1", "rocky9", "", nil); err != nil {
		t.Errorf("reinstall after a lost answer (%v): %v", p.lostAnswers(), err)
	}
	if len(p.lostAnswers()) != 1 {
		t.Errorf("answers lost: %v, want one", p.lostAnswers())
	}
	if got := e.records(t, "sm1.example.com.", dns.TypeTXT); !slices.Equal(got, []string{`"distribution=rocky9" "state=install" "build_id=00000000"`}) {
		t.Errorf("TXT = %v", got)
	}
}
