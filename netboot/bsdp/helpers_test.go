package bsdp

import (
	"bytes"
	"encoding/hex"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// cmpOpts compares netip.Addr by value.
var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{})}

// parseHex reads bytes written as in seed 001's dhcpd.conf: colon-separated
// hex, "#" comments, a ";" at the end.
func parseHex(t testing.TB, text string) []byte {
	t.Helper()
	var digits strings.Builder
	for line := range strings.Lines(text) {
		line, _, _ = strings.Cut(line, "#")
		for _, r := range line {
			switch r {
			case ':', ';', ' ', '\t', '\n', '\r':
			default:
				digits.WriteRune(r)
			}
		}
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("parse hex: %v", err)
	}
	return b
}

// readHex reads testdata/name with parseHex.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseHex(t, string(text))
}

// golden compares got with testdata/golden/name, a hex dump, or rewrites
// the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	dump := []byte(hex.Dump(got))
	if *update {
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, dump) {
		t.Errorf("%s differs (-want +got):\n%s", path, cmp.Diff(string(want), string(dump)))
	}
}
