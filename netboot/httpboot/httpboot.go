// Package httpboot is the HTTP side of vmprov's boot service: the boot chain
// of seed 000 that iPXE follows, answer files for installers, and static
// iPXE binaries and installer assets.
//
// Routes (docs/design.md, "The boot chain"):
//
//	GET /mac/{hexhyp}/ipxe          DIR/mac/{hexhyp}/ipxe, else 404
//	GET /pxedust                    FCrDNS of the client → #!ipxe, set lines, chain to the site script;
//	                                an installed host: a script that exits to the next boot device
//	GET /bootstrap/{site}/{file...} DIR/bootstrap/{site}/{file}; built-in {boot.site}/default.ipxe
//	GET /bootstrap/install/...      built-in install/default.ipxe and, for the confirmed
//	                                requester only, {distribution}/{arch}/ks.cfg, preseed.cfg,
//	                                user-data, meta-data and {distribution}/firstboot
//	GET|POST /done?token=T          the installer's callback: the host is installed
//	GET /boot.ipxe                  the script `vmprov ipxe build` embeds; an installed host: the
//	                                script that exits
//	GET /ipxe/{path...}             DIR/ipxe, else for a plain name the loader folders; with Range
//	GET /assets/{path...}           DIR/assets, with Range
//	GET /healthz                    liveness
//	GET /metrics                    Config.Metrics in the Prometheus exposition formats
//
// The site name "install" is taken by the install routes. Only GET and
// HEAD are answered, and POST on /done. Every answer that depends on the client
// rests on netboot.Policy: an unknown client, one whose reverse DNS is not
// forward-confirmed, or one without a boot intent gets the same 404 with a
// body that names no host, and a DNS failure gets 503, never a guess. The
// client is the TCP peer (http.Request.RemoteAddr); X-Forwarded-For is
// believed only from Config.TrustedProxies. Static files are served through
// os.Root, so neither ".." nor a symbolic link leaves their folder.
package httpboot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/templates"
)

// MaxURILength is the longest request target answered; longer ones get 414.
const MaxURILength = 1024

// Bounds on what clients hold (docs/design.md).
const (
	// MaxConnections is how many connections are open at once
	// (serve.limits.http_connections); further ones wait in the kernel's
	// listen queue until one closes.
	MaxConnections = 512
	// StallTimeout is how long a response may make no progress: a client
	// that reads nothing of it for this long is cut off, while a download
	// that keeps moving, however slowly, goes on. A request body must
	// arrive within it too.
	StallTimeout = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	// Policy identifies clients. Required.
	Policy netboot.Policy
	// Booter decides what /pxedust answers and holds the base URLs, the
	// mirror and the site (boot:).
	Booter netboot.Booter
	// Dir is serve.dir: it holds mac/, bootstrap/, ipxe/ and assets/.
	Dir string
	// LoaderDirs are looked in, in order, for a plain file name under
	// /ipxe/ that Dir/ipxe lacks (serve.loader_dirs): UEFI HTTP boot
	// fetches its loader there. Empty: Dir/ipxe only.
	LoaderDirs netboot.LoaderDirs
	// AssetDirs are looked in for a path under /assets/ that Dir/assets
	// lacks (serve.asset_dirs): Debian's packaged installers by default.
	AssetDirs netboot.AssetDirs
	// Log receives one line per request (ip, host, file, status, bytes,
	// dur, err); nil discards.
	Log *slog.Logger
	// Metrics is what /metrics serves: vmprov serve's registry, which
	// holds Collector's metrics and every other server's. Nil: no /metrics
	// route (404).
	Metrics prometheus.Gatherer
	// TrustedProxies are peers whose X-Forwarded-For header names the
	// client (its last address is used). Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// PublicMACScripts serves DIR/mac/MAC/ipxe to anyone
	// (serve.public_mac_scripts); false: only to the host with that MAC.
	PublicMACScripts bool
	// MaxConnections bounds the connections Serve keeps open; zero means
	// the constant MaxConnections.
	MaxConnections int
	// StallTimeout is how long a response may make no progress before its
	// connection is closed; zero means the constant StallTimeout.
	StallTimeout time.Duration
	// Build records hosts' build states (docs/design.md, "A host's life"):
	// installing when a host fetches its answer file, installed when its
	// installer calls /done. Nil: no state is written, answer files carry no
	// callback and /done answers 404.
	Build BuildWriter
	// DoneSecret keys the callback tokens (buildstate.Token); every serve
	// instance of a zone must have the same. Required with Build.
	DoneSecret []byte
}

// Server answers the boot service's HTTP routes. It is an http.Handler and
// safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
	// bootScript is /boot.ipxe, rendered once; bootErr is why it could not be.
	bootScript []byte
	bootErr    error
	// conns holds a token per open connection, up to MaxConnections;
	// limited counts the times Serve found none free.
	conns   chan struct{}
	limited atomic.Uint64
	stall   time.Duration
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg. It does not touch the file system or DNS;
// missing folders under Dir simply answer 404.
func New(cfg Config) *Server {
	m := newMetrics()
	cfg.Policy = netboot.TimedPolicy(cfg.Policy, m.decisions)
	s := &Server{cfg: cfg, log: cfg.Log, metrics: m, mux: http.NewServeMux(), stall: cfg.StallTimeout}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = MaxConnections
	}
	s.conns = make(chan struct{}, cfg.MaxConnections)
	if s.stall <= 0 {
		s.stall = StallTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.bootScript, s.bootErr = templates.BootScript(templates.BootInput{BootURL: cfg.Booter.URL, BootURLv6: cfg.Booter.URLv6})

	s.mux.HandleFunc("GET /mac/{hexhyp}/ipxe", s.handleMAC)
	s.mux.HandleFunc("GET /pxedust", s.handlePXEDust)
	s.mux.HandleFunc("GET /bootstrap/{site}/{file...}", s.handleSite)
	s.mux.HandleFunc("GET /bootstrap/install/{path...}", s.handleInstall)
	s.mux.HandleFunc("GET /boot.ipxe", s.handleBootScript)
	s.mux.HandleFunc("GET /done", s.handleDone)
	s.mux.HandleFunc("POST /done", s.handleDone)
	s.mux.HandleFunc("GET /ipxe/{path...}", s.handleLoader)
	s.mux.HandleFunc("GET /assets/{path...}", s.handleAsset)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { notFound(w, r) })
	return s
}

// ServeHTTP refuses odd requests, routes the rest, and logs and counts
// every one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.ContentLength != 0 {
		// No route reads a body, and net/http discards what is left of one
		// after the handler: the body must arrive within StallTimeout. A
		// request without one keeps no read deadline, as net/http's
		// background read would take it for a closed connection.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.stall))
	}
	rec := &recorder{ResponseWriter: w}
	route := "refused"
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead && !(r.Method == http.MethodPost && r.URL.Path == "/done"):
		rec.Header().Set("Allow", "GET, HEAD")
		rec.err = "method not allowed"
		plain(rec, r, http.StatusMethodNotAllowed, "method not allowed\n")
	case len(r.RequestURI) > MaxURILength || len(r.URL.Path) > MaxURILength:
		rec.err = "request URI too long"
		plain(rec, r, http.StatusRequestURITooLong, "request URI too long\n")
	case !cleanPath(r.URL.Path):
		rec.err = "path is not clean"
		plain(rec, r, http.StatusBadRequest, "bad request\n")
	default:
		s.mux.ServeHTTP(rec, r)
		route = strings.TrimPrefix(strings.TrimPrefix(r.Pattern, "GET "), "POST ")
		if route == "" {
			route = "/"
		}
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	dur := time.Since(start)
	s.metrics.observe(route, rec.status, rec.bytes, dur)
	s.logRequest(r, rec, route, dur)
}

func (s *Server) logRequest(r *http.Request, rec *recorder, route string, dur time.Duration) {
	level := slog.LevelInfo
	switch {
	case rec.status >= 500:
		level = slog.LevelError
	case rec.status == http.StatusBadRequest || rec.status == http.StatusMethodNotAllowed ||
		rec.status == http.StatusRequestURITooLong || rec.warn:
		level = slog.LevelWarn
	case route == "/healthz" || route == "/metrics":
		level = slog.LevelDebug
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("ip", s.clientAddr(r).String()),
		slog.String("proto", "http"),
		slog.String("method", r.Method),
		slog.String("file", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("dur", dur),
	}
	if rec.host != "" {
		attrs = append(attrs, slog.String("host", rec.host))
	}
	if rec.err != "" {
		attrs = append(attrs, slog.String("err", rec.err))
	}
	if rec.sha256 != "" {
		attrs = append(attrs, slog.String("sha256", rec.sha256))
	}
	s.log.LogAttrs(ctx, level, "http request", attrs...)
}

// cleanPath reports whether p is a request path the server considers at
// all: absolute, with no empty, "." or ".." segments, no backslash and no
// control characters. A trailing slash is allowed. Paths that are not clean
// are refused with 400 before routing, rather than redirected as
// http.ServeMux would do.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > MaxURILength {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "" && i == len(segs)-1:
		case seg == "", seg == ".", seg == "..":
			return false
		}
	}
	return true
}

// clientAddr is the address the policy identifies: the TCP peer, or the
// last X-Forwarded-For address when the peer is a trusted proxy.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap().WithZone("")
	for _, p := range s.cfg.TrustedProxies {
		if !p.Contains(peer) {
			continue
		}
		xff := r.Header.Values("X-Forwarded-For")
		if len(xff) == 0 {
			break
		}
		list := strings.Split(xff[len(xff)-1], ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(list[len(list)-1])); err == nil {
			return a.Unmap().WithZone("")
		}
		break
	}
	return peer
}

// bootURL is the base URL a client at addr reaches the service at:
// boot.url_v6 for IPv6 clients when set, else boot.url.
func (s *Server) bootURL(addr netip.Addr) string { return s.cfg.Booter.BaseURL(addr.Is6()) }

// decide asks the policy about the requester. ok false means the answer is
// written already: 404 for unknown clients, 503 when DNS failed.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) (netip.Addr, netboot.Decision, bool) {
	addr := s.clientAddr(r)
	rec := note(w)
	if !addr.IsValid() {
		rec.err = "no client address"
		notFound(w, r)
		return addr, netboot.Decision{}, false
	}
	d, err := s.cfg.Policy.Decide(r.Context(), netboot.Client{Addr: addr})
	switch {
	case errors.Is(err, netboot.ErrUnknown):
		rec.err = err.Error()
		notFound(w, r)
		return addr, d, false
	case err != nil:
		rec.err = err.Error()
		plain(w, r, http.StatusServiceUnavailable, "service unavailable\n")
		return addr, d, false
	}
	rec.host = strings.TrimSuffix(d.Host.FQDN, ".")
	return addr, d, true
}

func (s *Server) handlePXEDust(w http.ResponseWriter, r *http.Request) {
	addr, d, ok := s.decide(w, r)
	if !ok {
		return
	}
	// The chain hands out the installer: Confirmed reads the build state
	// past the cache first (docs/design.md, "A host's life").
	q := netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaHTTP, IPv6: addr.Is6()}
	a, d, err := s.cfg.Booter.Confirmed(r.Context(), s.cfg.Policy, d, q)
	if err != nil {
		note(w).err = err.Error()
		plain(w, r, http.StatusServiceUnavailable, "service unavailable\n")
		return
	}
	switch a.Action {
	case netboot.ActionLocal:
		s.localScript(w, r, d)
		return
	case netboot.ActionChain:
	default:
		note(w).err = a.Why
		notFound(w, r)
		return
	}
	body, err := templates.PXEDust(templates.PXEDustInput{
		BootURL:  a.Base,
		Site:     s.cfg.Booter.Site,
		Filename: a.Script,
		Vars:     hostVars(d.Host.Intent),
	})
	if err != nil {
		invalid(w, r, err)
		return
	}
	script(w, r, body)
}

// localScript answers an installed host's iPXE with the script that exits
// to the next boot device, its local disk.
func (s *Server) localScript(w http.ResponseWriter, r *http.Request, d netboot.Decision) {
	body, err := templates.LocalScript(templates.LocalInput{FQDN: d.Host.FQDN})
	if err != nil {
		invalid(w, r, err)
		return
	}
	script(w, r, body)
}

// handleBootScript serves the embedded boot script to anyone, except that
// an installed host, forward-confirmed by its address, gets the script that
// exits to its local disk (docs/design.md, "A host's life"); its build
// state is confirmed past the cache (Booter.Confirmed), so a host another
// instance has just marked installed, or one just reinstalled, is answered
// from DNS as it is now. Unknown clients and DNS failures get the boot
// script, whose /pxedust decides.
func (s *Server) handleBootScript(w http.ResponseWriter, r *http.Request) {
	if addr := s.clientAddr(r); addr.IsValid() {
		if d, err := s.cfg.Policy.Decide(r.Context(), netboot.Client{Addr: addr}); err == nil {
			q := netboot.Query{Firmware: netboot.Firmware{Kind: netboot.KindIPXE}, Via: netboot.ViaHTTP, IPv6: addr.Is6()}
			if a, d, err := s.cfg.Booter.Confirmed(r.Context(), s.cfg.Policy, d, q); err == nil && a.Action == netboot.ActionLocal {
				note(w).host = strings.TrimSuffix(d.Host.FQDN, ".")
				s.localScript(w, r, d)
				return
			}
		}
	}
	if s.bootErr != nil {
		note(w).err = s.bootErr.Error()
		plain(w, r, http.StatusInternalServerError, "internal server error\n")
		return
	}
	script(w, r, s.bootScript)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	plain(w, r, http.StatusOK, "ok\n")
}

// Serve answers HTTP on l until ctx ends, then shuts down gracefully within
// shutdownTimeout (open downloads are cut after it) and returns nil. It
// keeps at most Config.MaxConnections connections open (for all its calls
// together); a request's headers must arrive within 10 s, an idle
// connection is closed after 60 s, and a response that makes no progress
// for Config.StallTimeout is cut off.
func (s *Server) Serve(ctx context.Context, l net.Listener, shutdownTimeout time.Duration) error {
	l = &limitListener{Listener: l, conns: s.conns, limited: &s.limited, stall: s.stall, done: make(chan struct{})}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// limitListener accepts a connection only when it holds a token of conns
// for it; the connection gives the token back when it closes. While none
// is free, new connections wait in the kernel's listen queue, as
// golang.org/x/net/netutil.LimitListener makes them, so a client sees a
// slow connect rather than a refusal.
type limitListener struct {
	net.Listener
	conns   chan struct{}
	limited *atomic.Uint64
	stall   time.Duration
	done    chan struct{}
	once    sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.conns <- struct{}{}:
	default:
		l.limited.Add(1)
		select {
		case l.conns <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.conns
		return nil, err
	}
	return &conn{Conn: c, conns: l.conns, stall: l.stall}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// conn is an accepted connection. A write to it that has not completed
// within stall goes on while the client's TCP acknowledges data
// (tcpi_bytes_acked of TCP_INFO, Linux 4.1): a client that reads, however
// slowly, is served to the end, and one that stops reading is cut off
// after stall, which ends the response and the connection. Kernel buffers
// would make a deadline per write alone cut slow readers too: a blocked
// writer wakes only after a third of its send buffer (megabytes, once
// autotuned) has drained. Closing a conn gives its token back.
type conn struct {
	net.Conn
	conns chan struct{}
	stall time.Duration
	once  sync.Once
	// mark is tcpi_bytes_acked when the current write began; marked is
	// false when it could not be read.
	mark   uint64
	marked bool
}

func (c *conn) Write(b []byte) (int, error) {
	var n int
	for {
		if err := c.arm(); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(b[n:])
		n += m
		if err == nil || !c.moving(err) {
			return n, err
		}
	}
}

// ReadFrom keeps net.TCPConn's sendfile(2) for files, as http.ServeContent
// sends them; sendfile resumes from the file's position after a missed
// deadline. Other readers go through Write.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	src := r
	if lr, isLR := r.(*io.LimitedReader); isLR {
		src = lr.R
	}
	if _, isFile := src.(*os.File); !ok || !isFile {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var n int64
	for {
		if err := c.arm(); err != nil {
			return n, err
		}
		m, err := rf.ReadFrom(r)
		n += m
		if err == nil || !c.moving(err) {
			return n, err
		}
	}
}

// arm gives the next write stall to complete and notes what the client
// has acknowledged so far.
func (c *conn) arm() error {
	c.mark, c.marked = c.acked()
	return c.Conn.SetWriteDeadline(time.Now().Add(c.stall))
}

// moving reports whether a write that failed with err may go on: it
// missed its deadline while the client acknowledged more data.
func (c *conn) moving(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || !c.marked {
		return false
	}
	now, ok := c.acked()
	return ok && now > c.mark
}

// acked returns the bytes of the connection the client's TCP has
// acknowledged; false when the connection cannot tell.
func (c *conn) acked() (uint64, bool) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		return 0, false
	}
	return info.Bytes_acked, true
}

// CloseWrite keeps net/http's half-close, which lets a response reach the
// client before a connection that still has unread request data closes.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error {
	c.once.Do(func() { <-c.conns })
	return c.Conn.Close()
}

// connCollectors are the metrics of the connection limit.
func (s *Server) connCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vmprov_http_connections_limited_total",
			Help: "Times the HTTP server had serve.limits.http_connections open and left new connections waiting in the listen queue.",
		}, func() float64 { return float64(s.limited.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vmprov_http_connections_open",
			Help: "HTTP connections open.",
		}, func() float64 { return float64(len(s.conns)) }),
	}
}
