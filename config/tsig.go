package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Secret is a loaded TSIG key.
type Secret struct {
	Name      string // key name, fully qualified
	Algorithm string // e.g. hmac-sha256
	Secret    string // base64
	// Warning is non-empty when the file is readable by other users.
	Warning string
}

var (
	keyClause    = regexp.MustCompile(`(?s)key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;`)
	keyAlgorithm = regexp.MustCompile(`algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;`)
	keySecret    = regexp.MustCompile(`secret\s+"([A-Za-z0-9+/=\s]+)"\s*;`)
)

// LoadSecret reads the TSIG secret named by dns.tsig.secret_file. The file
// holds either the bare base64 secret or a key clause as tsig-keygen writes
// it; a key clause must name the configured key.
func (t TSIG) LoadSecret() (Secret, error) {
	s := Secret{Name: t.Name, Algorithm: t.Algorithm}
	fi, err := os.Stat(t.SecretFile)
	if err != nil {
		return s, fmt.Errorf("dns.tsig.secret_file %s: %w: create it with the key's base64 secret or `tsig-keygen -a %s %s > %s`", t.SecretFile, unwrapPath(err), t.Algorithm, strings.TrimSuffix(t.Name, "."), t.SecretFile)
	}
	b, err := os.ReadFile(t.SecretFile)
	if err != nil {
		return s, fmt.Errorf("dns.tsig.secret_file %s: %w: make it readable by the user running vmprov", t.SecretFile, unwrapPath(err))
	}
	if fi.Mode().Perm()&0o004 != 0 {
		s.Warning = fmt.Sprintf("TSIG secret file %s is world-readable (mode %04o): run chmod 600 %s", t.SecretFile, fi.Mode().Perm(), t.SecretFile)
	}
	secret, err := parseSecret(string(b), t.Name)
	if err != nil {
		return s, fmt.Errorf("dns.tsig.secret_file %s: %w", t.SecretFile, err)
	}
	s.Secret = secret
	return s, nil
}

func parseSecret(text, name string) (string, error) {
	if m := keyClause.FindStringSubmatch(text); m != nil {
		if strings.TrimSuffix(m[1], ".") != strings.TrimSuffix(name, ".") {
			return "", fmt.Errorf("the key clause names %q, but dns.tsig.name is %q: make them the same", m[1], name)
		}
		sm := keySecret.FindStringSubmatch(m[2])
		if sm == nil {
			return "", fmt.Errorf("the key clause for %q has no secret \"...\"; line", m[1])
		}
		return checkBase64(strings.Join(strings.Fields(sm[1]), ""))
	}
	lines := strings.Fields(text)
	if len(lines) != 1 {
		return "", fmt.Errorf("it holds neither one base64 secret nor a key clause as tsig-keygen writes it")
	}
	return checkBase64(lines[0])
}

// KeyClauseAlgorithm returns the algorithm a key clause names, if any.
func KeyClauseAlgorithm(text string) string {
	if m := keyClause.FindStringSubmatch(text); m != nil {
		if a := keyAlgorithm.FindStringSubmatch(m[2]); a != nil {
			return a[1]
		}
	}
	return ""
}

func checkBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("the secret %.8q... is not base64", s)
	}
	return s, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
