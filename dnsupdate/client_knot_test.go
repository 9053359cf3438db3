package dnsupdate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
	"github.com/vmprov/vmprov/test/lab"
)

// newKnotClient starts a lab Knot DNS and returns a client holding its key.
func newKnotClient(t testing.TB, edit ...func(*lab.KnotConfig)) (*dnsupdate.Client, *lab.Knot) {
	t.Helper()
	k := lab.KnotForTest(t, edit...)
	name, alg, secret := k.TSIG()
	c, err := dnsupdate.New(dnsupdate.Config{Server: k.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestKnotConformance(t *testing.T) {
	dnstest.Conformance(t, func(t *testing.T) (dnstest.Backend, string, string) {
		c, _ := newKnotClient(t)
		return c, lab.TestZone, lab.TestReverseZones()[0]
	})
}

// misconfigured is one refusal a real server gives, and what the error
// must say about it.
type misconfigured struct {
	name  string
	do    func(t *testing.T) error // the operation the server refuses
	op    string
	rcode int
	says  []string
	not   []string // what would send the operator the wrong way
}

func (tc misconfigured) check(t *testing.T) {
	t.Helper()
	err := tc.do(t)
	var re *dnsupdate.RcodeError
	if !errors.As(err, &re) || re.Rcode != tc.rcode || re.Op != tc.op {
		t.Fatalf("got %v, want an *RcodeError of %s with rcode %s", err, tc.op, dns.RcodeToString[tc.rcode])
	}
	if errors.Is(err, dnsupdate.ErrPrerequisite) {
		t.Errorf("errors.Is(%v, ErrPrerequisite) = true", err)
	}
	for _, s := range tc.says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	for _, s := range tc.not {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q says %q", err, s)
		}
	}
}

// clientOf returns a client of the server at addr with cfg's key.
func clientOf(t *testing.T, addr string, cfg dnsupdate.Config) *dnsupdate.Client {
	t.Helper()
	cfg.Server = addr
	c, err := dnsupdate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// claimA is the change set of a host claim, as create sends it.
func claimA(t testing.TB, owner string) dnsupdate.ChangeSet {
	return dnsupdate.ChangeSet{Zone: lab.TestZone, NameNotInUse: []string{owner}, Add: []dns.RR{rr(t, owner+" 60 IN A 192.0.2.1")}}
}

// TestKnotErrors reproduces the usual misconfigurations of Knot DNS and
// checks that each error names Knot's fix. Knot answers BADKEY both for a
// key it does not hold and for a key its acl does not allow the action, so
// the hint must not send the operator to the secret only. It checks the
// acl before the signature: a wrong secret gets BADSIG where the acl
// allows the action, and BADKEY where it does not.
func TestKnotErrors(t *testing.T) {
	noUpdate, k1 := newKnotClient(t, func(c *lab.KnotConfig) { c.Actions = []string{"transfer"} })
	noTransfer, k2 := newKnotClient(t, func(c *lab.KnotConfig) {
		c.Actions = []string{"update"}
		c.NoACL = []string{lab.TestReverseZones()[1]}
	})
	name, alg, secret := k2.TSIG()
	// The misconfigured keys go to k2, whose acl allows updates.
	addr := k2.Addr().String()
	for _, tc := range []misconfigured{
		{"acl without update", func(t *testing.T) error { return noUpdate.Apply(t.Context(), claimA(t, "h1.example.com.")) },
			dnsupdate.OpUpdate, dns.RcodeBadKey,
			[]string{"TSIG key vmprov. rejected by " + k1.Addr().String() + " (BADKEY)", "its acl does not allow the key to update the zone (Knot answers BADKEY to both, whatever the secret)", "an acl with key vmprov. and action update"},
			[]string{"secret/algorithm/clock"}},
		{"acl without transfer", func(t *testing.T) error { _, err := noTransfer.Transfer(t.Context(), lab.TestZone); return err },
			dnsupdate.OpTransfer, dns.RcodeBadKey,
			[]string{"BADKEY", "its acl does not allow the key to transfer the zone (Knot answers BADKEY to both, whatever the secret)", "an acl with key vmprov. and action transfer"},
			[]string{"secret/algorithm/clock"}},
		{"unsigned update", func(t *testing.T) error {
			return clientOf(t, addr, dnsupdate.Config{}).Apply(t.Context(), claimA(t, "h2.example.com."))
		},
			dnsupdate.OpUpdate, dns.RcodeNotAuth,
			[]string{"unsigned update for zone example.com. refused by " + addr + " (NOTAUTH)", "Knot answers so when no acl allows the update", "configure dns.tsig"}, nil},
		{"wrong secret", func(t *testing.T) error {
			c := clientOf(t, addr, dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()})
			return c.Apply(t.Context(), claimA(t, "h3.example.com."))
		}, dnsupdate.OpUpdate, dns.RcodeBadSig, []string{"BADSIG", "secret/algorithm/clock"}, []string{"acl"}},
		{"wrong secret, acl without update", func(t *testing.T) error {
			c := clientOf(t, k1.Addr().String(), dnsupdate.Config{KeyName: name, Algorithm: alg, Secret: lab.GenerateSecret()})
			return c.Apply(t.Context(), claimA(t, "h5.example.com."))
		}, dnsupdate.OpUpdate, dns.RcodeBadKey, []string{"its acl does not allow the key to update the zone", "whatever the secret"}, nil},
		{"unknown key", func(t *testing.T) error {
			c := clientOf(t, addr, dnsupdate.Config{KeyName: "other.", Algorithm: alg, Secret: secret})
			return c.Apply(t.Context(), claimA(t, "h4.example.com."))
		}, dnsupdate.OpUpdate, dns.RcodeBadKey, []string{"does not hold the key with this algorithm", "Knot: key other. with the algorithm and secret of dns.tsig"}, nil},
		{"wrong algorithm", func(t *testing.T) error {
			c := clientOf(t, addr, dnsupdate.Config{KeyName: name, Algorithm: "hmac-sha512", Secret: secret})
			return c.Apply(t.Context(), claimA(t, "h6.example.com."))
		}, dnsupdate.OpUpdate, dns.RcodeBadKey, []string{"does not hold the key with this algorithm"}, nil},
		{"reverse zone without acl", func(t *testing.T) error {
			_, err := noTransfer.FindZone(t.Context(), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."+lab.TestReverseZones()[1])
			return err
		}, dnsupdate.OpQuery, dns.RcodeBadKey,
			[]string{"no acl of the zone holding the name names the key", "an acl with key vmprov. and action update"}, nil},
		{"zone not served", func(t *testing.T) error {
			return noUpdate.Apply(t.Context(), dnsupdate.ChangeSet{Zone: "example.org.", Add: []dns.RR{rr(t, "h.example.org. 60 IN A 192.0.2.1")}})
		}, dnsupdate.OpUpdate, dns.RcodeNotAuth, []string{"not authoritative for example.org.", "check dns.server, dns.zone"}, nil},
	} {
		t.Run(tc.name, tc.check)
	}
	// Nothing was written by the refused updates.
	for _, c := range []*dnsupdate.Client{noUpdate, noTransfer} {
		for _, h := range []string{"h1", "h2", "h3", "h4", "h5", "h6"} {
			if a, err := c.Lookup(t.Context(), h+".example.com.", dns.TypeA); err != nil || len(a.Records) > 0 {
				t.Errorf("Lookup(%s) at %s = %v, %v; want no records", h, c.Server(), a.Records, err)
			}
		}
	}
}
