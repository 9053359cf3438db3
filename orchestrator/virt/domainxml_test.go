package virt_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vmprov/vmprov/internal/golden"
	"github.com/vmprov/vmprov/orchestrator/virt"
)

// ipv4Spec is seed 000's VM: VLAN 135, 192.168.35.172 → 02:04:06:08:73:ac on br135.
func ipv4Spec() virt.DomainSpec {
	return virt.DomainSpec{
		Name:      "test-centos7",
		Type:      "kvm",
		MemoryMiB: 2048,
		VCPUs:     2,
		MAC:       "02:04:06:08:73:AC",
		Bridge:    "br135",
		DiskPath:  "/var/lib/libvirt/images/test-centos7.qcow2",
		Meta:      virt.Metadata{VLAN: 135, Distro: "core", FQDN: "test-centos7.example.com."},
	}
}

func goldenSpecs() map[string]virt.DomainSpec {
	v6 := ipv4Spec()
	v6.Name, v6.Type, v6.MAC = "test-v6only", "qemu", "2a:4a:6a:74:55:06"
	v6.DiskPath = "/var/lib/libvirt/images/test-v6only.qcow2"
	v6.Meta = virt.Metadata{VLAN: 135, Distro: "xenial", FQDN: "test-v6only.example.com."}

	rom := ipv4Spec()
	rom.ROMFile = "/usr/share/vmprov/ipxe/1af41000.rom"
	rom.Emulator = "/usr/bin/qemu-system-x86_64"

	efi := ipv4Spec()
	efi.Firmware, efi.Machine = virt.FirmwareEFI, "q35"

	efiPXE := ipv4Spec()
	efiPXE.Firmware, efiPXE.ROMDisabled = virt.FirmwareEFI, true
	// create --netboot http: OVMF without PXE options takes UEFI HTTP boot.
	efiHTTP := ipv4Spec()
	efiHTTP.Firmware, efiHTTP.ROMDisabled, efiHTTP.Netboot = virt.FirmwareEFI, true, virt.NetbootHTTP
	// An IPv6-only VLAN: OVMF skips IPv4 PXE.
	efiV6 := v6
	efiV6.Firmware, efiV6.ROMDisabled, efiV6.NoIPv4 = virt.FirmwareEFI, true, true
	// A network-first VM (create --boot network,hd) boots like bare metal.
	networkFirst := ipv4Spec()
	networkFirst.Boot = []string{virt.BootNetwork, virt.BootDisk}
	efiSecure := ipv4Spec()
	efiSecure.Firmware, efiSecure.ROMDisabled = virt.FirmwareEFISecure, true
	// An IPv6-only Secure Boot VM: OVMF with Secure Boot skips IPv4 PXE too.
	efiSecureV6 := v6
	efiSecureV6.Firmware, efiSecureV6.ROMDisabled, efiSecureV6.NoIPv4 = virt.FirmwareEFISecure, true, true
	// An aarch64 VM under TCG (create --arch aarch64): AAVMF on virt, PXE
	// without an option ROM.
	arm64 := ipv4Spec()
	arm64.Type, arm64.Arch, arm64.Firmware = "qemu", virt.ArchARM64, virt.FirmwareEFI
	arm64.Boot = []string{virt.BootNetwork, virt.BootDisk}
	return map[string]virt.DomainSpec{"ipv4": ipv4Spec(), "ipv6only": v6, "rom": rom, "efi": efi, "efi-pxe": efiPXE, "network-first": networkFirst,
		"efi-http": efiHTTP, "efi-ipv6only": efiV6, "efi-secure": efiSecure, "efi-secure-ipv6only": efiSecureV6, "arm64": arm64}
}

func TestBuildDomainXMLGolden(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			got, err := virt.BuildDomainXML(spec)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".xml"), []byte(got))
		})
	}
}

// TestBuildParseRoundTrip: what BuildDomainXML writes, ParseDomain reads back.
func TestBuildParseRoundTrip(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			x, err := virt.BuildDomainXML(spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := virt.ParseDomain(x)
			if err != nil {
				t.Fatal(err)
			}
			boot := spec.Boot
			if boot == nil {
				boot = virt.DefaultBoot()
			}
			want := virt.Domain{Name: spec.Name, XML: x, Meta: spec.Meta, MAC: strings.ToLower(spec.MAC),
				Bridge: spec.Bridge, DiskPath: spec.DiskPath, Boot: boot, MemoryMiB: uint64(spec.MemoryMiB), VCPUs: spec.VCPUs}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseDomain (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildDomainXMLRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*virt.DomainSpec)
		want   string
	}{
		{"empty name", func(s *virt.DomainSpec) { s.Name = "" }, `name ""`},
		{"slash in name", func(s *virt.DomainSpec) { s.Name = "a/b" }, `name "a/b"`},
		{"type xen", func(s *virt.DomainSpec) { s.Type = "xen" }, `type "xen" is not kvm or qemu`},
		{"no memory", func(s *virt.DomainSpec) { s.MemoryMiB = 0 }, "memory 0 MiB"},
		{"no vcpus", func(s *virt.DomainSpec) { s.VCPUs = 0 }, "0 vcpus"},
		{"bad mac", func(s *virt.DomainSpec) { s.MAC = "02:04:06" }, `mac "02:04:06"`},
		{"multicast mac", func(s *virt.DomainSpec) { s.MAC = "01:00:5e:00:00:01" }, "not a unicast"},
		{"no bridge", func(s *virt.DomainSpec) { s.Bridge = "" }, `bridge ""`},
		{"relative disk", func(s *virt.DomainSpec) { s.DiskPath = "x.qcow2" }, `disk path "x.qcow2"`},
		{"relative rom", func(s *virt.DomainSpec) { s.ROMFile = "1af41000.rom" }, `rom path "1af41000.rom"`},
		{"relative emulator", func(s *virt.DomainSpec) { s.Emulator = "qemu" }, `emulator path "qemu"`},
		{"rom file and rom disabled", func(s *virt.DomainSpec) { s.ROMFile, s.ROMDisabled = "/x.rom", true }, "option ROM disabled"},
		{"firmware", func(s *virt.DomainSpec) { s.Firmware = "uefi" }, `firmware "uefi"`},
		{"netboot tftp", func(s *virt.DomainSpec) { s.Firmware, s.Netboot = virt.FirmwareEFI, "tftp" }, `netboot "tftp" is not pxe or http`},
		{"http boot with bios", func(s *virt.DomainSpec) { s.Netboot = virt.NetbootHTTP }, "UEFI HTTP boot needs UEFI firmware"},
		{"secure boot on i440FX", func(s *virt.DomainSpec) { s.Firmware, s.Machine = virt.FirmwareEFISecure, "pc" }, "needs SMM"},
		{"arch", func(s *virt.DomainSpec) { s.Arch = "arm64" }, `arch "arm64" is not x86_64 or aarch64`},
		{"aarch64 with SeaBIOS", func(s *virt.DomainSpec) { s.Arch = virt.ArchARM64 }, "UEFI firmware (AAVMF) only"},
		{"aarch64 with Secure Boot", func(s *virt.DomainSpec) { s.Arch, s.Firmware = virt.ArchARM64, virt.FirmwareEFISecure }, "Secure Boot is not supported for aarch64 VMs"},
		{"aarch64 with an x86 ROM", func(s *virt.DomainSpec) {
			s.Arch, s.Firmware, s.ROMFile = virt.ArchARM64, virt.FirmwareEFI, "/usr/lib/ipxe/qemu/efi-virtio.rom"
		}, "cannot load the option ROM"},
		{"vlan 0", func(s *virt.DomainSpec) { s.Meta.VLAN = 0 }, "vlan 0"},
		{"vlan 4095", func(s *virt.DomainSpec) { s.Meta.VLAN = 4095 }, "vlan 4095"},
		{"boot from cdrom", func(s *virt.DomainSpec) { s.Boot = []string{"cdrom", "hd"} }, `boot device "cdrom"`},
		{"boot twice from network", func(s *virt.DomainSpec) { s.Boot = []string{"network", "network"} }, `"network" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ipv4Spec()
			tt.change(&s)
			_, err := virt.BuildDomainXML(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildDomainXML error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseDomain(t *testing.T) {
	tests := []struct {
		name    string
		file    string // testdata file holding the XML
		want    virt.Domain
		wantErr string
	}{
		{
			// As libvirt 9.0's qemu driver returns a running vmprov domain.
			name: "live xml from libvirt",
			file: "parse-live.xml",
			want: virt.Domain{Name: "web1", MAC: "02:04:06:08:73:ac", Bridge: "br135",
				DiskPath: "/var/lib/libvirt/images/web1.qcow2", Boot: []string{"hd", "network"},
				Meta: virt.Metadata{VLAN: 135, Distro: "core", FQDN: "web1.example.com."}, MemoryMiB: 1024, VCPUs: 1},
		},
		{
			name: "foreign domain has zero metadata",
			file: "parse-foreign.xml",
			want: virt.Domain{Name: "test", MAC: "aa:bb:cc:dd:ee:ff", DiskPath: "/guest/diskimage1", Boot: []string{"hd"}, MemoryMiB: 8192, VCPUs: 2},
		},
		{
			name: "default namespace form",
			file: "parse-default-ns.xml",
			want: virt.Domain{Name: "dflt", Meta: virt.Metadata{VLAN: 7}},
		},
		{name: "bad vlan", file: "parse-bad-vlan.xml", wantErr: `vlan "x"`},
		{name: "no name", file: "parse-no-name.xml", wantErr: "no <name>"},
		{name: "not a domain", file: "parse-network.xml", wantErr: "parse domain xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := virt.ParseDomain(string(b))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDomain error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(virt.Domain{}, "XML")); diff != "" {
				t.Errorf("ParseDomain (-want +got):\n%s", diff)
			}
			if got.XML != string(b) {
				t.Error("ParseDomain did not keep the XML it parsed")
			}
		})
	}
}

// FuzzParseDomain feeds ParseDomain the domain XML it may read back from a
// hypervisor. It must never panic, and what it accepts must parse the same
// way again.
func FuzzParseDomain(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, x string) {
		d, err := virt.ParseDomain(x)
		if err != nil {
			return
		}
		if d.Name == "" {
			t.Errorf("ParseDomain accepted a domain without a name")
		}
		if d.Meta.VLAN != 0 && (d.Meta.VLAN < 1 || d.Meta.VLAN > 4094) {
			t.Errorf("ParseDomain accepted vlan %d", d.Meta.VLAN)
		}
		again, err := virt.ParseDomain(x)
		if err != nil || !cmp.Equal(d, again) {
			t.Errorf("ParseDomain is not deterministic: %v, %+v vs %+v", err, d, again)
		}
	})
}
