package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// RadvdConfig describes router adverts sent on one interface.
type RadvdConfig struct {
	Dir       string       // radvd.conf, radvd.pid and radvd.log go here; must exist
	Netns     string       // optional network namespace to run radvd in
	Interface string       // e.g. "br135"
	Prefix    netip.Prefix // advertised for SLAAC (on-link, autonomous); must be a /64
	RDNSS     []netip.Addr // optional recursive DNS servers (RFC 8106)
	Managed   bool         // M flag: addresses from DHCPv6
	Other     bool         // O flag: other configuration from DHCPv6
}

// Radvd is a running radvd started by StartRadvd.
type Radvd struct {
	proc *child
	log  *slog.Logger
}

// StartRadvd writes radvd.conf into cfg.Dir and runs radvd in the foreground
// (inside cfg.Netns if set) as a child process, advertising every 3–10 s.
// It returns once radvd has parsed its configuration and opened the
// interface, or fails with the tail of radvd.log.
func StartRadvd(ctx context.Context, cfg RadvdConfig, log *slog.Logger) (*Radvd, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !cfg.Prefix.Addr().Is6() || cfg.Prefix.Bits() != 64 {
		return nil, fmt.Errorf("start radvd: prefix %v: want an IPv6 /64 for SLAAC", cfg.Prefix)
	}
	if err := validIfName(cfg.Interface); err != nil {
		return nil, fmt.Errorf("start radvd: %w", err)
	}
	bin, err := exec.LookPath("radvd")
	if err != nil {
		return nil, fmt.Errorf("start radvd: %w (install radvd)", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start radvd: %w", err)
	}
	onoff := map[bool]string{true: "on", false: "off"}
	var b strings.Builder
	fmt.Fprintf(&b, "interface %s {\n\tAdvSendAdvert on;\n\tMinRtrAdvInterval 3;\n\tMaxRtrAdvInterval 10;\n", cfg.Interface)
	fmt.Fprintf(&b, "\tAdvManagedFlag %s;\n\tAdvOtherConfigFlag %s;\n", onoff[cfg.Managed], onoff[cfg.Other])
	fmt.Fprintf(&b, "\tprefix %s {\n\t\tAdvOnLink on;\n\t\tAdvAutonomous on;\n\t};\n", cfg.Prefix.Masked())
	if len(cfg.RDNSS) > 0 {
		var s []string
		for _, a := range cfg.RDNSS {
			s = append(s, a.String())
		}
		fmt.Fprintf(&b, "\tRDNSS %s {\n\t};\n", strings.Join(s, " "))
	}
	b.WriteString("};\n")
	conf := filepath.Join(dir, "radvd.conf")
	// radvd refuses a configuration file that others can write.
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("start radvd: %w", err)
	}
	logPath := filepath.Join(dir, "radvd.log")
	p, err := startChild("radvd", cfg.Netns, logPath, bin, "-n", "-m", "stderr", "-d", "1",
		"-C", conf, "-p", filepath.Join(dir, "radvd.pid"))
	if err != nil {
		return nil, fmt.Errorf("start radvd: %w", err)
	}
	// radvd writes its pid file once it is configured and about to send.
	err = poll(ctx, 15*time.Second, func() error {
		if done, why := p.exited(); done {
			return stopPolling{errors.New(why)}
		}
		_, err := os.Stat(filepath.Join(dir, "radvd.pid"))
		return err
	})
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("start radvd on %s: %w\n--- %s ---\n%s", cfg.Interface, err, logPath, tail(logPath, 20))
	}
	log.Info("radvd started", "iface", cfg.Interface, "pid", p.PID, "file", logPath)
	return &Radvd{proc: p, log: log}, nil
}

// Process identifies the radvd process, for state files.
func (r *Radvd) Process() Process { return r.proc.Process }

// Stop ends radvd (which first sends a final advert with router lifetime 0)
// and waits for it. Stopping twice is harmless.
func (r *Radvd) Stop() error {
	err := r.proc.stop(5 * time.Second)
	r.log.Info("radvd stopped", "pid", r.proc.PID, "err", err)
	return err
}
