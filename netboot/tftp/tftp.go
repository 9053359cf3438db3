// Package tftp is vmprov's read-only TFTP server (RFC 1350 with the blksize,
// tsize and windowsize options of RFC 2347, RFC 2348, RFC 2349 and RFC
// 7440).
//
// It serves the files under one root directory (serve.dir/tftp: loaders
// such as undionly.kpxe and ipxe.efi, GRUB and PXELINUX images) and
// generates per-host files for hosts DNS knows:
//
//	grub.cfg-01-<mac>        GRUB's per-MAC configuration (seed 001), in any directory
//	pxelinux.cfg/01-<mac>    PXELINUX's per-MAC configuration, chainloading iPXE (seed 002)
//	Config.SignedGrubConfigs the configuration of each architecture's signed GRUB,
//	                         which a shim loads (the Secure Boot chain, arm64 UEFI):
//	                         it names no MAC (docs/design.md, "Secure Boot")
//
// Behind the root, read-only Trees serve further directories: a netboot
// tree with the signed shim and GRUB, and the kernels and initrds of
// serve.dir/assets, which signed GRUB loads over TFTP.
//
// A per-host file is given only to the host it names: the requester's source
// address must be forward-confirmed in DNS (through the netboot.Policy) and
// the host's MAC must be the one in the file name.
//
// A name is looked up in this order: the names of Config.SignedGrubConfigs
// are always generated, so that a root holding Debian's netboot tree (whose
// debian-installer/ARCH/grub/grub.cfg is where signed GRUB looks) does not
// hand every host the installer's own menu; then the root, whose files win
// over everything else, so an operator can pin a host's grub.cfg-01-<mac> or
// pxelinux.cfg/01-<mac>; then the generated MAC-named files; then, for a
// plain name, the loader folders; then the Trees.
//
// Write requests are refused. File names are confined to the root: ".."
// is refused, a leading "/" means the root (as tftpd-hpa --secure does, and
// as GRUB asks for "(tftp)/boot/grub/..." in seed 001), and os.Root refuses
// symbolic links that lead out of it.
//
// A transfer sends one block at a time and waits for its acknowledgement
// (lockstep), unless the client asks for windowsize: then it sends up to
// 64 blocks before it waits (fewer when they would exceed 256 KiB), which
// a client such as EDK2 or atftp asks for to download faster.
//
// Transfers are bounded: MaxTransfers at once, MaxTransfersPerClient per
// source address; requests beyond them are dropped unanswered, which a
// client takes for a lost packet and retries, where an ERROR would end its
// boot attempt. Until a client has acknowledged a packet its source address
// may be forged, so the first packet is sent at most twice and no ERROR
// follows a silent client: a forged read request draws at most two
// packets of at most 516 bytes.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pin/tftp/v3/netascii"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
)

// DecideTimeout bounds the policy's DNS lookups for one per-host file.
const DecideTimeout = 2 * time.Second

// maxNameLen is the longest file name accepted. RFC 1350 sets no limit, but
// boot loaders ask for short paths, and the request must fit one datagram.
const maxNameLen = 255

// File is a kind of per-host file the server generates.
type File int

// Per-host files.
const (
	// GrubConfig is grub.cfg-01-<mac>: GRUB's per-MAC configuration
	// (seed 001), looked up in whatever directory GRUB asks.
	GrubConfig File = iota + 1
	// PXELinuxConfig is pxelinux.cfg/01-<mac> (seed 002).
	PXELinuxConfig
	// SignedGrubConfig is the configuration signed GRUB reads under its
	// built-in prefix (Config.SignedGrubConfigs), after a shim: the
	// Secure Boot chain and arm64 UEFI's. Its name has no MAC: the
	// requester's address alone identifies the host, as for HTTP; the
	// name tells the requester's architecture.
	SignedGrubConfig
)

func (f File) String() string {
	switch f {
	case GrubConfig:
		return "grub.cfg"
	case PXELinuxConfig:
		return "pxelinux.cfg"
	case SignedGrubConfig:
		return "signed grub.cfg"
	}
	return fmt.Sprintf("File(%d)", int(f))
}

// RenderFunc renders the per-host file f for a host the policy confirmed,
// as the Booter's answer a says: its installer (netboot.ActionConfig) or
// the local-disk boot of an installed host (netboot.ActionLocal). ipv6 says
// the requester asked over IPv6 (DHCPv6 hands out tftp:// boot files, RFC
// 5970 section 3.1), whose installer then boots from boot.url_v6 as over
// HTTP. It is called concurrently.
type RenderFunc func(f File, d netboot.Decision, a netboot.Answer, ipv6 bool) ([]byte, error)

// BuildWriter changes hosts' build states in DNS (buildstate.Writer, with
// serve's own TSIG key); see buildstate.Writer.Apply. It is called
// concurrently.
type BuildWriter interface {
	Apply(ctx context.Context, c buildstate.Change) (buildstate.Result, error)
}

var _ BuildWriter = (*buildstate.Writer)(nil)

// Config configures a Server.
type Config struct {
	// Root is the directory served, serve.dir/tftp, first for every name
	// but SignedGrubConfigs'. Required.
	Root string
	// LoaderDirs are looked in, in order, for a plain file name (no
	// folder) that is in Root and is no per-host file (serve.loader_dirs,
	// netboot.LoaderDirs). Empty: Root only.
	LoaderDirs netboot.LoaderDirs
	// Policy identifies the requester of a per-host file by its source
	// address; nil serves no per-host files.
	Policy netboot.Policy
	// Booter decides whether a confirmed host gets its per-host file (it
	// does when it has a boot intent).
	Booter netboot.Booter
	// Render renders per-host files (Templates(booter) in vmprov serve);
	// nil serves none.
	Render RenderFunc
	// SignedGrubConfigs maps a client architecture to the name its signed
	// GRUB asks for its configuration under (serve.signed_grub_cfg,
	// cleaned as CleanName does); nil renders none. These names are
	// rendered for the requester before Root is looked in: a file of that
	// name in Root is never served.
	SignedGrubConfigs map[netboot.Arch]string
	// Trees are read-only directories served behind Root: a name that
	// Root does not hold and that is not a per-host file is looked up in
	// each tree whose Prefix it starts with, in order.
	Trees []Tree
	// Build marks a host installing when its installer's per-host file is
	// sent (docs/design.md, "A host's life"); nil writes nothing (vmprov
	// explain).
	Build BuildWriter
	// Log receives one Info line per transfer (ip, file, bytes, dur), Warn
	// for refused requests and Error for DNS failures; nil discards.
	Log *slog.Logger
	// Timeout is how long one packet, or one window of windowsize blocks
	// (RFC 7440), waits for its acknowledgement before it is sent again;
	// zero means 5 s. Retries is how often; zero means 5.
	// Both apply once the client has acknowledged a packet; before, the
	// first packet is sent at most twice, waiting at most 1 s.
	Timeout time.Duration
	Retries int
	// MaxTransfers bounds the transfers running at once, and
	// MaxTransfersPerClient those of one source address; zero means the
	// constants of those names. Requests beyond them are dropped.
	MaxTransfers          int
	MaxTransfersPerClient int
}

// Tree is a directory served under a prefix of TFTP names: Prefix "assets"
// serves Dir/x as assets/x; an empty Prefix serves Dir/x as x.
type Tree struct {
	Prefix string
	Dir    string
}

// Stats are the server's counters since New, which Collector exports.
type Stats struct {
	Transfers  uint64 // files sent completely
	Bytes      uint64 // bytes of completed transfers
	Failed     uint64 // transfers that started and did not complete
	NotFound   uint64 // read requests for files that do not exist (or are not the requester's)
	Refused    uint64 // write requests and names outside the root
	Generated  uint64 // per-host files rendered and sent
	Errors     uint64 // requests not served because DNS or rendering failed
	Busy       uint64 // requests dropped: MaxTransfers transfers were running
	ClientBusy uint64 // requests dropped: the client had MaxTransfersPerClient running
}

// Server is a read-only TFTP server. It is safe for concurrent use.
type Server struct {
	root    *os.Root
	loaders netboot.LoaderDirs
	trees   []tree
	signed  map[string]netboot.Arch // Config.SignedGrubConfigs by cleaned name
	policy  netboot.Policy
	booter  netboot.Booter
	render  RenderFunc
	build   BuildWriter
	log     *slog.Logger
	timeout time.Duration
	retries int

	mu                         sync.Mutex
	maxTransfers, maxPerClient int                // under mu
	active                     int                // transfers running, under mu
	perClient                  map[netip.Addr]int // transfers running by source, under mu

	transfers, bytes, failed, notFound, refused, generated, errs atomic.Uint64
	busy, clientBusy                                             atomic.Uint64
	// decisions times policy's decisions (policy is a netboot.TimedPolicy).
	decisions prometheus.Histogram
}

// New opens cfg.Root and returns a Server. Close releases the root.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, errors.New("tftp: no root directory: set serve.dir")
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: root %s: %w", cfg.Root, err)
	}
	trees, err := openTrees(cfg.Trees)
	if err != nil {
		root.Close()
		return nil, err
	}
	signed, err := signedNames(cfg.SignedGrubConfigs)
	if err != nil {
		root.Close()
		closeTrees(trees)
		return nil, err
	}
	decisions := netboot.NewDecisionHistogram("tftp")
	s := &Server{
		root: root, loaders: cfg.LoaderDirs, trees: trees, signed: signed, policy: netboot.TimedPolicy(cfg.Policy, decisions), booter: cfg.Booter, render: cfg.Render, build: cfg.Build,
		log: cfg.Log, timeout: cfg.Timeout, retries: cfg.Retries, decisions: decisions,
		maxTransfers: cfg.MaxTransfers, maxPerClient: cfg.MaxTransfersPerClient, perClient: map[netip.Addr]int{},
	}
	if s.timeout <= 0 {
		s.timeout = 5 * time.Second
	}
	if s.retries <= 0 {
		s.retries = 5
	}
	if s.maxTransfers <= 0 {
		s.maxTransfers = MaxTransfers
	}
	if s.maxPerClient <= 0 {
		s.maxPerClient = MaxTransfersPerClient
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("proto", "tftp")
	return s, nil
}

// SetLimits changes the bounds Config.MaxTransfers and
// Config.MaxTransfersPerClient (serve.limits); a value under 1 keeps that
// bound. Transfers running beyond new bounds finish.
func (s *Server) SetLimits(transfers, perClient int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if transfers > 0 {
		s.maxTransfers = transfers
	}
	if perClient > 0 {
		s.maxPerClient = perClient
	}
}

// Close releases the root directory and the trees.
func (s *Server) Close() error {
	closeTrees(s.trees)
	return s.root.Close()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Transfers:  s.transfers.Load(),
		Bytes:      s.bytes.Load(),
		Failed:     s.failed.Load(),
		NotFound:   s.notFound.Load(),
		Refused:    s.refused.Load(),
		Generated:  s.generated.Load(),
		Errors:     s.errs.Load(),
		Busy:       s.busy.Load(),
		ClientBusy: s.clientBusy.Load(),
	}
}

// Collector returns the server's metrics for a prometheus.Registerer: the
// Stats counters as vmprov_tftp_transfers_total, vmprov_tftp_bytes_total,
// vmprov_tftp_failed_total, vmprov_tftp_not_found_total,
// vmprov_tftp_refused_total, vmprov_tftp_generated_total and
// vmprov_tftp_errors_total, vmprov_tftp_dropped_total{reason="busy"} and
// {reason="client_busy"} (requests dropped at MaxTransfers and
// MaxTransfersPerClient), the gauge vmprov_tftp_transfers_running, and
// vmprov_decision_duration_seconds{proto="tftp"} (per-host files only:
// other files need no decision).
func (s *Server) Collector() prometheus.Collector {
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vmprov_tftp_transfers_running", Help: "TFTP transfers running.",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.active)
	})
	return netboot.CounterCollectors([]netboot.Counter{
		{Name: "vmprov_tftp_transfers_total", Help: "TFTP files sent completely.", Value: &s.transfers},
		{Name: "vmprov_tftp_bytes_total", Help: "Bytes of completed TFTP transfers.", Value: &s.bytes},
		{Name: "vmprov_tftp_failed_total", Help: "TFTP transfers that did not complete.", Value: &s.failed},
		{Name: "vmprov_tftp_not_found_total", Help: "TFTP read requests for files not found.", Value: &s.notFound},
		{Name: "vmprov_tftp_refused_total", Help: "TFTP write requests and names outside the root.", Value: &s.refused},
		{Name: "vmprov_tftp_generated_total", Help: "Per-host TFTP files rendered and sent.", Value: &s.generated},
		{Name: "vmprov_tftp_errors_total", Help: "TFTP requests not served because DNS or rendering failed.", Value: &s.errs},
		{Name: "vmprov_tftp_dropped_total", Help: "TFTP requests dropped unanswered at the server's or the client's limit of transfers.",
			Labels: prometheus.Labels{"reason": "busy"}, Value: &s.busy},
		{Name: "vmprov_tftp_dropped_total", Help: "TFTP requests dropped unanswered at the server's or the client's limit of transfers.",
			Labels: prometheus.Labels{"reason": "client_busy"}, Value: &s.clientBusy},
	}, s.decisions, running)
}

// Serve listens on addr (host:port, e.g. ":69") and serves until ctx ends.
func (s *Server) Serve(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("tftp: listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("tftp: listen %s: %w", addr, err)
	}
	return s.ServeConn(ctx, conn)
}

// ServeConn serves requests arriving on conn until ctx ends, then closes
// conn, waits for running transfers (each ends by itself within its
// retries) and returns nil. Each transfer runs from a new port (its TID,
// RFC 1350 section 4) on the address the request was sent to. ServeConn
// may run on several conns at once; the bounds on transfers are the
// Server's.
//
// The receive loop runs on the calling goroutine, and the transfers'
// sockets are opened there, so a caller that runs ServeConn on a thread
// inside a network namespace serves that namespace.
func (s *Server) ServeConn(ctx context.Context, conn *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	pc := newPacketConn(conn)
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, 2048) // RFC 2347 keeps a request within 512 bytes
	for {
		n, from, dst, ifIndex, err := pc.read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			conn.Close()
			return fmt.Errorf("tftp: serve %s: %w", conn.LocalAddr(), err)
		}
		r, ok := parseRequest(buf[:n])
		if !ok {
			s.log.Debug("tftp packet ignored: not a read or write request", "ip", from.Addr())
			continue
		}
		if !s.admit(from.Addr()) {
			continue
		}
		r.peer, r.local = from, dst
		laddr := &net.UDPAddr{}
		if dst.IsValid() && !dst.IsUnspecified() {
			laddr.IP = dst.AsSlice()
			if dst.Is6() && dst.IsLinkLocalUnicast() && ifIndex > 0 {
				laddr.Zone = strconv.Itoa(ifIndex)
			}
		}
		if ifIndex > 0 {
			if ifi, err := net.InterfaceByIndex(ifIndex); err == nil {
				r.mtu = ifi.MTU
			}
		}
		tc, err := net.ListenUDP("udp", laddr)
		if err != nil {
			s.release(from.Addr())
			s.errs.Add(1)
			s.log.Error("tftp request not served: no socket for its transfer", "ip", from.Addr(), "err", err)
			continue
		}
		wg.Go(func() {
			defer s.release(from.Addr())
			defer tc.Close()
			t := &transfer{conn: tc, peer: from, timeout: s.timeout, retries: s.retries, buf: make([]byte, 1024)}
			if r.op == opWRQ {
				s.write(t, r)
				return
			}
			s.read(ctx, t, r)
		})
	}
}

// admit takes a transfer slot for a request from ip, or counts and drops
// the request when MaxTransfers run, or MaxTransfersPerClient from ip.
func (s *Server) admit(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.active >= s.maxTransfers:
		s.busy.Add(1)
		s.log.Debug("tftp request dropped: the server runs its limit of transfers", "ip", ip, "max", s.maxTransfers)
		return false
	case s.perClient[ip] >= s.maxPerClient:
		s.clientBusy.Add(1)
		s.log.Debug("tftp request dropped: the client runs its limit of transfers", "ip", ip, "max", s.maxPerClient)
		return false
	}
	s.active++
	s.perClient[ip]++
	return true
}

// release gives back the slot admit took.
func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perClient[ip]--; s.perClient[ip] <= 0 {
		delete(s.perClient, ip)
	}
}

// Errors sent to clients, with the RFC 1350 code errorCode gives them.
var (
	errNotFound    = errors.New("file not found")           // code 1
	errAccess      = errors.New("access violation")         // code 2
	errIllegal     = errors.New("illegal TFTP operation")   // code 4
	errUnavailable = errors.New("not available, try again") // code 0
	errRead        = errors.New("read error on the server") // code 0
	errReadOnly    = fmt.Errorf("%w: this server is read-only", errAccess)
	errNotAFile    = fmt.Errorf("%w: not a regular file", errNotFound)
	errNameTooLong = fmt.Errorf("%w: name longer than %d bytes", errAccess, maxNameLen)
	errNameEmpty   = fmt.Errorf("%w: empty name", errAccess)
	errNameControl = fmt.Errorf("%w: control character in name", errAccess)
	errNameParent  = fmt.Errorf("%w: \"..\" in name", errAccess)
	errNameNoFile  = fmt.Errorf("%w: name names no file", errAccess)
	errNameByte    = fmt.Errorf("%w: invalid byte in name", errAccess)
)

// write refuses a write request.
func (s *Server) write(t *transfer, r request) {
	s.refused.Add(1)
	s.log.Warn("write request refused", "ip", r.peer.Addr(), "file", printable(r.name))
	t.fail(errReadOnly)
}

// read serves one read request. Modes other than netascii are sent as
// octet, as mail is obsolete (RFC 1350 section 1).
func (s *Server) read(ctx context.Context, t *transfer, r request) {
	start := time.Now()
	ip := r.peer.Addr()
	log := s.log.With("ip", ip, "file", printable(r.name))
	clean, err := CleanName(r.name)
	if err != nil {
		s.refused.Add(1)
		log.Warn("read request refused", "err", err)
		t.fail(err)
		return
	}
	rd, size, generated, err := s.open(ctx, log, clean, ip, true)
	if err != nil {
		t.fail(err)
		return
	}
	if c, ok := rd.(io.Closer); ok {
		defer c.Close()
	}
	if r.mode == "netascii" {
		rd = netascii.ToReader(rd)
	}
	n, err := s.sendFile(t, r, rd, size)
	dur := time.Since(start)
	var pe *peerError
	switch {
	case errors.As(err, &pe) && pe.code == codeOptions && n == 0:
		// RFC 2347 error 8: the client ends the transfer after the option
		// acknowledgement. EDK2 does so to learn tsize before it
		// downloads.
		log.Debug("tftp size probe", "dur", dur)
	case errors.Is(err, errTimeout) && !t.verified:
		// Nothing acknowledged: a client that gave up, or a forged source.
		s.failed.Add(1)
		log.Debug("tftp transfer failed: the client acknowledged nothing", "dur", dur)
	case err != nil:
		s.failed.Add(1)
		log.Info("tftp transfer failed", "bytes", n, "dur", dur, "err", err)
	default:
		s.transfers.Add(1)
		s.bytes.Add(uint64(n))
		if generated {
			s.generated.Add(1)
		}
		log.Info("tftp transfer", "bytes", n, "dur", dur)
	}
}

// sendFile sends the option acknowledgement, if any, and rd in blocks
// (transfer.sendBlocks), and returns the bytes the client acknowledged.
func (s *Server) sendFile(t *transfer, r request, rd io.Reader, size int64) (int64, error) {
	opts, blksize, window := negotiate(r, size)
	if len(opts) > 0 {
		if err := t.send(oackPacket(opts), 0); err != nil {
			return 0, err
		}
	}
	return t.sendBlocks(rd, blksize, window)
}

// open finds what clean names: signed GRUB's configuration for the
// requester when clean is one of Config.SignedGrubConfigs, else a regular
// file under the root, else a per-host file for the requester, else for a
// plain name a file of the loader folders, else a regular file of a tree;
// mark as for perHost.
func (s *Server) open(ctx context.Context, log *slog.Logger, clean string, ip netip.Addr, mark bool) (io.Reader, int64, bool, error) {
	if arch, ok := s.signed[clean]; ok {
		// Before the root: a root that holds a netboot tree (Debian's
		// netboot.tar.gz, debian-installer/ARCH/grub/grub.cfg) would
		// otherwise answer every host with its installer menu.
		return s.generate(ctx, log, SignedGrubConfig, nil, arch, ip, mark)
	}
	rd, size, err := s.openIn(log, s.root, clean)
	if err != errAbsent {
		return rd, size, false, err
	}
	kind, mac, ok := perHostName(clean)
	if ok {
		return s.generate(ctx, log, kind, mac, 0, ip, mark)
	}
	if f, fi, err := s.loaders.Open(clean); err == nil {
		log.Debug("tftp file from a loader folder", "path", f.Name())
		return f, fi.Size(), false, nil
	}
	for _, t := range s.trees {
		if rest, ok := t.match(clean); ok {
			rd, size, err := s.openIn(log, t.root, rest)
			if err != errAbsent {
				return rd, size, false, err
			}
		}
	}
	s.notFound.Add(1)
	log.Info("file not found")
	return nil, 0, false, errNotFound
}

// generate renders the per-host file kind for the requester at ip (perHost).
func (s *Server) generate(ctx context.Context, log *slog.Logger, kind File, mac net.HardwareAddr, arch netboot.Arch, ip netip.Addr, mark bool) (io.Reader, int64, bool, error) {
	if s.policy == nil || s.render == nil {
		s.notFound.Add(1)
		log.Info("file not found")
		return nil, 0, false, errNotFound
	}
	b, err := s.perHost(ctx, log, kind, mac, arch, ip, mark)
	if err != nil {
		return nil, 0, false, err
	}
	return strings.NewReader(string(b)), int64(len(b)), true, nil
}

// signedNames keys the names of Config.SignedGrubConfigs, cleaned, by
// architecture.
func signedNames(m map[netboot.Arch]string) (map[string]netboot.Arch, error) {
	out := make(map[string]netboot.Arch, len(m))
	for arch, name := range m {
		clean, err := CleanName(name)
		if err != nil {
			return nil, fmt.Errorf("tftp: signed GRUB configuration %q of architecture %d: %w", name, arch, err)
		}
		if other, ok := out[clean]; ok {
			return nil, fmt.Errorf("tftp: signed GRUB configuration %q is named for architectures %d and %d: give each its own", name, min(arch, other), max(arch, other))
		}
		out[clean] = arch
	}
	return out, nil
}

// errAbsent is openIn's answer for a name its root does not hold, which is
// not yet an answer to the client: the caller looks further.
var errAbsent = errors.New("absent")

// openIn opens the regular file name under r. A name r does not hold is
// errAbsent, uncounted.
func (s *Server) openIn(log *slog.Logger, r *os.Root, name string) (io.Reader, int64, error) {
	f, err := r.Open(name)
	if err == nil {
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			s.notFound.Add(1)
			log.Info("read request for something that is not a file")
			return nil, 0, errNotAFile
		}
		return f, fi.Size(), nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		// os.Root refuses names that leave the root (symbolic links).
		s.refused.Add(1)
		log.Warn("read request refused", "err", err)
		return nil, 0, errAccess
	}
	return nil, 0, errAbsent
}

// perHost renders a per-host file for the requester at ip, which must be
// the host with that MAC (a SignedGrubConfig names none: the requester is
// the host its address is, its architecture arch).
//
// mark says the file is being sent to the client (Serve), not read for
// vmprov explain (Read): only then does an installing file mark the host
// installing.
func (s *Server) perHost(ctx context.Context, log *slog.Logger, kind File, mac net.HardwareAddr, arch netboot.Arch, ip netip.Addr, mark bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, DecideTimeout)
	defer cancel()
	d, err := s.policy.Decide(ctx, netboot.Client{Addr: ip})
	switch {
	case errors.Is(err, netboot.ErrUnknown):
		s.notFound.Add(1)
		log.Info("per-host file for a requester DNS does not know: not found", "err", err)
		return nil, errNotFound
	case err != nil:
		s.errs.Add(1)
		log.Error("per-host file not served: DNS failed", "err", err)
		return nil, errUnavailable
	}
	log = log.With("host", d.Host.FQDN)
	if kind != SignedGrubConfig && !macEqual(d.Host.MAC, mac) {
		// Confirmed by address, a host's MAC is derived from its records
		// (strict MAC, EUI-64); a bare-metal host's real MAC is published as
		// its _mac CNAME instead, which only a lookup by that MAC finds.
		// The file is the requester's when that MAC names the same host.
		dm, err := s.policy.Decide(ctx, netboot.Client{MAC: mac})
		if err != nil || dm.Host.FQDN != d.Host.FQDN {
			s.notFound.Add(1)
			log.Warn("per-host file of another MAC refused: not found", "mac", d.Host.MAC.String())
			return nil, errNotFound
		}
		d.Host.MAC = dm.Host.MAC
	}
	fw := netboot.Firmware{Kind: netboot.KindGRUB}
	switch kind {
	case PXELinuxConfig:
		fw.Kind = netboot.KindPXELinux
	case SignedGrubConfig:
		fw = netboot.Firmware{Kind: netboot.KindSignedGRUB, Arch: arch, HasArch: true}
	}
	// An installing file hands out the installer: Confirmed reads the
	// build state past the cache first (docs/design.md, "A host's life").
	a, d, err := s.booter.Confirmed(ctx, s.policy, d, netboot.Query{Firmware: fw, Via: netboot.ViaTFTP, IPv6: ip.Is6()})
	if err != nil {
		s.errs.Add(1)
		log.Error("per-host file not served: DNS failed", "err", err)
		return nil, errUnavailable
	}
	if a.Action != netboot.ActionConfig && a.Action != netboot.ActionLocal {
		s.notFound.Add(1)
		log.Info("per-host file not served: not found", "err", a.Why)
		return nil, errNotFound
	}
	b, err := s.render(kind, d, a, ip.Is6())
	if err != nil {
		s.errs.Add(1)
		log.Error("per-host file not rendered", "err", err)
		return nil, errNotFound
	}
	if a.Action == netboot.ActionLocal {
		log.Info("installed host: per-host file boots the local disk")
	} else if mark {
		s.markInstalling(ctx, log, d, kind, ip)
	}
	return b, nil
}

// markInstalling records that the host's installer fetched its per-host
// file: from state install it goes to installing, as when it fetches its
// answer file over HTTP. A failed write is logged; the file is sent anyway,
// and the answer file's fetch marks the host again.
func (s *Server) markInstalling(ctx context.Context, log *slog.Logger, d netboot.Decision, kind File, ip netip.Addr) {
	if s.build == nil {
		return
	}
	res, err := s.build.Apply(ctx, buildstate.Change{FQDN: d.Host.FQDN, To: inventory.StateInstalling, From: []inventory.State{inventory.StateInstall}})
	switch {
	case err != nil:
		log.Warn("build state not marked installing", "err", err)
	case res.Changed:
		log.Info("build state changed", "from", string(res.From), "to", string(res.To), "by", kind.String()+" fetched by "+ip.String())
	}
}

// CleanName turns a requested file name into a path relative to the root,
// or refuses it: empty names, names longer than 255 bytes, control
// characters (NUL included), bytes outside ASCII and ".." elements are
// refused; a leading "/",
// repeated slashes and "." elements are dropped, as tftpd-hpa --secure
// resolves names against its root.
func CleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errNameEmpty
	case len(name) > maxNameLen:
		return "", errNameTooLong
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == 0x7f {
			return "", errNameControl
		}
		if c >= 0x80 {
			return "", errNameByte
		}
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", errNameParent
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "", errNameNoFile
	}
	return strings.Join(parts, "/"), nil
}

// perHostName recognises the generated names in a cleaned path:
// .../grub.cfg-01-<mac> and .../pxelinux.cfg/01-<mac>, the MAC in hex
// separated by hyphens (colons too for GRUB: seed 001 asks for
// grub.cfg-01-$net_efinet0_mac, which GRUB writes with colons).
func perHostName(clean string) (File, net.HardwareAddr, bool) {
	dir, base := path.Split(clean)
	if rest, ok := strings.CutPrefix(base, "grub.cfg-01-"); ok {
		if mac, ok := parseMAC(rest, true); ok {
			return GrubConfig, mac, true
		}
	}
	if rest, ok := strings.CutPrefix(base, "01-"); ok && path.Base(strings.TrimSuffix(dir, "/")) == "pxelinux.cfg" {
		if mac, ok := parseMAC(rest, false); ok {
			return PXELinuxConfig, mac, true
		}
	}
	return 0, nil, false
}

// parseMAC parses six hex octets separated by hyphens (or colons).
func parseMAC(s string, colons bool) (net.HardwareAddr, bool) {
	if len(s) != 17 {
		return nil, false
	}
	for i := 2; i < 17; i += 3 {
		if s[i] != '-' && !(colons && s[i] == ':') {
			return nil, false
		}
	}
	mac, err := inventory.ParseHexHyp(strings.ReplaceAll(s, ":", "-"))
	if err != nil {
		return nil, false
	}
	return mac, true
}

func macEqual(a, b net.HardwareAddr) bool {
	return len(a) == 6 && len(b) == 6 && string(a) == string(b)
}

// printable escapes a client-supplied name for logs.
func printable(s string) string {
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
