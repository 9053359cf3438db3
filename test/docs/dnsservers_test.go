package docs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/vmprov/vmprov/cmd/vmprov/cli"
	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/test/lab"
)

// The zones README's DNS snippets serve: those of the reference
// configuration (dns.zone and VLAN 135).
const (
	snippetZone = "example.com."
	snippetRev4 = "35.168.192.in-addr.arpa."
	snippetRev6 = "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
)

// dnsBlock returns the first block of README's DNS section whose text holds
// marker.
func dnsBlock(t *testing.T, marker string) string {
	t.Helper()
	for _, b := range readBlocks(t, filepath.Join(repoRoot(t), "README.md")) {
		if b.heading == dnsHeading && strings.Contains(b.text, marker) {
			return b.text
		}
	}
	t.Fatalf("README %q has no block holding %q", dnsHeading, marker)
	return ""
}

// snippetKey runs README's tsig-keygen, writing the key file into dir, and
// returns the file (the snippets' /etc/vmprov/tsig.secret, and vmprov's
// dns.tsig.secret_file) and the key's base64 secret, which the Knot and
// PowerDNS snippets take from it.
func snippetKey(t *testing.T, dir string) (file, secret string) {
	t.Helper()
	if _, err := exec.LookPath("tsig-keygen"); err != nil {
		t.Skip("needs tsig-keygen (Debian package bind9-utils)")
	}
	keygen := strings.Fields(strings.TrimSpace(dnsBlock(t, "tsig-keygen ")))
	if len(keygen) < 3 || keygen[len(keygen)-2] != ">" {
		t.Fatalf("README's tsig-keygen command %q does not write a file", keygen)
	}
	out, err := exec.CommandContext(t.Context(), keygen[0], keygen[1:len(keygen)-2]...).Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(keygen[:len(keygen)-2], " "), err)
	}
	m := regexp.MustCompile(`key "vmprov" \{[^}]*secret "([^"]+)";`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("tsig-keygen wrote no key clause of key vmprov:\n%s", out)
	}
	file = filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, string(m[1])
}

// snippetPort is a port of 127.0.0.1 for a server of the test, reserved
// against the lab's other servers (which may bind it with SO_REUSEPORT).
func snippetPort(t *testing.T) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), lab.ReservePort(t))
}

// TestBINDSnippetServesVmprov runs named with README's BIND snippet (and an
// options block of the test's own: directory, listen address, and no
// transfers but those the snippet allows) and the key file tsig-keygen
// wrote, and then vmprov against it. TestBINDSnippet checks
// the snippet with named-checkconf.
func TestBINDSnippetServesVmprov(t *testing.T) {
	if _, err := exec.LookPath("named"); err != nil {
		t.Skip("needs named (Debian package bind9)")
	}
	dir := t.TempDir()
	keyFile, _ := snippetKey(t, dir)
	snippet := dnsBlock(t, "allow-update")
	const keyPath = "/etc/vmprov/tsig.secret"
	if !strings.Contains(snippet, `include "`+keyPath+`";`) {
		t.Fatalf("README's BIND snippet does not include %s:\n%s", keyPath, snippet)
	}
	// Every zone of the snippet, with the file it names (relative to the
	// options' directory).
	zones := regexp.MustCompile(`zone "([^"]+)" \{[^}]*\bfile "([^"]+)";`).FindAllStringSubmatch(snippet, -1)
	var names []string
	for _, z := range zones {
		names = append(names, dns.Fqdn(z[1]))
	}
	if want := []string{snippetZone, snippetRev4, snippetRev6}; !slices.Equal(names, want) {
		t.Fatalf("README's BIND snippet has zones %q, want %q", names, want)
	}
	for _, z := range zones {
		if err := os.WriteFile(filepath.Join(dir, z[2]), []byte(zoneFile(dns.Fqdn(z[1]))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := snippetPort(t)
	options := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { %[3]s; };
	listen-on-v6 { none; };
	allow-transfer { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
`, dir, addr.Port(), addr.Addr())
	conf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(conf, []byte(options+strings.ReplaceAll(snippet, keyPath, keyFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	startServer(t, addr, filepath.Join(dir, "named.log"), "named", "-g", "-c", conf)
	servesVmprov(t, addr, keyFile)
}

// TestKnotSnippet checks README's Knot DNS configuration with `knotc
// conf-check`, then runs knotd with it (and a listen address, storage and
// zone files of the test's own) and vmprov against it, with the key
// tsig-keygen made.
func TestKnotSnippet(t *testing.T) {
	for _, b := range []string{"knotc", "knotd"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (Debian package knot)", b)
		}
	}
	dir := t.TempDir()
	keyFile, secret := snippetKey(t, dir)
	snippet := dnsBlock(t, "acl:")
	if !strings.Contains(snippet, "BASE64SECRET") {
		t.Fatalf("README's Knot snippet has no BASE64SECRET to replace:\n%s", snippet)
	}
	text := strings.ReplaceAll(snippet, "BASE64SECRET", secret)
	check := func(name, text string) error {
		conf := filepath.Join(dir, name)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), "knotc", "-c", conf, "conf-check").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := check("snippet.conf", text); err != nil {
		t.Fatalf("knotc conf-check on README's snippet: %v\n%s", err, text)
	}
	// The check can fail: a misspelt action, an acl that is not defined.
	for name, bad := range map[string]string{
		"action": strings.Replace(text, "action: update", "action: updates", 1),
		"acl":    strings.Replace(text, "acl: vmprov-update\n", "acl: vmprov-updat\n", 1),
	} {
		if bad == text {
			t.Fatalf("README's Knot snippet changed: the broken %s is not broken", name)
		}
		if err := check("broken.conf", bad); err == nil {
			t.Errorf("knotc conf-check accepted a broken %s", name)
		}
	}

	addr := snippetPort(t)
	header := fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: %[2]s@%[3]d
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
template:
  - id: default
    storage: "%[1]s"
    file: "%%s.zone"
`, dir, addr.Addr(), addr.Port())
	// knotd needs its database directory to journal updates (SERVFAIL
	// otherwise); Debian's package makes /var/lib/knot.
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(conf, []byte(header+text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, z := range []string{snippetZone, snippetRev4, snippetRev6} {
		if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(z, ".")+".zone"), []byte(zoneFile(z)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startServer(t, addr, filepath.Join(dir, "knotd.log"), "knotd", "-c", conf)
	servesVmprov(t, addr, keyFile)
}

// TestPowerDNSSnippet runs README's PowerDNS settings and pdnsutil commands
// on a fresh gsqlite3 database holding the zones, starts pdns_server with
// them and runs vmprov against it, with the key tsig-keygen made.
func TestPowerDNSSnippet(t *testing.T) {
	const schema = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"
	for _, b := range []string{"pdns_server", "pdnsutil", "sqlite3"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (Debian packages pdns-server, pdns-backend-sqlite3, sqlite3)", b)
		}
	}
	sql, err := os.ReadFile(schema)
	if err != nil {
		t.Skipf("needs the gsqlite3 schema (Debian package pdns-backend-sqlite3): %v", err)
	}
	dir := t.TempDir()
	keyFile, secret := snippetKey(t, dir)
	settings := dnsBlock(t, "dnsupdate=yes")
	commands := dnsBlock(t, "pdnsutil import-tsig-key")
	db := filepath.Join(dir, "pdns.sqlite3")
	create := exec.CommandContext(t.Context(), "sqlite3", db)
	create.Stdin = bytes.NewReader(sql)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	addr := snippetPort(t)
	// The backend, listen address and running in the foreground are the
	// test's, and transfers are allowed by key only (not to 127.0.0.1, as
	// by default), as to a vmprov host elsewhere; the rest is README's.
	conf := fmt.Sprintf(`launch=gsqlite3
allow-axfr-ips=
gsqlite3-database=%s
local-address=%s
socket-dir=%s
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
security-poll-suffix=
%s`, db, addr, dir, settings)
	if err := os.WriteFile(filepath.Join(dir, "pdns.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	pdnsutil := func(args ...string) {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), "pdnsutil", append([]string{"--config-dir=" + dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("pdnsutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The zones exist before the README's commands run, as they do on a
	// server vmprov is pointed at.
	for _, z := range []string{snippetZone, snippetRev4, snippetRev6} {
		pdnsutil("create-zone", z, "ns1."+snippetZone)
	}
	var ran int
	for line := range strings.Lines(commands) {
		args := strings.Fields(strings.ReplaceAll(line, "BASE64SECRET", secret))
		if len(args) == 0 {
			continue
		}
		if args[0] != "pdnsutil" {
			t.Fatalf("README's PowerDNS commands hold %q, not a pdnsutil command", line)
		}
		pdnsutil(args[1:]...)
		ran++
	}
	if ran == 0 {
		t.Fatal("README's PowerDNS block holds no pdnsutil command")
	}
	startServer(t, addr, filepath.Join(dir, "pdns.log"), "pdns_server", "--config-dir="+dir)
	servesVmprov(t, addr, keyFile)
}

// zoneFile is zone z holding its SOA and NS, and in the forward zone the
// NS's address (BIND loads no zone whose NS in it has none).
func zoneFile(z string) string {
	text := fmt.Sprintf("$TTL 300\n%s IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 300\n%s IN NS ns1.%s\n", z, snippetZone, snippetZone, z, snippetZone)
	if z == snippetZone {
		text += "ns1." + snippetZone + " IN A 127.0.0.1\n"
	}
	return text
}

// startServer runs argv in the foreground with its output in logPath,
// waits until it answers the SOA of the forward zone at addr, and stops it
// by its PID when t ends.
func startServer(t *testing.T, addr netip.AddrPort, logPath string, argv ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	c, err := dnsupdate.New(dnsupdate.Config{Server: addr.String(), Timeout: 200 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		a, err := c.Lookup(ctx, snippetZone, dns.TypeSOA)
		if err == nil && len(a.Records) > 0 {
			return
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited: %v\n%s", argv[0], err, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s does not answer the SOA of %s at %s: %v\n%s", argv[0], snippetZone, addr, err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// referenceConfig writes README's reference configuration with dns.server
// server and dns.tsig.secret_file secretFile, libvirt's test driver and a
// serve.dir of the test's own, and returns its path.
func referenceConfig(t *testing.T, server, secretFile string) string {
	t.Helper()
	ref := referenceBlock(t)
	c, err := decodeStrict(ref.text)
	if err != nil {
		t.Fatalf("%v: %v", ref, err)
	}
	dir := t.TempDir()
	c.DNS.Server, c.DNS.TSIG.SecretFile = server, secretFile
	c.Libvirt.URI, c.Libvirt.DomainType, c.Libvirt.Pool = "test:///default", "qemu", "default-pool"
	// The reference's hypervisors are example hosts: the examples run on
	// the test driver alone, a fleet of one.
	c.Hypervisors = nil
	c.Serve.Dir = filepath.Join(dir, "serve")
	text, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(text); err != nil {
		t.Fatalf("the reference configuration does not load: %v\n%s", err, text)
	}
	path := filepath.Join(dir, "vmprov.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// servesVmprov runs vmprov with the reference configuration against the
// server at addr, with the key file tsig-keygen wrote: host add (updates
// of the forward zone and of both reverse zones, found by SOA query), host
// list (a transfer of the forward zone) and host remove (which finds the
// host's _mac CNAME by transfer). It reads the records back after each,
// and checks that the server refuses unsigned updates of every zone.
func servesVmprov(t *testing.T, addr netip.AddrPort, keyFile string) {
	t.Helper()
	cfg := referenceConfig(t, addr.String(), keyFile)
	vmprov := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cli.Run(t.Context(), append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("vmprov %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
	c, err := dnsupdate.New(dnsupdate.Config{Server: addr.String()})
	if err != nil {
		t.Fatal(err)
	}
	// records returns the data of the records of each owner and type.
	records := func(qs map[string]uint16) map[string][]string {
		t.Helper()
		got := map[string][]string{}
		for owner, qtype := range qs {
			a, err := c.Lookup(t.Context(), owner, qtype)
			if err != nil {
				t.Fatalf("lookup %s %s: %v", owner, dns.TypeToString[qtype], err)
			}
			for _, r := range a.Records {
				got[owner] = append(got[owner], strings.TrimPrefix(r.String(), r.Header().String()))
			}
		}
		return got
	}
	host, mac := "sm1."+snippetZone, "00-25-90-96-c4-9a._mac."+snippetZone
	ptr4 := inventory.ReverseName(netip.MustParseAddr("192.168.35.55"))
	ptr6 := inventory.ReverseName(netip.MustParseAddr("2001:db8:135::55"))
	want := map[string]string{host: "192.168.35.55", mac: host, ptr4: host, ptr6: host}
	qs := map[string]uint16{host: dns.TypeA, mac: dns.TypeCNAME, ptr4: dns.TypePTR, ptr6: dns.TypePTR}

	vmprov("host", "add", "--name", "sm1", "--mac", "00:25:90:96:c4:9a", "--ip", "192.168.35.55", "--ipv6", "2001:db8:135::55", "--distro", "core")
	got := records(qs)
	for owner, data := range want {
		if len(got[owner]) != 1 || got[owner][0] != data {
			t.Errorf("after host add: %s %s = %q, want %s", owner, dns.TypeToString[qs[owner]], got[owner], data)
		}
	}
	var hosts []struct{ Name, MAC string }
	if err := json.Unmarshal([]byte(vmprov("host", "list", "-o", "json")), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || hosts[0].Name != "sm1" || hosts[0].MAC != "00:25:90:96:c4:9a" {
		t.Errorf("host list = %+v, want sm1 with MAC 00:25:90:96:c4:9a", hosts)
	}
	vmprov("host", "remove", "sm1")
	if got := records(qs); len(got) != 0 {
		t.Errorf("after host remove, records remain: %q", got)
	}

	// And nothing unsigned gets into any zone.
	for zone, owner := range map[string]string{snippetZone: "intruder." + snippetZone, snippetRev4: ptr4, snippetRev6: ptr6} {
		rr, err := dns.NewRR(owner + " 300 IN TXT intruder")
		if err != nil {
			t.Fatal(err)
		}
		var re *dnsupdate.RcodeError
		if err := c.Apply(t.Context(), dnsupdate.ChangeSet{Zone: zone, Add: []dns.RR{rr}}); !errors.As(err, &re) {
			t.Errorf("unsigned update of %s = %v, want a refusal", zone, err)
		}
	}
}
