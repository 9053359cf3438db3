package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of failing the
// test; Fatalf ends the goroutine running Check, as testing.T's does.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// check runs Check against a recorder and returns it.
func check(t *testing.T, path string, got []byte) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Check(r, path, got)
	}()
	<-done
	return r
}

// withUpdate sets -update for the rest of t.
func withUpdate(t *testing.T, on bool) {
	old := *update
	*update = on
	t.Cleanup(func() { *update = old })
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	withUpdate(t, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.golden")
	write(t, path, "one\ntwo\n")

	t.Run("equal", func(t *testing.T) {
		r := check(t, path, []byte("one\ntwo\n"))
		if len(r.errors) != 0 || r.fatal != "" {
			t.Errorf("Check of equal output failed: %q %q", r.errors, r.fatal)
		}
	})
	t.Run("different", func(t *testing.T) {
		r := check(t, path, []byte("one\nthree\n"))
		if len(r.errors) != 1 || r.fatal != "" {
			t.Fatalf("Check of different output: errors %q, fatal %q; want one error", r.errors, r.fatal)
		}
		for _, want := range []string{path, "(-want +got)", "two", "three"} {
			if !strings.Contains(r.errors[0], want) {
				t.Errorf("error %q does not contain %q", r.errors[0], want)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		r := check(t, filepath.Join(dir, "none.golden"), []byte("x"))
		if !strings.Contains(r.fatal, "go test -update") {
			t.Errorf("Check of a missing file: fatal %q, want a hint at -update", r.fatal)
		}
	})
}

func TestCheckUpdate(t *testing.T) {
	withUpdate(t, true)
	if !Update() {
		t.Fatal("Update() = false with -update")
	}
	dir := t.TempDir()

	t.Run("creates", func(t *testing.T) {
		path := filepath.Join(dir, "sub", "new.golden")
		if r := check(t, path, []byte("new\n")); len(r.errors) != 0 || r.fatal != "" {
			t.Fatalf("Check -update failed: %q %q", r.errors, r.fatal)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "new\n" {
			t.Errorf("file = %q, %v; want %q", b, err, "new\n")
		}
	})
	t.Run("rewrites", func(t *testing.T) {
		path := filepath.Join(dir, "old.golden")
		write(t, path, "old\n")
		if r := check(t, path, []byte("new\n")); len(r.errors) != 0 || r.fatal != "" {
			t.Fatalf("Check -update failed: %q %q", r.errors, r.fatal)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "new\n" {
			t.Errorf("file = %q, %v; want %q", b, err, "new\n")
		}
	})
	t.Run("keeps an equal file", func(t *testing.T) {
		path := filepath.Join(dir, "same.golden")
		write(t, path, "same\n")
		past := time.Now().Add(-time.Hour).Truncate(time.Second)
		if err := os.Chtimes(path, past, past); err != nil {
			t.Fatal(err)
		}
		check(t, path, []byte("same\n"))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(past) {
			t.Errorf("an equal golden file was rewritten (mtime %v, want %v)", fi.ModTime(), past)
		}
	})
}
