package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// minDoneSecret is the shortest serve.done_secret_file accepted, in bytes.
const minDoneSecret = 16

// DoneSecret returns the secret that keys the installers' callback tokens
// (docs/design.md, "A host's life"): the content of serve.done_secret_file
// without surrounding blanks, at least 16 bytes (`openssl rand -hex 32`
// writes one), or, without that file, one derived from tsig, the loaded
// serve.tsig secret, so that instances sharing serve's key share it too.
// warning is non-empty when others than the user running vmprov may read
// or change the file. No error or warning holds any part of the secret.
func (s Serve) DoneSecret(tsig Secret) (secret []byte, warning string, err error) {
	if s.DoneSecretFile == "" {
		key, err := base64.StdEncoding.DecodeString(tsig.Secret)
		if err != nil || len(key) == 0 {
			return nil, "", fmt.Errorf("serve.done_secret_file is empty and the secret of key %s is not base64 to derive one from: set serve.done_secret_file", tsig.Name)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("vmprov done token secret"))
		return m.Sum(nil), "", nil
	}
	fi, err := os.Stat(s.DoneSecretFile)
	if err != nil {
		return nil, "", fmt.Errorf("serve.done_secret_file %s: %w: create it with `openssl rand -hex 32 > %s` and give every serve instance the same file", s.DoneSecretFile, unwrapPath(err), s.DoneSecretFile)
	}
	b, err := os.ReadFile(s.DoneSecretFile)
	if err != nil {
		return nil, "", fmt.Errorf("serve.done_secret_file %s: %w: make it readable by the user running vmprov", s.DoneSecretFile, unwrapPath(err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		warning = permissionWarning(s.DoneSecretFile, fi.Mode().Perm(), int(st.Uid), int(st.Gid), systemAccounts())
	}
	secret = []byte(strings.TrimSpace(string(b)))
	if len(secret) < minDoneSecret {
		return nil, warning, fmt.Errorf("serve.done_secret_file %s: %d bytes, want at least %d: write one with `openssl rand -hex 32 > %s`", s.DoneSecretFile, len(secret), minDoneSecret, s.DoneSecretFile)
	}
	return secret, warning, nil
}
