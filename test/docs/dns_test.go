package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/config"
)

// dnsHeading is the README section with the DNS server snippets.
const dnsHeading = "Pointing vmprov at your DNS server"

// TestBINDSnippet checks README's BIND configuration: the key file that
// `tsig-keygen` writes, as the README says to create it, loads both in
// vmprov (dns.tsig defaults) and in BIND, whose named-checkconf accepts the
// snippet's key include and zones.
func TestBINDSnippet(t *testing.T) {
	for _, b := range []string{"named-checkconf", "tsig-keygen"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (Debian package bind9 / bind9-utils)", b)
		}
	}
	var snippet string
	var keygen []string
	for _, b := range readBlocks(t, filepath.Join(repoRoot(t), "README.md")) {
		if b.heading != dnsHeading {
			continue
		}
		if strings.Contains(b.text, "allow-update") && snippet == "" {
			snippet = b.text
		}
		if strings.HasPrefix(b.text, "tsig-keygen ") && keygen == nil {
			keygen = strings.Fields(strings.TrimSpace(b.text))
		}
	}
	if snippet == "" || len(keygen) < 3 || keygen[len(keygen)-2] != ">" {
		t.Fatalf("README %q lacks the tsig-keygen command (%q) or the BIND snippet", dnsHeading, keygen)
	}
	var c config.Config
	c.SetDefaults()
	if keyPath := keygen[len(keygen)-1]; keyPath != c.DNS.TSIG.SecretFile || !strings.Contains(snippet, `include "`+keyPath+`";`) {
		t.Errorf("the key is written to %s, the snippet must include it and dns.tsig.secret_file defaults to %s", keyPath, c.DNS.TSIG.SecretFile)
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "tsig.secret")
	out, err := exec.CommandContext(t.Context(), keygen[0], keygen[1:len(keygen)-2]...).Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(keygen[:len(keygen)-2], " "), err)
	}
	if err := os.WriteFile(key, out, 0o600); err != nil {
		t.Fatal(err)
	}
	c.DNS.TSIG.SecretFile = key
	if _, err := c.DNS.TSIG.LoadSecret(); err != nil {
		t.Errorf("vmprov cannot load the key tsig-keygen wrote: %v", err)
	}
	conf := filepath.Join(dir, "named.conf")
	text := strings.ReplaceAll(snippet, keygen[len(keygen)-1], key)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), "named-checkconf", conf).CombinedOutput(); err != nil {
		t.Errorf("named-checkconf on README's snippet: %v\n%s\n%s", err, out, text)
	}
	// The check can fail: a misspelt option, a key file that is not there.
	for name, bad := range map[string]string{
		"option":   strings.Replace(text, "allow-update", "allow-updates", 1),
		"key file": strings.ReplaceAll(text, key, filepath.Join(dir, "missing.key")),
	} {
		broken := filepath.Join(dir, "broken.conf")
		if err := os.WriteFile(broken, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := exec.CommandContext(t.Context(), "named-checkconf", broken).Run(); err == nil {
			t.Errorf("named-checkconf accepted a broken %s", name)
		}
	}
}
