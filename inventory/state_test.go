package inventory

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildState(t *testing.T) {
	old, err := ParseIntent([]string{"filename=test.ipxe", "distribution=core"})
	if err != nil {
		t.Fatal(err)
	}
	if got := old.State(); got != StateInstall {
		t.Errorf("a record without state= is %q, want install", got)
	}
	in, err := old.ForInstall(bytes.NewReader([]byte{0xde, 0xad, 0xbe, 0xef}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"filename=test.ipxe", "distribution=core", "state=install", "build_id=deadbeef"}
	if diff := cmp.Diff(want, in.TXT()); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
	done := in.With(KeyState, string(StateInstalled))
	if done.State() != StateInstalled || len(done) != len(in) {
		t.Errorf("With(state, installed) = %v", done)
	}
	if diff := cmp.Diff(old, done.Without(KeyState).Without(KeyBuildID)); diff != "" {
		t.Errorf("Without (-want +got):\n%s", diff)
	}
	for _, s := range []string{"install", "installing", "installed"} {
		if st, err := ParseState(s); err != nil || string(st) != s {
			t.Errorf("ParseState(%q) = %q, %v", s, st, err)
		}
	}
	if _, err := ParseState("done"); err == nil || !strings.Contains(err.Error(), `"done"`) {
		t.Errorf("ParseState(done) = %v, want an error naming the value", err)
	}
	if _, err := in.ForInstall(bytes.NewReader(nil)); err == nil {
		t.Error("ForInstall without randomness succeeded")
	}
}
