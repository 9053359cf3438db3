// Package dnsupdate is vmprov's DNS client: RFC 2136 dynamic updates signed
// with TSIG (RFC 8945), and the lookups, zone discovery and zone transfers
// that read vmprov's state back from DNS.
//
// DNS is vmprov's only database (docs/design.md, "DNS is the database"), so
// everything a command changes goes through Updater.Apply as one atomic
// change set whose prerequisites the server checks, and everything the boot
// service knows comes from Client.Lookup.
//
// The server must be authoritative (a primary) for the zones and accept
// the key; for BIND:
//
//	key "vmprov." { algorithm hmac-sha256; secret "..."; };
//	zone "example.com" {
//		type primary; file "example.com.db";
//		allow-update { key "vmprov."; };    // Apply
//		allow-transfer { key "vmprov."; };  // Transfer (vmprov list)
//	};
//
// The package is a leaf: it knows nothing of vmprov's configuration or data
// model, only DNS. Package dnstest holds the conformance suite of this seam
// and an in-memory fake that passes it.
package dnsupdate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultRetries   = 2
	DefaultAlgorithm = "hmac-sha256"
)

// tsigFudge is the permitted clock skew of signed messages (RFC 8945 5.2.3
// recommends 300 seconds).
const tsigFudge = 300

// udpSize is the EDNS0 buffer size advertised by lookups (the DNS flag day
// 2020 value, safe from fragmentation).
const udpSize = 1232

// Config configures a Client.
type Config struct {
	// Server is where updates, lookups and transfers go, as host:port.
	Server string
	// KeyName, Algorithm and Secret (base64) are the TSIG key. An empty
	// Secret sends everything unsigned and KeyName is then ignored. The
	// algorithm defaults to hmac-sha256; hmac-sha1, -sha224, -sha256,
	// -sha384 and -sha512 are supported.
	KeyName, Algorithm, Secret string
	// Timeout bounds each attempt; default 2s.
	Timeout time.Duration
	// Retries is how many times a failed attempt is repeated (network
	// error, timeout or SERVFAIL); 0 means the default 2, negative means
	// never.
	Retries int
	// Log receives retries (Warn) and completed operations (Debug); nil
	// discards.
	Log *slog.Logger
}

// Client talks to one DNS server. It holds no connection between calls and
// is safe for concurrent use.
//
// When a key is configured, every message is signed: updates, transfers and
// also lookups, so that the boot service acts only on answers it can
// authenticate. The server must therefore know the key.
type Client struct {
	server string
	key    string // canonical key name; "" when unsigned
	alg    string // canonical algorithm name, e.g. "hmac-sha256."
	secret string
	// timeout and retries are per Config; backoff is the first pause
	// between attempts, doubled each time.
	timeout time.Duration
	retries int
	backoff time.Duration
	log     *slog.Logger
	// now is the clock that dates TSIG signatures; tests replace it.
	now func() time.Time
}

var _ Updater = (*Client)(nil)

// New validates cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	c := &Client{
		server:  cfg.Server,
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		backoff: 50 * time.Millisecond,
		log:     cfg.Log,
		now:     time.Now,
	}
	host, port, err := net.SplitHostPort(cfg.Server)
	if err != nil || host == "" {
		return nil, fmt.Errorf("dnsupdate: server %q is not HOST:PORT (e.g. 127.0.0.1:53 or [2001:db8::53]:53)", cfg.Server)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("dnsupdate: server %q: port %q is not 1 to 65535", cfg.Server, port)
	}
	switch {
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	case c.timeout < 0:
		return nil, fmt.Errorf("dnsupdate: timeout %v is negative", cfg.Timeout)
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Secret == "" {
		return c, nil
	}
	if _, ok := dns.IsDomainName(cfg.KeyName); !ok || strings.Trim(cfg.KeyName, ".") == "" {
		return nil, fmt.Errorf("dnsupdate: TSIG key name %q is not a domain name (e.g. vmprov.)", cfg.KeyName)
	}
	c.key = dns.CanonicalName(cfg.KeyName)
	alg := cfg.Algorithm
	if alg == "" {
		alg = DefaultAlgorithm
	}
	c.alg = dns.CanonicalName(alg)
	switch c.alg {
	case dns.HmacSHA1, dns.HmacSHA224, dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
	default:
		return nil, fmt.Errorf("dnsupdate: TSIG algorithm %q is not supported: use hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224 or hmac-sha1", cfg.Algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(cfg.Secret)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("dnsupdate: TSIG secret of key %s is not base64 (as tsig-keygen prints it)", c.key)
	}
	c.secret = cfg.Secret
	return c, nil
}

// Server returns the configured server, host:port.
func (c *Client) Server() string { return c.server }

// exchange sends the message built by build (a fresh one per attempt, so
// that every attempt gets its own ID and a TSIG signature dated now, RFC 8945
// 5.2.3) and returns the verified response. proto is "udp" (falling back to
// TCP when the answer is truncated) or "tcp". check classifies a response and
// whether its TSIG verified.
func (c *Client) exchange(ctx context.Context, proto string, build func() *dns.Msg, check func(r *dns.Msg, tsigErr error) error) (*dns.Msg, error) {
	var resp *dns.Msg
	err := c.retry(ctx, func() error {
		r, tsigErr, err := c.attempt(ctx, proto, build())
		if err == nil && r.Truncated && proto == "udp" {
			// RFC 7766 5: repeat over TCP; not counted as a retry.
			r, tsigErr, err = c.attempt(ctx, "tcp", build())
		}
		if err != nil {
			return err
		}
		resp = r
		return check(r, tsigErr)
	})
	return resp, err
}

// retry runs op until it succeeds, fails for good, ctx ends or the retries
// are spent. Only network errors, timeouts and SERVFAIL are worth another
// attempt; a definite refusal never is.
func (c *Client) retry(ctx context.Context, op func() error) error {
	var last error
	pause := c.backoff
	for attempt := 0; attempt <= c.retries; attempt++ {
		if attempt > 0 {
			c.log.Warn("dns retry", "attempt", attempt+1, "err", last)
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (after %s, last: %v)", ctx.Err(), attempts(attempt), last)
			case <-t.C:
			}
			pause *= 2
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (after %s, last: %v)", ctx.Err(), attempts(attempt+1), err)
		}
		if !retryable(err) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%w (after %s)", last, attempts(c.retries+1))
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}

// unansweredError is the failure of an attempt whose request may have
// reached the server: it was sent, or being sent, when the connection
// failed, timed out or brought no valid answer. The server may have acted
// on it.
type unansweredError struct{ error }

func (e unansweredError) Unwrap() error { return e.error }

// permanentError is a local failure that another attempt cannot cure.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func retryable(err error) bool {
	var re *RcodeError
	if errors.As(err, &re) {
		return re.Rcode == dns.RcodeServerFailure
	}
	var pe permanentError
	return !errors.As(err, &pe)
}

// attempt performs one request/response over a fresh connection. A response
// whose TSIG is missing or does not verify is returned with tsigErr set, so
// that the caller can report the server's reason (an error response to a
// bad key is unsigned, RFC 8945 5.3.2).
func (c *Client) attempt(ctx context.Context, proto string, m *dns.Msg) (resp *dns.Msg, tsigErr, err error) {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var out []byte
	var reqMAC string
	if c.key != "" {
		m.SetTsig(c.key, c.alg, tsigFudge, c.now().Unix())
		out, reqMAC, err = dns.TsigGenerate(m, c.secret, "", false)
	} else {
		out, err = m.Pack()
	}
	if err != nil {
		return nil, nil, permanentError{fmt.Errorf("pack: %w", err)}
	}
	if len(out) > dns.MaxMsgSize {
		return nil, nil, permanentError{fmt.Errorf("message of %d bytes exceeds the DNS limit of %d: split the change set", len(out), dns.MaxMsgSize)}
	}
	var d net.Dialer
	nc, err := d.DialContext(actx, proto, c.server)
	if err != nil {
		return nil, nil, err
	}
	defer nc.Close()
	// From here on the request may reach the server, so a failure leaves
	// its outcome unknown.
	defer func() {
		if err != nil {
			err = unansweredError{err}
		}
	}()
	// A deadline in the past unblocks reads at once when ctx ends.
	stop := context.AfterFunc(actx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, nil, err
	}
	co := &dns.Conn{Conn: nc, UDPSize: 4096} // above the udpSize we advertise
	if _, err := co.Write(out); err != nil {
		return nil, nil, err
	}
	for range 64 { // stray UDP datagrams are skipped, within reason
		p, err := co.ReadMsgHeader(nil)
		if errors.Is(err, dns.ErrShortRead) && proto == "udp" {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(p); err != nil {
			if proto == "udp" {
				continue
			}
			return nil, nil, fmt.Errorf("malformed response: %w", err)
		}
		if !answers(m, resp) {
			if proto == "udp" {
				continue // perhaps a late answer to an earlier attempt
			}
			return nil, nil, fmt.Errorf("response id %d does not answer request id %d", resp.Id, m.Id)
		}
		if c.key != "" {
			if resp.IsTsig() == nil {
				return resp, errUnsigned, nil
			}
			if err := dns.TsigVerify(p, c.secret, reqMAC, false); err != nil {
				return resp, err, nil
			}
		}
		return resp, nil, nil
	}
	return nil, nil, errors.New("no matching response among 64 datagrams")
}

// answers reports whether r is a response to q (RFC 5452 9.1: ID and
// question must match).
func answers(q, r *dns.Msg) bool {
	if !r.Response || r.Id != q.Id || r.Opcode != q.Opcode {
		return false
	}
	if len(r.Question) == 0 {
		// Some error responses (FORMERR, NOTIMP) carry no question.
		return r.Rcode != dns.RcodeSuccess
	}
	return len(r.Question) == 1 && r.Question[0].Qtype == q.Question[0].Qtype &&
		r.Question[0].Qclass == q.Question[0].Qclass && strings.EqualFold(r.Question[0].Name, q.Question[0].Name)
}

// errUnsigned is the TSIG verification error of an unsigned response to a
// signed request.
var errUnsigned = errors.New("response is not signed")
