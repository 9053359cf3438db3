// Package golden compares test output with golden files: expected output
// kept in testdata and reviewed like code.
//
// A test calls Check with the file's path and what it produced:
//
//	golden.Check(t, "testdata/pxedust.golden", got)
//
// A mismatch fails the test with a diff (-want +got). Running the tests with
// -update rewrites the files from the current output instead:
//
//	go test ./templates/ -update
//	git diff testdata/     # review what changed before committing it
//
// The -update flag is registered here, once, when a test binary links this
// package; a test package that imports golden must not define its own. Tests
// that regenerate other testdata (packet captures, for example) read it with
// Update. Only _test.go files import this package.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files (and other testdata captures) from the current output")

// Update reports whether the test binary runs with -update.
func Update() bool { return *update }

// Check compares got with the golden file at path, failing t with a diff
// (-want +got) when they differ and stopping t when the file cannot be read.
// With -update it writes got to path instead, creating its folder, and
// leaves a file that already holds got untouched.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if want, err := os.ReadFile(path); err == nil && bytes.Equal(want, got) {
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}
