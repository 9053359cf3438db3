package dnsupdate_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/test/lab"
)

// newBINDClient starts a lab BIND and returns a client holding its key.
func newBINDClient(t testing.TB) (*dnsupdate.Client, *lab.BIND) {
	t.Helper()
	b := lab.BINDForTest(t)
	name, alg, secret := b.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func TestBINDConformance(t *testing.T) {
	dnstest.Conformance(t, func(t *testing.T) (dnstest.Backend, string, string) {
		c, _ := newBINDClient(t)
		return c, lab.TestZone, lab.TestReverseZones()[0]
	})
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBINDErrors checks that each refusal BIND gives is reported with the
// rcode, and a message naming what to fix.
func TestBINDErrors(t *testing.T) {
	good, b := newBINDClient(t)
	name, alg, secret := b.TSIG()
	client := func(t *testing.T, cfg dnsupdate.Config) *dnsupdate.Client {
		t.Helper()
		cfg.Server = b.Addr().String()
		c, err := dnsupdate.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	add := func(zone, owner string) dnsupdate.ChangeSet {
		return dnsupdate.ChangeSet{Zone: zone, NameNotInUse: []string{owner}, Add: []dns.RR{rr(t, owner+" 60 IN A 192.0.2.1")}}
	}
	if err := good.Apply(t.Context(), add(lab.TestZone, "exists.example.com.")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    dnsupdate.Config
		cs     dnsupdate.ChangeSet
		rcode  int
		prereq bool
		says   []string
	}{
		{"wrong secret", dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()},
			add(lab.TestZone, "h1.example.com."), dns.RcodeBadSig, false,
			[]string{"TSIG key vmprov. rejected by " + b.Addr().String(), "BADSIG", "secret/algorithm/clock"}},
		{"unknown key", dnsupdate.Config{KeyName: "other.", Algorithm: alg, Secret: secret},
			add(lab.TestZone, "h2.example.com."), dns.RcodeBadKey, false,
			[]string{"TSIG key other. rejected", "BADKEY"}},
		{"wrong algorithm", dnsupdate.Config{KeyName: name, Algorithm: "hmac-sha512", Secret: secret},
			add(lab.TestZone, "h3.example.com."), dns.RcodeBadKey, false,
			[]string{"TSIG key vmprov. rejected", "algorithm"}},
		{"unsigned", dnsupdate.Config{},
			add(lab.TestZone, "h4.example.com."), dns.RcodeRefused, false,
			[]string{"unsigned update refused by " + b.Addr().String(), "example.com.", "allow-update / update-policy"}},
		{"zone not served", dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: secret},
			add("example.org.", "h5.example.org."), dns.RcodeNotAuth, false,
			[]string{"not authoritative for example.org.", "key vmprov."}},
		{"name exists", dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: secret},
			add(lab.TestZone, "exists.example.com."), dns.RcodeYXDomain, true,
			[]string{"name already exists", "example.com."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := client(t, tc.cfg).Apply(t.Context(), tc.cs)
			var re *dnsupdate.RcodeError
			if !errors.As(err, &re) || re.Rcode != tc.rcode {
				t.Fatalf("Apply = %v, want an *RcodeError with rcode %d", err, tc.rcode)
			}
			if got := errors.Is(err, dnsupdate.ErrPrerequisite); got != tc.prereq {
				t.Errorf("errors.Is(ErrPrerequisite) = %v, want %v", got, tc.prereq)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			for _, n := range tc.cs.Add {
				if n.Header().Name == "exists.example.com." {
					continue
				}
				if a, err := good.Lookup(t.Context(), n.Header().Name, dns.TypeA); err == nil && len(a.Records) > 0 {
					t.Errorf("refused update added %v", a.Records)
				}
			}
		})
	}
	t.Run("lookup with wrong secret", func(t *testing.T) {
		c := client(t, dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()})
		_, err := c.Lookup(t.Context(), "exists.example.com.", dns.TypeA)
		var re *dnsupdate.RcodeError
		if !errors.As(err, &re) || re.Rcode != dns.RcodeBadSig || re.Op != dnsupdate.OpQuery {
			t.Fatalf("Lookup = %v, want a BADSIG query error", err)
		}
	})
	t.Run("transfer with wrong secret", func(t *testing.T) {
		c := client(t, dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()})
		_, err := c.Transfer(t.Context(), lab.TestZone)
		var re *dnsupdate.RcodeError
		if !errors.As(err, &re) || re.Rcode != dns.RcodeBadSig || re.Op != dnsupdate.OpTransfer {
			t.Fatalf("Transfer = %v, want a BADSIG transfer error", err)
		}
	})
}

// TestBINDLargeTransfer needs several AXFR messages, each verified against
// the previous MAC (RFC 8945 5.3.1), and a TCP answer to a truncated lookup.
func TestBINDLargeTransfer(t *testing.T) {
	c, _ := newBINDClient(t)
	// BIND holds at most 100 records per RRset (max-records-per-type).
	const n, perName = 3000, 100
	for i := 0; i < n; i += 500 {
		cs := dnsupdate.ChangeSet{Zone: lab.TestZone}
		for j := i; j < i+500; j++ {
			cs.Add = append(cs.Add, rr(t, fmt.Sprintf("big%d.example.com. 60 IN TXT \"filename=host-%04d.ipxe\" \"distribution=core\"", j/perName, j)))
		}
		if err := c.Apply(t.Context(), cs); err != nil {
			t.Fatal(err)
		}
	}
	rrs, err := c.Transfer(t.Context(), lab.TestZone)
	if err != nil {
		t.Fatal(err)
	}
	var txt int
	for _, r := range rrs {
		if r.Header().Rrtype == dns.TypeTXT {
			txt++
		}
	}
	if txt != n {
		t.Errorf("transfer holds %d TXT records, want %d", txt, n)
	}
	// 100 TXT records do not fit a UDP answer: Lookup must repeat over TCP.
	a, err := c.Lookup(t.Context(), "big0.example.com.", dns.TypeTXT)
	if err != nil || len(a.Records) != perName {
		t.Errorf("Lookup(big0 TXT) = %d records, %v; want %d", len(a.Records), err, perName)
	}
}

// hostChanges returns the change sets that claim and release one host:
// A, TXT and _mac CNAME in the forward zone, PTR in the reverse zone, each
// claim guarded by "name not in use", each release by "still our value".
func hostChanges(t testing.TB, i int) (claim, release []dnsupdate.ChangeSet) {
	host := fmt.Sprintf("bench%d.example.com.", i)
	ip := fmt.Sprintf("192.0.2.%d", i%250+1)
	ptr := fmt.Sprintf("%d.2.0.192.in-addr.arpa.", i%250+1)
	a := rr(t, host+" 300 IN A "+ip)
	fwd := []dns.RR{a,
		rr(t, host+` 300 IN TXT "filename=test.ipxe" "distribution=core"`),
		rr(t, fmt.Sprintf("02-04-06-08-73-%02x._mac.example.com. 300 IN CNAME %s", i%250+1, host))}
	rev := rr(t, ptr+" 300 IN PTR "+host)
	claim = []dnsupdate.ChangeSet{
		{Zone: lab.TestZone, NameNotInUse: []string{host}, Add: fwd},
		{Zone: "2.0.192.in-addr.arpa.", NameNotInUse: []string{ptr}, Add: []dns.RR{rev}},
	}
	release = []dnsupdate.ChangeSet{
		{Zone: lab.TestZone, RRsetEquals: []dns.RR{a}, RemoveName: []string{host, fwd[2].Header().Name}},
		{Zone: "2.0.192.in-addr.arpa.", RRsetEquals: []dns.RR{rev}, RemoveName: []string{ptr}},
	}
	return claim, release
}

// BenchmarkApply claims and releases one host's records per iteration
// (four signed updates over TCP); compare with BenchmarkNsupdate.
func BenchmarkApply(b *testing.B) {
	c, _ := newBINDClient(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		claim, release := hostChanges(b, i)
		i++
		for _, cs := range append(claim, release...) {
			if err := c.Apply(ctx, cs); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkNsupdate does what BenchmarkApply does with BIND's nsupdate, the
// way a shell script would: one nsupdate -v (TCP) run to claim and one to
// release.
func BenchmarkNsupdate(b *testing.B) {
	nsupdate, err := exec.LookPath("nsupdate")
	if err != nil {
		b.Skip("needs nsupdate (Debian package bind9-utils)")
	}
	_, bind := newBINDClient(b)
	key, alg, secret := bind.TSIG()
	keyArg := strings.TrimSuffix(alg, ".") + ":" + key + ":" + secret
	script := func(sets []dnsupdate.ChangeSet) string {
		var s strings.Builder
		fmt.Fprintf(&s, "server %s %d\n", bind.Addr().Addr(), bind.Addr().Port())
		for _, cs := range sets {
			fmt.Fprintf(&s, "zone %s\n", cs.Zone)
			for _, n := range cs.NameNotInUse {
				fmt.Fprintf(&s, "prereq nxdomain %s\n", n)
			}
			for _, r := range cs.RRsetEquals {
				fmt.Fprintf(&s, "prereq yxrrset %s\n", strings.Join(strings.Fields(r.String())[0:1], "")+" "+strings.Join(strings.Fields(r.String())[2:], " "))
			}
			for _, n := range cs.RemoveName {
				fmt.Fprintf(&s, "update delete %s\n", n)
			}
			for _, r := range cs.Add {
				fmt.Fprintf(&s, "update add %s\n", r)
			}
			s.WriteString("send\n")
		}
		return s.String()
	}
	run := func(input string) {
		cmd := exec.CommandContext(b.Context(), nsupdate, "-v", "-y", keyArg)
		cmd.Stdin = strings.NewReader(input)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("nsupdate: %v\n%s\ninput:\n%s", err, out, input)
		}
	}
	i := 0
	for b.Loop() {
		claim, release := hostChanges(b, i)
		i++
		run(script(claim))
		run(script(release))
	}
}
