package buildstate_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/test/lab"
)

// The configurations the README gives for restricting serve's key
// (vmprov-serve.) to TXT updates while vmprov's key (vmprov.) may change
// anything: BIND's update-policy, Knot's ACL with update-type, PowerDNS's
// Lua update policy.

const restrictedNamedConf = `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
key "vmprov." { algorithm hmac-sha256; secret "%[3]s"; };
key "vmprov-serve." { algorithm hmac-sha256; secret "%[4]s"; };
zone "example.com." {
	type primary;
	file "%[1]s/example.com.zone";
	update-policy {
		grant vmprov. zonesub ANY;
		grant vmprov-serve. zonesub TXT;
	};
};
`

const restrictedKnotConf = `server:
    rundir: "%[1]s"
    listen: 127.0.0.1@%[2]d
database:
    storage: "%[1]s/db"
key:
  - id: vmprov.
    algorithm: hmac-sha256
    secret: %[3]s
  - id: vmprov-serve.
    algorithm: hmac-sha256
    secret: %[4]s
acl:
  - id: vmprov
    key: vmprov.
    action: [update, transfer]
  - id: vmprov-serve
    key: vmprov-serve.
    action: update
    update-type: [TXT]
zone:
  - domain: example.com.
    storage: "%[1]s"
    file: example.com.zone
    acl: [vmprov, vmprov-serve]
`

const restrictedPDNSConf = `launch=gsqlite3
gsqlite3-database=%[1]s/pdns.sqlite3
local-address=127.0.0.1:%[2]d
socket-dir=%[1]s
dnsupdate=yes
allow-dnsupdate-from=127.0.0.0/8
lua-dnsupdate-policy-script=%[1]s/vmprov-update.lua
default-soa-content=ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
security-poll-suffix=
`

const restrictedPDNSLua = `-- vmprov's key may change anything; vmprov serve's key TXT records only.
function updatepolicy(input)
  local key = input:getTsigName():toStringNoDot()
  if key == "vmprov" then
    return true
  end
  return key == "vmprov-serve" and input:getQType() == pdns.TXT
end
`

const testZoneText = "$TTL 300\nexample.com. IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300\nexample.com. IN NS ns1.example.com.\nns1.example.com. IN A 127.0.0.1\n"

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// restrictedServers start each server in dir on port with the two keys
// and return the argv of its foreground process.
var restrictedServers = []struct {
	name  string
	tools []string
	setUp func(t *testing.T, dir string, port uint16, admin, serve string) []string
}{
	{"BIND", []string{"named"}, func(t *testing.T, dir string, port uint16, admin, serve string) []string {
		write(t, filepath.Join(dir, "example.com.zone"), testZoneText)
		write(t, filepath.Join(dir, "named.conf"), fmt.Sprintf(restrictedNamedConf, dir, port, admin, serve))
		return []string{"named", "-g", "-c", filepath.Join(dir, "named.conf")}
	}},
	{"Knot", []string{"knotd", "knotc"}, func(t *testing.T, dir string, port uint16, admin, serve string) []string {
		write(t, filepath.Join(dir, "example.com.zone"), testZoneText)
		if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "knot.conf")
		write(t, conf, fmt.Sprintf(restrictedKnotConf, dir, port, admin, serve))
		runTool(t, "knotc", "-c", conf, "conf-check")
		return []string{"knotd", "-c", conf}
	}},
	{"PowerDNS", []string{"pdns_server", "pdnsutil", "sqlite3"}, func(t *testing.T, dir string, port uint16, admin, serve string) []string {
		schema, err := os.ReadFile("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
		if err != nil {
			t.Skipf("gsqlite3 schema: %v (install pdns-backend-sqlite3)", err)
		}
		cmd := exec.CommandContext(t.Context(), "sqlite3", filepath.Join(dir, "pdns.sqlite3"))
		cmd.Stdin = strings.NewReader(string(schema))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v\n%s", err, out)
		}
		write(t, filepath.Join(dir, "pdns.conf"), fmt.Sprintf(restrictedPDNSConf, dir, port))
		write(t, filepath.Join(dir, "vmprov-update.lua"), restrictedPDNSLua)
		pdnsutil := func(args ...string) { runTool(t, "pdnsutil", append([]string{"--config-dir=" + dir}, args...)...) }
		pdnsutil("create-zone", "example.com.", "ns1.example.com.")
		pdnsutil("add-record", "example.com.", "ns1", "A", "300", "127.0.0.1")
		pdnsutil("import-tsig-key", "vmprov.", "hmac-sha256", admin)
		pdnsutil("import-tsig-key", "vmprov-serve.", "hmac-sha256", serve)
		return []string{"pdns_server", "--config-dir=" + dir}
	}},
}

// TestServeKeyRestrictedToTXT runs the writer with a key that each DNS
// server, configured as the README says, lets update TXT records only:
// build states are written, an A record is refused and stays.
func TestServeKeyRestrictedToTXT(t *testing.T) {
	for _, srv := range restrictedServers {
		t.Run(srv.name, func(t *testing.T) {
			lab.RequireRoot(t, srv.tools...)
			dir := t.TempDir()
			port := lab.ReservePort(t)
			admin, serve := lab.GenerateSecret(), lab.GenerateSecret()
			argv := srv.setUp(t, dir, port, admin, serve)
			logf, err := os.Create(filepath.Join(dir, "server.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill() // the server this test started, by its PID
				_ = cmd.Wait()
			})
			addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String()
			client := func(key, secret string) *dnsupdate.Client {
				c, err := dnsupdate.New(dnsupdate.Config{Server: addr, KeyName: key, Algorithm: "hmac-sha256", Secret: secret, Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			vmprov, serveKey := client("vmprov.", admin), client("vmprov-serve.", serve)
			waitSOA(t, vmprov, filepath.Join(dir, "server.log"))

			// vmprov host add: A and TXT with vmprov's key.
			a, _ := dns.NewRR("web1.example.com. 300 IN A 192.0.2.30")
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: []string{"distribution=bookworm", "state=install", "build_id=0123abcd"}}
			if err := vmprov.Apply(t.Context(), dnsupdate.ChangeSet{Zone: lab.TestZone, NameNotInUse: []string{host}, Add: []dns.RR{a, txt}}); err != nil {
				t.Fatal(err)
			}
			w := buildstate.NewWriter(serveKey, lab.TestZone)
			res, err := w.Apply(t.Context(), buildstate.Change{FQDN: host, To: inventory.StateInstalled,
				From: []inventory.State{inventory.StateInstall, inventory.StateInstalling}})
			if err != nil || !res.Changed {
				t.Fatalf("serve's key writing a build state: %+v, %v", res, err)
			}
			if got := getTXT(t, vmprov); got != "distribution=bookworm state=installed build_id=0123abcd" {
				t.Errorf("TXT = %q", got)
			}
			other, _ := dns.NewRR("web1.example.com. 300 IN A 192.0.2.31")
			err = serveKey.Apply(t.Context(), dnsupdate.ChangeSet{Zone: lab.TestZone, RemoveRRset: []dnsupdate.RRKey{{Name: host, Type: dns.TypeA}}, Add: []dns.RR{other}})
			// BIND answers REFUSED, Knot BADKEY (its answer to an update its
			// ACL denies); PowerDNS skips the records its policy denies, logs
			// "Not permitted by policy" and answers NOERROR.
			var rc *dnsupdate.RcodeError
			if srv.name == "PowerDNS" && err != nil || srv.name != "PowerDNS" && !errors.As(err, &rc) {
				b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
				t.Errorf("serve's key changing an A record: %v, want a refusal\n%s", err, b)
			}
			if got, err := vmprov.Lookup(t.Context(), host, dns.TypeA); err != nil || len(got.Records) != 1 || !strings.Contains(got.Records[0].String(), "192.0.2.30") {
				t.Errorf("A after the refused update = %v, %v", got.Records, err)
			}
		})
	}
}

// waitSOA waits until the server answers the zone's SOA, or fails with its log.
func waitSOA(t *testing.T, c *dnsupdate.Client, log string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		a, err := c.Lookup(ctx, lab.TestZone, dns.TypeSOA)
		cancel()
		if err == nil && len(a.Records) == 1 {
			return
		}
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("the server did not answer:\n%s", b)
}
