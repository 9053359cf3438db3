package orchestrator_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
)

// TestFirmwareIntent: --firmware efi-secure is recorded in the TXT as
// firmware=efi-secure, which is what the boot service decides the Secure
// Boot chain by, and the domain runs OVMF with Secure Boot on q35 with SMM;
// bios and efi record nothing; firmware= cannot be set with --txt.
func TestFirmwareIntent(t *testing.T) {
	e := newEnv(t, "default")
	o := e.orchestrator(t, hvtest.NewFake())
	tests := []struct {
		firmware string
		txt      string
		xml      []string // in the domain XML
	}{
		{"efi-secure", `"distribution=bookworm" "firmware=efi-secure" "state=install" "build_id=00000000"`,
			[]string{`machine="q35"`, `<feature enabled="yes" name="secure-boot">`, `<feature enabled="yes" name="enrolled-keys">`, `<loader secure="yes">`, `<smm state="on">`}},
		{"efi", `"distribution=bookworm" "state=install" "build_id=00000000"`, []string{`<feature enabled="no" name="secure-boot">`}},
		{"bios", `"distribution=bookworm" "state=install" "build_id=00000000"`, []string{`<bios useserial="yes">`}},
	}
	for i, tt := range tests {
		t.Run(tt.firmware, func(t *testing.T) {
			p, err := o.Plan(t.Context(), orchestrator.Request{Name: "sb" + tt.firmware, VLAN: 135,
				IPv4: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), Distro: "bookworm", Firmware: tt.firmware})
			if err != nil {
				t.Fatal(err)
			}
			var txt []string
			for _, r := range p.Records {
				if r.Type == "TXT" {
					txt = append(txt, r.Data)
				}
			}
			if !slices.Equal(txt, []string{tt.txt}) {
				t.Errorf("TXT = %q, want %q", txt, tt.txt)
			}
			for _, w := range tt.xml {
				if !strings.Contains(p.DomainXML, w) {
					t.Errorf("domain XML lacks %s:\n%s", w, p.DomainXML)
				}
			}
		})
	}
	t.Run("--txt firmware=", func(t *testing.T) {
		_, err := o.Plan(t.Context(), orchestrator.Request{Name: "sbtxt", VLAN: 135, IPv4: netip.MustParseAddr("192.0.2.110"),
			Distro: "bookworm", Vars: []inventory.Var{{Key: "firmware", Value: "efi-secure"}}})
		if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "--firmware") {
			t.Errorf("Plan = %v, want ErrInvalid naming --firmware", err)
		}
	})
	t.Run("--firmware secure", func(t *testing.T) {
		_, err := o.Plan(t.Context(), orchestrator.Request{Name: "sbbad", VLAN: 135, IPv4: netip.MustParseAddr("192.0.2.111"), Distro: "bookworm", Firmware: "secure"})
		if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "efi-secure") {
			t.Errorf("Plan = %v, want ErrInvalid naming efi-secure", err)
		}
	})
	t.Run("host add --firmware efi-secure", func(t *testing.T) {
		mac, _ := net.ParseMAC("00:25:90:96:c4:aa")
		if _, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sbmetal", MAC: mac, IPv4: netip.MustParseAddr("192.0.2.112"),
			Distro: "bookworm", Firmware: "efi-secure"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = o.RemoveHost(t.Context(), "sbmetal") })
		want := []string{`"distribution=bookworm" "firmware=efi-secure" "state=install" "build_id=00000000"`}
		if got := e.records(t, "sbmetal.example.com.", dns.TypeTXT); !slices.Equal(got, want) {
			t.Errorf("TXT = %v, want %v", got, want)
		}
	})
}
