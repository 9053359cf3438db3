package netboot_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
)

// answerConfig has one IPv4 VLAN and one IPv6-only VLAN, in the lab's
// reverse zones, with the default loaders and a BSDP image.
func answerConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
dns: {zone: example.com., server: "127.0.0.1:53"}
boot: {url: "http://192.0.2.1:8080", url_v6: "http://[2001:db8:135::1]:8080", site: example}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1}
  - {id: 136, ipv6: "2001:db8:135::/64"}
bsdp:
  images: [{id: 0x81000089, name: The-Image, bootfile: mactel64.efi}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// short renders an answer for the table: "-" for none, else the file with
// its TFTP server, echoed vendor class and "+no-pxedhcp" when iPXE is told
// not to wait for ProxyDHCP, "bsdp", "config" or "chain SCRIPT".
func short(a netboot.Answer) string {
	switch a.Action {
	case netboot.ActionFile:
		s := a.File
		if a.TFTPServer.IsValid() {
			s += "@" + a.TFTPServer.String()
		}
		if a.VendorClass != "" {
			s += "+" + a.VendorClass
		}
		if a.NoProxyDHCP {
			s += "+no-pxedhcp"
		}
		return s
	case netboot.ActionBSDP:
		return "bsdp"
	case netboot.ActionConfig:
		return "config"
	case netboot.ActionChain:
		return "chain " + a.Base + " " + a.Script
	case netboot.ActionLocal:
		return "local"
	}
	if a.Why == "" {
		return "- (no reason given)"
	}
	return "-"
}

// TestAnswerTable decides every firmware of the table for hosts identified
// every way DNS identifies them, on an IPv4 VLAN and on an IPv6-only VLAN,
// against real BIND and the fake: the decision depends on the firmware and
// the protocol, never on how the host was found.
func TestAnswerTable(t *testing.T) {
	intent := inventory.Intent{{Key: "filename", Value: "site.ipxe"}, {Key: "distribution", Value: "bookworm"}}
	vm4 := inventory.Host{Name: "vm4", FQDN: "vm4.example.com.", MAC: mustMAC("02:04:06:08:72:0a"), IPv4: netip.MustParseAddr("192.0.2.10"), Intent: intent}
	vm6 := inventory.Host{Name: "vm6", FQDN: "vm6.example.com.", MAC: mustMAC("2a:4a:6a:74:55:06"), IPv6: netip.MustParseAddr("2001:db8:135::284a:6aff:fe74:5506"), Intent: intent}
	metal4 := inventory.Host{Name: "metal4", FQDN: "metal4.example.com.", MAC: mustMAC("00:25:90:96:c4:9a"), IPv4: netip.MustParseAddr("192.0.2.50"), MACRecord: true, Intent: intent}
	metal6 := inventory.Host{Name: "metal6", FQDN: "metal6.example.com.", MAC: mustMAC("00:25:90:96:c4:9b"), IPv6: netip.MustParseAddr("2001:db8:135::50"), MACRecord: true, Intent: intent}
	bare := inventory.Host{Name: "bare", FQDN: "bare.example.com.", MAC: mustMAC("02:04:06:08:72:14"), IPv4: netip.MustParseAddr("192.0.2.20")}
	installed := append(slices.Clone(intent), inventory.Var{Key: "state", Value: "installed"}, inventory.Var{Key: "build_id", Value: "38b6bf72"})
	done4 := inventory.Host{Name: "done4", FQDN: "done4.example.com.", MAC: mustMAC("02:04:06:08:72:1e"), IPv4: netip.MustParseAddr("192.0.2.30"), Intent: installed}
	done6 := inventory.Host{Name: "done6", FQDN: "done6.example.com.", MAC: mustMAC("2a:4a:6a:74:55:07"), IPv6: netip.MustParseAddr("2001:db8:135::284a:6aff:fe74:5507"), Intent: installed}

	// What each firmware gets, by protocol. The IPv6-only VLAN is served
	// by DHCPv6 only, an IPv4 VLAN by DHCPv4; TFTP and HTTP go by the
	// client's address family.
	want4 := map[string]string{
		"bios": "undionly.kpxe@192.0.2.1", "efi": "snponly.efi@192.0.2.1", "efi32": "ipxe-i386.efi@192.0.2.1",
		"efi-http": "http://192.0.2.1:8080/ipxe/snponly.efi+HTTPClient", "arm64": "bootnetaa64.efi@192.0.2.1",
		"arm64-http": "-", "ipxe": "http://192.0.2.1:8080/boot.ipxe+no-pxedhcp",
		"bsdp": "bsdp", "grub": "-", "pxelinux": "-", "grub-signed": "-", "none": "-",
	}
	want6 := map[string]string{
		"bios": "tftp://[2001:db8:135::1]/undionly.kpxe", "efi": "tftp://[2001:db8:135::1]/snponly.efi", "efi32": "tftp://[2001:db8:135::1]/ipxe-i386.efi",
		"efi-http": "http://[2001:db8:135::1]:8080/ipxe/snponly.efi+HTTPClient", "arm64": "tftp://[2001:db8:135::1]/bootnetaa64.efi",
		"arm64-http": "-", "ipxe": "http://[2001:db8:135::1]:8080/boot.ipxe",
		"bsdp": "-", "grub": "-", "pxelinux": "-", "grub-signed": "-", "none": "-",
	}
	wantTFTP := map[string]string{"grub": "config", "pxelinux": "config", "grub-signed": "config"}
	wantHTTP := map[string]string{"ipxe": "chain %s site.ipxe"}

	paths := []struct {
		name   string
		client netboot.Client
		host   inventory.Host
		vlan   int
		v6only bool
	}{
		{"strict MAC", netboot.Client{MAC: vm4.MAC, VLAN: 135}, vm4, 135, false},
		{"FCrDNS of an IPv4 address", netboot.Client{Addr: vm4.IPv4}, vm4, 135, false},
		{"_mac CNAME, IPv4", netboot.Client{MAC: metal4.MAC, VLAN: 135}, metal4, 135, false},
		{"SLAAC MAC", netboot.Client{MAC: vm6.MAC, VLAN: 136}, vm6, 136, true},
		{"FCrDNS of an IPv6 address", netboot.Client{Addr: vm6.IPv6}, vm6, 136, true},
		{"_mac CNAME, IPv6-only", netboot.Client{MAC: metal6.MAC, VLAN: 136}, metal6, 136, true},
	}
	b := serveconfig.Booter(answerConfig(t))
	srv4, srv6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:135::1")
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			be := mk(t)
			var rs []string
			for _, h := range []inventory.Host{vm4, vm6, metal4, metal6, bare, done4, done6} {
				rs = append(rs, hostRecords(h)...)
			}
			load(t, be, rs...)
			p := netboot.NewDNSPolicy(serveconfig.Policy(answerConfig(t), nil), be)
			for _, path := range paths {
				t.Run(path.name, func(t *testing.T) {
					d, err := p.Decide(t.Context(), path.client)
					if err != nil {
						t.Fatalf("Decide: %v", err)
					}
					if d.Host.FQDN != path.host.FQDN || d.VLAN.ID != path.vlan || d.By == "" {
						t.Fatalf("decided %s on VLAN %d (by %q), want %s on VLAN %d", d.Host.FQDN, d.VLAN.ID, d.By, path.host.FQDN, path.vlan)
					}
					for _, fw := range netboot.Firmwares() {
						via, want, srv := netboot.ViaDHCPv4, want4[fw.Name], srv4
						if path.v6only {
							via, want, srv = netboot.ViaDHCPv6, want6[fw.Name], srv6
						}
						got := short(b.Answer(d, netboot.Query{Firmware: fw.Firmware, Via: via, Server: srv}))
						if got != want {
							t.Errorf("%s over %s = %q, want %q", fw.Name, via, got, want)
						}
						for _, vw := range []struct {
							via  netboot.Via
							want map[string]string
						}{{netboot.ViaTFTP, wantTFTP}, {netboot.ViaHTTP, wantHTTP}} {
							want := vw.want[fw.Name]
							switch {
							case want == "":
								want = "-"
							case strings.Contains(want, "%s"):
								want = fmt.Sprintf(want, b.BaseURL(path.v6only))
							}
							a := b.Answer(d, netboot.Query{Firmware: fw.Firmware, Via: vw.via, IPv6: path.v6only})
							if got := short(a); got != want {
								t.Errorf("%s over %s = %q, want %q", fw.Name, vw.via, got, want)
							}
							// The chain and the per-host files hand out the
							// installer: their callers confirm the state.
							if a.Installs != (want != "-") {
								t.Errorf("%s over %s: Installs = %v, want %v", fw.Name, vw.via, a.Installs, want != "-")
							}
						}
					}
				})
			}
			// An installed host boots from its local disk: PXE firmware and
			// HTTP boot get no boot file, Macs no BSDP image, GRUB and
			// PXELINUX their local-boot file, iPXE its DHCP boot file and
			// then the exit script from HTTP. No answer hands out the
			// installer, so none needs a fresh read.
			for _, c := range []struct {
				name   string
				client netboot.Client
				v6only bool
			}{
				{"installed, strict MAC", netboot.Client{MAC: done4.MAC, VLAN: 135}, false},
				{"installed, FCrDNS of an IPv4 address", netboot.Client{Addr: done4.IPv4}, false},
				{"installed, SLAAC MAC", netboot.Client{MAC: done6.MAC, VLAN: 136}, true},
			} {
				t.Run(c.name, func(t *testing.T) {
					d, err := p.Decide(t.Context(), c.client)
					if err != nil {
						t.Fatal(err)
					}
					local4 := map[string]string{"ipxe": want4["ipxe"], "bsdp": "local", "none": "-"}
					local6 := map[string]string{"ipxe": want6["ipxe"], "bsdp": "-", "none": "-"}
					for _, fw := range netboot.Firmwares() {
						via, want, srv := netboot.ViaDHCPv4, local4[fw.Name], srv4
						if c.v6only {
							via, want, srv = netboot.ViaDHCPv6, local6[fw.Name], srv6
						}
						switch fw.Firmware.Kind {
						case netboot.KindPXE, netboot.KindHTTP:
							want = "local"
						case netboot.KindGRUB, netboot.KindPXELinux, netboot.KindSignedGRUB:
							want = "-"
						}
						queries := map[netboot.Query]string{
							{Firmware: fw.Firmware, Via: via, Server: srv}:                want,
							{Firmware: fw.Firmware, Via: netboot.ViaTFTP, IPv6: c.v6only}: map[string]string{"grub": "local", "pxelinux": "local", "grub-signed": "local"}[fw.Name],
							{Firmware: fw.Firmware, Via: netboot.ViaHTTP, IPv6: c.v6only}: map[string]string{"ipxe": "local"}[fw.Name],
						}
						for q, want := range queries {
							if want == "" {
								want = "-"
							}
							a := b.Answer(d, q)
							if got := short(a); got != want {
								t.Errorf("%s over %s = %q, want %q", fw.Name, q.Via, got, want)
							}
							if a.Installs {
								t.Errorf("%s over %s hands out the installer to an installed host: %+v", fw.Name, q.Via, a)
							}
							if a.Action == netboot.ActionLocal && !strings.Contains(a.Why, "is installed") {
								t.Errorf("%s over %s: local boot without saying why: %+v", fw.Name, q.Via, a)
							}
						}
					}
				})
			}
			// A host without a boot intent keeps its DHCP boot file but gets
			// no chain and no per-host file, and the answer says why.
			t.Run("no boot intent", func(t *testing.T) {
				d, err := p.Decide(t.Context(), netboot.Client{Addr: bare.IPv4})
				if err != nil {
					t.Fatal(err)
				}
				ipxe, _ := netboot.ParseFirmware("ipxe")
				if got := short(b.Answer(d, netboot.Query{Firmware: ipxe, Via: netboot.ViaDHCPv4, Server: srv4})); got != want4["ipxe"] {
					t.Errorf("DHCPv4 = %q, want %q", got, want4["ipxe"])
				}
				for _, q := range []netboot.Query{{Firmware: ipxe, Via: netboot.ViaHTTP}, {Firmware: netboot.Firmware{Kind: netboot.KindGRUB}, Via: netboot.ViaTFTP}} {
					a := b.Answer(d, q)
					if a.Action != netboot.ActionNone || !strings.Contains(a.Why, "no boot intent") {
						t.Errorf("%s over %s = %+v, want none: no boot intent", q.Firmware, q.Via, a)
					}
				}
			})
		})
	}
}

// TestAnswerMissing checks the answers that cannot be given, and why.
func TestAnswerMissing(t *testing.T) {
	d := netboot.Decision{Host: inventory.Host{FQDN: "h.example.com.", Intent: inventory.Intent{{Key: "distribution", Value: "core"}}}}
	pxe := func(a netboot.Arch) netboot.Firmware {
		return netboot.Firmware{Kind: netboot.KindPXE, Arch: a, HasArch: true}
	}
	full := netboot.Booter{URL: "http://192.0.2.1", Loaders: map[netboot.Arch]string{0: "undionly.kpxe", 7: "ipxe.efi"}}
	tests := []struct {
		name string
		b    netboot.Booter
		q    netboot.Query
		why  string
	}{
		{"no loader for the arch", full, netboot.Query{Firmware: pxe(11), Via: netboot.ViaDHCPv4, Server: netip.MustParseAddr("192.0.2.1")}, "no serve.loaders entry for architecture 11"},
		{"PXE without arch", full, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindPXE}, Via: netboot.ViaDHCPv4}, "no architecture"},
		{"PXE over DHCPv6, link-local server", full, netboot.Query{Firmware: pxe(7), Via: netboot.ViaDHCPv6, Server: netip.MustParseAddr("fe80::1")}, "no global IPv6 address"},
		{"iPXE over DHCPv4 without boot.url", netboot.Booter{}, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaDHCPv4}, "set boot.url"},
		{"iPXE over DHCPv6, IPv4 boot URL only", full, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaDHCPv6}, "set boot.url_v6"},
		{"HTTP boot without loader", netboot.Booter{URL: "http://192.0.2.1"}, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindHTTP, Arch: 16, HasArch: true}, Via: netboot.ViaDHCPv4}, "no serve.loaders entry for architecture 16 (or 7)"},
		{"HTTP boot to the signed chain", netboot.Booter{URL: "http://192.0.2.1", Loaders: map[netboot.Arch]string{11: "bootnetaa64.efi"}, SecureBootLoaders: map[netboot.Arch]string{11: "bootnetaa64.efi"}},
			netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindHTTP, Arch: 19, HasArch: true}, Via: netboot.ViaDHCPv4}, "over TFTP only: boot the machine by PXE"},
		{"BSDP without images", full, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindBSDP}, Via: netboot.ViaDHCPv4}, "no bsdp.images"},
		{"plain client", full, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindNone}, Via: netboot.ViaDHCPv4}, "not a booting client"},
		{"GRUB over HTTP", full, netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindGRUB}, Via: netboot.ViaHTTP}, "asks over TFTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.b.Answer(d, tt.q)
			if a.Action != netboot.ActionNone || !strings.Contains(a.Why, tt.why) {
				t.Errorf("Answer = %+v, want none because %q", a, tt.why)
			}
			// Without a boot file from vmprov, a ProxyDHCP server may
			// be what boots the client: iPXE must keep waiting for it.
			if a.NoProxyDHCP {
				t.Errorf("Answer = %+v tells iPXE not to wait for ProxyDHCP without giving it a boot file", a)
			}
		})
	}
}

// TestClassify names the firmware from the classes and architecture a
// request carries.
func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		s    netboot.Signals
		want string
	}{
		{"BIOS PXE ROM", netboot.Signals{VendorClasses: []string{"PXEClient:Arch:00000:UNDI:002001"}, Arch: 0, HasArch: true}, "bios"},
		{"OVMF PXE", netboot.Signals{VendorClasses: []string{"PXEClient:Arch:00007:UNDI:003000"}, Arch: 7, HasArch: true}, "efi"},
		{"OVMF HTTP boot", netboot.Signals{VendorClasses: []string{"HTTPClient:Arch:00016:UNDI:003000"}, Arch: 16, HasArch: true}, "efi-http"},
		{"HTTP arch without vendor class (DHCPv6)", netboot.Signals{Arch: 19, HasArch: true}, "arm64-http"},
		{"arm64 PXE over DHCPv6: arch only", netboot.Signals{Arch: 11, HasArch: true}, "arm64"},
		{"iPXE says PXEClient too", netboot.Signals{UserClassIPXE: true, VendorClasses: []string{"PXEClient:Arch:00000:UNDI:002001"}, Arch: 0, HasArch: true}, "ipxe"},
		{"iPXE over HTTP boot", netboot.Signals{UserClassIPXE: true, VendorClasses: []string{"HTTPClient"}, Arch: 16, HasArch: true}, "ipxe/arch 16"},
		{"Intel Mac", netboot.Signals{VendorClasses: []string{"AAPLBSDPC/i386/MacBookPro11,1"}}, "bsdp"},
		{"dhclient", netboot.Signals{VendorClasses: []string{"MSFT 5.0"}}, "none"},
		{"nothing", netboot.Signals{}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := netboot.Classify(tt.s).String(); got != tt.want {
				t.Errorf("Classify(%+v) = %s, want %s", tt.s, got, tt.want)
			}
		})
	}
}

// TestAnswerSecureBoot checks the Secure Boot chain (docs/design.md,
// "Secure Boot"): a host whose TXT says firmware=efi-secure gets the signed
// shim of serve.secure_boot.loaders from PXE firmware instead of iPXE, no
// UEFI HTTP boot, and the signed GRUB's configuration; a host without the
// key keeps iPXE, however its firmware asks.
func TestAnswerSecureBoot(t *testing.T) {
	intent := inventory.Intent{{Key: "distribution", Value: "bookworm"}, {Key: "state", Value: "install"}}
	secure := intent.With("firmware", "efi-secure")
	plain := intent.With("firmware", "efi")
	installed := secure.With("state", "installed")
	host := func(in inventory.Intent) netboot.Decision {
		return netboot.Decision{Host: inventory.Host{FQDN: "sb.example.com.", Name: "sb", MAC: mustMAC("02:04:06:08:72:28"),
			IPv4: netip.MustParseAddr("192.0.2.40"), Intent: in}}
	}
	fw := func(name string) netboot.Firmware {
		f, err := netboot.ParseFirmware(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	b := serveconfig.Booter(answerConfig(t))
	noShim := b
	noShim.SecureBootLoaders = nil
	srv4, srv6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:135::1")
	shim := "bootnetx64.efi"
	tests := []struct {
		name   string
		b      netboot.Booter
		intent inventory.Intent
		q      netboot.Query
		want   string // short(answer)
		secure bool   // Answer.SecureBoot
		why    string // in Answer.Why when want is "-"
	}{
		{"PXE arch 7 gets the shim", b, secure, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv4, Server: srv4}, shim + "@192.0.2.1", true, ""},
		{"PXE arch 7 over DHCPv6 gets the shim's URL", b, secure, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv6, Server: srv6}, "tftp://[2001:db8:135::1]/" + shim, true, ""},
		{"firmware=efi keeps iPXE", b, plain, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv4, Server: srv4}, "snponly.efi@192.0.2.1", false, ""},
		{"no firmware key keeps iPXE", b, intent, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv4, Server: srv4}, "snponly.efi@192.0.2.1", false, ""},
		{"no shim for BIOS", b, secure, netboot.Query{Firmware: fw("bios"), Via: netboot.ViaDHCPv4, Server: srv4}, "-", false, "serve.secure_boot.loaders has no entry for architecture 0"},
		{"no shim configured", noShim, secure, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv4, Server: srv4}, "-", false, "serve.secure_boot.loaders has no entry for architecture 7"},
		{"no UEFI HTTP boot", b, secure, netboot.Query{Firmware: fw("efi-http"), Via: netboot.ViaDHCPv4, Server: srv4}, "-", false, "TFTP only"},
		{"iPXE is still iPXE", b, secure, netboot.Query{Firmware: fw("ipxe"), Via: netboot.ViaDHCPv4, Server: srv4}, "http://192.0.2.1:8080/boot.ipxe+no-pxedhcp", false, ""},
		{"signed GRUB gets its configuration", b, secure, netboot.Query{Firmware: fw("grub-signed"), Via: netboot.ViaTFTP}, "config", true, ""},
		{"signed GRUB over HTTP", b, secure, netboot.Query{Firmware: fw("grub-signed"), Via: netboot.ViaHTTP}, "-", false, "asks over TFTP"},
		{"installed: no shim", b, installed, netboot.Query{Firmware: fw("efi"), Via: netboot.ViaDHCPv4, Server: srv4}, "local", false, ""},
		{"installed: signed GRUB boots the disk", b, installed, netboot.Query{Firmware: fw("grub-signed"), Via: netboot.ViaTFTP}, "local", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.b.Answer(host(tt.intent), tt.q)
			if got := short(a); got != tt.want {
				t.Errorf("Answer = %q (%s), want %q", got, a.Why, tt.want)
			}
			if a.SecureBoot != tt.secure {
				t.Errorf("SecureBoot = %v, want %v", a.SecureBoot, tt.secure)
			}
			if tt.why != "" && !strings.Contains(a.Why, tt.why) {
				t.Errorf("Why = %q, want it to say %q", a.Why, tt.why)
			}
		})
	}
}
