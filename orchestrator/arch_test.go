package orchestrator_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

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

// TestPlanRefusesUnbootable: create and host add refuse, before any DNS write or disk,
// what cannot boot, each error naming the bad value and the fix: arm64 with UEFI HTTP
// boot, Secure Boot or KVM on a hypervisor of unknown architecture, arm64 with a
// distribution whose installer is amd64's only, Secure Boot with a distribution Debian
// did not sign, and --txt arch=.
func TestPlanRefusesUnbootable(t *testing.T) {
	e := newEnv(t, "default")
	hv := hvtest.NewFake()
	o := e.orchestrator(t, hv)
	arm := virt.ArchARM64
	tests := []struct {
		name string
		r    orchestrator.Request
		want []string
	}{
		{"arm64 HTTP boot", orchestrator.Request{Distro: "bookworm", Arch: arm, Netboot: orchestrator.NetbootHTTP}, []string{"--netboot http", "arm64 VMs netboot by PXE", "--netboot pxe"}},
		{"arm64 Secure Boot", orchestrator.Request{Distro: "bookworm", Arch: arm, Firmware: config.FirmwareEFISecure}, []string{"efi-secure", "Secure Boot is not supported for aarch64 VMs", "--firmware efi"}},
		{"arm64 jammy", orchestrator.Request{Distro: "jammy", Arch: arm}, []string{"--distro jammy", "amd64", "bookworm", "rocky9"}},
		{"arm64 xenial", orchestrator.Request{Distro: "xenial", Arch: arm}, []string{"--distro xenial"}},
		{"arm64 noble", orchestrator.Request{Distro: "noble", Arch: arm}, []string{"--distro noble"}},
		{"txt arch", orchestrator.Request{Distro: "bookworm", Vars: []inventory.Var{{Key: "arch", Value: "aarch64"}}}, []string{"--txt arch=", "--arch"}},
		{"txt arch x86", orchestrator.Request{Distro: "bookworm", Vars: []inventory.Var{{Key: "arch", Value: "x86_64"}}}, []string{"--txt arch=", "--arch"}},
		{"Secure Boot rocky9", orchestrator.Request{Distro: "rocky9", Firmware: config.FirmwareEFISecure}, []string{"--distro rocky9", "Debian", "bookworm, trixie", "--firmware efi"}},
		{"Secure Boot noble", orchestrator.Request{Distro: "noble", Firmware: config.FirmwareEFISecure}, []string{"--distro noble", "bookworm, trixie"}},
		{"Secure Boot xenial", orchestrator.Request{Distro: "xenial", Firmware: config.FirmwareEFISecure}, []string{"--distro xenial"}},
		{"Secure Boot HTTP boot", orchestrator.Request{Distro: "bookworm", Firmware: config.FirmwareEFISecure, Netboot: orchestrator.NetbootHTTP}, []string{"Secure Boot chain loads over TFTP only", "--netboot pxe", "--firmware efi"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Name, tt.r.VLAN, tt.r.IPv4 = "bad"+strconv.Itoa(i), 135, netip.AddrFrom4([4]byte{192, 0, 2, byte(150 + i)})
			_, err := o.Create(t.Context(), tt.r)
			if !errors.Is(err, orchestrator.ErrInvalid) {
				t.Fatalf("Create = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if got := e.records(t, tt.r.Name+".example.com.", dns.TypeTXT); len(got) > 0 {
				t.Errorf("refused create wrote TXT %v", got)
			}
			if _, err := hv.Get(t.Context(), tt.r.Name); !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("refused create left a domain: %v", err)
			}
		})
	}
	t.Run("host add Secure Boot fedora", func(t *testing.T) {
		mac, _ := net.ParseMAC("00:25:90:96:c4:ab")
		_, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "sbfedora", MAC: mac, IPv4: netip.MustParseAddr("192.0.2.149"), Distro: "fedora", Firmware: config.FirmwareEFISecure})
		if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "--distro fedora") {
			t.Errorf("AddHost = %v, want ErrInvalid naming --distro fedora", err)
		}
		if got := e.records(t, "sbfedora.example.com.", dns.TypeTXT); len(got) > 0 {
			t.Errorf("refused host add wrote TXT %v", got)
		}
	})
	t.Run("host add arm64 jammy", func(t *testing.T) {
		mac, _ := net.ParseMAC("00:25:90:96:c4:ac")
		_, err := o.AddHost(t.Context(), orchestrator.HostRequest{Name: "armjammy", MAC: mac, IPv4: netip.MustParseAddr("192.0.2.148"), Distro: "jammy", Vars: []inventory.Var{{Key: "arch", Value: "aarch64"}}})
		if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "TXT arch=aarch64 --distro jammy") || !strings.Contains(err.Error(), "bookworm") {
			t.Errorf("AddHost = %v, want ErrInvalid naming arch=aarch64 and --distro jammy", err)
		}
		if got := e.records(t, "armjammy.example.com.", dns.TypeTXT); len(got) > 0 {
			t.Errorf("refused host add wrote TXT %v", got)
		}
	})
	// reinstall keeps the intent's firmware= and arch=: a new distribution must boot
	// with them, and a refused one leaves the TXT as it was.
	t.Run("reinstall", func(t *testing.T) {
		if _, err := o.Create(t.Context(), orchestrator.Request{Name: "rearm", VLAN: 135, IPv4: netip.MustParseAddr("192.0.2.146"), Distro: "bookworm", Arch: arm}); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Create(t.Context(), orchestrator.Request{Name: "resb", VLAN: 135, IPv4: netip.MustParseAddr("192.0.2.147"), Distro: "bookworm", Firmware: config.FirmwareEFISecure}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct{ name, distro, want string }{
			{"rearm", "noble", "TXT arch=aarch64 --distro noble"},
			{"resb", "rocky9", "TXT firmware=efi-secure --distro rocky9"},
		} {
			before := e.records(t, tt.name+".example.com.", dns.TypeTXT)
			_, err := o.Reinstall(t.Context(), tt.name, tt.distro, "", nil)
			if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Reinstall %s --distro %s = %v, want ErrInvalid saying %q", tt.name, tt.distro, err, tt.want)
			}
			if after := e.records(t, tt.name+".example.com.", dns.TypeTXT); !slices.Equal(before, after) {
				t.Errorf("refused reinstall changed TXT %v to %v", before, after)
			}
		}
		if _, err := o.Reinstall(t.Context(), "rearm", "rocky9", "", nil); err != nil {
			t.Errorf("reinstall of an aarch64 VM with rocky9: %v", err)
		}
	})
	t.Run("arm64 trixie, Secure Boot trixie", func(t *testing.T) {
		for i, r := range []orchestrator.Request{{Distro: "trixie", Arch: arm}, {Distro: "rocky9", Arch: arm}, {Distro: "trixie", Firmware: config.FirmwareEFISecure}} {
			r.Name, r.VLAN, r.IPv4 = "ok"+strconv.Itoa(i), 135, netip.AddrFrom4([4]byte{192, 0, 2, byte(140 + i)})
			if _, err := o.Plan(t.Context(), r); err != nil {
				t.Errorf("Plan %+v: %v", r, err)
			}
		}
	})
}

// TestPlanARM64KVM: an aarch64 VM with libvirt.domain_type kvm is refused in the plan,
// naming libvirt.domain_type and qemu, since KVM runs guests of the hypervisor's own
// architecture only and vmprov cannot tell the hypervisor's.
func TestPlanARM64KVM(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:53", "default")
	cfg.Libvirt.DomainType = "kvm"
	o, err := orchestrator.New(orchestrator.Config{Config: cfg, DNS: dnstestFake(), Hypervisor: hvtest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Plan(t.Context(), orchestrator.Request{Name: "armkvm", IPv4: netip.MustParseAddr("192.0.2.14"), Distro: "bookworm", Arch: virt.ArchARM64})
	if !errors.Is(err, orchestrator.ErrInvalid) || !strings.Contains(err.Error(), "libvirt.domain_type") || !strings.Contains(err.Error(), "qemu") {
		t.Errorf("Plan = %v, want ErrInvalid naming libvirt.domain_type and qemu", err)
	}
	if _, err := o.Plan(t.Context(), orchestrator.Request{Name: "x86kvm", IPv4: netip.MustParseAddr("192.0.2.15"), Distro: "bookworm"}); err != nil {
		t.Errorf("x86_64 with kvm: %v", err)
	}
}
