package dnsupdate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Answer is the result of a lookup.
type Answer struct {
	// Records is the answer section: the records of the queried type, or
	// the CNAME chain that leads to them.
	Records []dns.RR
	// TTL is how long the answer may be cached: the smallest TTL of
	// Records, or, for NXDOMAIN and NODATA, the negative TTL (RFC 2308 5:
	// the smaller of the SOA's TTL and its minimum field). Zero when the
	// server gave neither.
	TTL time.Duration
	// NXDomain reports that the name does not exist. NODATA (the name
	// exists without records of the type) has NXDomain false and no
	// Records.
	NXDomain bool
}

// Lookup asks the configured server, directly and without recursion, for
// the records of type qtype at name (fully qualified). It uses UDP and
// repeats the question over TCP when the answer is truncated, and accepts
// only a response with the request's ID and question. NXDOMAIN and NODATA
// are answers, not errors; SERVFAIL, REFUSED and other rcodes are
// *RcodeError values, and timeouts are errors too (after the configured
// retries).
func (c *Client) Lookup(ctx context.Context, name string, qtype uint16) (Answer, error) {
	r, err := c.query(ctx, name, qtype)
	if err != nil {
		return Answer{}, err
	}
	return answerOf(r, qtype), nil
}

// query returns the server's response to one question.
func (c *Client) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
		return nil, fmt.Errorf("dns query: %q is not a fully qualified domain name", name)
	}
	start := time.Now()
	build := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.RecursionDesired = false
		m.SetEdns0(udpSize, false)
		return m
	}
	r, err := c.exchange(ctx, "udp", build, func(r *dns.Msg, tsigErr error) error {
		return c.checkResponse(OpQuery, "", name, r, tsigErr, dns.RcodeNameError)
	})
	if err != nil {
		var re *RcodeError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("dns query for %s %s at %s: %w", name, dns.Type(qtype), c.server, err)
	}
	c.log.Debug("dns query", "host", name, "rrtype", dns.Type(qtype).String(), "dur", time.Since(start))
	return r, nil
}

// answerOf extracts the Answer from a NOERROR or NXDOMAIN response to a
// question of type qtype. It never fails: whatever the message holds, the
// result is well formed.
func answerOf(r *dns.Msg, qtype uint16) Answer {
	a := Answer{Records: r.Answer, NXDomain: r.Rcode == dns.RcodeNameError}
	ttl := uint32(math.MaxUint32)
	found := false
	for _, rr := range r.Answer {
		if rr == nil || rr.Header() == nil {
			continue
		}
		found = found || rr.Header().Rrtype == qtype || qtype == dns.TypeANY
		ttl = min(ttl, rr.Header().Ttl)
	}
	if a.NXDomain || !found {
		// RFC 2308 5: the negative TTL is the minimum of the SOA's own TTL
		// and its MINIMUM field.
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
				break
			}
		}
	}
	if ttl != math.MaxUint32 {
		a.TTL = time.Duration(ttl) * time.Second
	}
	return a
}

// FindZone returns the zone the configured server holds name in, the way
// nsupdate finds it: an SOA query for name, taking the SOA from the answer
// (name is the apex) or from the authority section (name is inside the zone
// or does not exist), walking up one label at a time when neither holds
// one. Reverse zones therefore need no configuration. The server must be
// authoritative for the zone; a server that serves no enclosing zone
// answers REFUSED, which is returned as an *RcodeError.
func (c *Client) FindZone(ctx context.Context, name string) (string, error) {
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
		return "", fmt.Errorf("find zone: %q is not a fully qualified domain name", name)
	}
	for n, i := name, 0; i < 128; i++ { // a name has at most 127 labels
		r, err := c.query(ctx, n, dns.TypeSOA)
		if err != nil {
			return "", fmt.Errorf("find zone of %s: %w", name, err)
		}
		if z := zoneOf(r, name); z != "" {
			return z, nil
		}
		if n == "." {
			break
		}
		if off, end := dns.NextLabel(n, 0); !end {
			n = n[off:]
		} else {
			n = "."
		}
	}
	return "", fmt.Errorf("find zone of %s: %s answered no SOA for it or any parent: is it authoritative for the zone?", name, c.server)
}

// zoneOf returns the owner of the SOA in an answer to an SOA query that
// encloses name, or "".
func zoneOf(r *dns.Msg, name string) string {
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		for _, rr := range sec {
			if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
				return soa.Hdr.Name
			}
		}
	}
	return ""
}

// maxTransferMessages bounds the messages of one zone transfer.
const maxTransferMessages = 1 << 20

// Transfer returns the records of zone by AXFR over TCP (RFC 5936), signed
// with the key when one is configured. The result starts with the zone's
// SOA and omits the closing copy of it. BIND allows this only with
// `allow-transfer { key NAME; };` (or a broader match list) in the zone or
// options; a refusal is an *RcodeError saying so. Each message must arrive
// within the configured Timeout; ctx bounds the whole transfer.
func (c *Client) Transfer(ctx context.Context, zone string) ([]dns.RR, error) {
	if _, ok := dns.IsDomainName(zone); !ok || !dns.IsFqdn(zone) {
		return nil, fmt.Errorf("zone transfer: %q is not a fully qualified domain name", zone)
	}
	start := time.Now()
	var rrs []dns.RR
	err := c.retry(ctx, func() error {
		var err error
		rrs, err = c.transfer(ctx, zone)
		return err
	})
	if err != nil {
		var re *RcodeError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("zone transfer of %s from %s: %w", zone, c.server, err)
	}
	c.log.Debug("dns zone transfer", "zone", zone, "dur", time.Since(start), "records", len(rrs))
	return rrs, nil
}

// transfer is one attempt of Transfer.
func (c *Client) transfer(ctx context.Context, zone string) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetAxfr(zone)
	var out []byte
	var mac string
	var err error
	if c.key != "" {
		m.SetTsig(c.key, c.alg, tsigFudge, c.now().Unix())
		out, mac, err = dns.TsigGenerate(m, c.secret, "", false)
	} else {
		out, err = m.Pack()
	}
	if err != nil {
		return nil, permanentError{fmt.Errorf("pack: %w", err)}
	}
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.server)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	co := &dns.Conn{Conn: nc}
	if err := nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if _, err := co.Write(out); err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for i := 0; i < maxTransferMessages; i++ {
		if err := nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
			return nil, err
		}
		p, err := co.ReadMsgHeader(nil)
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(p); err != nil {
			return nil, fmt.Errorf("malformed response: %w", err)
		}
		if r.Id != m.Id || !r.Response || (i == 0 && !answers(m, r)) {
			return nil, fmt.Errorf("message id %d does not answer request id %d", r.Id, m.Id)
		}
		var tsigErr error
		if c.key != "" {
			// RFC 8945 5.3.1: every later message is signed over the
			// previous MAC and the timers only.
			if t := r.IsTsig(); t == nil {
				tsigErr = errUnsigned
			} else {
				tsigErr = dns.TsigVerify(p, c.secret, mac, i > 0)
				mac = t.MAC
			}
		}
		if err := c.checkResponse(OpTransfer, zone, "", r, tsigErr); err != nil {
			return nil, err
		}
		if i == 0 {
			if len(r.Answer) == 0 {
				return nil, fmt.Errorf("first message holds no records")
			}
			if soa, ok := r.Answer[0].(*dns.SOA); !ok || !strings.EqualFold(soa.Hdr.Name, zone) {
				return nil, fmt.Errorf("first record is not the SOA of %s: %v", zone, r.Answer[0])
			}
		}
		rrs = append(rrs, r.Answer...)
		if n := len(rrs); n > 1 {
			if _, ok := rrs[n-1].(*dns.SOA); ok {
				return rrs[:n-1], nil
			}
		}
	}
	return nil, fmt.Errorf("no end after %d messages", maxTransferMessages)
}
