package orchestrator_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/orchestrator"
	"github.com/vmprov/vmprov/orchestrator/hvtest"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// TestPlanARM64: create --arch aarch64 plans an AAVMF domain on the virt machine with
// the interface's option ROM off (whatever libvirt.rom and libvirt.firmware say), and
// a TXT record that says arch=aarch64, so that serve hands it the arm64 installer.
func TestPlanARM64(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:53", "default")
	cfg.Libvirt.ROM, cfg.Libvirt.Emulator, cfg.Libvirt.Firmware = "/usr/share/ipxe/1af41000.rom", "/usr/bin/qemu-system-x86_64", config.FirmwareBIOS
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: dnstestFake(), Hypervisor: hvtest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := o.Plan(t.Context(), orchestrator.Request{Name: "arm1", IPv4: netip.MustParseAddr("192.0.2.12"), Distro: "bookworm", Arch: virt.ArchARM64})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(pl.Host().Intent, func(v inventory.Var) bool { return v.Key == "arch" && v.Value == "aarch64" }) {
		t.Errorf("intent %v lacks arch=aarch64", pl.Host().Intent)
	}
	for _, want := range []string{`<os firmware="efi">`, `<type arch="aarch64" machine="virt">hvm</type>`, `<model fallback="forbid">cortex-a57</model>`, `<rom enabled="no"></rom>`} {
		if !strings.Contains(pl.DomainXML, want) {
			t.Errorf("domain XML lacks %s:\n%s", want, pl.DomainXML)
		}
	}
	for _, unwanted := range []string{"1af41000.rom", "qemu-system-x86_64", "<apic>"} {
		if strings.Contains(pl.DomainXML, unwanted) {
			t.Errorf("domain XML of an aarch64 VM has %s:\n%s", unwanted, pl.DomainXML)
		}
	}
	x86, err := o.Plan(t.Context(), orchestrator.Request{Name: "x1", IPv4: netip.MustParseAddr("192.0.2.13"), Distro: "bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(x86.Host().Intent, func(v inventory.Var) bool { return v.Key == "arch" }) || !strings.Contains(x86.DomainXML, `arch="x86_64"`) {
		t.Errorf("an x86_64 VM: intent %v, domain XML:\n%s", x86.Host().Intent, x86.DomainXML)
	}
}
