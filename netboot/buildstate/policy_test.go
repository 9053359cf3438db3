package buildstate_test

import (
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

// restrictedNamedConf is BIND with the update-policy the README gives:
// vmprov's key may change anything in the zone, serve's key TXT records
// only.
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
	file "%[1]s/example.com.db";
	update-policy {
		grant vmprov. zonesub ANY;
		grant vmprov-serve. zonesub TXT;
	};
};
`

// TestServeKeyRestrictedToTXT runs the writer with a key BIND lets update
// TXT records only, as the README's update-policy does: build states are
// written, an A record is refused.
func TestServeKeyRestrictedToTXT(t *testing.T) {
	lab.RequireRoot(t, "named")
	named, err := exec.LookPath("named")
	if err != nil {
		t.Skip("named not found")
	}
	dir := t.TempDir()
	port := lab.ReservePort(t)
	admin, serve := lab.GenerateSecret(), lab.GenerateSecret()
	zone := "$TTL 300\nexample.com. IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300\nexample.com. IN NS ns1.example.com.\nns1.example.com. IN A 127.0.0.1\n"
	if err := os.WriteFile(filepath.Join(dir, "example.com.db"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(restrictedNamedConf, dir, port, admin, serve)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "named.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(named, "-g", "-c", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the named this test started, by its PID
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
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if a, err := vmprov.Lookup(t.Context(), "example.com.", dns.TypeSOA); err == nil && len(a.Records) == 1 {
			ready = true
			break
		}
	}
	if !ready {
		b, _ := os.ReadFile(filepath.Join(dir, "named.log"))
		t.Fatalf("named did not answer on %s:\n%s", addr, b)
	}

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
	var rc *dnsupdate.RcodeError
	if !errors.As(err, &rc) || rc.Rcode != dns.RcodeRefused {
		t.Errorf("serve's key changing an A record: %v, want REFUSED", err)
	}
	if got, err := vmprov.Lookup(t.Context(), host, dns.TypeA); err != nil || len(got.Records) != 1 || !strings.Contains(got.Records[0].String(), "192.0.2.30") {
		t.Errorf("A after the refused update = %v, %v", got.Records, err)
	}
}
