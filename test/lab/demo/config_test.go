package demo

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/test/lab"
)

// TestLabConfig: the lab's configuration loads with the strict loader and
// serves both VLANs, for the demo and for a systemd deployment.
func TestLabConfig(t *testing.T) {
	st := lab.State{Netns: "vmprov-lab", Bridge: "br135", IPv4: "192.0.2.1/24", IPv6: "2001:db8:135::1/64",
		More: []lab.BridgeState{{Name: "br136", IPv6: "2001:db8:136::1/64"}},
		DNS:  "192.0.2.1:53", Zone: "example.com.", KeyFile: "/lab/bind/tsig.key",
		LibvirtURI: "qemu:///system?socket=/lab/run/libvirt-sock", Pool: "vmprov"}
	for _, tt := range []struct {
		name                  string
		opts                  ConfigOptions
		url, url6, http, tftp string
		keyFile               string
	}{
		{"demo", ConfigOptions{ServeDir: "/lab/vmprov/serve"},
			"http://192.0.2.1:8080", "http://[2001:db8:136::1]:8080", ":8080", ":69", "/lab/bind/tsig.key"},
		{"systemd", ConfigOptions{ServeDir: "/var/lib/vmprov", KeyFile: "/etc/vmprov/tsig.secret", HTTPPort: 80, TFTP: ":69"},
			"http://192.0.2.1", "http://[2001:db8:136::1]", ":80", ":69", "/etc/vmprov/tsig.secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LabConfig(st, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.BootURL != tt.url || c.BootURL6 != tt.url6 {
				t.Errorf("boot URLs %q %q, want %q %q", c.BootURL, c.BootURL6, tt.url, tt.url6)
			}
			cfg, err := config.Parse([]byte(c.YAML))
			if err != nil {
				t.Fatalf("%v\n%s", err, c.YAML)
			}
			type vlan struct {
				ID         int
				Bridge     string
				IPv4, IPv6 netip.Prefix
			}
			var got []vlan
			for _, v := range cfg.VLANs {
				got = append(got, vlan{v.ID, v.Bridge, v.IPv4, v.IPv6})
			}
			want := []vlan{
				{135, "br135", netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:135::/64")},
				{136, "br136", netip.Prefix{}, netip.MustParsePrefix("2001:db8:136::/64")},
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("vlans (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"br135", "br136"}, cfg.Serve.Interfaces); diff != "" {
				t.Errorf("serve.interfaces (-want +got):\n%s", diff)
			}
			if cfg.Boot.URL != tt.url || cfg.Boot.URLv6 != tt.url6 || cfg.Serve.HTTP != tt.http || cfg.Serve.TFTP != tt.tftp ||
				cfg.Serve.Dir != tt.opts.ServeDir || cfg.DNS.TSIG.SecretFile != tt.keyFile || cfg.Libvirt.URI != st.LibvirtURI {
				t.Errorf("config:\n%s", c.YAML)
			}
		})
	}
	if _, err := LabConfig(st, ConfigOptions{}); err == nil {
		t.Error("LabConfig without a serve dir succeeded")
	}
}
