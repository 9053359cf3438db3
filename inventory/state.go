package inventory

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// State is a host's build state, the TXT key state= beside its boot intent
// (docs/design.md, "A host's life"): install until the installer fetches its
// own answer file, installing until it calls back, installed after that.
type State string

// Build states.
const (
	StateInstall    State = "install"
	StateInstalling State = "installing"
	StateInstalled  State = "installed"
)

// States lists the build states in the order a host goes through them.
func States() []State { return []State{StateInstall, StateInstalling, StateInstalled} }

// ParseState reads a build state as `vmprov wait --for` and the TXT key
// state= spell it.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateInstall, StateInstalling, StateInstalled:
		return st, nil
	}
	return "", fmt.Errorf("build state %q is not install, installing or installed", s)
}

// Keys of the boot intent that vmprov writes itself and that are never
// passed to iPXE or the installer's kernel command line.
const (
	// KeyState is the build state (State).
	KeyState = "state"
	// KeyBuildID names one build: create, host add and reinstall write a
	// fresh one, so that every reinstall changes the intent even when its
	// distribution and variables stay the same, and revokes the
	// installer callback tokens of the builds before it.
	KeyBuildID = "build_id"
)

// State is the build state the intent records; an intent without one is
// StateInstall (records written before build states existed install as
// they always did).
func (in Intent) State() State {
	if v, ok := in.Get(KeyState); ok && v != "" {
		return State(v)
	}
	return StateInstall
}

// Without returns the intent without key.
func (in Intent) Without(key string) Intent {
	out := make(Intent, 0, len(in))
	for _, v := range in {
		if v.Key != key {
			out = append(out, v)
		}
	}
	return out
}

// ForInstall returns the intent of a new build: state=install and a fresh
// build_id (NewBuildID reading r, crypto/rand.Reader when nil).
func (in Intent) ForInstall(r io.Reader) (Intent, error) {
	id, err := NewBuildID(r)
	if err != nil {
		return nil, err
	}
	return in.With(KeyState, string(StateInstall)).With(KeyBuildID, id), nil
}

// NewBuildID returns 8 random hex digits from r (crypto/rand.Reader when nil).
func NewBuildID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("build id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
