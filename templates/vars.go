package templates

import (
	"errors"
	"fmt"
	"strings"
)

// Var is one host variable: a TXT character-string "name=value" that becomes an iPXE
// setting (`set name value`) and, unless reserved, a kernel argument name=value.
type Var struct {
	Name  string
	Value string
}

// ErrInvalidVar is wrapped by every error ValidVarName and ValidVarValue return.
var ErrInvalidVar = errors.New("invalid host variable")

const maxVarName = 64

// maxVarValue keeps name=value inside one 255-byte TXT character-string.
const maxVarValue = 255 - 2

// ipxeBuiltins are iPXE settings a host variable must not overwrite: setting them from
// /pxedust would change the client's own network configuration mid-boot.
func ipxeBuiltin(name string) bool {
	switch strings.ToLower(name) {
	case "mac", "ip", "netmask", "gateway", "dns", "dns6", "ip6", "len6", "gateway6",
		"uuid", "busid", "busloc", "bustype", "chip", "ifname", "manufacturer", "product",
		"serial", "asset", "syslog", "username", "password", "scriptlet":
		return true
	}
	return false
}

// ValidVarName reports whether name may be a host variable: a shell identifier
// ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes) so that the same name works as an iPXE setting,
// a kernel argument and an environment variable in the firstboot script, and not one of
// iPXE's own network settings (mac, ip, gateway, ...).
func ValidVarName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidVar)
	}
	if len(name) > maxVarName {
		return fmt.Errorf("%w: name %q longer than %d bytes", ErrInvalidVar, name, maxVarName)
	}
	for i, c := range []byte(name) {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: name %q: character %q at %d (want [A-Za-z_][A-Za-z0-9_]*)", ErrInvalidVar, name, c, i)
		}
	}
	if ipxeBuiltin(name) {
		return fmt.Errorf("%w: name %q is an iPXE network setting", ErrInvalidVar, name)
	}
	return nil
}

// valueChar reports whether c may appear in a host variable value. iPXE has no quoting
// (whitespace splits arguments, ${...} expands, || and && chain, # comments) and the same
// value lands in kernel command lines, GRUB scripts, YAML and shell, so the set is an
// allowlist: letters, digits and - . _ ~ : / ? = + , @ % [ ].
func valueChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?=+,@%[]", c) >= 0
}

// ValidVarValue reports whether value may be the value of host variable name (used only in
// the error message): non-empty, at most 253 bytes, and only characters that every consumer
// (iPXE, kernel command line, GRUB, YAML, shell) reads literally.
func ValidVarValue(name, value string) error {
	if value == "" {
		return fmt.Errorf("%w: %s: empty value", ErrInvalidVar, name)
	}
	if len(value) > maxVarValue {
		return fmt.Errorf("%w: %s: value longer than %d bytes", ErrInvalidVar, name, maxVarValue)
	}
	for i := 0; i < len(value); i++ {
		if !valueChar(value[i]) {
			return fmt.Errorf("%w: %s=%q: character %q at %d is not allowed (iPXE has no quoting; allowed: letters, digits, -._~:/?=+,@%%[])",
				ErrInvalidVar, name, value, value[i], i)
		}
	}
	return nil
}

// validVars checks every variable and rejects duplicate names.
func validVars(vars []Var) error {
	seen := make(map[string]bool, len(vars))
	for _, v := range vars {
		if err := ValidVarName(v.Name); err != nil {
			return err
		}
		if err := ValidVarValue(v.Name, v.Value); err != nil {
			return err
		}
		if seen[v.Name] {
			return fmt.Errorf("%w: %s set twice", ErrInvalidVar, v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// ReservedVar reports whether name is one of the variables the install scripts interpret
// (filename, distribution, pxeboot, kickstart, console, arch, debarch, ifnames, firstboot, ...)
// or vmprov's own keys (state, build_id, firmware, hypervisor), rather than a variable to pass to
// the installed system's kernel command line. extra is appended raw, as in seed 000.
func ReservedVar(name string) bool {
	switch name {
	case "filename", "distribution", "pxeboot", "kernel", "vmlinuz", "initrd", "cmdline",
		"kickstart", "preseed", "autoinstall", "console", "arch", "debarch", "ttydev", "ifnames", "firstboot",
		"mirror", "repo", "iso", "extra", "hostname", "domain", intentState, intentBuildID, intentFirmware, intentHypervisor:
		return true
	}
	return false
}

// BuildVar reports whether name is one of the keys vmprov writes to record a host's build
// (state, build_id; docs/design.md, "A host's life"), the firmware the boot service
// answers for (firmware=efi-secure) or the hypervisor a VM is defined on (hypervisor=):
// they are not host variables, so no iPXE set line or kernel argument carries them.
func BuildVar(name string) bool {
	return name == intentState || name == intentBuildID || name == intentFirmware || name == intentHypervisor
}

// kernelVars returns, in order and without duplicates, the names that install scripts
// append to the kernel command line as name=value.
func kernelVars(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if ReservedVar(n) || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}
