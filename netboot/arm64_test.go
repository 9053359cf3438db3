package netboot_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/templates"
)

// TestAnswerARM64 follows an arm64 UEFI machine (AAVMF, DHCP arch 11) through the
// decision: its PXE request, however it names its architecture, gets Debian's netboot
// shim bootnetaa64.efi from serve.loaders' default (or the configured loader), the
// signed GRUB the shim starts gets the host's grub.cfg (not as a Secure Boot step), and
// that loads the arm64 installer of a host whose TXT says arch=aarch64 over TFTP, with
// the PL011 console. Installed, it gets no loader.
func TestAnswerARM64(t *testing.T) {
	cfg := answerConfig(t)
	b := serveconfig.Booter(cfg)
	intent := inventory.Intent{{Key: "distribution", Value: "bookworm"}, {Key: "arch", Value: "aarch64"}}
	d := netboot.Decision{Host: inventory.Host{Name: "arm1", FQDN: "arm1.example.com.", MAC: mustMAC("02:04:06:08:72:0b"),
		IPv4: netip.MustParseAddr("192.0.2.11"), Intent: intent}}
	server := netip.MustParseAddr("192.0.2.1")

	for _, s := range []netboot.Signals{
		{VendorClasses: []string{"PXEClient:Arch:00011:UNDI:003000"}, Arch: netboot.ArchUEFIARM64, HasArch: true}, // option 93 and the class, as EDK2 sends
		{Arch: netboot.ArchUEFIARM64, HasArch: true},                                                              // option 61 alone, EDK2 over DHCPv6
	} {
		fw := netboot.Classify(s)
		if fw.String() != "arm64" {
			t.Errorf("Classify(%+v) = %s, want arm64", s, fw)
		}
		a := b.Answer(d, netboot.Query{Firmware: fw, Via: netboot.ViaDHCPv4, Server: server})
		if a.Action != netboot.ActionFile || a.File != "bootnetaa64.efi" || a.TFTPServer != server || a.VendorClass != "" || a.SecureBoot {
			t.Errorf("arm64 PXE over DHCPv4: %+v, want bootnetaa64.efi from TFTP server %s, no vendor class, no Secure Boot", a, server)
		}
	}

	arm64 := netboot.Firmware{Kind: netboot.KindPXE, Arch: netboot.ArchUEFIARM64, HasArch: true}
	own := b
	own.Loaders = map[netboot.Arch]string{netboot.ArchUEFIARM64: "arm64/bootnetaa64.efi"}
	if a := own.Answer(d, netboot.Query{Firmware: arm64, Via: netboot.ViaDHCPv4, Server: server}); a.File != "arm64/bootnetaa64.efi" {
		t.Errorf("serve.loaders {11: arm64/bootnetaa64.efi}: file %q (%s)", a.File, a.Why)
	}

	signed := netboot.Firmware{Kind: netboot.KindSignedGRUB, Arch: netboot.ArchUEFIARM64, HasArch: true}
	a := b.Answer(d, netboot.Query{Firmware: signed, Via: netboot.ViaTFTP})
	if a.Action != netboot.ActionConfig || !a.Installs || a.SecureBoot {
		t.Fatalf("signed GRUB's grub.cfg request: %+v, want the installing configuration, not a Secure Boot step", a)
	}
	cfgText, err := templates.GrubConfig(templates.GrubInput{Host: b.TemplateHost(d, false), TFTP: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := "/assets/debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/"
	for _, want := range []string{"\tlinux " + dir + "linux '", "\tinitrd " + dir + "initrd.gz\n", " 'console=ttyAMA0,115200'",
		"'url=http://192.0.2.1:8080/bootstrap/install/bookworm/aarch64/preseed.cfg' "} {
		if !strings.Contains(string(cfgText), want) {
			t.Errorf("grub.cfg of an aarch64 host lacks %q:\n%s", want, cfgText)
		}
	}

	// No intent: the shim would start signed GRUB, which finds no grub.cfg and waits
	// at its prompt, so the host gets no loader and goes on to its disk.
	bare := netboot.Decision{Host: inventory.Host{Name: "arm2", FQDN: "arm2.example.com.", MAC: mustMAC("02:04:06:08:72:0c"), IPv4: netip.MustParseAddr("192.0.2.12")}}
	for _, q := range []netboot.Query{{Firmware: arm64, Via: netboot.ViaDHCPv4, Server: server}, {Firmware: arm64, Via: netboot.ViaDHCPv6, Server: netip.MustParseAddr("2001:db8:135::1")}} {
		if a := b.Answer(bare, q); a.Action != netboot.ActionNone || !strings.Contains(a.Why, "host arm2.example.com. has no TXT boot intent") || !strings.Contains(a.Why, "GRUB's prompt") || !strings.Contains(a.Why, "bootnetaa64.efi") {
			t.Errorf("arm64 PXE over %s without an intent: %+v, want none: no TXT boot intent, GRUB's prompt", q.Via, a)
		}
	}
	// The same for x64 when serve.loaders names the x64 shim.
	x64 := netboot.Firmware{Kind: netboot.KindPXE, Arch: 7, HasArch: true}
	shimX64 := b
	shimX64.Loaders = map[netboot.Arch]string{7: "bootnetx64.efi"}
	if a := shimX64.Answer(bare, netboot.Query{Firmware: x64, Via: netboot.ViaDHCPv4, Server: server}); a.Action != netboot.ActionNone || !strings.Contains(a.Why, "no TXT boot intent") {
		t.Errorf("x64 PXE with serve.loaders {7: bootnetx64.efi} without an intent: %+v, want none", a)
	}
	if a := b.Answer(bare, netboot.Query{Firmware: x64, Via: netboot.ViaDHCPv4, Server: server}); a.File != "snponly.efi" {
		t.Errorf("x64 PXE with iPXE without an intent: %+v, want snponly.efi (iPXE exits to the disk)", a)
	}

	d.Host.Intent = append(d.Host.Intent, inventory.Var{Key: "state", Value: "installed"})
	if a := b.Answer(d, netboot.Query{Firmware: arm64, Via: netboot.ViaDHCPv4, Server: server}); a.Action != netboot.ActionLocal || a.File != "" {
		t.Errorf("installed arm64 host over DHCPv4: %+v, want local boot without a loader", a)
	}
}
