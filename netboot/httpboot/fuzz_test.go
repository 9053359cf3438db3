package httpboot

import (
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/inventory"
)

// Seeds beyond these are in testdata/fuzz/<FuzzName>/.

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/pxedust", "/assets/debian/", "/assets/../x", "/a//b", "/a/./b", "/%2e%2e", `/a\b`, "/a/b/..", "", "x", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !cleanPath(p) {
			return
		}
		if c := path.Clean(p); c != p && c+"/" != p {
			t.Fatalf("cleanPath(%q) accepted a path that cleans to %q", p, c)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("cleanPath(%q) accepted a dot segment", p)
			}
		}
		if strings.ContainsAny(p, "\\\x00") {
			t.Fatalf("cleanPath(%q) accepted a backslash or NUL", p)
		}
	})
}

var hexhyp = regexp.MustCompile(`^[0-9a-f]{2}(-[0-9a-f]{2}){5}$`)

func FuzzMACFolder(f *testing.F) {
	for _, s := range []string{"02-04-06-08-73-ac", "02-04-06-08-73-AC", "02:04:06:08:73:ac", "..", "02-04-06-08-73", "0204.0608.73ac", "02-04-06-08-73-ac-00-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, ok := macFolder(s)
		if !ok {
			return
		}
		if !hexhyp.MatchString(name) || name != strings.ToLower(s) {
			t.Fatalf("macFolder(%q) = %q", s, name)
		}
		mac, err := inventory.ParseHexHyp(name)
		if err != nil || inventory.HexHyp(mac) != name {
			t.Fatalf("macFolder(%q) = %q does not round-trip: %v", s, name, err)
		}
	})
}

func FuzzInstallPath(f *testing.F) {
	for _, s := range []string{"default.ipxe", "core/firstboot", "core/x86_64/ks.cfg", "noble/x86_64/user-data", "bookworm/aarch64/preseed.cfg", "core/../ks.cfg", "core/x86_64/preseed.cfg", "/default.ipxe", "core//ks.cfg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseInstallPath(s)
		if !ok {
			return
		}
		if got.path() != s {
			t.Fatalf("parseInstallPath(%q) = %+v, which writes back as %q", s, got, got.path())
		}
		if !slices.Contains([]string{"default.ipxe", "firstboot", "ks.cfg", "preseed.cfg", "user-data", "meta-data"}, got.name) {
			t.Fatalf("parseInstallPath(%q) accepted file %q", s, got.name)
		}
		if strings.Contains(s, "..") || strings.Contains(s, "//") || strings.HasPrefix(s, "/") {
			t.Fatalf("parseInstallPath(%q) accepted an unclean path", s)
		}
	})
}
