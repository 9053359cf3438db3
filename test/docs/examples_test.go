package docs

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vmprov/vmprov/cmd/vmprov/cli"
	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// TestREADMEExamples runs every console block of README.md, in order, with
// the README's reference configuration: dns.server and the TSIG key of a real
// BIND serving its zone and the reverse zones of its VLANs, and libvirt's
// test driver in place of qemu:///system. Each command must exit 0 and print
// the output lines shown.
func TestREADMEExamples(t *testing.T) {
	var consoles []block
	for _, b := range readBlocks(t, filepath.Join(repoRoot(t), "README.md")) {
		if b.lang == "console" {
			consoles = append(consoles, b)
		}
	}
	if len(consoles) == 0 {
		t.Fatal("README.md has no console block")
	}
	var cmds []command
	for _, b := range consoles {
		cs, err := parseConsole(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if len(c.args) == 0 || c.args[0] != "vmprov" {
				t.Fatalf("README.md:%d: console blocks hold only vmprov commands, not %q", c.line, c.args)
			}
		}
		cmds = append(cmds, cs...)
	}

	cfg := exampleConfig(t)
	// The test driver keeps its domains while a connection of this process
	// is open; every command opens and closes its own.
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatalf("libvirt test driver: %v", err)
	}
	t.Cleanup(func() { keep.Close() })

	for _, c := range cmds {
		args := append([]string{"--config", cfg}, c.args[1:]...)
		var out, errb bytes.Buffer
		code := cli.Run(t.Context(), args, strings.NewReader(""), &out, &errb)
		if code != 0 {
			t.Fatalf("README.md:%d: %s: exit %d\n%s%s", c.line, strings.Join(c.args, " "), code, out.String(), errb.String())
		}
		if missing := missingLines(out.String(), c.want); len(missing) > 0 {
			t.Errorf("README.md:%d: %s: output lacks, in order:\n  %s\noutput:\n%s", c.line, strings.Join(c.args, " "), strings.Join(missing, "\n  "), out.String())
		}
		t.Logf("README.md:%d: $ %s\n%s", c.line, strings.Join(c.args, " "), out.String())
	}
}

// exampleConfig writes the README's reference configuration with a real
// BIND for its zones and the libvirt test driver, and returns its path.
func exampleConfig(t *testing.T) string {
	t.Helper()
	ref := referenceBlock(t)
	c, err := decodeStrict(ref.text)
	if err != nil {
		t.Fatalf("%v: %v", ref, err)
	}
	var reverse []string
	for _, v := range c.VLANs {
		for _, p := range []netip.Prefix{v.IPv4, v.IPv6} {
			if !p.IsValid() {
				continue
			}
			z, err := lab.ReverseZone(p)
			if err != nil {
				t.Fatalf("%v: %v", ref, err)
			}
			reverse = append(reverse, z)
		}
	}
	b := startBIND(t, c.DNS.Zone, reverse)
	dir := t.TempDir()
	_, _, secret := b.TSIG()
	c.DNS.Server = b.Addr().String()
	c.DNS.TSIG.SecretFile = filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(c.DNS.TSIG.SecretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Libvirt.URI, c.Libvirt.DomainType, c.Libvirt.Pool = "test:///default", "qemu", "default-pool"
	c.Serve.Dir = filepath.Join(dir, "serve")
	text, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(text); err != nil {
		t.Fatalf("the example configuration does not load: %v\n%s", err, text)
	}
	path := filepath.Join(dir, "vmprov.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBIND starts named on a free loopback port with zone and reverse
// zones, key "vmprov." (hmac-sha256), and stops it when t ends.
func startBIND(t *testing.T, zone string, reverse []string) *lab.BIND {
	t.Helper()
	lab.RequireRoot(t, "named")
	dir := t.TempDir()
	var lastErr error
	for port := uint16(25353); port < 25353+20; port++ {
		ctx, cancel := context.WithTimeout(t.Context(), lab.BINDReadyTimeout)
		b, err := lab.StartBIND(ctx, lab.BINDConfig{
			Dir: dir, Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port+uint16(os.Getpid()%2000)),
			Zone: zone, ReverseZones: reverse, KeyName: "vmprov.", Algorithm: "hmac-sha256", Secret: lab.GenerateSecret(),
		}, nil)
		cancel()
		if err == nil {
			t.Cleanup(func() {
				if err := b.Stop(); err != nil {
					t.Errorf("bind: %v", err)
				}
			})
			return b
		}
		lastErr = err // most likely the port is taken
	}
	t.Fatalf("bind: %v", fmt.Errorf("no port worked: %w", lastErr))
	return nil
}
