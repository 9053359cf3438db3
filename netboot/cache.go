package netboot

import (
	"container/list"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/vmprov/vmprov/dnsupdate"
)

// Defaults of CacheConfig.
const (
	DefaultCacheEntries = 4096
	DefaultCacheMaxTTL  = time.Hour
	DefaultLookupTime   = 2 * time.Second
)

// CacheConfig configures a Cache. Zero values take the defaults.
type CacheConfig struct {
	// MaxEntries bounds the number of cached answers; the least recently
	// used one is dropped first. Default DefaultCacheEntries.
	MaxEntries int
	// MaxTTL caps how long any answer is kept, whatever its DNS TTL says.
	// Default DefaultCacheMaxTTL.
	MaxTTL time.Duration
	// Timeout bounds one lookup in the Resolver. It is shorter than the
	// retry interval of boot firmware so that a dead DNS server yields an
	// error before the client asks again. Default DefaultLookupTime.
	Timeout time.Duration
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
}

// Cache is a Resolver that keeps every answer of the Resolver it wraps for
// the answer's DNS TTL: positive answers for the TTL of their records,
// negative ones (NXDOMAIN and NODATA) for the negative TTL the resolver
// reports from the zone's SOA (RFC 2308 section 5). An answer with TTL 0 is
// not kept. Errors (timeouts, SERVFAIL) are never cached: the next request
// asks DNS again.
//
// Concurrent lookups of the same name and type while none is cached share
// one query (singleflight), so a boot storm of identical clients costs one
// query per record type. The shared query runs with the first caller's
// values but not its cancellation, bounded by CacheConfig.Timeout; each
// caller stops waiting when its own context ends.
//
// A Cache is safe for concurrent use. Answers it returns share their
// Records with the cache: callers must not modify them.
type Cache struct {
	r       Resolver
	max     int
	maxTTL  time.Duration
	timeout time.Duration
	now     func() time.Time
	group   singleflight.Group

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	lru     list.List // of *cacheEntry, most recently used first

	hits, misses, queries, errors atomic.Uint64
}

var _ Resolver = (*Cache)(nil)

type cacheKey struct {
	name  string // lower case, fully qualified
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	ans     dnsupdate.Answer
	expires time.Time
	// derived is what lookupDerived computed from ans, nil until then.
	derived any
}

// NewCache returns a Cache in front of r.
func NewCache(r Resolver, cfg CacheConfig) *Cache {
	c := &Cache{
		r:       r,
		max:     cfg.MaxEntries,
		maxTTL:  cfg.MaxTTL,
		timeout: cfg.Timeout,
		now:     cfg.Now,
		entries: make(map[cacheKey]*list.Element),
	}
	if c.max <= 0 {
		c.max = DefaultCacheEntries
	}
	if c.maxTTL <= 0 {
		c.maxTTL = DefaultCacheMaxTTL
	}
	if c.timeout <= 0 {
		c.timeout = DefaultLookupTime
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Lookup returns the cached answer for name and qtype while it is fresh,
// with TTL set to the time it has left, and otherwise asks the Resolver.
func (c *Cache) Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error) {
	key := cacheKey{strings.ToLower(dns.Fqdn(name)), qtype}
	if a, ok := c.get(key); ok {
		c.hits.Add(1)
		return a, nil
	}
	c.misses.Add(1)
	ch := c.group.DoChan(key.name+" "+dns.Type(qtype).String(), func() (any, error) {
		// A flight that ended between get above and DoChan may have
		// filled the cache already.
		if a, ok := c.get(key); ok {
			return a, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		c.queries.Add(1)
		a, err := c.r.Lookup(lctx, key.name, qtype)
		if err != nil {
			c.errors.Add(1)
			return nil, err
		}
		c.put(key, a)
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return dnsupdate.Answer{}, res.Err
		}
		return res.Val.(dnsupdate.Answer), nil
	case <-ctx.Done():
		return dnsupdate.Answer{}, fmt.Errorf("lookup %s %s: %w", key.name, dns.Type(qtype), ctx.Err())
	}
}

// Refresh asks the Resolver past the cache, keeps the answer as Lookup
// would (replacing a cached one) and returns it. Refreshes share no query,
// not even with each other: each one reads what DNS holds after it was
// called, which is what confirming a build state needs (Booter.Confirmed).
// It counts as a miss and a query.
func (c *Cache) Refresh(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error) {
	key := cacheKey{strings.ToLower(dns.Fqdn(name)), qtype}
	c.misses.Add(1)
	c.queries.Add(1)
	lctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	a, err := c.r.Lookup(lctx, key.name, qtype)
	if err != nil {
		c.errors.Add(1)
		return dnsupdate.Answer{}, err
	}
	c.put(key, a)
	return a, nil
}

// lookupDerived is Lookup that also returns derive's result for the
// answer, computed once for each answer the cache holds and kept with it
// until it expires or is evicted: a cache hit then costs no parsing. derive
// must depend on the records of the answer only, be safe for concurrent
// use, and return a non-nil value; name is the looked-up name, lower case
// and fully qualified.
func (c *Cache) lookupDerived(ctx context.Context, name string, qtype uint16, derive func(name string, a dnsupdate.Answer) any) (dnsupdate.Answer, any, error) {
	return c.derived(ctx, name, qtype, derive, c.Lookup)
}

// refreshDerived is lookupDerived with Refresh instead of Lookup.
func (c *Cache) refreshDerived(ctx context.Context, name string, qtype uint16, derive func(name string, a dnsupdate.Answer) any) (dnsupdate.Answer, any, error) {
	return c.derived(ctx, name, qtype, derive, c.Refresh)
}

func (c *Cache) derived(ctx context.Context, name string, qtype uint16, derive func(name string, a dnsupdate.Answer) any, lookup func(context.Context, string, uint16) (dnsupdate.Answer, error)) (dnsupdate.Answer, any, error) {
	a, err := lookup(ctx, name, qtype)
	if err != nil {
		return a, nil, err
	}
	key := cacheKey{strings.ToLower(dns.Fqdn(name)), qtype}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		if e := el.Value.(*cacheEntry); e.derived != nil && sameRecords(e.ans, a) {
			v := e.derived
			c.mu.Unlock()
			return a, v, nil
		}
	}
	c.mu.Unlock()
	v := derive(key.name, a)
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		if e := el.Value.(*cacheEntry); sameRecords(e.ans, a) {
			e.derived = v
		}
	}
	c.mu.Unlock()
	return a, v, nil
}

// sameRecords reports whether a and b are the same answer of the cache:
// the same records slice, or both without records and alike in NXDomain.
func sameRecords(a, b dnsupdate.Answer) bool {
	if len(a.Records) != len(b.Records) || a.NXDomain != b.NXDomain {
		return false
	}
	return len(a.Records) == 0 || &a.Records[0] == &b.Records[0]
}

// get returns a fresh entry and marks it used; a stale one is dropped.
func (c *Cache) get(key cacheKey) (dnsupdate.Answer, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return dnsupdate.Answer{}, false
	}
	e := el.Value.(*cacheEntry)
	left := e.expires.Sub(now)
	if left <= 0 {
		c.lru.Remove(el)
		delete(c.entries, key)
		return dnsupdate.Answer{}, false
	}
	c.lru.MoveToFront(el)
	a := e.ans
	a.TTL = left
	return a, true
}

// put stores a for its TTL (capped at MaxTTL), evicting expired entries
// from the cold end and then the least recently used one when full.
func (c *Cache) put(key cacheKey, a dnsupdate.Answer) {
	ttl := min(a.TTL, c.maxTTL)
	if ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.ans, e.expires, e.derived = a, now.Add(ttl), nil
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() > 0 {
		back := c.lru.Back()
		e := back.Value.(*cacheEntry)
		if c.lru.Len() < c.max && e.expires.After(now) {
			break
		}
		c.lru.Remove(back)
		delete(c.entries, e.key)
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, ans: a, expires: now.Add(ttl)})
}

// Len returns the number of cached answers, fresh or not yet swept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// CacheStats counts what a Cache did since it was made.
type CacheStats struct {
	Hits    uint64 // lookups answered from the cache
	Misses  uint64 // lookups that waited for a query (their own or a shared one)
	Queries uint64 // lookups sent to the Resolver
	Errors  uint64 // queries that failed
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Queries: c.queries.Load(), Errors: c.errors.Load()}
}

// Collector returns the cache's metrics, read at each scrape: the Stats
// counters as vmprov_dns_cache_hits_total, vmprov_dns_cache_misses_total,
// vmprov_dns_queries_total and vmprov_dns_query_errors_total, and Len as the
// gauge vmprov_dns_cache_entries.
func (c *Cache) Collector() prometheus.Collector {
	return CounterCollectors([]Counter{
		{Name: "vmprov_dns_cache_hits_total", Help: "DNS lookups of the boot policy answered from the cache.", Value: &c.hits},
		{Name: "vmprov_dns_cache_misses_total", Help: "DNS lookups of the boot policy that waited for a query.", Value: &c.misses},
		{Name: "vmprov_dns_queries_total", Help: "DNS queries sent by the boot policy.", Value: &c.queries},
		{Name: "vmprov_dns_query_errors_total", Help: "DNS queries of the boot policy that failed.", Value: &c.errors},
	}, prometheus.NewGaugeFunc(
		prometheus.GaugeOpts{Name: "vmprov_dns_cache_entries", Help: "DNS answers held by the boot policy cache."},
		func() float64 { return float64(c.Len()) },
	))
}
