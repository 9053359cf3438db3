package netboot_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/netboot"
)

func TestCache(t *testing.T) {
	for bname, mk := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			b := mk(t)
			load(t, b,
				"a.example.com. 300 A 192.0.2.1",
				"b.example.com. 300 A 192.0.2.2",
				"c.example.com. 300 A 192.0.2.3",
				"zero.example.com. 0 A 192.0.2.4",
			)
			ctx := t.Context()
			lookup := func(t *testing.T, c *netboot.Cache, name string) dnsupdate.Answer {
				t.Helper()
				a, err := c.Lookup(ctx, name, dns.TypeA)
				if err != nil {
					t.Fatalf("lookup %s: %v", name, err)
				}
				return a
			}

			t.Run("positive and negative answers for their TTL", func(t *testing.T) {
				clk := &clock{now: time.Unix(1_700_000_000, 0)}
				cnt := &counter{Resolver: b}
				c := netboot.NewCache(cnt, netboot.CacheConfig{Now: clk.Now})
				if a := lookup(t, c, "a.example.com."); len(a.Records) != 1 || a.TTL != 300*time.Second {
					t.Fatalf("answer %+v", a)
				}
				if a := lookup(t, c, "nx.example.com."); !a.NXDomain || a.TTL != 300*time.Second {
					t.Fatalf("negative answer %+v, want NXDOMAIN for the SOA minimum 300s", a)
				}
				clk.Advance(299 * time.Second)
				if a := lookup(t, c, "A.Example.COM"); a.TTL != time.Second || len(a.Records) != 1 {
					t.Errorf("cached answer %+v, want 1s left", a)
				}
				if a := lookup(t, c, "nx.example.com."); !a.NXDomain {
					t.Errorf("cached negative answer %+v", a)
				}
				want := map[string]int{"A a.example.com.": 1, "A nx.example.com.": 1}
				if diff := cmp.Diff(want, cnt.counts()); diff != "" {
					t.Errorf("queries (-want +got):\n%s", diff)
				}
				clk.Advance(time.Second)
				lookup(t, c, "a.example.com.")
				lookup(t, c, "nx.example.com.")
				want = map[string]int{"A a.example.com.": 2, "A nx.example.com.": 2}
				if diff := cmp.Diff(want, cnt.counts()); diff != "" {
					t.Errorf("queries after expiry (-want +got):\n%s", diff)
				}
				s := c.Stats()
				if s.Hits != 2 || s.Queries != 4 || s.Misses != 4 || s.Errors != 0 {
					t.Errorf("stats %+v", s)
				}
			})

			t.Run("TTL 0 is not kept", func(t *testing.T) {
				cnt := &counter{Resolver: b}
				c := netboot.NewCache(cnt, netboot.CacheConfig{})
				lookup(t, c, "zero.example.com.")
				lookup(t, c, "zero.example.com.")
				if n := cnt.counts()["A zero.example.com."]; n != 2 {
					t.Errorf("%d queries, want 2", n)
				}
			})

			t.Run("MaxTTL caps", func(t *testing.T) {
				clk := &clock{now: time.Unix(1_700_000_000, 0)}
				cnt := &counter{Resolver: b}
				c := netboot.NewCache(cnt, netboot.CacheConfig{Now: clk.Now, MaxTTL: 10 * time.Second})
				lookup(t, c, "a.example.com.")
				clk.Advance(9 * time.Second)
				if a := lookup(t, c, "a.example.com."); a.TTL != time.Second {
					t.Errorf("TTL %v, want 1s left of MaxTTL", a.TTL)
				}
				clk.Advance(time.Second)
				lookup(t, c, "a.example.com.")
				if n := cnt.counts()["A a.example.com."]; n != 2 {
					t.Errorf("%d queries, want 2", n)
				}
			})

			t.Run("bounded, least recently used goes first", func(t *testing.T) {
				cnt := &counter{Resolver: b}
				c := netboot.NewCache(cnt, netboot.CacheConfig{MaxEntries: 2})
				lookup(t, c, "a.example.com.")
				lookup(t, c, "b.example.com.")
				lookup(t, c, "a.example.com.") // a is now the most recently used
				lookup(t, c, "c.example.com.") // evicts b
				if c.Len() != 2 {
					t.Errorf("Len %d, want 2", c.Len())
				}
				lookup(t, c, "a.example.com.")
				lookup(t, c, "c.example.com.")
				lookup(t, c, "b.example.com.")
				want := map[string]int{"A a.example.com.": 1, "A b.example.com.": 2, "A c.example.com.": 1}
				if diff := cmp.Diff(want, cnt.counts()); diff != "" {
					t.Errorf("queries (-want +got):\n%s", diff)
				}
			})

			t.Run("a caller giving up does not cancel the shared query", func(t *testing.T) {
				cnt := &counter{Resolver: b, gate: make(chan struct{})}
				c := netboot.NewCache(cnt, netboot.CacheConfig{})
				ctx1, cancel := context.WithCancel(ctx)
				errc := make(chan error, 2)
				go func() {
					_, err := c.Lookup(ctx1, "a.example.com.", dns.TypeA)
					errc <- err
				}()
				deadline := time.Now().Add(10 * time.Second)
				for cnt.inflight.Load() < 1 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				go func() {
					a, err := c.Lookup(ctx, "a.example.com.", dns.TypeA)
					if err == nil && len(a.Records) != 1 {
						err = errors.New("no record")
					}
					errc <- err
				}()
				cancel()
				if err := <-errc; !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled caller: %v, want context.Canceled", err)
				}
				close(cnt.gate)
				if err := <-errc; err != nil {
					t.Errorf("second caller: %v", err)
				}
				if n := cnt.counts()["A a.example.com."]; n != 1 {
					t.Errorf("%d queries, want 1", n)
				}
			})
		})
	}
}

// TestCacheErrorsNotKept: a failed query is asked again next time.
func TestCacheErrorsNotKept(t *testing.T) {
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	dead, err := dnsupdate.New(dnsupdate.Config{Server: addr, Timeout: 200 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{Resolver: dead}
	c := netboot.NewCache(cnt, netboot.CacheConfig{})
	for range 2 {
		if _, err := c.Lookup(t.Context(), "a.example.com.", dns.TypeA); err == nil {
			t.Fatal("lookup at a dead server succeeded")
		}
	}
	if n := cnt.counts()["A a.example.com."]; n != 2 {
		t.Errorf("%d queries, want 2", n)
	}
	if s := c.Stats(); s.Errors != 2 || c.Len() != 0 {
		t.Errorf("stats %+v, len %d", s, c.Len())
	}
	// What /metrics shows of it.
	want := `
# HELP vmprov_dns_cache_entries DNS answers held by the boot policy cache.
# TYPE vmprov_dns_cache_entries gauge
vmprov_dns_cache_entries 0
# HELP vmprov_dns_cache_hits_total DNS lookups of the boot policy answered from the cache.
# TYPE vmprov_dns_cache_hits_total counter
vmprov_dns_cache_hits_total 0
# HELP vmprov_dns_cache_misses_total DNS lookups of the boot policy that waited for a query.
# TYPE vmprov_dns_cache_misses_total counter
vmprov_dns_cache_misses_total 2
# HELP vmprov_dns_queries_total DNS queries sent by the boot policy.
# TYPE vmprov_dns_queries_total counter
vmprov_dns_queries_total 2
# HELP vmprov_dns_query_errors_total DNS queries of the boot policy that failed.
# TYPE vmprov_dns_query_errors_total counter
vmprov_dns_query_errors_total 2
`
	if err := testutil.CollectAndCompare(c.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
