package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Secret is a loaded TSIG key.
type Secret struct {
	Name      string // key name, fully qualified
	Algorithm string // e.g. hmac-sha256
	Secret    string // base64
	// Warning is non-empty when people other than the user running vmprov
	// may read or change the file (see permissionWarning); it says what to
	// run. It never holds any part of the secret.
	Warning string
}

var (
	keyClause    = regexp.MustCompile(`(?s)key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;`)
	keyAlgorithm = regexp.MustCompile(`algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;`)
	keySecret    = regexp.MustCompile(`secret\s+"([A-Za-z0-9+/=\s]+)"\s*;`)
)

// LoadSecret reads the TSIG secret named by dns.tsig.secret_file. The file
// holds either the bare base64 secret or a key clause as tsig-keygen writes
// it; a key clause must name the configured key. No error or warning holds
// any part of the secret: they end up in logs and terminals.
func (t TSIG) LoadSecret() (Secret, error) { return t.load("dns.tsig") }

// LoadTSIG reads the secret of serve.tsig, the key vmprov serve writes
// build states with, as LoadSecret reads dns.tsig's.
func (s Serve) LoadTSIG() (Secret, error) { return s.TSIG.load("serve.tsig") }

// load reads the secret of t, which the configuration names key.
func (t TSIG) load(key string) (Secret, error) {
	s := Secret{Name: t.Name, Algorithm: t.Algorithm}
	fi, err := os.Stat(t.SecretFile)
	if err != nil {
		return s, fmt.Errorf("%s.secret_file %s: %w: create it with the key's base64 secret or `tsig-keygen -a %s %s > %s`", key, t.SecretFile, unwrapPath(err), t.Algorithm, strings.TrimSuffix(t.Name, "."), t.SecretFile)
	}
	b, err := os.ReadFile(t.SecretFile)
	if err != nil {
		return s, fmt.Errorf("%s.secret_file %s: %w: make it readable by the user running vmprov", key, t.SecretFile, unwrapPath(err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.Warning = permissionWarning(t.SecretFile, fi.Mode().Perm(), int(st.Uid), int(st.Gid), systemAccounts())
	}
	secret, err := parseSecret(string(b), t.Name, key)
	if err != nil {
		return s, fmt.Errorf("%s.secret_file %s: %w", key, t.SecretFile, err)
	}
	s.Secret = secret
	return s, nil
}

// parseSecret returns the base64 secret of text. Its errors may name the
// key (every signed message carries the name, RFC 8945 section 4.2), never
// the secret.
func parseSecret(text, name, key string) (string, error) {
	if m := keyClause.FindStringSubmatch(text); m != nil {
		if strings.TrimSuffix(m[1], ".") != strings.TrimSuffix(name, ".") {
			return "", fmt.Errorf("the key clause names %q, but %s.name is %q: make them the same", m[1], key, name)
		}
		sm := keySecret.FindStringSubmatch(m[2])
		if sm == nil {
			return "", fmt.Errorf("the key clause for %q has no secret \"BASE64\"; line, or its secret holds characters outside base64", m[1])
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

// checkBase64 returns s if it is a base64 secret. Its error names no part
// of s, nor the decoder's error (which gives an offset into it).
func checkBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", errors.New("the secret is not base64 (standard alphabet, padded with =, as tsig-keygen writes it)")
	}
	return s, nil
}

// accounts is who runs vmprov, and the user and group names
// permissionWarning needs.
type accounts struct {
	uid, gid int // the user running vmprov and its primary group
	// userName and groupName give a name, else the number.
	userName, groupName func(id int) string
	// ownGroup reports whether gid is one user's own group: a user of the
	// same name has it as primary group, as adduser --system --group and
	// Debian's user private groups make.
	ownGroup func(gid int) bool
}

func systemAccounts() accounts {
	return accounts{
		uid: os.Getuid(),
		gid: os.Getgid(),
		userName: func(id int) string {
			if u, err := user.LookupId(strconv.Itoa(id)); err == nil {
				return u.Username
			}
			return strconv.Itoa(id)
		},
		groupName: func(id int) string {
			if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil {
				return g.Name
			}
			return strconv.Itoa(id)
		},
		ownGroup: func(gid int) bool {
			g, err := user.LookupGroupId(strconv.Itoa(gid))
			if err != nil {
				return false
			}
			u, err := user.Lookup(g.Name)
			return err == nil && u.Gid == g.Gid
		},
	}
}

// permissionWarning judges who besides the user running vmprov may read or
// change a secret file with permissions perm, owner uid and group gid, and
// returns what to run about it ("" when nothing). Warned about: any access
// by others; a group that may write; a file owned by someone other than
// the running user or root; and a group that may read, unless it is one
// user's own group (accounts.ownGroup). That exception is the deployment in
// the README: vmprov serve runs as user vmprov and reads a root:vmprov 0640
// file, and root, running the command line, reads the same file, both
// without warnings; a shared group (users, staff) still warns.
func permissionWarning(file string, perm fs.FileMode, uid, gid int, a accounts) string {
	var problems []string
	if perm&0o004 != 0 {
		problems = append(problems, "every user can read it")
	}
	if perm&0o002 != 0 {
		problems = append(problems, "every user can change it")
	}
	if perm&0o020 != 0 {
		problems = append(problems, fmt.Sprintf("group %s can change it", a.groupName(gid)))
	}
	ownGroup := a.ownGroup(gid)
	if perm&0o040 != 0 && !ownGroup {
		problems = append(problems, fmt.Sprintf("group %s can read it and is not one user's own group", a.groupName(gid)))
	}
	if uid != a.uid && uid != 0 {
		if a.uid == 0 {
			problems = append(problems, fmt.Sprintf("it belongs to %s, not to root, who runs vmprov", a.userName(uid)))
		} else {
			problems = append(problems, fmt.Sprintf("it belongs to %s, not to %s, who runs vmprov, or root", a.userName(uid), a.userName(a.uid)))
		}
	}
	if len(problems) == 0 {
		return ""
	}

	// The fix keeps the running user's access: as owner (or root) with
	// 0600, or 0640 when the group is another user's own group (root lends
	// the key to the service); else through its own group with 0640.
	owner, group, mode := uid, gid, fs.FileMode(0o600)
	if uid != a.uid && uid != 0 {
		owner = a.uid
	}
	switch {
	case a.uid == 0 || owner == a.uid:
		if perm&0o040 != 0 && ownGroup && gid != a.gid {
			mode = 0o640
		}
	case a.ownGroup(a.gid):
		group, mode = a.gid, 0o640
	default:
		owner = a.uid
	}
	var fixes []string
	if owner != uid {
		fixes = append(fixes, fmt.Sprintf("chown %s %s", a.userName(owner), file))
	}
	if group != gid {
		fixes = append(fixes, fmt.Sprintf("chgrp %s %s", a.groupName(group), file))
	}
	if mode != perm {
		fixes = append(fixes, fmt.Sprintf("chmod %04o %s", mode, file))
	}
	return fmt.Sprintf("TSIG secret file %s (mode %04o, owner %s, group %s): %s: run %s",
		file, perm, a.userName(uid), a.groupName(gid), strings.Join(problems, "; "), strings.Join(fixes, " && "))
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
