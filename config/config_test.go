package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseArchitectureExample(t *testing.T) {
	b, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := c.VLAN(135)
	if !ok || v.Bridge != "br135" || v.IPv4 != netip.MustParsePrefix("192.168.35.0/24") {
		t.Fatalf("VLAN(135) = %+v, %v", v, ok)
	}
	if got, ok := c.VLANOf(netip.MustParseAddr("192.168.35.172")); !ok || got.ID != 135 {
		t.Errorf("VLANOf = %+v, %v", got, ok)
	}
	if got, ok := c.VLANOf(netip.MustParseAddr("2001:db8:135::1")); !ok || got.ID != 135 {
		t.Errorf("VLANOf v6 = %+v, %v", got, ok)
	}
	if _, ok := c.VLANOf(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("VLANOf found a VLAN for an address outside every subnet")
	}
	if c.BSDP.Images[0].ID != 0x81000089 || c.Boot.Site != "example" || c.DNS.TTL != 300 {
		t.Errorf("values: %+v %+v", c.BSDP, c.Boot)
	}
	if c.Serve.Loaders[7] != "snponly.efi" || c.Boot.Assets != "http://boot.example.com/assets" {
		t.Errorf("defaults: loaders %v assets %q", c.Serve.Loaders, c.Boot.Assets)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("dns: {zone: lab.example.org}\nvlans: [{id: 7, ipv6: '2001:db8:7::/64'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DNS.Zone != "lab.example.org." || c.Boot.Site != "lab" || c.VLANs[0].Bridge != "br7" ||
		c.Libvirt.URI != "qemu:///system" || c.DNS.TSIG.Name != "vmprov." || c.Serve.Dir != "/var/lib/vmprov" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Libvirt.Timeout.Duration != DefaultHypervisorTimeout || len(c.Hypervisors) != 0 {
		t.Errorf("libvirt.timeout = %s, hypervisors %v; want %s and none", c.Libvirt.Timeout, c.Hypervisors, DefaultHypervisorTimeout)
	}
	// arm64 UEFI and Secure Boot hosts boot Debian's shim → signed GRUB,
	// which reads grub.cfg under its architecture's prefix.
	if c.Serve.Loaders[11] != "bootnetaa64.efi" || c.Serve.SecureBoot.Loaders[7] != "bootnetx64.efi" || c.Serve.SecureBoot.Loaders[9] != "bootnetx64.efi" || c.Serve.SecureBoot.Loaders[11] != "bootnetaa64.efi" ||
		c.Serve.SignedGrubConfigs[7] != "debian-installer/amd64/grub/grub.cfg" || c.Serve.SignedGrubConfigs[11] != "debian-installer/arm64/grub/grub.cfg" {
		t.Errorf("signed chain defaults: serve.loaders %v, serve.secure_boot %+v, serve.signed_grub_cfg %v", c.Serve.Loaders, c.Serve.SecureBoot, c.Serve.SignedGrubConfigs)
	}
}

func TestHypervisors(t *testing.T) {
	c, err := Parse([]byte(`dns: {zone: example.com}
vlans: [{id: 7, ipv6: '2001:db8:7::/64'}]
libvirt: {timeout: 2500ms}
hypervisors:
  - {name: hv1, uri: "qemu+ssh://root@hv1.example.com/system"}
  - {name: hv2, uri: "qemu+tcp://hv2.example.com/system", memory_mib: 65536}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Hypervisor{{Name: "hv1", URI: "qemu+ssh://root@hv1.example.com/system"}, {Name: "hv2", URI: "qemu+tcp://hv2.example.com/system", MemoryMiB: 65536}}
	if diff := cmp.Diff(want, c.Hypervisors); diff != "" || c.Libvirt.Timeout.Duration != 2500*time.Millisecond {
		t.Errorf("hypervisors (-want +got):\n%s\ntimeout %s, want 2.5s", diff, c.Libvirt.Timeout)
	}
}

// TestAssetDirs: serve.asset_dirs unset is Debian's packaged bookworm
// installers where a mirror keeps them, which is where the install
// templates look under boot.assets; an empty list serves none.
func TestAssetDirs(t *testing.T) {
	base := "dns: {zone: example.com.}\n"
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	want := []AssetDir{
		{"debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64", "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64"},
		{"debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64", "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64"},
	}
	if diff := cmp.Diff(want, c.Serve.AssetDirs); diff != "" {
		t.Errorf("serve.asset_dirs defaults (-want +got):\n%s", diff)
	}
	if c, err = Parse([]byte(base + "serve: {asset_dirs: []}\n")); err != nil || len(c.Serve.AssetDirs) != 0 {
		t.Errorf("serve.asset_dirs: [] gave %v, %v; want none", c.Serve.AssetDirs, err)
	}
}

// TestLoaderDirs: serve.loader_dirs unset is Debian's package folders, an
// empty list turns the lookup off, a list replaces the defaults; the
// loader of x64 UEFI is snponly.efi unless serve.loaders says otherwise.
func TestLoaderDirs(t *testing.T) {
	base := "dns: {zone: example.com.}\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unset", base, DefaultLoaderDirs()},
		{"null", base + "serve: {loader_dirs: null}\n", DefaultLoaderDirs()},
		{"off", base + "serve: {loader_dirs: []}\n", []string{}},
		{"own", base + "serve: {loader_dirs: [/srv/loaders]}\n", []string{"/srv/loaders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Serve.LoaderDirs); diff != "" {
				t.Errorf("serve.loader_dirs (-want +got):\n%s", diff)
			}
		})
	}
	c, err := Parse([]byte(base + "serve: {loaders: {7: ipxe.efi}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.Loaders[7] != "ipxe.efi" {
		t.Errorf("serve.loaders {7: ipxe.efi} gave %v", c.Serve.Loaders)
	}
	if d := DefaultLoaders(); d[7] != "snponly.efi" || d[9] != "snponly.efi" {
		t.Errorf("DefaultLoaders() = %v, want snponly.efi for 7 and 9", d)
	}
}

func TestParseErrors(t *testing.T) {
	base := "dns: {zone: example.com.}\n"
	tests := []struct {
		name, yaml string
		want       []string // every fragment must be in the error
	}{
		{"bad tftp_transfers", base + "serve: {limits: {tftp_transfers: -1}}\n", []string{"serve.limits.tftp_transfers -1", "1 to 16384"}},
		{"per client above total", base + "serve: {limits: {tftp_transfers: 4, tftp_transfers_per_client: 5}}\n", []string{"serve.limits.tftp_transfers_per_client 5", "(4)"}},
		{"bad http_connections", base + "serve: {limits: {http_connections: 100000}}\n", []string{"serve.limits.http_connections 100000", "1 to 65536"}},
		{"signed grub.cfg twice", base + "serve: {signed_grub_cfg: {7: grub/grub.cfg, 11: /grub/grub.cfg}}\n", []string{"serve.signed_grub_cfg[11]", "architecture 7", "own prefix"}},
		{"signed grub.cfg outside", base + "serve: {signed_grub_cfg: {11: ../grub.cfg}}\n", []string{"serve.signed_grub_cfg[11] \"../grub.cfg\"", "debian-installer/arm64/grub/grub.cfg"}},
		{"unknown key", base + "vlan: []\n", []string{"vlan", "not found"}},
		{"unknown nested key", "dns: {zone: example.com., servr: 1.2.3.4:53}\n", []string{"servr"}},
		{"no zone", "vlans: []\n", []string{"dns.zone is empty"}},
		{"bad server", "dns: {zone: example.com., server: localhost}\n", []string{`dns.server "localhost"`}},
		{"too large subnet", base + "vlans: [{id: 135, ipv4: 10.0.0.0/16}]\n", []string{"10.0.0.0/16", "larger than /20"}},
		{"host bits", base + "vlans: [{id: 135, ipv4: 192.0.2.1/24}]\n", []string{"192.0.2.0/24"}},
		{"bad vlan id", base + "vlans: [{id: 5000, ipv4: 192.0.2.0/24}]\n", []string{"5000", "1 to 4094"}},
		{"duplicate vlan", base + "vlans: [{id: 5, ipv4: 192.0.2.0/24}, {id: 5, ipv4: 198.51.100.0/24}]\n", []string{"listed twice"}},
		{"overlap", base + "vlans: [{id: 5, ipv4: 192.0.2.0/24}, {id: 6, ipv4: 192.0.2.0/25}]\n", []string{"overlaps"}},
		{"ipv6 not /64", base + "vlans: [{id: 5, ipv6: '2001:db8::/48'}]\n", []string{"not a /64"}},
		{"gateway outside", base + "vlans: [{id: 5, ipv4: 192.0.2.0/24, gateway: 198.51.100.1}]\n", []string{"198.51.100.1", "outside"}},
		{"no subnet", base + "vlans: [{id: 5}]\n", []string{"set ipv4, ipv6 or both"}},
		{"bad prefix", base + "vlans: [{id: 5, ipv4: nonsense}]\n", []string{"nonsense"}},
		{"bad algorithm", "dns: {zone: example.com., tsig: {algorithm: md5}}\n", []string{"md5", "hmac-sha256"}},
		{"bad domain type", base + "libvirt: {domain_type: xen}\n", []string{"xen"}},
		{"bad firmware", base + "libvirt: {firmware: uefi}\n", []string{`libvirt.firmware "uefi"`, "efi (OVMF)"}},
		{"bad timeout", base + "libvirt: {timeout: 10}\n", []string{`duration "10"`, "10s"}},
		{"negative timeout", base + "libvirt: {timeout: -1s}\n", []string{"libvirt.timeout -1s", "positive"}},
		{"hypervisor name", base + "hypervisors: [{name: hv_1, uri: qemu:///system}]\n", []string{`hypervisors[0].name "hv_1"`}},
		{"hypervisor twice", base + "hypervisors: [{name: hv1, uri: qemu+ssh://a/system}, {name: hv1, uri: qemu+ssh://b/system}]\n", []string{`hypervisors[1].name "hv1" is used twice`}},
		{"hypervisor without uri", base + "hypervisors: [{name: hv1}]\n", []string{"hypervisors[0] (hv1) has no uri"}},
		{"hypervisor uri twice", base + "hypervisors: [{name: hv1, uri: qemu+ssh://a/system}, {name: hv2, uri: qemu+ssh://a/system}]\n", []string{"hypervisors[1] (hv2) has the uri of hv1"}},
		{"relative loader dir", base + "serve: {loader_dirs: [lib/ipxe]}\n", []string{`serve.loader_dirs: "lib/ipxe"`, "absolute", "[]"}},
		{"absolute asset prefix", base + "serve: {asset_dirs: [{prefix: /debian, dir: /srv/d-i}]}\n", []string{`serve.asset_dirs[0]: prefix "/debian"`, "relative"}},
		{"asset prefix leaves /assets", base + "serve: {asset_dirs: [{prefix: ../etc, dir: /srv/d-i}]}\n", []string{`prefix "../etc"`}},
		{"asset prefix not clean", base + "serve: {asset_dirs: [{prefix: debian/, dir: /srv/d-i}]}\n", []string{`prefix "debian/"`}},
		{"asset prefix not ASCII", base + "serve: {asset_dirs: [{prefix: \"d\u00e9bian\", dir: /srv/d-i}]}\n", []string{`serve.asset_dirs[0]: prefix "débian"`, "not printable ASCII"}},
		{"asset prefix control", base + "serve: {asset_dirs: [{prefix: \"deb\\tian\", dir: /srv/d-i}]}\n", []string{`serve.asset_dirs[0]: prefix "deb\tian"`, "not printable ASCII"}},
		{"asset prefix too long", base + "serve: {asset_dirs: [{prefix: " + strings.Repeat("d", 247) + ", dir: /srv/d-i}]}\n", []string{"serve.asset_dirs[0]: prefix", "over 255 bytes", "shorter"}},
		{"signed grub.cfg of an arch without default", base + "serve: {signed_grub_cfg: {9: ../grub.cfg}}\n", []string{"serve.signed_grub_cfg[9]", "none for architecture 9", "architecture 7's is debian-installer/amd64/grub/grub.cfg"}},
		{"secure boot loader not ASCII", base + "serve: {secure_boot: {loaders: {7: \"shim\u00e9.efi\"}}}\n", []string{"serve.secure_boot.loaders[7]", "not printable ASCII"}},
		{"relative asset dir", base + "serve: {asset_dirs: [{prefix: debian, dir: srv/d-i}]}\n", []string{`serve.asset_dirs[0]: dir "srv/d-i"`, "absolute", "[]"}},
		{"relative rom", base + "libvirt: {rom: 1af41000.rom}\n", []string{`libvirt.rom "1af41000.rom"`, "absolute", `"none"`}},
		{"bad boot url", base + "boot: {url: 'ftp://x'}\n", []string{"ftp://x", "http"}},
		{"bad mac prefix", base + "addressing: {strict_mac_prefix: '01:02:03'}\n", []string{"multicast"}},
		{"bad tftp address", base + "serve: {tftp: 'nonsense'}\n", []string{`serve.tftp "nonsense"`, "off"}},
		{"bad http address", base + "serve: {http: '8080'}\n", []string{`serve.http "8080"`}},
		{"bad server duid", base + "serve: {dhcp6: {server_duid: 'zz:01'}}\n", []string{"serve.dhcp6.server_duid", "zz:01", "00:03:00:01"}},
		{"short server duid", base + "serve: {dhcp6: {server_duid: '00:03'}}\n", []string{"4 to 130 hex bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestPath(t *testing.T) {
	t.Setenv(EnvPath, "")
	if Path("") != DefaultPath || Path("x.yaml") != "x.yaml" {
		t.Error("Path without env")
	}
	t.Setenv(EnvPath, "/tmp/env.yaml")
	if Path("") != "/tmp/env.yaml" || Path("x.yaml") != "x.yaml" {
		t.Error("Path with env")
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
	tests := []struct {
		name, file string
		wantErr    string
		wantWarn   bool
	}{
		{"bare", write("bare", secret+"\n", 0o600), "", false},
		{"key clause", write("clause", "key \"vmprov\" {\n\talgorithm hmac-sha256;\n\tsecret \""+secret+"\";\n};\n", 0o600), "", false},
		{"world readable", write("world", secret, 0o644), "", true},
		{"other key", write("other", "key \"ddns\" { algorithm hmac-sha256; secret \""+secret+"\"; };", 0o600), `names "ddns"`, false},
		{"garbage", write("garbage", "not-base64!", 0o600), "not base64", false},
		{"missing", filepath.Join(dir, "nope"), "tsig-keygen", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := TSIG{Name: "vmprov.", Algorithm: "hmac-sha256", SecretFile: tt.file}.LoadSecret()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.file) {
					t.Fatalf("err = %v, want one naming %s and %q", err, tt.file, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Secret != secret {
				t.Errorf("secret = %q", s.Secret)
			}
			if (s.Warning != "") != tt.wantWarn {
				t.Errorf("warning = %q, want one: %v", s.Warning, tt.wantWarn)
			}
		})
	}
}

func TestServerDUID(t *testing.T) {
	c, err := Parse([]byte("dns: {zone: example.com.}\nserve: {dhcp6: {server_duid: '00:03:00:01:02:00:5E:00:53:01', answer_unidentified: true}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Serve.DHCPv6.DUID()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte{0, 3, 0, 1, 2, 0, 0x5e, 0, 0x53, 1}, got); diff != "" {
		t.Errorf("DUID (-want +got):\n%s", diff)
	}
	if !c.Serve.DHCPv6.AnswerUnidentified {
		t.Error("answer_unidentified not read")
	}
	if d, err := (DHCPv6{}).DUID(); d != nil || err != nil {
		t.Errorf("empty server_duid = %x, %v; want nil, nil", d, err)
	}
}

func TestTFTPOff(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want bool
	}{
		{"dns: {zone: example.com.}\n", true}, // default :69
		{"dns: {zone: example.com.}\nserve: {tftp: '192.0.2.1:69'}\n", true},
		{"dns: {zone: example.com.}\nserve: {tftp: off}\n", false},
	} {
		c, err := Parse([]byte(tt.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Serve.TFTPEnabled(); got != tt.want {
			t.Errorf("%q: TFTPEnabled() = %v, want %v", tt.yaml, got, tt.want)
		}
	}
}
