package dnstest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/dnsupdate/dnstest"
)

const (
	zone    = "example.com."
	reverse = "2.0.192.in-addr.arpa."
)

func TestFakeConformance(t *testing.T) {
	dnstest.Conformance(t, func(t *testing.T) (dnstest.Backend, string, string) {
		return dnstest.NewFake(zone, reverse), zone, reverse
	})
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFakeFailNext(t *testing.T) {
	f := dnstest.NewFake(zone)
	cs := dnsupdate.ChangeSet{Zone: zone, Add: []dns.RR{mustRR(t, "h.example.com. 60 IN A 192.0.2.1")}}
	f.FailNext(dns.RcodeServerFailure)
	f.FailNext(dns.RcodeRefused)
	for _, want := range []int{dns.RcodeServerFailure, dns.RcodeRefused} {
		err := f.Apply(t.Context(), cs)
		var re *dnsupdate.RcodeError
		if !errors.As(err, &re) || re.Rcode != want || re.Zone != zone {
			t.Fatalf("Apply = %v, want an *RcodeError with %s for %s", err, dns.RcodeToString[want], zone)
		}
	}
	if a, err := f.Lookup(t.Context(), "h.example.com.", dns.TypeA); err != nil || !a.NXDomain {
		t.Fatalf("after failed applies, Lookup = %+v, %v; want NXDOMAIN", a, err)
	}
	if err := f.Apply(t.Context(), cs); err != nil {
		t.Fatalf("third Apply: %v", err)
	}
	if got := f.Applied(); got != 1 {
		t.Errorf("Applied = %d, want 1", got)
	}
}

func TestFakeFailNextLookup(t *testing.T) {
	f := dnstest.NewFake(zone)
	f.FailNextLookup(dns.RcodeServerFailure)
	var re *dnsupdate.RcodeError
	if _, err := f.Lookup(t.Context(), "h.example.com.", dns.TypeA); !errors.As(err, &re) || re.Rcode != dns.RcodeServerFailure {
		t.Fatalf("Lookup = %v, want SERVFAIL", err)
	}
	if _, err := f.Lookup(t.Context(), "h.example.com.", dns.TypeA); err != nil {
		t.Fatalf("second Lookup: %v", err)
	}
	f.FailNextLookup(dns.RcodeRefused)
	if _, err := f.FindZone(t.Context(), "h.example.com."); !errors.As(err, &re) || re.Rcode != dns.RcodeRefused {
		t.Fatalf("FindZone = %v, want REFUSED", err)
	}
}

// TestFakeApplyHook lets a competing claim in just before ours, the race
// the orchestrator must lose cleanly.
func TestFakeApplyHook(t *testing.T) {
	f := dnstest.NewFake(zone)
	theirs := dnsupdate.ChangeSet{Zone: zone, NameNotInUse: []string{"h.example.com."},
		Add: []dns.RR{mustRR(t, "h.example.com. 60 IN A 192.0.2.2")}}
	ours := dnsupdate.ChangeSet{Zone: zone, NameNotInUse: []string{"h.example.com."},
		Add: []dns.RR{mustRR(t, "h.example.com. 60 IN A 192.0.2.1")}}
	raced := false
	f.SetApplyHook(func(ctx context.Context, cs dnsupdate.ChangeSet) error {
		if raced {
			return nil
		}
		raced = true
		return f.Apply(ctx, theirs)
	})
	if err := f.Apply(t.Context(), ours); !errors.Is(err, dnsupdate.ErrPrerequisite) {
		t.Fatalf("Apply = %v, want ErrPrerequisite", err)
	}
	a, err := f.Lookup(t.Context(), "h.example.com.", dns.TypeA)
	if err != nil || len(a.Records) != 1 || a.Records[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Fatalf("Lookup = %+v, %v; want their address", a, err)
	}
	boom := errors.New("boom")
	f.SetApplyHook(func(context.Context, dnsupdate.ChangeSet) error { return boom })
	if err := f.Apply(t.Context(), ours); !errors.Is(err, boom) {
		t.Fatalf("Apply = %v, want the hook's error", err)
	}
	f.SetApplyHook(nil)
}
