package dhcp4

import (
	"io"
	"log/slog"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// BenchmarkServeDORA measures what vmprov serve does for each packet of a
// PXE client's DORA once the client's DNS answers are cached: decode the
// DISCOVER, decide with the DNS policy, encode the OFFER, then the same for
// the REQUEST and ACK, with Info logs formatted as serve formats them (to
// io.Discard). `go test -cpuprofile` on it shows the per-packet hot path
// without sockets.
func BenchmarkServeDORA(b *testing.B) {
	cfg := testConfig(b)
	p := policies()["dns"](b, cfg)
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(testServerConfig(cfg, p, log))
	if err != nil {
		b.Fatal(err)
	}
	pxe := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
	}
	discover := request(b, dhcpv4.MessageTypeDiscover, macOf(10), pxe...).ToBytes()
	var reqBytes []byte
	b.ReportAllocs()
	for b.Loop() {
		d, err := dhcpv4.FromBytes(discover)
		if err != nil {
			b.Fatal(err)
		}
		offer, err := s.Handle(b.Context(), d, ingress)
		if err != nil || offer == nil {
			b.Fatalf("no offer: %v", err)
		}
		_ = offer.ToBytes()
		if reqBytes == nil {
			r, err := dhcpv4.NewRequestFromOffer(offer, pxe...)
			if err != nil {
				b.Fatal(err)
			}
			reqBytes = r.ToBytes()
		}
		r, err := dhcpv4.FromBytes(reqBytes)
		if err != nil {
			b.Fatal(err)
		}
		ack, err := s.Handle(b.Context(), r, ingress)
		if err != nil || ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
			b.Fatalf("no ack: %v %v", ack, err)
		}
		_ = ack.ToBytes()
	}
}
