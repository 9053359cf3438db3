package lab

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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

// PowerDNSConfig describes a PowerDNS Authoritative instance serving one
// forward zone and any number of reverse zones, updatable and transferable
// with one TSIG key (by default).
type PowerDNSConfig struct {
	Dir          string         // working directory: pdns.conf, the database, pdns.log; must exist
	Listen       netip.AddrPort // the only address and port pdns_server listens on (UDP and TCP)
	Zone         string         // forward zone, e.g. "example.com."
	ReverseZones []string       // e.g. "2.0.192.in-addr.arpa."
	KeyName      string         // TSIG key name, e.g. "vmprov."
	Algorithm    string         // TSIG algorithm as PowerDNS spells it, e.g. "hmac-sha256"
	Secret       string         // base64 TSIG secret, e.g. from GenerateSecret
	// Backend is "gsqlite3" (the default: a database with transactions,
	// which RFC 2136 updates need) or "bind" (zone files, with keys and
	// metadata in a bind-dnssec-db; it answers updates with NOTIMP, for
	// tests of that misconfiguration).
	Backend string
	// Metadata is set on every zone with `pdnsutil set-meta ZONE KIND
	// VALUE`; nil sets TSIG-ALLOW-DNSUPDATE and TSIG-ALLOW-AXFR to the key,
	// what vmprov needs. Tests of misconfigured servers pass less.
	Metadata map[string]string
	// AllowUpdateFrom is pdns.conf's allow-dnsupdate-from; "" means
	// 127.0.0.0/8,::1.
	AllowUpdateFrom string
}

// PowerDNS is a running pdns_server started by StartPowerDNS.
type PowerDNS struct {
	zoneServer
	cfg PowerDNSConfig
}

// PowerDNSReadyTimeout bounds how long StartPowerDNS waits for the zone to
// answer.
const PowerDNSReadyTimeout = 30 * time.Second

// StartPowerDNS writes pdns.conf into cfg.Dir, creates the zones, the key
// and the zones' metadata with pdnsutil, and starts pdns_server in the
// foreground as a child process with its output in DIR/pdns.log. It returns
// once the forward zone's SOA answers over TCP, signed with the key, or
// fails with the tail of the log. ctx bounds only the start; Stop ends
// pdns_server.
//
// Transfers are allowed by key only (allow-axfr-ips is empty), so that
// TSIG-ALLOW-AXFR decides them as it does on a server reached from the
// network.
func StartPowerDNS(ctx context.Context, cfg PowerDNSConfig, log *slog.Logger) (*PowerDNS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkServerConfig(cfg.Dir, cfg.Listen, cfg.zones(), cfg.KeyName, cfg.Algorithm, cfg.Secret); err != nil {
		return nil, fmt.Errorf("start powerdns: %w", err)
	}
	if cfg.Backend == "" {
		cfg.Backend = "gsqlite3"
	}
	if cfg.Backend != "gsqlite3" && cfg.Backend != "bind" {
		return nil, fmt.Errorf("start powerdns: backend %q: want gsqlite3 or bind", cfg.Backend)
	}
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{"TSIG-ALLOW-DNSUPDATE": dns.Fqdn(cfg.KeyName), "TSIG-ALLOW-AXFR": dns.Fqdn(cfg.KeyName)}
	}
	if cfg.AllowUpdateFrom == "" {
		cfg.AllowUpdateFrom = "127.0.0.0/8,::1"
	}
	server, err := exec.LookPath("pdns_server")
	if err != nil {
		return nil, fmt.Errorf("start powerdns: %w (install pdns-server and pdns-backend-sqlite3)", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start powerdns: %w", err)
	}
	cfg.Dir = dir
	if err := cfg.setUp(ctx); err != nil {
		return nil, fmt.Errorf("start powerdns: %w", err)
	}
	logPath := filepath.Join(dir, "pdns.log")
	p, err := startChild("pdns_server", "", logPath, server, "--config-dir="+dir)
	if err != nil {
		return nil, fmt.Errorf("start powerdns: %w", err)
	}
	d := &PowerDNS{zoneServer: zoneServer{name: "powerdns", listen: cfg.Listen, keyName: cfg.KeyName, algorithm: cfg.Algorithm, secret: cfg.Secret, proc: p, log: log}, cfg: cfg}
	if err := waitSOA(ctx, PowerDNSReadyTimeout, p, cfg.Zone, cfg.KeyName, cfg.Algorithm, d.Exchange); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("start powerdns on %s: %w\n--- %s ---\n%s", cfg.Listen, err, logPath, tail(logPath, 30))
	}
	log.Info("powerdns started", "ip", cfg.Listen.String(), "zone", cfg.Zone, "pid", p.PID, "file", logPath)
	return d, nil
}

// pdnsConf is pdns.conf. The packet and query caches stay on, as in
// production: an update must purge them for vmprov to read it back.
const pdnsConf = `# Written by vmprov's test lab; regenerated on every start.
%[1]s
local-address=%[2]s
socket-dir=%[3]s
dnsupdate=yes
allow-dnsupdate-from=%[4]s
disable-axfr=no
allow-axfr-ips=
allow-notify-from=
security-poll-suffix=
default-ttl=300
default-soa-content=ns1.%[5]s hostmaster.%[5]s 1 3600 600 86400 300
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
loglevel=6
receiver-threads=1
distributor-threads=1
`

// setUp writes pdns.conf and a fresh backend holding the zones, the key
// and the metadata.
func (cfg PowerDNSConfig) setUp(ctx context.Context) error {
	zones := cfg.zones()
	var backend string
	switch cfg.Backend {
	case "gsqlite3":
		db := filepath.Join(cfg.Dir, "pdns.sqlite3")
		if err := newSQLiteDB(ctx, db); err != nil {
			return err
		}
		backend = "launch=gsqlite3\ngsqlite3-database=" + db
	case "bind":
		var named strings.Builder
		for _, z := range zones {
			f := filepath.Join(cfg.Dir, strings.TrimSuffix(z, ".")+".zone")
			if err := os.WriteFile(f, []byte(zoneText(z, cfg.Zone, cfg.Listen.Addr())), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(&named, "zone %q { type master; file %q; };\n", z, f)
		}
		namedConf := filepath.Join(cfg.Dir, "named.conf")
		if err := os.WriteFile(namedConf, []byte(named.String()), 0o600); err != nil {
			return err
		}
		db := filepath.Join(cfg.Dir, "bind-dnssec.sqlite3")
		if err := os.Remove(db); err != nil && !os.IsNotExist(err) {
			return err
		}
		backend = "launch=bind\nbind-config=" + namedConf + "\nbind-dnssec-db=" + db
	}
	listen := cfg.Listen.String() // 127.0.0.1:53 or [::1]:53, both of which PowerDNS reads
	conf := fmt.Sprintf(pdnsConf, backend, listen, cfg.Dir, cfg.AllowUpdateFrom, cfg.Zone)
	if err := os.WriteFile(filepath.Join(cfg.Dir, "pdns.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	pdnsutil := func(args ...string) error {
		_, err := run(ctx, append([]string{"pdnsutil", "--config-dir=" + cfg.Dir}, args...)...)
		return err
	}
	if cfg.Backend == "bind" {
		if err := pdnsutil("create-bind-db", filepath.Join(cfg.Dir, "bind-dnssec.sqlite3")); err != nil {
			return err
		}
	} else {
		for _, z := range zones {
			if err := pdnsutil("create-zone", z, "ns1."+cfg.Zone); err != nil {
				return err
			}
		}
		glue := "A"
		if cfg.Listen.Addr().Unmap().Is6() {
			glue = "AAAA"
		}
		if err := pdnsutil("add-record", cfg.Zone, "ns1", glue, "300", cfg.Listen.Addr().Unmap().String()); err != nil {
			return err
		}
	}
	if err := pdnsutil("import-tsig-key", cfg.KeyName, cfg.Algorithm, cfg.Secret); err != nil {
		return err
	}
	for _, z := range zones {
		for _, kind := range slices.Sorted(maps.Keys(cfg.Metadata)) {
			if err := pdnsutil("set-meta", z, kind, cfg.Metadata[kind]); err != nil {
				return err
			}
		}
	}
	return nil
}

// zones is the forward zone followed by the reverse zones.
func (cfg PowerDNSConfig) zones() []string { return append([]string{cfg.Zone}, cfg.ReverseZones...) }

// sqliteSchema creates the tables of the gsqlite3 backend.
const sqliteSchema = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"

// newSQLiteDB creates an empty gsqlite3 database at path from the schema
// pdns-backend-sqlite3 ships, replacing any earlier one.
func newSQLiteDB(ctx context.Context, path string) error {
	sql, err := os.ReadFile(sqliteSchema)
	if err != nil {
		return fmt.Errorf("gsqlite3 schema: %w (install pdns-backend-sqlite3)", err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sqlite3", path)
	cmd.Stdin = strings.NewReader(string(sql))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sqlite3 %s < %s: %w: %s", path, sqliteSchema, err, out)
	}
	return nil
}

// Config returns the configuration pdns_server was started with, defaults
// filled in.
func (d *PowerDNS) Config() PowerDNSConfig { return d.cfg }

// PowerDNSForTest starts pdns_server (gsqlite3 backend) on a port of
// 127.0.0.1 reserved for t (see ReservePort) with the zones and key of
// BINDForTest (zone example.com., reverse zones TestReverseZones, key
// "vmprov." hmac-sha256 with a fresh secret), the key allowed to update and
// transfer every zone by TSIG-ALLOW-DNSUPDATE and TSIG-ALLOW-AXFR, and stops
// it when t ends. edit, if given, changes the configuration first. It skips
// t when not root or when pdns_server, pdnsutil, sqlite3 or the gsqlite3
// backend is missing.
func PowerDNSForTest(t testing.TB, edit ...func(*PowerDNSConfig)) *PowerDNS {
	t.Helper()
	RequireRoot(t, "pdns_server", "pdnsutil", "sqlite3")
	if _, err := os.Stat(sqliteSchema); err != nil {
		t.Skip("lab: needs pdns-backend-sqlite3 (test/install-deps.sh installs the Debian packages: make deps)")
	}
	dir := t.TempDir()
	return startForTest(t, func(port uint16) (*PowerDNS, error) {
		cfg := PowerDNSConfig{Dir: dir, Listen: testListen(port), Zone: TestZone, ReverseZones: TestReverseZones(),
			KeyName: testKeyName, Algorithm: testAlgorithm, Secret: GenerateSecret()}
		for _, e := range edit {
			e(&cfg)
		}
		return StartPowerDNS(t.Context(), cfg, nil)
	})
}
