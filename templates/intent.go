package templates

import (
	"fmt"
	"slices"
	"strings"
)

// The boot intent is a host's TXT record, one name=value character-string per variable
// (seed 000). The command line writes it and the boot service reads it; both check it
// with CheckIntent so that nothing is written that /pxedust would refuse to render.

// Intent variables with rules beyond ValidVarName and ValidVarValue.
const (
	intentFilename     = "filename"     // the bootstrap script, see CheckScript
	intentDistribution = "distribution" // a Distributions name
	intentMirror       = "mirror"       // a base URL, see ValidURL
	intentState        = "state"        // the build state (docs/design.md, "A host's life")
	intentBuildID      = "build_id"     // names one build: 1 to 32 lower-case hex digits
	intentFirmware     = "firmware"     // the host's firmware where the wire does not tell: efi-secure
	intentArch         = "arch"         // the host's architecture: ArchX8664 or ArchARM64
	intentHypervisor   = "hypervisor"   // the fleet member a VM is defined on (docs/design.md, "Many hypervisors")
)

// BuildStates are the values of the intent's state= (docs/design.md, "A host's life"),
// the same as inventory.States: vmprov writes install, serve installing and installed.
var buildStates = []string{"install", "installing", "installed"}

// firmwares are the values of the intent's firmware= (inventory.KeyFirmware): the names of
// vmprov create --firmware. Only efi-secure changes what the boot service answers.
var firmwares = []string{"bios", "efi", "efi-secure"}

// CheckIntent checks a whole boot intent, in TXT order: filename must pass CheckScript,
// distribution must be a known distribution (LookupDistribution), state must be a build
// state (install, installing or installed), build_id 1 to 32 lower-case hex digits,
// firmware bios, efi or efi-secure, arch x86_64 or aarch64, every other name must
// pass ValidVarName and its value ValidVarValue (mirror must also be a base URL, see
// ValidURL), and no name may be set twice (a TXT record has no precedence between its
// strings). Neither filename nor distribution is required. Every error names the refused
// name or value and the rule, and wraps ErrInvalidVar.
func CheckIntent(vars []Var) error {
	for i, v := range vars {
		if err := CheckVar(v); err != nil {
			return err
		}
		if j := slices.IndexFunc(vars[:i], func(w Var) bool { return w.Name == v.Name }); j >= 0 {
			return fmt.Errorf("%w: name %q set twice (%s=%s and %s=%s)", ErrInvalidVar, v.Name, v.Name, vars[j].Value, v.Name, v.Value)
		}
	}
	return nil
}

// CheckVar checks one variable of a boot intent by the rules of CheckIntent, for callers
// that report each variable with its own origin (a --txt flag, a TXT string).
func CheckVar(v Var) error {
	switch v.Name {
	case intentFilename:
		return CheckScript(v.Value)
	case intentDistribution:
		if _, err := LookupDistribution(v.Value); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidVar, err)
		}
		return nil
	case intentState:
		if !slices.Contains(buildStates, v.Value) {
			return fmt.Errorf("%w: state=%q is not a build state (want one of %s)", ErrInvalidVar, v.Value, strings.Join(buildStates, ", "))
		}
		return nil
	case intentBuildID:
		if !validBuildID(v.Value) {
			return fmt.Errorf("%w: build_id=%q is not 1 to 32 lower-case hex digits", ErrInvalidVar, v.Value)
		}
		return nil
	case intentHypervisor:
		if !validLabel(v.Value) {
			return fmt.Errorf("%w: hypervisor=%q is not a hypervisor name (a host name label from hypervisors: in the configuration)", ErrInvalidVar, v.Value)
		}
		return nil
	case intentFirmware:
		if !slices.Contains(firmwares, v.Value) {
			return fmt.Errorf("%w: firmware=%q is not one of %s", ErrInvalidVar, v.Value, strings.Join(firmwares, ", "))
		}
		return nil
	case intentArch:
		// The installers and DebianArch know these two; any other name
		// (Debian's arm64 included) would render the x86_64 installer.
		if v.Value != ArchX8664 && v.Value != ArchARM64 {
			return fmt.Errorf("%w: arch %q: use %s or %s (vmprov create --arch %s)", ErrInvalidVar, v.Value, ArchX8664, ArchARM64, ArchARM64)
		}
		return nil
	}
	if err := ValidVarName(v.Name); err != nil {
		return err
	}
	if err := ValidVarValue(v.Name, v.Value); err != nil {
		return err
	}
	if v.Name == intentMirror {
		// The answer files derive the installer's mirror from it (Host.prepare).
		if err := ValidURL(v.Value); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidVar, v.Name, err)
		}
	}
	return nil
}

// CheckScript checks a bootstrap script name (TXT filename=, --script): a file name
// relative to bootstrap/SITE/. /pxedust chains BOOT/bootstrap/SITE/NAME, so the name must
// not leave that directory (no leading "/", no ".." element), and it must be the single
// path segment PXEDust renders: letters, digits, '.', '_' and '-', not starting with a
// dot, at most 128 bytes (a subset of what ValidVarValue allows, so the name is also a
// valid TXT value).
func CheckScript(name string) error {
	const want = "want a file name in bootstrap/SITE/ like test.ipxe"
	switch {
	case name == "":
		return fmt.Errorf("%w: script: empty name (%s)", ErrInvalidVar, want)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: script %q is an absolute path (%s)", ErrInvalidVar, name, want)
	case slices.Contains(strings.Split(name, "/"), ".."):
		return fmt.Errorf("%w: script %q: \"..\" would leave bootstrap/SITE/ (%s)", ErrInvalidVar, name, want)
	case strings.Contains(name, "/"):
		return fmt.Errorf("%w: script %q is in a subdirectory: /pxedust chains one path segment (%s)", ErrInvalidVar, name, want)
	}
	// The rule PXEDust applies to its Filename, so that an accepted name renders.
	if err := validSegment("script", name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidVar, err)
	}
	return nil
}

func validBuildID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
