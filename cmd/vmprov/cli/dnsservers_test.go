package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// dnsServer is what the CLI tests need of a lab DNS server: where it
// listens and the key it accepts.
type dnsServer interface {
	Addr() netip.AddrPort
	TSIG() (name, algorithm, secret string)
}

// labConfigFor writes a config whose dns.server is srv (zone example.com.,
// reverse zones found by SOA query) and whose hypervisor is libvirt's test
// driver, with VLAN 135 on 192.0.2.0/24 and 2001:db8:135::/64.
func labConfigFor(t *testing.T, srv dnsServer) string {
	t.Helper()
	return configFor(t, srv, `boot: {url: "http://192.0.2.1"}
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64"}
`)
}

// configFor writes a config whose dns.server is srv, with its key in a
// secret file, libvirt's test driver, and rest (the boot and vlans keys).
func configFor(t *testing.T, srv dnsServer, rest string) string {
	t.Helper()
	dir := t.TempDir()
	name, alg, secret := srv.TSIG()
	secretFile := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vmprov.yaml")
	text := fmt.Sprintf(`dns:
  server: %s
  zone: example.com.
  tsig: {name: %s, algorithm: %s, secret_file: %s}
libvirt: {uri: "test:///default", domain_type: qemu, pool: default-pool}
`, srv.Addr(), name, strings.TrimSuffix(alg, "."), secretFile) + rest
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCLIDNSServers runs create, list, host add, host list, host remove and
// destroy against each DNS server vmprov supports, and reads every zone
// back by transfer after each step: the records a command claims must be
// there, and gone after the command that releases them.
func TestCLIDNSServers(t *testing.T) {
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })

	for _, tc := range []struct {
		name  string
		start func(t *testing.T) dnsServer
	}{
		{"BIND", func(t *testing.T) dnsServer { return lab.BINDForTest(t) }},
		{"Knot", func(t *testing.T) dnsServer { return lab.KnotForTest(t) }},
		{"PowerDNS", func(t *testing.T) dnsServer { return lab.PowerDNSForTest(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.start(t)
			cfg := labConfigFor(t, srv)
			zones := transferZones(t, srv)
			run := func(args ...string) string {
				t.Helper()
				code, out, errs := vmprov(t, append([]string{"--config", cfg}, args...)...)
				if code != 0 {
					t.Fatalf("vmprov %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
				}
				return out
			}
			// test:///default is shared by the process: names of its own.
			vm := "dns" + strings.ToLower(tc.name)
			host := "sm" + strings.ToLower(tc.name)
			vmRecords := []string{
				vm + ".example.com.\t300\tIN\tA\t192.0.2.172",
				vm + ".example.com.\t300\tIN\tAAAA\t2001:db8:135:0:4:6ff:fe08:72ac",
				vm + ".example.com.\t300\tIN\tTXT\t\"filename=test.ipxe\" \"distribution=core\" \"state=install\" \"build_id=ID\"",
				"172.2.0.192.in-addr.arpa.\t300\tIN\tPTR\t" + vm + ".example.com.",
				"c.a.2.7.8.0.e.f.f.f.6.0.4.0.0.0.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.\t300\tIN\tPTR\t" + vm + ".example.com.",
			}
			hostRecords := []string{
				host + ".example.com.\t300\tIN\tA\t192.0.2.55",
				host + ".example.com.\t300\tIN\tAAAA\t2001:db8:135::55",
				host + ".example.com.\t300\tIN\tTXT\t\"distribution=core\" \"state=install\" \"build_id=ID\"",
				"00-25-90-96-c4-9a._mac.example.com.\t300\tIN\tCNAME\t" + host + ".example.com.",
				"55.2.0.192.in-addr.arpa.\t300\tIN\tPTR\t" + host + ".example.com.",
				"5.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.\t300\tIN\tPTR\t" + host + ".example.com.",
			}

			run("create", "--name", vm, "--ip", "192.0.2.172", "--distro", "core", "--script", "test.ipxe")
			zones.has(t, "after create", vmRecords...)
			var list []map[string]any
			if err := json.Unmarshal([]byte(run("list", "-o", "json")), &list); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(list, func(h map[string]any) bool {
				return h["name"] == vm && h["ipv4"] == "192.0.2.172" && h["state"] == "install"
			}) {
				t.Errorf("list lacks %s at 192.0.2.172: %v", vm, list)
			}
			// The claim's prerequisite holds on every server: a second create
			// of the name changes nothing.
			if code, _, errs := vmprov(t, "--config", cfg, "create", "--name", vm, "--ip", "192.0.2.173", "--distro", "core"); code == 0 || !strings.Contains(errs, vm) {
				t.Errorf("second create of %s: exit %d, %s", vm, code, errs)
			}
			zones.lacks(t, "after the refused create", "173.2.0.192.in-addr.arpa.")

			run("host", "add", "--name", host, "--mac", "00:25:90:96:c4:9a", "--ip", "192.0.2.55", "--ipv6", "2001:db8:135::55", "--distro", "core")
			zones.has(t, "after host add", hostRecords...)
			var hosts []map[string]any
			if err := json.Unmarshal([]byte(run("host", "list", "-o", "json")), &hosts); err != nil {
				t.Fatal(err)
			}
			if len(hosts) != 1 || hosts[0]["name"] != host || hosts[0]["mac"] != "00:25:90:96:c4:9a" {
				t.Errorf("host list = %v, want %s with MAC 00:25:90:96:c4:9a", hosts, host)
			}
			run("host", "remove", host)
			zones.lacks(t, "after host remove", host+".example.com.", "00-25-90-96-c4-9a._mac.example.com.",
				"55.2.0.192.in-addr.arpa.", "5.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.")
			if out := run("host", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
				t.Errorf("host list after remove = %s", out)
			}
			zones.has(t, "after host remove", vmRecords...)

			run("destroy", vm)
			zones.lacks(t, "after destroy", vm+".example.com.", "172.2.0.192.in-addr.arpa.",
				"c.a.2.7.8.0.e.f.f.f.6.0.4.0.0.0.0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.")
		})
	}
}

// zoneReader reads the lab zones by transfer, with the lab key.
type zoneReader struct {
	c     *dnsupdate.Client
	zones []string
}

func transferZones(t *testing.T, srv dnsServer) zoneReader {
	t.Helper()
	name, alg, secret := srv.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: srv.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return zoneReader{c: c, zones: append([]string{lab.TestZone}, lab.TestReverseZones()...)}
}

// records returns every record of the lab zones in presentation format,
// owner names in lower case and random build ids written as "build_id=ID".
func (z zoneReader) records(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, zone := range z.zones {
		rrs, err := z.c.Transfer(t.Context(), zone)
		if err != nil {
			t.Fatalf("transfer %s: %v", zone, err)
		}
		for _, r := range rrs {
			r.Header().Name = strings.ToLower(r.Header().Name)
			if r.Header().Rrtype != dns.TypeSOA {
				out = append(out, buildID.ReplaceAllString(r.String(), `"build_id=ID"`))
			}
		}
	}
	return out
}

var buildID = regexp.MustCompile(`"build_id=[0-9a-f]{8}"`)

func (z zoneReader) has(t *testing.T, when string, want ...string) {
	t.Helper()
	got := z.records(t)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: zones lack %q; they hold:\n%s", when, w, strings.Join(got, "\n"))
		}
	}
}

// lacks checks that no record is owned by any of owners.
func (z zoneReader) lacks(t *testing.T, when string, owners ...string) {
	t.Helper()
	for _, r := range z.records(t) {
		for _, o := range owners {
			if strings.HasPrefix(r, o+"\t") {
				t.Errorf("%s: zones still hold %q", when, r)
			}
		}
	}
}

// TestCLIDNSServerMisconfigured: when the server refuses vmprov's key, the
// command fails and its message names the server's fix, for Knot (BADKEY
// from an acl without the action) and PowerDNS (metadata), whose answers do
// not say which server gave them.
func TestCLIDNSServerMisconfigured(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) dnsServer
		args  []string
		says  []string
	}{
		{"Knot acl without update", func(t *testing.T) dnsServer {
			return lab.KnotForTest(t, func(c *lab.KnotConfig) { c.Actions = []string{"transfer"} })
		}, []string{"host", "add", "--name", "mis1", "--mac", "00:25:90:96:c4:9b", "--ip", "192.0.2.56", "--distro", "core"},
			[]string{"BADKEY", "an acl with key vmprov. and action update"}},
		{"Knot acl without transfer", func(t *testing.T) dnsServer {
			return lab.KnotForTest(t, func(c *lab.KnotConfig) { c.Actions = []string{"update"} })
		}, []string{"host", "list"},
			[]string{"BADKEY", "an acl with key vmprov. and action transfer"}},
		{"Knot ip6.arpa zone without acl", func(t *testing.T) dnsServer {
			return lab.KnotForTest(t, func(c *lab.KnotConfig) { c.NoACL = []string{lab.TestReverseZones()[1]} })
		}, []string{"host", "add", "--name", "mis3", "--mac", "00:25:90:96:c4:9d", "--ip", "192.0.2.58", "--ipv6", "2001:db8:135::58", "--distro", "core"},
			[]string{"BADKEY", "no acl of the zone holding the name names the key", "action update"}},
		{"PowerDNS without TSIG-ALLOW-AXFR", func(t *testing.T) dnsServer {
			return lab.PowerDNSForTest(t, func(c *lab.PowerDNSConfig) {
				c.Metadata = map[string]string{"TSIG-ALLOW-DNSUPDATE": "vmprov."}
			})
		}, []string{"host", "list"},
			[]string{"NOTAUTH", "pdnsutil set-meta example.com. TSIG-ALLOW-AXFR vmprov."}},
		{"PowerDNS with the bind backend", func(t *testing.T) dnsServer {
			return lab.PowerDNSForTest(t, func(c *lab.PowerDNSConfig) { c.Backend = "bind" })
		}, []string{"host", "add", "--name", "mis2", "--mac", "00:25:90:96:c4:9c", "--ip", "192.0.2.57", "--distro", "core"},
			[]string{"NOTIMP", "no transactions (the bind backend)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfigFor(t, tc.start(t))
			code, out, errs := vmprov(t, append([]string{"--config", cfg}, tc.args...)...)
			if code != 1 {
				t.Fatalf("vmprov %s: exit %d, want 1: %s%s", strings.Join(tc.args, " "), code, out, errs)
			}
			for _, s := range tc.says {
				if !strings.Contains(errs, s) {
					t.Errorf("vmprov %s: stderr does not say %q:\n%s", strings.Join(tc.args, " "), s, errs)
				}
			}
		})
	}
}
