package lab

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// What BIND, Knot DNS and PowerDNS in the lab have in common: the zones
// they start with, their readiness check, a TSIG-aware exchange, and free
// ports for the *ForTest helpers.

// checkServerConfig checks what every lab DNS server needs: a directory, an
// address with a port, fully qualified zones, and a key with a base64
// secret.
func checkServerConfig(dir string, listen netip.AddrPort, zones []string, keyName, alg, secret string) error {
	switch {
	case dir == "":
		return errors.New("no Dir")
	case !listen.IsValid() || listen.Port() == 0:
		return fmt.Errorf("invalid Listen %v: want address and non-zero port", listen)
	case keyName == "" || alg == "" || secret == "":
		return errors.New("KeyName, Algorithm and Secret are required")
	}
	for _, z := range zones {
		if _, ok := dns.IsDomainName(z); !ok || !dns.IsFqdn(z) || z == "." {
			return fmt.Errorf("invalid zone %q: want a fully qualified name", z)
		}
	}
	if _, err := base64.StdEncoding.DecodeString(secret); err != nil {
		return fmt.Errorf("secret is not base64: %w", err)
	}
	return nil
}

// zoneText is the master file of zone z that every lab DNS server starts
// from: SOA and NS (ns1 of the forward zone), and in the forward zone ns1's
// address nsAddr.
func zoneText(z, forward string, nsAddr netip.Addr) string {
	ns := "ns1." + forward
	text := fmt.Sprintf("$TTL 300\n%s IN SOA %s hostmaster.%s 1 3600 600 86400 300\n%s IN NS %s\n", z, ns, forward, z, ns)
	if z == forward {
		glue := "A"
		if nsAddr.Unmap().Is6() {
			glue = "AAAA"
		}
		text += fmt.Sprintf("%s IN %s %s\n", ns, glue, nsAddr.Unmap())
	}
	return text
}

// exchangeFunc sends a message to a lab DNS server and returns its reply.
type exchangeFunc func(ctx context.Context, m *dns.Msg) (*dns.Msg, error)

// waitSOA polls zone's SOA, signed with the key, until the server answers
// it with a verified signature, p exits or timeout passes. The signature
// tells p apart from another server answering on the port, whose answer
// would otherwise hide that p could not bind it. (It cannot tell them apart
// when both bind with SO_REUSEPORT, as BIND does: ReservePort keeps lab
// servers off each other's ports.)
func waitSOA(ctx context.Context, timeout time.Duration, p *child, zone, keyName, alg string, exchange exchangeFunc) error {
	return poll(ctx, timeout, func() error {
		if done, why := p.exited(); done {
			return stopPolling{errors.New(why)}
		}
		m := new(dns.Msg)
		m.SetQuestion(zone, dns.TypeSOA)
		m.SetTsig(dns.Fqdn(keyName), dns.Fqdn(alg), 300, time.Now().Unix())
		r, err := exchange(ctx, m)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("soa %s: rcode %s, %d answers", zone, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return nil
	})
}

// exchangeTCP sends m over a TCP connection from dial, with the key's
// secret at hand for a message that carries a TSIG record (the reply's
// signature is then verified), and returns the reply.
func exchangeTCP(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), keyName, secret string, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{dns.Fqdn(keyName): secret}}
	conn := &dns.Conn{Conn: nc, TsigSecret: c.TsigSecret}
	defer conn.Close()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	return r, err
}

// dialTCP dials addr from this process's network namespace.
func dialTCP(addr netip.AddrPort) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr.String())
	}
}

// startForTest starts a server with start on a port of 127.0.0.1 reserved
// for t (see ReservePort), and stops it, then frees the port, when t ends.
// It tries other ports when start fails (a process that does not use the
// lab may have taken the port), 5 times in all, and fails t after that.
func startForTest[T interface{ Stop() error }](t testing.TB, start func(port uint16) (T, error)) T {
	t.Helper()
	var lastErr error
	for range 5 {
		port, release, err := reservePort()
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		s, err := start(port)
		if err != nil {
			release()
			lastErr = err
			continue
		}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("lab: %v", err)
			}
			release()
		})
		return s
	}
	t.Fatalf("lab: %v", lastErr)
	var zero T
	return zero
}

// ReservePort returns a random high port that is free on 127.0.0.1 for TCP
// and UDP, reserved for t until it ends: no other test using the lab, in
// this process or another, gets it from ReservePort or a *ForTest helper
// meanwhile. A test that starts a server of its own takes its port here;
// a failed bind cannot be relied on to show that another test's server
// holds the port, since BIND and Knot bind with SO_REUSEPORT and would
// share it.
func ReservePort(t testing.TB) uint16 {
	t.Helper()
	port, release, err := reservePort()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(release)
	return port
}

// portLockFile is the file whose byte N a process holding port N locks
// (an open file description lock: separate opens conflict even within one
// process, and the kernel drops the lock when its holder dies).
var portLockFile = sync.OnceValue(func() string { return filepath.Join(os.TempDir(), "vmprov-lab-ports.lock") })

// reservePort picks a random port in 20000-59999 that no one holds the lock
// of and that is free right now, locks it, and returns it with the function
// that unlocks it.
func reservePort() (uint16, func(), error) {
	f, err := os.OpenFile(portLockFile(), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return 0, nil, fmt.Errorf("reserve port: %w", err)
	}
	// Whoever made the file lets every user lock ports in it (past the
	// umask): the snippet tests of test/docs run without root.
	_ = f.Chmod(0o666)
	for range 100 {
		port := uint16(20000 + rand.IntN(40000))
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(port), Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				continue // another test has it
			}
			f.Close()
			return 0, nil, fmt.Errorf("reserve port: lock %s: %w", f.Name(), err)
		}
		if portFree(port) {
			// Closing f drops the lock.
			return port, func() { f.Close() }, nil
		}
		lk.Type = unix.F_UNLCK
		_ = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}
	f.Close()
	return 0, nil, errors.New("reserve port: no free port on 127.0.0.1 after 100 tries")
}

// portFree reports whether port is free on 127.0.0.1 for both TCP and UDP
// right now.
func portFree(port uint16) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// zoneServer is what a started Knot DNS or PowerDNS of the lab offers
// alike: one address for queries and updates, one TSIG key, one process.
type zoneServer struct {
	name                       string // in log lines: "knot", "powerdns"
	listen                     netip.AddrPort
	keyName, algorithm, secret string
	proc                       *child
	log                        *slog.Logger
}

// Exchange sends m to the server over TCP, signing it with the lab key if m
// carries a TSIG record, and returns the reply. It exists for tests; vmprov
// talks to the server through dnsupdate.
func (z *zoneServer) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	return exchangeTCP(ctx, dialTCP(z.listen), z.keyName, z.secret, m)
}

// Stop ends the server (SIGTERM, SIGKILL after 10 s) and waits for it.
// Stopping twice is harmless.
func (z *zoneServer) Stop() error {
	err := z.proc.stop(10 * time.Second)
	z.log.Info(z.name+" stopped", "pid", z.proc.PID, "err", err)
	return err
}

// Addr is where the server answers queries and updates.
func (z *zoneServer) Addr() netip.AddrPort { return z.listen }

// Process identifies the server's process.
func (z *zoneServer) Process() Process { return z.proc.Process }

// LogFile is the path of the server's output.
func (z *zoneServer) LogFile() string { return z.proc.Log }

// TSIG returns the key name (fully qualified), algorithm name as miekg/dns
// spells it and base64 secret, as BIND.TSIG does.
func (z *zoneServer) TSIG() (name, algorithm, secret string) {
	return dns.Fqdn(z.keyName), dns.Fqdn(z.algorithm), z.secret
}
