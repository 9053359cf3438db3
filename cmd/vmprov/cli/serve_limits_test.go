package cli

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/test/lab"
)

// TestServeTFTPAddrs: with serve.interfaces set and serve.tftp naming only
// a port, TFTP listens on those interfaces' IPv4 and global IPv6
// addresses, read from real interfaces in a network namespace; an address
// in serve.tftp, no serve.interfaces, or a serve.server_ipv4 elsewhere
// keep one socket on serve.tftp.
func TestServeTFTPAddrs(t *testing.T) {
	ns := lab.NamespaceForTest(t)
	ctx := t.Context()
	for _, args := range [][]string{
		{"link", "add", "vmp0", "type", "veth", "peer", "name", "vmp1"},
		{"link", "add", "vmp2", "type", "veth", "peer", "name", "vmp3"},
		{"addr", "add", "192.0.2.1/24", "dev", "vmp0"},
		{"addr", "add", "2001:db8:135::1/64", "dev", "vmp0", "nodad"},
		{"addr", "add", "198.51.100.1/24", "dev", "vmp1"},
		{"link", "set", "vmp0", "up"}, // and gets a link-local address
		{"link", "set", "vmp1", "up"},
	} {
		if out, err := ns.IP(ctx, args...); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	tests := []struct {
		name       string
		tftp       string
		interfaces []string
		serverIPv4 string
		want       []string
		err        string
	}{
		{"interface addresses", ":69", []string{"vmp0"}, "", []string{"192.0.2.1:69", "[2001:db8:135::1]:69"}, ""},
		{"two interfaces", ":6969", []string{"vmp0", "vmp1"}, "", []string{"192.0.2.1:6969", "198.51.100.1:6969", "[2001:db8:135::1]:6969"}, ""},
		{"server_ipv4 on an interface", ":69", []string{"vmp0"}, "192.0.2.1", []string{"192.0.2.1:69", "[2001:db8:135::1]:69"}, ""},
		{"server_ipv4 elsewhere", ":69", []string{"vmp0"}, "203.0.113.1", []string{":69"}, ""},
		{"explicit address", "198.51.100.1:69", []string{"vmp0"}, "", []string{"198.51.100.1:69"}, ""},
		{"explicit wildcard", "0.0.0.0:69", []string{"vmp0"}, "", []string{"0.0.0.0:69"}, ""},
		{"no interfaces", ":69", nil, "", []string{":69"}, ""},
		{"missing interface", ":69", []string{"vmp9"}, "", nil, "serve.interfaces: vmp9"},
		{"interface without addresses", ":69", []string{"vmp2"}, "", nil, "vmp2 has no address for TFTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &config.Config{Serve: config.Serve{TFTP: tt.tftp, Interfaces: tt.interfaces}}
			if tt.serverIPv4 != "" {
				c.Serve.ServerIPv4 = netip.MustParseAddr(tt.serverIPv4)
			}
			var got []string
			var err error
			if nerr := ns.Do(func() error { got, err = tftpAddrs(c); return nil }); nerr != nil {
				t.Fatal(nerr)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("tftpAddrs = %v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tftpAddrs (-want +got):\n%s", diff)
			}
		})
	}
}
