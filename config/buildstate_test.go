package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeTSIG(t *testing.T) {
	c, err := Parse([]byte("dns: {zone: example.com., tsig: {name: vmprov, secret_file: /etc/vmprov/tsig.secret}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.TSIG != c.DNS.TSIG {
		t.Errorf("serve.tsig = %+v, want dns.tsig %+v", c.Serve.TSIG, c.DNS.TSIG)
	}
	c, err = Parse([]byte("dns: {zone: example.com.}\nserve: {tsig: {name: vmprov-serve, secret_file: /etc/vmprov/serve.secret}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (TSIG{Name: "vmprov-serve.", Algorithm: "hmac-sha256", SecretFile: "/etc/vmprov/serve.secret"}); c.Serve.TSIG != want {
		t.Errorf("serve.tsig = %+v, want %+v", c.Serve.TSIG, want)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"serve: {tsig: {name: vmprov-serve}}", "serve.tsig.secret_file is empty: key vmprov-serve."},
		{"serve: {tsig: {name: vmprov-serve, algorithm: md5, secret_file: /x}}", `serve.tsig.algorithm "md5"`},
	} {
		_, err := Parse([]byte("dns: {zone: example.com.}\n" + tt.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.yaml, err, tt.want)
		}
	}
	s := Serve{TSIG: TSIG{Name: "vmprov-serve.", Algorithm: "hmac-sha256", SecretFile: filepath.Join(t.TempDir(), "missing")}}
	if _, err := s.LoadTSIG(); err == nil || !strings.Contains(err.Error(), "serve.tsig.secret_file") {
		t.Errorf("LoadTSIG of a missing file: %v, want an error naming serve.tsig.secret_file", err)
	}
}

func TestDoneSecret(t *testing.T) {
	tsig := Secret{Name: "vmprov.", Secret: "c2VjcmV0IG9mIHRoZSBrZXk="}
	a, _, err := Serve{}.DoneSecret(tsig)
	if err != nil || len(a) != 32 {
		t.Fatalf("derived secret: %d bytes, %v", len(a), err)
	}
	if b, _, _ := (Serve{}).DoneSecret(tsig); !bytes.Equal(a, b) {
		t.Error("two instances with one key derive different secrets")
	}
	if b, _, _ := (Serve{}).DoneSecret(Secret{Name: "vmprov.", Secret: "b3RoZXIga2V5"}); bytes.Equal(a, b) {
		t.Error("another key derives the same secret")
	}
	if bytes.Contains(a, []byte("secret of the key")) {
		t.Error("the derived secret holds the TSIG secret")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "done.secret")
	if err := os.WriteFile(file, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, warn, err := Serve{DoneSecretFile: file}.DoneSecret(tsig)
	if err != nil || string(got) != "0123456789abcdef0123456789abcdef" || warn != "" {
		t.Errorf("secret file: %q, warning %q, %v", got, warn, err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{short, "3 bytes, want at least 16"},
		{filepath.Join(dir, "missing"), "openssl rand -hex 32"},
	} {
		_, _, err := Serve{DoneSecretFile: tt.file}.DoneSecret(tsig)
		if err == nil || !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: %v, want an error naming the file and saying %q, without the secret", tt.file, err, tt.want)
		}
	}
}
