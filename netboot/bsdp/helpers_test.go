package bsdp

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

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
