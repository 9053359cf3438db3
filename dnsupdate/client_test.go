package dnsupdate

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

const (
	testKey    = "vmprov."
	testSecret = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=" // 32 bytes
)

// request is what a test server saw.
type request struct {
	proto      string
	id         uint16
	timeSigned uint64
	mac        string
	tsigErr    error
}

// testServer is a miekg/dns server on 127.0.0.1 (UDP and TCP on one port)
// that verifies TSIG and answers with respond.
type testServer struct {
	addr    string
	mu      sync.Mutex
	reqs    []request
	respond func(n int, proto string, r *dns.Msg) *dns.Msg // n counts requests from 0; nil reply = stay silent
}

func startServer(t *testing.T, respond func(n int, proto string, r *dns.Msg) *dns.Msg) *testServer {
	t.Helper()
	s := &testServer{respond: respond}
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no free UDP+TCP port on 127.0.0.1")
	}
	s.addr = pc.LocalAddr().String()
	secrets := map[string]string{testKey: testSecret}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s.handler("udp"), TsigSecret: secrets},
		{Listener: l, Handler: s.handler("tcp"), TsigSecret: secrets},
	} {
		srv.MsgAcceptFunc = func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept } // UPDATE too
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

func (s *testServer) handler(proto string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		req := request{proto: proto, id: r.Id}
		if t := r.IsTsig(); t != nil {
			req.timeSigned, req.mac, req.tsigErr = t.TimeSigned, t.MAC, w.TsigStatus()
		}
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		reply := s.respond(n, proto, r)
		if reply == nil {
			return
		}
		if t := r.IsTsig(); t != nil && req.tsigErr == nil {
			reply.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
		}
		_ = w.WriteMsg(reply)
	}
}

func (s *testServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func reply(r *dns.Msg, rcode int, answer ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.Answer = answer
	return m
}

// newTestClient returns a signed client of s whose clock advances one
// second per signature, and whose pauses between attempts are short.
func newTestClient(t *testing.T, s *testServer, cfg Config) *Client {
	t.Helper()
	cfg.Server = s.addr
	if cfg.KeyName == "" {
		cfg.KeyName, cfg.Secret = testKey, testSecret
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = time.Millisecond
	base := time.Now()
	var mu sync.Mutex
	n := 0
	c.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n) * time.Second)
	}
	return c
}

var claim = ChangeSet{Zone: "example.com.", NameNotInUse: []string{"h.example.com."},
	Add: []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "h.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}}

// TestApplyResignsEachAttempt: after a SERVFAIL the update is sent again
// with a new ID and a new signature over a new time (RFC 8945 5.2.3), not
// the same bytes.
func TestApplyResignsEachAttempt(t *testing.T) {
	s := startServer(t, func(n int, _ string, r *dns.Msg) *dns.Msg {
		if n == 0 {
			return reply(r, dns.RcodeServerFailure)
		}
		return reply(r, dns.RcodeSuccess)
	})
	c := newTestClient(t, s, Config{})
	if err := c.Apply(t.Context(), claim); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.proto != "tcp" || r.tsigErr != nil || r.mac == "" {
			t.Errorf("request %d: %s, TSIG %v, MAC %q; want a validly signed TCP request", i, r.proto, r.tsigErr, r.mac)
		}
	}
	if reqs[1].timeSigned <= reqs[0].timeSigned || reqs[0].mac == reqs[1].mac || reqs[0].id == reqs[1].id {
		t.Errorf("retry reused the first attempt: %+v", reqs)
	}
}

func TestApplyDoesNotRetryRefusals(t *testing.T) {
	for _, rcode := range []int{dns.RcodeRefused, dns.RcodeNotAuth, dns.RcodeYXDomain, dns.RcodeNXRrset, dns.RcodeFormatError} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			s := startServer(t, func(_ int, _ string, r *dns.Msg) *dns.Msg { return reply(r, rcode) })
			err := newTestClient(t, s, Config{}).Apply(t.Context(), claim)
			var re *RcodeError
			if !errors.As(err, &re) || re.Rcode != rcode || re.Zone != "example.com." || re.Key != testKey || re.Server != s.addr {
				t.Fatalf("Apply = %#v, want an *RcodeError with %s", err, dns.RcodeToString[rcode])
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestApplyGivesUpAfterRetries(t *testing.T) {
	s := startServer(t, func(_ int, _ string, r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure) })
	err := newTestClient(t, s, Config{Retries: 3}).Apply(t.Context(), claim)
	var re *RcodeError
	if !errors.As(err, &re) || re.Rcode != dns.RcodeServerFailure || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Apply = %v, want SERVFAIL after 4 attempts", err)
	}
	if n := len(s.requests()); n != 4 {
		t.Errorf("server saw %d requests, want 4", n)
	}
	s = startServer(t, func(_ int, _ string, r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure) })
	_ = newTestClient(t, s, Config{Retries: -1}).Apply(t.Context(), claim)
	if n := len(s.requests()); n != 1 {
		t.Errorf("with Retries -1 the server saw %d requests, want 1", n)
	}
}

func TestApplyRetriesTimeout(t *testing.T) {
	s := startServer(t, func(n int, _ string, r *dns.Msg) *dns.Msg {
		if n == 0 {
			return nil // lost
		}
		return reply(r, dns.RcodeSuccess)
	})
	start := time.Now()
	if err := newTestClient(t, s, Config{Timeout: 200 * time.Millisecond}).Apply(t.Context(), claim); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Apply returned after %v, before the first attempt timed out", d)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// TestApplyMaybeApplied: an update whose answer was lost may have been
// applied, so a failure after it matches ErrMaybeApplied: above all the
// retry's prerequisite failure, which the lost attempt itself may have
// caused. A refusal or SERVFAIL is an answer, and a connection that never
// opened carried nothing: neither leaves the outcome open.
func TestApplyMaybeApplied(t *testing.T) {
	const (
		lost = -1 // no answer
	)
	for _, tt := range []struct {
		name         string
		answers      []int // per attempt: an rcode or lost
		wantErr      bool
		prerequisite bool
		maybeApplied bool
		says         string
	}{
		{"lost, then taken", []int{lost, dns.RcodeYXDomain}, true, true, true,
			"prerequisite failed: name already exists (YXDOMAIN), after an attempt that got no answer ("},
		{"lost, then other values", []int{lost, dns.RcodeNXRrset}, true, true, true, "the server may have applied that attempt"},
		{"lost every time", []int{lost, lost, lost}, true, false, true, "(after 3 attempts): the server may have applied the update"},
		{"lost, then refused", []int{lost, dns.RcodeRefused}, true, false, true, "may have applied"},
		{"lost, then applied", []int{lost, dns.RcodeSuccess}, false, false, false, ""},
		{"taken", []int{dns.RcodeYXDomain}, true, true, false, "YXDOMAIN"},
		{"SERVFAIL, then taken", []int{dns.RcodeServerFailure, dns.RcodeYXDomain}, true, true, false, "YXDOMAIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, func(n int, _ string, r *dns.Msg) *dns.Msg {
				if n >= len(tt.answers) || tt.answers[n] == lost {
					return nil
				}
				return reply(r, tt.answers[n])
			})
			err := newTestClient(t, s, Config{Timeout: 100 * time.Millisecond}).Apply(t.Context(), claim)
			if (err != nil) != tt.wantErr || errors.Is(err, ErrPrerequisite) != tt.prerequisite || errors.Is(err, ErrMaybeApplied) != tt.maybeApplied {
				t.Fatalf("Apply = %v: Is(ErrPrerequisite) %v, Is(ErrMaybeApplied) %v; want error %v, %v, %v",
					err, errors.Is(err, ErrPrerequisite), errors.Is(err, ErrMaybeApplied), tt.wantErr, tt.prerequisite, tt.maybeApplied)
			}
			if err != nil && !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q lacks %q", err, tt.says)
			}
			if n := len(s.requests()); n != len(tt.answers) {
				t.Errorf("server saw %d requests, want %d", n, len(tt.answers))
			}
		})
	}
	// Nothing was sent when no connection opened.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(Config{Server: addr, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = time.Millisecond
	if err := c.Apply(t.Context(), claim); err == nil || errors.Is(err, ErrMaybeApplied) {
		t.Errorf("Apply with nothing listening = %v, want an error not matching ErrMaybeApplied", err)
	}
}

func TestApplyRespectsContext(t *testing.T) {
	s := startServer(t, func(int, string, *dns.Msg) *dns.Msg { return nil })
	c := newTestClient(t, s, Config{Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Apply(ctx, claim)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Apply took %v, far past its 300ms deadline", d)
	}
}

func TestApplyNetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused on every attempt
	c, err := New(Config{Server: addr, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = time.Millisecond
	err = c.Apply(t.Context(), claim)
	var re *RcodeError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("Apply = %v, want a network error naming %s after 2 attempts", err, addr)
	}
}

func TestLookupFallsBackToTCP(t *testing.T) {
	a := &dns.A{Hdr: dns.RR_Header{Name: "h.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 42}, A: net.IPv4(192, 0, 2, 7)}
	s := startServer(t, func(_ int, proto string, r *dns.Msg) *dns.Msg {
		m := reply(r, dns.RcodeSuccess)
		m.Authoritative = true
		if proto == "udp" {
			m.Truncated = true
			return m
		}
		m.Answer = []dns.RR{a}
		return m
	})
	got, err := newTestClient(t, s, Config{}).Lookup(t.Context(), "h.example.com.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	want := Answer{Records: []dns.RR{a}, TTL: 42 * time.Second}
	if diff := cmp.Diff(want.TTL, got.TTL); diff != "" || len(got.Records) != 1 || got.Records[0].String() != a.String() {
		t.Errorf("Lookup = %+v, want %+v", got, want)
	}
	var protos []string
	for _, r := range s.requests() {
		protos = append(protos, r.proto)
		if r.tsigErr != nil {
			t.Errorf("%s request: TSIG %v", r.proto, r.tsigErr)
		}
	}
	if diff := cmp.Diff([]string{"udp", "tcp"}, protos); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestLookupChecksID: datagrams with another ID or another question are
// not answers (RFC 5452 9.1); the client keeps waiting for the real one.
func TestLookupChecksID(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var q dns.Msg
		if q.Unpack(buf[:n]) != nil {
			return
		}
		send := func(id uint16, name string, last byte) {
			m := new(dns.Msg)
			m.SetReply(&q)
			m.Id = id
			m.Question[0].Name = name
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, last)}}
			b, _ := m.Pack()
			_, _ = pc.WriteTo(b, from)
		}
		send(q.Id+1, q.Question[0].Name, 1)      // another ID
		send(q.Id, "other.example.com.", 2)      // another question
		_, _ = pc.WriteTo([]byte{1, 2, 3}, from) // garbage
		send(q.Id, q.Question[0].Name, 3)        // the answer
	}()
	c, err := New(Config{Server: pc.LocalAddr().String(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Lookup(t.Context(), "h.example.com.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Records) != 1 || !a.Records[0].(*dns.A).A.Equal(net.IPv4(192, 0, 2, 3)) {
		t.Errorf("Lookup = %v, want only 192.0.2.3", a.Records)
	}
}

func TestAnswerOf(t *testing.T) {
	soa := func(ttl, minttl uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns1.example.com.", Mbox: "hostmaster.example.com.", Serial: 1, Minttl: minttl}
	}
	a := func(ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "h.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(192, 0, 2, 1)}
	}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: "c.example.com.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 30}, Target: "h.example.com."}
	msg := func(rcode int, answer, ns []dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.Rcode, m.Answer, m.Ns = rcode, answer, ns
		return m
	}
	for _, tc := range []struct {
		name     string
		r        *dns.Msg
		ttl      time.Duration
		nxdomain bool
		records  int
	}{
		{"positive takes the smallest TTL", msg(dns.RcodeSuccess, []dns.RR{a(300), a(60)}, nil), 60 * time.Second, false, 2},
		{"NXDOMAIN takes the SOA minimum", msg(dns.RcodeNameError, nil, []dns.RR{soa(3600, 60)}), 60 * time.Second, true, 0},
		{"NXDOMAIN takes the SOA TTL when smaller", msg(dns.RcodeNameError, nil, []dns.RR{soa(30, 300)}), 30 * time.Second, true, 0},
		{"NODATA", msg(dns.RcodeSuccess, nil, []dns.RR{soa(300, 120)}), 120 * time.Second, false, 0},
		{"no SOA", msg(dns.RcodeNameError, nil, nil), 0, true, 0},
		{"CNAME chain", msg(dns.RcodeSuccess, []dns.RR{cname, a(300)}, nil), 30 * time.Second, false, 2},
		{"CNAME to nothing", msg(dns.RcodeNameError, []dns.RR{cname}, []dns.RR{soa(300, 10)}), 10 * time.Second, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := answerOf(tc.r, dns.TypeA)
			if got.TTL != tc.ttl || got.NXDomain != tc.nxdomain || len(got.Records) != tc.records {
				t.Errorf("answerOf = %+v, want TTL %v, NXDomain %v, %d records", got, tc.ttl, tc.nxdomain, tc.records)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"unsigned", Config{Server: "127.0.0.1:53"}, ""},
		{"signed", Config{Server: "[2001:db8::53]:53", KeyName: "vmprov", Secret: testSecret}, ""},
		{"host name", Config{Server: "ns1.example.com:53", KeyName: "vmprov.", Algorithm: "HMAC-SHA512", Secret: testSecret}, ""},
		{"no port", Config{Server: "127.0.0.1"}, "is not HOST:PORT"},
		{"port 0", Config{Server: "127.0.0.1:0"}, "is not 1 to 65535"},
		{"bad port", Config{Server: "127.0.0.1:dns"}, "is not 1 to 65535"},
		{"negative timeout", Config{Server: "127.0.0.1:53", Timeout: -1}, "negative"},
		{"no key name", Config{Server: "127.0.0.1:53", Secret: testSecret}, "key name"},
		{"md5", Config{Server: "127.0.0.1:53", KeyName: "k.", Algorithm: "hmac-md5", Secret: testSecret}, "not supported"},
		{"secret not base64", Config{Server: "127.0.0.1:53", KeyName: "k.", Secret: "not base64!"}, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			case tc.want == "":
				if c.timeout != DefaultTimeout || c.retries != DefaultRetries {
					t.Errorf("defaults: timeout %v, retries %d", c.timeout, c.retries)
				}
				if tc.cfg.Secret != "" && (!dns.IsFqdn(c.key) || c.alg == "") {
					t.Errorf("key %q, algorithm %q: want canonical names", c.key, c.alg)
				}
			}
		})
	}
}
