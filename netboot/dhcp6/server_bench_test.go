package dhcp6_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/dhcp6"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// BenchmarkServeSARR measures what vmprov serve does for each message of a
// client's Solicit-Advertise-Request-Reply once the client's DNS answers
// are cached: decode the Solicit, decide with the DNS policy, encode the
// Advertise, then the same for the Request and Reply, with Info logs
// formatted as serve formats them (to io.Discard). `go test -cpuprofile`
// on it shows the per-message hot path without sockets.
func BenchmarkServeSARR(b *testing.B) {
	be := fakeBackend(b)
	load(b, be, records()...)
	cfg := testConfig(b)
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := dhcp6.New(dhcp6.Config{
		DHCPConfig: serveconfig.DHCP(cfg, netboot.NewDNSPolicy(serveconfig.Policy(cfg, log), be), log),
		ServerDUID: serverDUID,
	})
	if err != nil {
		b.Fatal(err)
	}
	sol, err := dhcpv6.NewSolicit(sm1MAC, dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: sm1MAC}))
	if err != nil {
		b.Fatal(err)
	}
	solBytes := sol.ToBytes()
	in := direct(linkLocal(sm1MAC))
	var reqBytes []byte
	b.ReportAllocs()
	for b.Loop() {
		m, err := dhcpv6.FromBytes(solBytes)
		if err != nil {
			b.Fatal(err)
		}
		adv, err := s.Handle(b.Context(), m, in)
		if err != nil || adv == nil {
			b.Fatalf("no advertise: %v", err)
		}
		_ = adv.ToBytes()
		if reqBytes == nil {
			r, err := dhcpv6.NewRequestFromAdvertise(adv.(*dhcpv6.Message))
			if err != nil {
				b.Fatal(err)
			}
			reqBytes = r.ToBytes()
		}
		r, err := dhcpv6.FromBytes(reqBytes)
		if err != nil {
			b.Fatal(err)
		}
		reply, err := s.Handle(b.Context(), r, in)
		if err != nil || reply == nil || reply.Type() != dhcpv6.MessageTypeReply {
			b.Fatalf("no reply: %v %v", reply, err)
		}
		_ = reply.ToBytes()
	}
}
