package docs

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/cmd/vmprov/cli"
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
	b := lab.BINDForTest(t, func(b *lab.BINDConfig) { b.Zone, b.ReverseZones = c.DNS.Zone, reverse })
	_, _, secret := b.TSIG()
	secretFile := filepath.Join(t.TempDir(), "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return referenceConfig(t, b.Addr().String(), secretFile)
}
