package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// explainConfig is a configuration with the boot service of the lab
// (DHCP on br135, HTTP on 192.0.2.1:8080, TFTP) and a real BIND.
func explainConfig(t *testing.T) string {
	t.Helper()
	cfg, _ := explainConfigBIND(t)
	return cfg
}

// explainConfigBIND is explainConfig that also returns its BIND.
func explainConfigBIND(t *testing.T) (string, *lab.BIND) {
	t.Helper()
	b := lab.BINDForTest(t)
	dir := t.TempDir()
	_, _, secret := b.TSIG()
	secretFile := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "serve", "tftp"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vmprov.yaml")
	text := fmt.Sprintf(`dns:
  server: %s
  zone: example.com.
  tsig: {name: vmprov., algorithm: hmac-sha256, secret_file: %s}
libvirt: {uri: "test:///default", domain_type: qemu, pool: default-pool}
boot: {url: "http://192.0.2.1:8080", url_v6: "http://[2001:db8:135::1]:8080"}
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64", dns_servers: [192.0.2.1]}
serve:
  interfaces: [br135]
  dir: %s
bsdp:
  images: [{id: 0x81000089, name: The-Image, bootfile: mactel64.efi}]
`, b.Addr(), secretFile, filepath.Join(dir, "serve"))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, b
}

// explainJSON runs `vmprov explain ARGS -o json` and decodes its output.
func explainJSON(t *testing.T, cfg string, args ...string) (Explanation, int, string) {
	t.Helper()
	code, out, errs := vmprov(t, append([]string{"--config", cfg, "explain", "-o", "json"}, args...)...)
	var x Explanation
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("explain %v: output is not JSON (exit %d, %s): %v\n%s", args, code, errs, err, out)
	}
	return x, code, errs
}

func TestExplain(t *testing.T) {
	cfg := explainConfig(t)
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })
	if code, out, errs := vmprov(t, "--config", cfg, "create", "--name", "ex1", "--ip", "192.0.2.10", "--distro", "core", "--txt", "puppet_environment=e2e"); code != 0 {
		t.Fatalf("create: exit %d: %s%s", code, out, errs)
	}
	t.Cleanup(func() { vmprov(t, "--config", cfg, "destroy", "ex1") })
	if code, out, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "sm1", "--mac", "00:25:90:96:c4:9a", "--ip", "192.0.2.55", "--distro", "bookworm"); code != 0 {
		t.Fatalf("host add: exit %d: %s%s", code, out, errs)
	}
	t.Cleanup(func() { vmprov(t, "--config", cfg, "host", "remove", "sm1") })

	t.Run("vm by name, iPXE", func(t *testing.T) {
		x, code, errs := explainJSON(t, cfg, "ex1")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if x.Host == nil || x.Host.FQDN != "ex1.example.com." || x.Host.MAC != "02:04:06:08:72:0a" {
			t.Fatalf("host = %+v", x.Host)
		}
		if !strings.Contains(x.Host.IdentifiedBy, "strict MAC 02:04:06:08:72:0a → VLAN 135, 192.0.2.10") ||
			!strings.Contains(x.Host.ConfirmedBy, "PTR 10.2.0.192.in-addr.arpa. → ex1.example.com.") {
			t.Errorf("identified by %q, confirmed by %q", x.Host.IdentifiedBy, x.Host.ConfirmedBy)
		}
		if x.DHCPv4 == nil || x.DHCPv4.Type != "ACK" || x.DHCPv4.Address != "192.0.2.10" || x.DHCPv4.File != "http://192.0.2.1:8080/boot.ipxe" {
			t.Errorf("dhcp4 = %+v", x.DHCPv4)
		}
		if x.DHCPv6 == nil || x.DHCPv6.Type != "REPLY" || x.DHCPv6.Address != "2001:db8:135:0:4:6ff:fe08:720a" || x.DHCPv6.File != "http://[2001:db8:135::1]:8080/boot.ipxe" {
			t.Errorf("dhcp6 = %+v", x.DHCPv6)
		}
		var paths []string
		var pxedust string
		for _, f := range x.HTTP {
			paths = append(paths, f.Path+" "+f.Status)
			if f.Path == "/pxedust" {
				pxedust = f.Body
			}
		}
		want := []string{"/mac/02-04-06-08-72-0a/ipxe 404", "/pxedust 200", "/bootstrap/example/default.ipxe 200", "/bootstrap/install/default.ipxe 200"}
		if strings.Join(paths, ", ") != strings.Join(want, ", ") {
			t.Errorf("HTTP chain = %q, want %q", paths, want)
		}
		if !strings.Contains(pxedust, "set puppet_environment e2e") || !strings.Contains(pxedust, "chain --replace --autofree http://192.0.2.1:8080/bootstrap/example/default.ipxe") {
			t.Errorf("/pxedust body:\n%s", pxedust)
		}
		if x.Install == nil || x.Install.Kernel != "http://192.0.2.1:8080/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz" ||
			!strings.Contains(x.Install.Cmdline, "inst.ks=http://192.0.2.1:8080/bootstrap/install/core/x86_64/ks.cfg") ||
			!strings.Contains(x.Install.Cmdline, "puppet_environment=e2e") {
			t.Errorf("install = %+v", x.Install)
		}
		if len(x.TFTP) != 2 || x.TFTP[0].Status != "sent" || !strings.Contains(x.TFTP[0].Body, "menuentry") {
			t.Errorf("tftp = %+v", x.TFTP)
		}
	})

	for _, tt := range []struct {
		firmware, file, next, vendor, file6 string
	}{
		{"bios", "undionly.kpxe", "192.0.2.1", "", "tftp://[2001:db8:135::1]/undionly.kpxe"},
		{"efi", "snponly.efi", "192.0.2.1", "", "tftp://[2001:db8:135::1]/snponly.efi"},
		{"efi-http", "http://192.0.2.1:8080/ipxe/snponly.efi", "", "HTTPClient", "http://[2001:db8:135::1]:8080/ipxe/snponly.efi"},
		{"arm64", "bootnetaa64.efi", "192.0.2.1", "", "tftp://[2001:db8:135::1]/bootnetaa64.efi"},
		// arm64's loader is the signed chain's shim, which HTTP boot is
		// not handed: its GRUB goes on over TFTP only.
		{"arm64-http", "", "", "", ""},
		{"none", "", "", "", ""},
	} {
		t.Run("firmware "+tt.firmware, func(t *testing.T) {
			x, code, errs := explainJSON(t, cfg, "--mac", "02:04:06:08:72:0a", "--firmware", tt.firmware)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if d := x.DHCPv4; d == nil || d.File != tt.file || d.NextServer != tt.next || d.VendorClass != tt.vendor {
				t.Errorf("dhcp4 = %+v, want file %q from %q, vendor class %q", d, tt.file, tt.next, tt.vendor)
			}
			if d := x.DHCPv6; d == nil || d.File != tt.file6 {
				t.Errorf("dhcp6 = %+v, want boot file URL %q", d, tt.file6)
			}
		})
	}

	t.Run("bare metal by _mac CNAME", func(t *testing.T) {
		x, code, errs := explainJSON(t, cfg, "sm1", "--firmware", "efi")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if x.Host == nil || x.Host.MAC != "00:25:90:96:c4:9a" || !strings.Contains(x.Host.IdentifiedBy, "_mac CNAME 00-25-90-96-c4-9a._mac.example.com. → sm1.example.com.") {
			t.Errorf("host = %+v", x.Host)
		}
		if x.DHCPv4 == nil || x.DHCPv4.Address != "192.0.2.55" || x.DHCPv4.File != "snponly.efi" {
			t.Errorf("dhcp4 = %+v", x.DHCPv4)
		}
		if x.Install == nil || !strings.HasSuffix(x.Install.AnswerFile, "/bootstrap/install/bookworm/x86_64/preseed.cfg") {
			t.Errorf("install = %+v", x.Install)
		}
	})

	// A host that boots with Secure Boot (host add --firmware efi-secure)
	// gets the signed shim instead of iPXE, no UEFI HTTP boot, and signed
	// GRUB's grub.cfg loads the kernel over TFTP (docs/design.md, "Secure
	// Boot").
	t.Run("secure boot", func(t *testing.T) {
		if code, out, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "sb1", "--mac", "00:25:90:96:c4:9c", "--ip", "192.0.2.56", "--distro", "bookworm", "--firmware", "efi-secure"); code != 0 {
			t.Fatalf("host add: exit %d: %s%s", code, out, errs)
		}
		t.Cleanup(func() { vmprov(t, "--config", cfg, "host", "remove", "sb1") })
		x, code, errs := explainJSON(t, cfg, "sb1", "--firmware", "efi")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if d := x.DHCPv4; d == nil || d.File != "bootnetx64.efi" || d.NextServer != "192.0.2.1" {
			t.Errorf("dhcp4 = %+v, want the shim from 192.0.2.1", d)
		}
		rows := map[string]string{}
		for _, r := range x.Boot {
			rows[r.Firmware] = r.DHCPv4 + r.TFTP
		}
		for fw, want := range map[string]string{"efi": "bootnetx64.efi (TFTP from 192.0.2.1) (Secure Boot chain", "efi-http": "TFTP only",
			"ipxe": "boot.ipxe", "grub-signed": "per-host grub-signed configuration"} {
			if !strings.Contains(rows[fw], want) {
				t.Errorf("boot table %s: %q, want %q", fw, rows[fw], want)
			}
		}
		var signed *explainFile
		for i, f := range x.TFTP {
			if f.Path == "debian-installer/amd64/grub/grub.cfg" {
				signed = &x.TFTP[i]
			}
		}
		if signed == nil || signed.Status != "sent" || !strings.Contains(signed.Body, "\tlinux /assets/debian/dists/bookworm/") || strings.Contains(signed.Body, "(http,") {
			t.Errorf("tftp = %+v, want signed GRUB's grub.cfg loading over TFTP", x.TFTP)
		}
	})

	// An arm64 host (TXT arch=aarch64) boots Debian's signed chain without
	// Secure Boot: serve.loaders' shim, then signed GRUB's grub.cfg under the
	// arm64 prefix, which loads the arm64 installer over TFTP.
	t.Run("arm64", func(t *testing.T) {
		if code, out, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "arm1", "--mac", "00:25:90:96:c4:9d", "--ip", "192.0.2.57", "--distro", "bookworm", "--txt", "arch=aarch64"); code != 0 {
			t.Fatalf("host add: exit %d: %s%s", code, out, errs)
		}
		t.Cleanup(func() { vmprov(t, "--config", cfg, "host", "remove", "arm1") })
		x, code, errs := explainJSON(t, cfg, "arm1", "--firmware", "arm64")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if d := x.DHCPv4; d == nil || d.File != "bootnetaa64.efi" || d.NextServer != "192.0.2.1" {
			t.Errorf("dhcp4 = %+v, want the shim from 192.0.2.1", d)
		}
		for _, r := range x.Boot {
			if r.Firmware == "arm64" && (!strings.Contains(r.DHCPv4, "bootnetaa64.efi (TFTP from 192.0.2.1)") || strings.Contains(r.DHCPv4, "Secure Boot")) {
				t.Errorf("boot table arm64: %q, want the shim, not as a Secure Boot step", r.DHCPv4)
			}
		}
		var signed *explainFile
		for i, f := range x.TFTP {
			if f.Path == "debian-installer/arm64/grub/grub.cfg" {
				signed = &x.TFTP[i]
			}
		}
		if signed == nil || signed.Status != "sent" || !strings.Contains(signed.Body, "\tlinux /assets/debian/dists/bookworm/main/installer-arm64/") ||
			!strings.Contains(signed.Body, "'console=ttyAMA0,115200'") || strings.Contains(signed.Body, "(http,") {
			t.Errorf("tftp = %+v, want the arm64 signed GRUB's grub.cfg loading the arm64 installer over TFTP", x.TFTP)
		}
	})

	t.Run("mac bsdp", func(t *testing.T) {
		x, code, errs := explainJSON(t, cfg, "--mac", "00:25:90:96:c4:9a", "--firmware", "bsdp")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if x.DHCPv4 == nil || x.DHCPv4.Type != "ACK" || len(x.DHCPv4.BSDPImages) != 1 || !strings.Contains(x.DHCPv4.BSDPImages[0], "The-Image") {
			t.Errorf("dhcp4 = %+v", x.DHCPv4)
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown MAC", []string{"--mac", "00:11:22:33:44:55"}, []string{"00-11-22-33-44-55._mac.example.com. has no CNAME", "vmprov host add --mac"}},
		{"strict MAC without records", []string{"--mac", "02:04:06:08:72:63"}, []string{"no PTR record 99.2.0.192.in-addr.arpa."}},
		{"no such name", []string{"nosuch"}, []string{"nosuch.example.com. has no A or AAAA record"}},
		{"address of no host", []string{"--ip", "192.0.2.77"}, []string{"no PTR record 77.2.0.192.in-addr.arpa."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x, code, errs := explainJSON(t, cfg, tt.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(x.Unknown, w) || !strings.Contains(errs, w) {
					t.Errorf("unknown = %q, stderr %q: want %q in both", x.Unknown, errs, w)
				}
			}
			if x.Host != nil || x.DHCPv4 != nil {
				t.Errorf("an unknown client got answers: %+v", x)
			}
		})
	}

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"explain"}, {"explain", "ex1", "--mac", "02:04:06:08:72:0a"}, {"explain", "ex1", "--firmware", "bogus"}, {"explain", "--mac", "zz"}} {
			code, _, errs := vmprov(t, append([]string{"--config", cfg}, args...)...)
			if code != 2 || errs == "" {
				t.Errorf("%v: exit %d, %q; want 2 with a message", args, code, errs)
			}
		}
	})

	t.Run("text", func(t *testing.T) {
		code, out, errs := vmprov(t, "--config", cfg, "explain", "ex1")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, w := range []string{"host:      ex1.example.com.", "boot file:   http://192.0.2.1:8080/boot.ipxe", "    | #!ipxe", "kernel:      http://192.0.2.1:8080/assets/centos/7/"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	})
}

// TestExplainInstalled: for a host in build state installed, explain shows
// the local-boot answer of every firmware: the address without a boot file
// for PXE firmware, the iPXE exit script from /pxedust, the GRUB and
// PXELINUX files that boot the local disk, and no installer.
func TestExplainInstalled(t *testing.T) {
	cfg, b := explainConfigBIND(t)
	if code, out, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "sm9", "--mac", "00:25:90:96:c4:a9", "--ip", "192.0.2.59", "--distro", "bookworm"); code != 0 {
		t.Fatalf("host add: exit %d: %s%s", code, out, errs)
	}
	t.Cleanup(func() { vmprov(t, "--config", cfg, "host", "remove", "sm9") })
	// vmprov serve writes installed when the installer calls back; here
	// the test writes the TXT record as serve would.
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Lookup(t.Context(), "sm9.example.com.", dns.TypeTXT)
	if err != nil || len(a.Records) != 1 {
		t.Fatalf("TXT of sm9: %+v, %v", a, err)
	}
	old := a.Records[0].(*dns.TXT)
	next := &dns.TXT{Hdr: old.Hdr, Txt: nil}
	for _, s := range old.Txt {
		if s == "state=install" {
			s = "state=installed"
		}
		next.Txt = append(next.Txt, s)
	}
	if err := c.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.com.", RRsetEquals: []dns.RR{old},
		RemoveRRset: []dnsupdate.RRKey{{Name: "sm9.example.com.", Type: dns.TypeTXT}}, Add: []dns.RR{next}}); err != nil {
		t.Fatal(err)
	}

	x, code, errs := explainJSON(t, cfg, "sm9", "--firmware", "efi")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if x.Host == nil || x.Host.State != "installed" {
		t.Errorf("host = %+v, want state installed", x.Host)
	}
	if d := x.DHCPv4; d == nil || d.Type != "ACK" || d.Address != "192.0.2.59" || d.File != "" || d.NextServer != "" {
		t.Errorf("dhcp4 = %+v, want the address and no boot file", d)
	}
	for _, row := range x.Boot {
		got := row.DHCPv4 + row.TFTP
		switch row.Firmware {
		case "ipxe":
			if got != "http://192.0.2.1:8080/boot.ipxe" {
				t.Errorf("boot table %s: %q, want the boot script URL", row.Firmware, got)
			}
		case "grub", "pxelinux", "grub-signed":
			if !strings.Contains(got, "boots the local disk") {
				t.Errorf("boot table %s: %q, want the local-boot file", row.Firmware, got)
			}
		case "none":
		default:
			if !strings.Contains(got, "local disk: no boot file") {
				t.Errorf("boot table %s: %q, want no boot file", row.Firmware, got)
			}
		}
	}
	for _, f := range x.TFTP {
		if f.Status != "sent" || !strings.Contains(f.Body, "installed, boot the local disk") {
			t.Errorf("tftp %s: %s %q", f.Path, f.Status, f.Body)
		}
	}
	var pxedust string
	for _, f := range x.HTTP {
		if f.Path == "/pxedust" {
			pxedust = f.Body
		}
	}
	if !strings.Contains(pxedust, "\nexit 1\n") || strings.Contains(pxedust, "chain") {
		t.Errorf("/pxedust body:\n%s\nwant the exit script", pxedust)
	}
	if x.Install != nil {
		t.Errorf("install = %+v, want none for an installed host", x.Install)
	}
	code, out, errs := vmprov(t, "--config", cfg, "explain", "sm9", "--firmware", "bios")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{"state:     installed", "bios        dhcp4: - local disk: no boot file (installed)", "| exit 1", "note: installed: every firmware boots the local disk"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "\ninstall (") {
		t.Errorf("output shows an installer for an installed host:\n%s", out)
	}
}
