package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// KnotConfig describes a Knot DNS instance serving one forward zone and any
// number of reverse zones, all updatable and transferable with one TSIG key
// (by default).
type KnotConfig struct {
	Dir          string         // working directory: knot.conf, zone files, journal, knotd.log; must exist
	Listen       netip.AddrPort // the only address and port knotd listens on (UDP and TCP)
	Zone         string         // forward zone, e.g. "example.com."
	ReverseZones []string       // e.g. "2.0.192.in-addr.arpa."
	KeyName      string         // TSIG key name, e.g. "vmprov."
	Algorithm    string         // TSIG algorithm as Knot spells it, e.g. "hmac-sha256"
	Secret       string         // base64 TSIG secret, e.g. from GenerateSecret
	// Actions is what the key's ACL allows on every zone (knot.conf acl
	// action); nil means [update, transfer], what vmprov needs. Tests of
	// misconfigured servers narrow it.
	Actions []string
	// NoACL lists zones that get no ACL at all, for tests of a zone left
	// out of the server's permissions.
	NoACL []string
}

// Knot is a running knotd started by StartKnot.
type Knot struct {
	zoneServer
	cfg KnotConfig
}

// KnotReadyTimeout bounds how long StartKnot waits for the zone to answer.
const KnotReadyTimeout = 30 * time.Second

// StartKnot writes knot.conf and fresh zone files into cfg.Dir, checks the
// configuration with `knotc conf-check` and starts `knotd -c DIR/knot.conf`
// in the foreground as a child process with its output in DIR/knotd.log. It
// returns once the forward zone's SOA answers over TCP, signed with the
// key, or fails with the tail of the log. ctx bounds only the start; Stop
// ends knotd.
func StartKnot(ctx context.Context, cfg KnotConfig, log *slog.Logger) (*Knot, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkServerConfig(cfg.Dir, cfg.Listen, cfg.zones(), cfg.KeyName, cfg.Algorithm, cfg.Secret); err != nil {
		return nil, fmt.Errorf("start knot: %w", err)
	}
	knotd, err := exec.LookPath("knotd")
	if err != nil {
		return nil, fmt.Errorf("start knot: %w (install knot)", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start knot: %w", err)
	}
	cfg.Dir = dir
	if err := cfg.writeFiles(); err != nil {
		return nil, fmt.Errorf("start knot: %w", err)
	}
	conf := filepath.Join(dir, "knot.conf")
	if _, err := run(ctx, "knotc", "-c", conf, "conf-check"); err != nil {
		return nil, fmt.Errorf("start knot: %w", err)
	}
	logPath := filepath.Join(dir, "knotd.log")
	p, err := startChild("knotd", "", logPath, knotd, "-c", conf)
	if err != nil {
		return nil, fmt.Errorf("start knot: %w", err)
	}
	k := &Knot{zoneServer: zoneServer{name: "knot", listen: cfg.Listen, keyName: cfg.KeyName, algorithm: cfg.Algorithm, secret: cfg.Secret, proc: p, log: log}, cfg: cfg}
	if err := waitSOA(ctx, KnotReadyTimeout, p, cfg.Zone, cfg.KeyName, cfg.Algorithm, k.Exchange); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("start knot on %s: %w\n--- %s ---\n%s", cfg.Listen, err, logPath, tail(logPath, 30))
	}
	log.Info("knot started", "ip", cfg.Listen.String(), "zone", cfg.Zone, "pid", p.PID, "file", logPath)
	return k, nil
}

// knotConfTmpl is knot.conf; every zone but those of NoACL gets the key's
// ACL. Paths are absolute so that knotd does not depend on its working
// directory.
const knotConfTmpl = `# Written by vmprov's test lab; regenerated on every start.
server:
    rundir: "%[1]s"
    listen: %[2]s
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
key:
  - id: %[3]s
    algorithm: %[4]s
    secret: %[5]s
acl:
  - id: vmprov
    key: %[3]s
    action: [%[6]s]
template:
  - id: default
    storage: "%[1]s"
    file: "%%s.zone"
zone:
%[7]s`

func (cfg KnotConfig) writeFiles() error {
	actions := cfg.Actions
	if actions == nil {
		actions = []string{"update", "transfer"}
	}
	zones := cfg.zones()
	var zoneList strings.Builder
	for _, z := range zones {
		fmt.Fprintf(&zoneList, "  - domain: %s\n", z)
		if !slices.Contains(cfg.NoACL, z) {
			zoneList.WriteString("    acl: vmprov\n")
		}
	}
	// Knot writes "address@port", brackets around neither family.
	listen := fmt.Sprintf("%s@%d", cfg.Listen.Addr().Unmap(), cfg.Listen.Port())
	conf := fmt.Sprintf(knotConfTmpl, cfg.Dir, listen, dns.Fqdn(cfg.KeyName), cfg.Algorithm, cfg.Secret,
		strings.Join(actions, ", "), zoneList.String())
	if err := os.WriteFile(filepath.Join(cfg.Dir, "knot.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	// A fresh start: no journal or timers of an earlier run.
	if err := os.RemoveAll(filepath.Join(cfg.Dir, "db")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "db"), 0o700); err != nil {
		return err
	}
	for _, z := range zones {
		f := filepath.Join(cfg.Dir, strings.TrimSuffix(z, ".")+".zone")
		if err := os.WriteFile(f, []byte(zoneText(z, cfg.Zone, cfg.Listen.Addr())), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// zones is the forward zone followed by the reverse zones.
func (cfg KnotConfig) zones() []string { return append([]string{cfg.Zone}, cfg.ReverseZones...) }

// Config returns the configuration knotd was started with.
func (k *Knot) Config() KnotConfig { return k.cfg }

// KnotForTest starts knotd on a port of 127.0.0.1 reserved for t (see
// ReservePort) with the zones and key of BINDForTest (zone example.com.,
// reverse zones TestReverseZones, key "vmprov." hmac-sha256 with a fresh
// secret), the key allowed to update and transfer every zone, and stops it
// when t ends. edit, if given, changes the configuration first (e.g.
// narrows Actions). It skips t when not root or when knotd or knotc is
// missing.
func KnotForTest(t testing.TB, edit ...func(*KnotConfig)) *Knot {
	t.Helper()
	RequireRoot(t, "knotd", "knotc")
	dir := t.TempDir()
	return startForTest(t, func(port uint16) (*Knot, error) {
		cfg := KnotConfig{Dir: dir, Listen: testListen(port), Zone: TestZone, ReverseZones: TestReverseZones(),
			KeyName: testKeyName, Algorithm: testAlgorithm, Secret: GenerateSecret()}
		for _, e := range edit {
			e(&cfg)
		}
		return StartKnot(t.Context(), cfg, nil)
	})
}
