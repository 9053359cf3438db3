package dnstest

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
)

// Reader reads records: the DNS client, the Fake, a cache in front of them.
type Reader interface {
	Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error)
}

// TXT returns name's TXT records as a test compares them: each record's
// strings joined by spaces, the records joined by " | ". A failed lookup
// fails t.
func TXT(t testing.TB, d Reader, name string) string {
	t.Helper()
	a, err := d.Lookup(context.Background(), name, dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, rr := range a.Records {
		s = append(s, strings.Join(rr.(*dns.TXT).Txt, " "))
	}
	return strings.Join(s, " | ")
}

// Serial returns the serial of zone's SOA record, which every accepted
// update raises. A failed lookup fails t.
func Serial(t testing.TB, d Reader, zone string) uint32 {
	t.Helper()
	a, err := d.Lookup(context.Background(), zone, dns.TypeSOA)
	if err != nil || len(a.Records) != 1 {
		t.Fatalf("SOA of %s: %v, %v", zone, a.Records, err)
	}
	return a.Records[0].(*dns.SOA).Serial
}
