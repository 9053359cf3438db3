package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// BINDConfig describes a BIND instance serving one dynamic forward zone and
// any number of dynamic reverse zones, all updatable with one TSIG key.
type BINDConfig struct {
	Dir          string         // working directory: named.conf, zone files, journals, named.log; must exist
	Listen       netip.AddrPort // the only address and port named listens on (UDP and TCP)
	Zone         string         // forward zone, e.g. "example.com."
	ReverseZones []string       // e.g. "2.0.192.in-addr.arpa.", "5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
	KeyName      string         // TSIG key name, e.g. "vmprov."
	Algorithm    string         // TSIG algorithm as BIND spells it, e.g. "hmac-sha256"
	Secret       string         // base64 TSIG secret, e.g. from GenerateSecret
	Netns        string         // optional network namespace to run named in
}

// BIND is a running named started by StartBIND.
type BIND struct {
	cfg  BINDConfig
	proc *child
	log  *slog.Logger
}

// BINDReadyTimeout bounds how long StartBIND waits for the zone to answer.
const BINDReadyTimeout = 30 * time.Second

// StartBIND writes named.conf, the key file and the zone files into cfg.Dir
// and starts `named -g -c DIR/named.conf` as a child process (in cfg.Netns if
// set) with its output in DIR/named.log. It returns once the forward zone's
// SOA answers over TCP, signed with the key, or fails with the tail of
// named.log. ctx bounds only the start; Stop ends named.
func StartBIND(ctx context.Context, cfg BINDConfig, log *slog.Logger) (*BIND, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("start bind: %w", err)
	}
	named, err := exec.LookPath("named")
	if err != nil {
		return nil, fmt.Errorf("start bind: %w (install bind9)", err)
	}
	if err := cfg.writeFiles(); err != nil {
		return nil, fmt.Errorf("start bind: %w", err)
	}
	logPath := filepath.Join(cfg.Dir, "named.log")
	p, err := startChild("named", cfg.Netns, logPath, named, "-g", "-c", filepath.Join(cfg.Dir, "named.conf"))
	if err != nil {
		return nil, fmt.Errorf("start bind: %w", err)
	}
	b := &BIND{cfg: cfg, proc: p, log: log}
	if err := waitSOA(ctx, BINDReadyTimeout, p, cfg.Zone, cfg.KeyName, cfg.Algorithm, b.Exchange); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("start bind on %s: %w%s\n--- %s ---\n%s", cfg.Listen, err, appArmorHint(), logPath, tail(logPath, 30))
	}
	log.Info("bind started", "ip", cfg.Listen.String(), "zone", cfg.Zone, "pid", p.PID, "file", logPath)
	return b, nil
}

func (cfg *BINDConfig) check() error {
	return checkServerConfig(cfg.Dir, cfg.Listen, append([]string{cfg.Zone}, cfg.ReverseZones...), cfg.KeyName, cfg.Algorithm, cfg.Secret)
}

// zoneFile is the file name (in Dir) holding zone z.
func zoneFile(z string) string { return strings.TrimSuffix(z, ".") + ".db" }

const namedConf = `// Written by vmprov's test lab; regenerated on every start.
options {
	directory "{{.Dir}}";
	pid-file "{{.Dir}}/named.pid";
	session-keyfile "{{.Dir}}/session.key";
	managed-keys-directory "{{.Dir}}";
	{{- if .Listen.Addr.Is4}}
	listen-on port {{.Listen.Port}} { {{.Listen.Addr}}; };
	listen-on-v6 { none; };
	{{- else}}
	listen-on { none; };
	listen-on-v6 port {{.Listen.Port}} { {{.Listen.Addr}}; };
	{{- end}}
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { any; };
};
controls { };
include "{{.Dir}}/tsig.key";
{{range .Zones}}
zone "{{.}}" {
	type primary;
	file "{{$.Dir}}/{{zoneFile .}}";
	journal "{{$.Dir}}/{{zoneFile .}}.jnl";
	allow-update { key "{{$.KeyName}}"; };
};
{{end}}`

// writeFiles writes named.conf, tsig.key and fresh zone files (dropping any
// journal from an earlier run).
func (cfg *BINDConfig) writeFiles() error {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	if err := WriteKeyFile(filepath.Join(dir, "tsig.key"), cfg.KeyName, cfg.Algorithm, cfg.Secret); err != nil {
		return err
	}
	zones := append([]string{cfg.Zone}, cfg.ReverseZones...)
	tmpl, err := template.New("named.conf").Funcs(template.FuncMap{"zoneFile": zoneFile}).Parse(namedConf)
	if err != nil {
		return err
	}
	var conf strings.Builder
	err = tmpl.Execute(&conf, struct {
		Dir     string
		Listen  netip.AddrPort
		KeyName string
		Zones   []string
	}{dir, cfg.Listen, cfg.KeyName, zones})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf.String()), 0o600); err != nil {
		return err
	}
	for _, z := range zones {
		f := filepath.Join(dir, zoneFile(z))
		_ = os.Remove(f + ".jnl")
		if err := os.WriteFile(f, []byte(zoneText(z, cfg.Zone, cfg.Listen.Addr())), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Exchange sends m to named over TCP (from inside its namespace if it has
// one), signing it with the lab key if m carries a TSIG record, and returns
// the reply. It exists for tests and readiness checks; vmprov's own code talks
// to BIND through dnsupdate.
func (b *BIND) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	dial := dialTCP(b.cfg.Listen)
	if b.cfg.Netns != "" {
		dial = func(context.Context) (net.Conn, error) {
			return (&Namespace{Name: b.cfg.Netns}).Dial("tcp", b.cfg.Listen.String())
		}
	}
	return exchangeTCP(ctx, dial, b.cfg.KeyName, b.cfg.Secret, m)
}

// Stop ends named (SIGTERM so that it flushes its journals, SIGKILL after 10 s)
// and waits for it. Stopping twice is harmless.
func (b *BIND) Stop() error {
	err := b.proc.stop(10 * time.Second)
	b.log.Info("bind stopped", "pid", b.proc.PID, "err", err)
	return err
}

// Addr is where named answers queries and updates.
func (b *BIND) Addr() netip.AddrPort { return b.cfg.Listen }

// Config returns the configuration named was started with.
func (b *BIND) Config() BINDConfig { return b.cfg }

// Process identifies the named process, for state files.
func (b *BIND) Process() Process { return b.proc.Process }

// KeyFile is the path of the key clause (as tsig-keygen writes it) named
// uses; vmprov's dns.tsig.secret_file can point at it.
func (b *BIND) KeyFile() string { return filepath.Join(b.cfg.Dir, "tsig.key") }

// LogFile is the path of named's output.
func (b *BIND) LogFile() string { return b.proc.Log }

// TSIG returns the key name (fully qualified), algorithm name as miekg/dns
// spells it (e.g. dns.HmacSHA256) and base64 secret, ready for
// dns.Msg.SetTsig and dns.Client.TsigSecret.
func (b *BIND) TSIG() (name, algorithm, secret string) {
	return dns.Fqdn(b.cfg.KeyName), dns.Fqdn(b.cfg.Algorithm), b.cfg.Secret
}

// GenerateSecret returns a fresh random 256-bit TSIG secret, base64 encoded.
func GenerateSecret() string {
	var k [32]byte
	_, _ = io.ReadFull(rand.Reader, k[:]) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(k[:])
}

// KeyClause renders a key clause the way tsig-keygen prints it.
func KeyClause(name, algorithm, secret string) string {
	return fmt.Sprintf("key \"%s\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n", name, algorithm, secret)
}

// WriteKeyFile writes KeyClause to path, readable by its owner only.
func WriteKeyFile(path, name, algorithm, secret string) error {
	if err := os.WriteFile(path, []byte(KeyClause(name, algorithm, secret)), 0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// appArmorHint explains a likely cause of failure on hosts where AppArmor
// confines named to /etc/bind, /var/cache/bind and /var/lib/bind, which
// also keeps it from writing a log anywhere else.
func appArmorHint() string {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err != nil || !strings.HasPrefix(string(b), "Y") {
		return ""
	}
	if _, err := os.Stat("/etc/apparmor.d/usr.sbin.named"); err != nil {
		return ""
	}
	return " (AppArmor is on and confines named to /etc/bind, /var/cache/bind and /var/lib/bind:" +
		" use a Dir under /var/cache/bind or run `aa-disable usr.sbin.named` on this test machine)"
}
