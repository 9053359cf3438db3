package bench

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/test/lab"
)

// with returns a copy of e that reports to, and registers cleanups on, tb:
// servers a subtest starts stop when it ends.
func (e *env) with(tb testing.TB) *env {
	c := *e
	c.tb = tb
	return &c
}

// TestServersAgree checks the harness without timing anything: every
// server the benchmarks compare answers the same thing on the bench
// segment, so their rates compare like with like.
func TestServersAgree(t *testing.T) {
	e := newEnv(t, 64)

	// vmprov, Kea and dnsmasq give sampled hosts the same OFFER and ACK
	// (address, boot file, next-server, options), stay silent for a MAC no
	// reservation names, and complete a short perfdhcp run with the
	// benchmark's command line without a drop.
	t.Run("dhcpv4", func(t *testing.T) {
		lab.RequireRoot(t, "perfdhcp", "kea-dhcp4", "dnsmasq")
		e := e.with(t)
		sample := []host{e.hosts[0], e.hosts[31], e.hosts[63]}
		strangerIP := netip.MustParseAddr("198.18.9.9")
		strangerMAC, err := inventory.DefaultScheme().StrictMAC(vlanID, strangerIP)
		if err != nil {
			t.Fatal(err)
		}
		stranger := host{Name: "stranger", IP: strangerIP, MAC: strangerMAC}
		wantOffers, wantAcks := map[string]lease{}, map[string]lease{}
		for _, h := range sample {
			wantOffers[h.Name] = wantLease(h, "OFFER")
			wantAcks[h.Name] = wantLease(h, "ACK")
		}
		macs := e.macFile()
		for _, s := range dhcpServers() {
			p := s.start(e)
			offers, acks := e.dora(t, append(sample, stranger))
			if diff := cmp.Diff(wantOffers, offers); diff != "" {
				t.Errorf("%s: offers (-want +got):\n%s", s.name, diff)
			}
			if diff := cmp.Diff(wantAcks, acks); diff != "" {
				t.Errorf("%s: acks (-want +got):\n%s", s.name, diff)
			}
			const n = 20
			rep, out := e.perfdhcp(t, 4, macs, 50, 0, n)
			if rep.DO.Sent != n || rep.DO.Received != n || rep.RA.Received != n || rep.Drops() != 0 {
				t.Errorf("%s: perfdhcp -n %d: %+v\n%s", s.name, n, rep, out)
			}
			if err := p.stop(); err != nil {
				t.Error(err)
			}
		}
	})

	// vmprov and Kea DHCPv6 give sampled hosts the same Advertise and
	// Reply (the reserved address with its lifetimes, T1 and T2, DNS
	// servers, domain search list), give a DUID no reservation names no
	// address, and complete a short perfdhcp -6 run with the benchmark's
	// command line without a drop.
	t.Run("dhcpv6", func(t *testing.T) {
		lab.RequireRoot(t, "perfdhcp", "kea-dhcp6")
		e := e.with(t)
		sample := []host{e.hosts[0], e.hosts[31], e.hosts[63]}
		strangerMAC, err := inventory.DefaultScheme().StrictMAC(vlanID, netip.MustParseAddr("198.18.9.9"))
		if err != nil {
			t.Fatal(err)
		}
		stranger := host{Name: "stranger", MAC: strangerMAC}
		wantAdverts, wantReplies := map[string]lease6{}, map[string]lease6{}
		for _, h := range sample {
			wantAdverts[h.Name] = wantLease6(h, "ADVERTISE")
			wantReplies[h.Name] = wantLease6(h, "REPLY")
		}
		// perfdhcp's clients are the hosts not sampled: Kea keeps a lease
		// per DUID and IAID, and refuses a sampled host's reserved address
		// to perfdhcp's IAID while the sample's client holds it.
		macs := e.macFileOf("macs6.txt", e.hosts[1:31])
		for _, s := range dhcp6Servers() {
			p := s.start(e)
			adverts, replies := e.sarr(t, append(sample, stranger))
			// Kea advertises NoAddrsAvail to a client it has no address
			// for; vmprov stays silent. Neither gives it an address.
			if l, ok := adverts[stranger.Name]; ok {
				if l.IP != "" {
					t.Errorf("%s: stranger advertised %s", s.name, l.IP)
				}
				delete(adverts, stranger.Name)
			}
			if diff := cmp.Diff(wantAdverts, adverts); diff != "" {
				t.Errorf("%s: advertises (-want +got):\n%s", s.name, diff)
			}
			if diff := cmp.Diff(wantReplies, replies); diff != "" {
				t.Errorf("%s: replies (-want +got):\n%s", s.name, diff)
			}
			const n = 20
			rep, out := e.perfdhcp(t, 6, macs, 50, 0, n)
			if rep.DO.Sent != n || rep.DO.Received != n || rep.RA.Received != n || rep.Drops() != 0 {
				t.Errorf("%s: perfdhcp -6 -n %d: %+v\n%s", s.name, n, rep, out)
			}
			if err := p.stop(); err != nil {
				t.Error(err)
			}
		}
	})

	// vmprov and tftpd-hpa serve the loader byte for byte to concurrent
	// clients, and neither serves a file that does not exist.
	t.Run("tftp", func(t *testing.T) {
		lab.RequireRoot(t, "in.tftpd")
		e := e.with(t)
		for _, s := range tftpServers() {
			p := s.start(e)
			if _, errs := e.tftpConcurrent(bootFile, 4); len(errs) > 0 {
				t.Errorf("%s: %d of 4 downloads failed: %v", s.name, len(errs), errs)
			}
			if err := e.tftpGet("missing.efi", [32]byte{}, 0, 300*time.Millisecond, 1); err == nil {
				t.Errorf("%s: missing.efi downloaded", s.name)
			}
			if err := p.stop(); err != nil {
				t.Error(err)
			}
		}
	})

	// vmprov and nginx serve the initrd byte for byte, 404 a missing file,
	// and answer the benchmark's wrk command line without errors.
	t.Run("http", func(t *testing.T) {
		lab.RequireRoot(t, "nginx", "wrk")
		e := e.with(t)
		b, err := os.ReadFile(filepath.Join(e.serveDir, "assets", "initrd.img"))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(b)
		c := e.httpClient()
		for _, s := range httpServers() {
			p := s.start(e)
			h := sha256.New()
			if err := httpGet(c, baseURL(s.port)+initrdPath, h); err != nil {
				t.Errorf("%s: %v", s.name, err)
			} else if got := h.Sum(nil); fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) {
				t.Errorf("%s: %s has sha256 %x, want %x", s.name, initrdPath, got, want)
			}
			if err := httpGet(c, baseURL(s.port)+"/assets/missing.img", h); err == nil {
				t.Errorf("%s: /assets/missing.img answered 200", s.name)
			}
			rep, out := e.wrk(t, baseURL(s.port)+initrdPath, 1, 2, time.Second)
			if rep.Requests == 0 || rep.Non2xx3xx != 0 || rep.SocketErrors != 0 {
				t.Errorf("%s: wrk: %+v\n%s", s.name, rep, out)
			}
			if err := p.stop(); err != nil {
				t.Error(err)
			}
		}
	})
}
