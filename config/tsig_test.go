package config

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// minLeak is the shortest piece of a secret an error may not contain;
// shorter ones occur in any English sentence.
const minLeak = 4

// badSecrets are secrets that do not load: seen by hand, and random ones.
func badSecrets() []string {
	list := []string{
		"Zq9xW7kPmR2vT8bN!",                            // a character outside base64
		"Zq9xW7kPmR2vT8bN-_Jd4LcQ",                     // base64url, not base64
		"Zq9xW7kPmR2vT8bNJd4LcQ",                       // padding missing
		"Zq9xW7kPmR2vT8bNJd4LcQ===",                    // too much padding
		"Zq9x=W7kPmR2vT8b",                             // padding inside
		"====",                                         // decodes to nothing
		"Zq9xW7kPmR2vT8bN\x00Jd4LcQ==",                 // a NUL
		"ZÿqxW7kPmR2vT8bNJd4LcQ==",                     // not ASCII
		"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI",  // one = short
		"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MT=I", // = before the end
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_!$%*"
	r := rand.New(rand.NewPCG(8945, 2136)) // fixed: the same table every run
	for len(list) < 60 {
		b := make([]byte, 5+r.IntN(60))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if _, err := checkBase64(string(b)); err == nil {
			continue // valid by chance
		}
		list = append(list, string(b))
	}
	return list
}

// leaked returns a piece of secret, minLeak bytes or longer, that msg
// contains; "" when there is none.
func leaked(msg, secret string) string {
	for i := 0; i+minLeak <= len(secret); i++ {
		if piece := secret[i : i+minLeak]; strings.Contains(msg, piece) {
			return piece
		}
	}
	return ""
}

// TestSecretErrorsHoldNoSecret: no error of a secret that does not load
// names any part of it, whether the file is the bare secret or a key clause
// (tsig-keygen's, one naming another key, one without algorithm).
func TestSecretErrorsHoldNoSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tsig.secret")
	files := map[string]func(secret string) string{
		"bare":            func(s string) string { return s + "\n" },
		"bare, two lines": func(s string) string { return s[:len(s)/2] + "\n" + s[len(s)/2:] + "\n" },
		"key clause": func(s string) string {
			return "key \"vmprov\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + s + "\";\n};\n"
		},
		"one-line clause": func(s string) string { return `key vmprov. { algorithm hmac-sha256; secret "` + s + `"; };` },
		"clause, no algorithm": func(s string) string {
			return "key \"vmprov\" {\n\tsecret \"" + s + "\";\n};\n"
		},
		"clause of another key": func(s string) string { return "key \"ddns\" { algorithm hmac-sha256; secret \"" + s + "\"; };" },
		"unterminated clause":   func(s string) string { return "key \"vmprov\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + s + "\";\n" },
	}
	for _, secret := range badSecrets() {
		for form, text := range files {
			if err := os.WriteFile(file, []byte(text(secret)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := TSIG{Name: "vmprov.", Algorithm: "hmac-sha256", SecretFile: file}.LoadSecret()
			if err == nil {
				t.Errorf("%s %q: loaded, want an error", form, secret)
				continue
			}
			msg := strings.ReplaceAll(err.Error(), file, "FILE")
			if piece := leaked(msg, secret); piece != "" {
				t.Errorf("%s: the error names %q of the secret: %s", form, piece, msg)
			}
			if piece := leaked(s.Warning, secret); piece != "" {
				t.Errorf("%s: the warning names %q of the secret: %s", form, piece, s.Warning)
			}
		}
	}
}

// fakeAccounts: vmprov (uid and gid 998, its own group), alice (1000, group
// alice), staff (50, shared) and users (100, shared).
func fakeAccounts(uid, gid int) accounts {
	users := map[int]string{0: "root", 998: "vmprov", 1000: "alice"}
	groups := map[int]string{0: "root", 998: "vmprov", 1000: "alice", 50: "staff", 100: "users"}
	name := func(m map[int]string) func(int) string {
		return func(id int) string {
			if n, ok := m[id]; ok {
				return n
			}
			return strconv.Itoa(id)
		}
	}
	return accounts{
		uid: uid, gid: gid,
		userName: name(users), groupName: name(groups),
		ownGroup: func(gid int) bool { return gid == 0 || gid == 998 || gid == 1000 },
	}
}

// TestPermissionWarning is the rule of permissionWarning, for the users of
// the README's deployment: vmprov serve as vmprov, the command line as root.
func TestPermissionWarning(t *testing.T) {
	const f = "/etc/vmprov/tsig.secret"
	root, vmprov, alice := fakeAccounts(0, 0), fakeAccounts(998, 998), fakeAccounts(1000, 100)
	tests := []struct {
		name     string
		perm     fs.FileMode
		uid, gid int
		as       accounts
		want     string // "": no warning
	}{
		{"deployed, read by serve", 0o640, 0, 998, vmprov, ""},
		{"deployed, read by the command line", 0o640, 0, 998, root, ""},
		{"root's own", 0o600, 0, 0, root, ""},
		{"root's own, its own group", 0o640, 0, 0, root, ""},
		{"vmprov's own", 0o600, 998, 998, vmprov, ""},
		{"owner only read", 0o400, 0, 998, root, ""},

		{"world-readable, root's", 0o644, 0, 0, root,
			f + " (mode 0644, owner root, group root): every user can read it: run chmod 0600 " + f},
		{"world-readable, deployed", 0o644, 0, 998, vmprov,
			f + " (mode 0644, owner root, group vmprov): every user can read it: run chmod 0640 " + f},
		{"world-readable, deployed, as root", 0o644, 0, 998, root,
			f + " (mode 0644, owner root, group vmprov): every user can read it: run chmod 0640 " + f},
		{"world-writable", 0o602, 0, 0, root,
			f + " (mode 0602, owner root, group root): every user can change it: run chmod 0600 " + f},
		{"group-writable, deployed", 0o660, 0, 998, vmprov,
			f + " (mode 0660, owner root, group vmprov): group vmprov can change it: run chmod 0640 " + f},
		{"group-writable, root's", 0o660, 0, 0, root,
			f + " (mode 0660, owner root, group root): group root can change it: run chmod 0600 " + f},
		{"a shared group, as root", 0o640, 0, 50, root,
			f + " (mode 0640, owner root, group staff): group staff can read it and is not one user's own group: run chmod 0600 " + f},
		{"a shared group, as vmprov", 0o640, 0, 50, vmprov,
			f + " (mode 0640, owner root, group staff): group staff can read it and is not one user's own group: run chgrp vmprov " + f},
		{"a shared group, 0664, as vmprov", 0o664, 0, 50, vmprov,
			f + " (mode 0664, owner root, group staff): every user can read it; group staff can change it; group staff can read it and is not one user's own group: run chgrp vmprov " + f + " && chmod 0640 " + f},
		{"the user's shared primary group", 0o640, 0, 100, alice,
			f + " (mode 0640, owner root, group users): group users can read it and is not one user's own group: run chown alice " + f + " && chmod 0600 " + f},
		{"world-readable, read by another", 0o644, 0, 0, vmprov,
			f + " (mode 0644, owner root, group root): every user can read it: run chgrp vmprov " + f + " && chmod 0640 " + f},
		{"owned by another user, as root", 0o600, 1000, 1000, root,
			f + " (mode 0600, owner alice, group alice): it belongs to alice, not to root, who runs vmprov: run chown root " + f},
		{"owned by another user, as vmprov", 0o640, 1000, 998, vmprov,
			f + " (mode 0640, owner alice, group vmprov): it belongs to alice, not to vmprov, who runs vmprov, or root: run chown vmprov " + f + " && chmod 0600 " + f},
		{"owned by an unknown uid", 0o600, 4242, 4242, root,
			f + " (mode 0600, owner 4242, group 4242): it belongs to 4242, not to root, who runs vmprov: run chown root " + f},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want != "" {
				want = "TSIG secret file " + want
			}
			if got := permissionWarning(f, tt.perm, tt.uid, tt.gid, tt.as); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// TestLoadSecretWarnings: the warnings LoadSecret gives for real files.
// Changing a file's owner or group needs root: those cases are skipped
// otherwise.
func TestLoadSecretWarnings(t *testing.T) {
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
	// ownGroup is the group of a system user (adduser --system --group),
	// as the deployment's vmprov.
	ownGroup := -2 // -1 would mean "unchanged"
	for _, name := range []string{"vmprov", "daemon", "bin", "sys", "bind", "www-data"} {
		u, err1 := user.Lookup(name)
		g, err2 := user.LookupGroup(name)
		if err1 == nil && err2 == nil && u.Gid == g.Gid {
			ownGroup, _ = strconv.Atoi(g.Gid)
			break
		}
	}
	const nobody = 424242 // no such user or group
	tests := []struct {
		name     string
		perm     fs.FileMode
		uid, gid int      // -1: unchanged (the test's user and group)
		want     []string // in the warning; nil: no warning
	}{
		{name: "owner only", perm: 0o600, uid: -1, gid: -1},
		{name: "world-readable", perm: 0o644, uid: -1, gid: -1, want: []string{"every user can read it", "run chmod 0600 "}},
		{name: "world-writable", perm: 0o602, uid: -1, gid: -1, want: []string{"every user can change it", "run chmod 0600 "}},
		{name: "group-writable", perm: 0o620, uid: -1, gid: -1, want: []string{"can change it", "run chmod 0600 "}},
		{name: "root's, its own group", perm: 0o640, uid: 0, gid: 0},
		{name: "lent to a service's own group", perm: 0o640, uid: 0, gid: ownGroup},
		{name: "a group nobody is in", perm: 0o640, uid: 0, gid: nobody, want: []string{"group 424242 can read it", "run chmod 0600 "}},
		{name: "another owner", perm: 0o600, uid: nobody, gid: 0, want: []string{"it belongs to 424242", "run chown root "}},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.uid >= 0 || tt.gid >= 0) && os.Geteuid() != 0 {
				t.Skipf("changing the owner or group of a file needs root")
			}
			if tt.gid == -2 {
				t.Skip("no system user with its own group on this machine")
			}
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 || tt.gid >= 0 {
				if err := os.Chown(file, tt.uid, tt.gid); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(file, tt.perm); err != nil { // no umask
				t.Fatal(err)
			}
			s, err := TSIG{Name: "vmprov.", Algorithm: "hmac-sha256", SecretFile: file}.LoadSecret()
			if err != nil {
				t.Fatal(err)
			}
			if s.Secret != secret {
				t.Errorf("secret = %q", s.Secret)
			}
			if tt.want == nil {
				if s.Warning != "" {
					t.Errorf("warning %q, want none", s.Warning)
				}
				return
			}
			for _, w := range append(tt.want, file) {
				if !strings.Contains(s.Warning, w) {
					t.Errorf("warning %q lacks %q", s.Warning, w)
				}
			}
			if piece := leaked(s.Warning, secret); piece != "" {
				t.Errorf("the warning names %q of the secret", piece)
			}
		})
	}
}
