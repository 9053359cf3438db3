package config

import (
	"fmt"
	"slices"
	"strings"
)

// SecureBoot configures the chain `vmprov serve` hands to hosts whose boot
// intent says firmware=efi-secure (docs/design.md, "Secure Boot"): the
// Microsoft-signed shim, which loads GRUB signed by the distribution
// (grubx64.efi) from its own TFTP folder, which reads the grub.cfg of
// serve.signed_grub_cfg. The defaults are Debian 12's, whose shims TFTP
// finds in serve.loader_dirs (packages debian-installer-12-netboot-amd64
// and -arm64).
type SecureBoot struct {
	// Loaders maps a client architecture (DHCP option 93/61) to the TFTP
	// name of the shim handed to the PXE firmware of Secure Boot hosts.
	// Default DefaultSecureBootLoaders.
	Loaders map[uint16]string `yaml:"loaders" json:"loaders"`
}

// DefaultSecureBootLoaders is the shim of each client architecture:
// Debian's bootnetx64.efi for x64 UEFI (7, and 9, EBC's number, which x64
// UEFI firmware sends in practice, as in DefaultLoaders) and, for arm64 UEFI
// (11), the bootnetaa64.efi that serve.loaders hands every arm64 host by
// default.
func DefaultSecureBootLoaders() map[uint16]string {
	return map[uint16]string{7: "bootnetx64.efi", 9: "bootnetx64.efi", 11: "bootnetaa64.efi"}
}

// DefaultSignedGrubConfigs is serve.signed_grub_cfg unless set: where the
// signed GRUB of Debian 12's netboot images reads its configuration, its
// built-in prefix followed by /grub.cfg, by the client architecture of
// the GRUB (grubx64.efi: /debian-installer/amd64/grub, grubaa64.efi:
// /debian-installer/arm64/grub).
func DefaultSignedGrubConfigs() map[uint16]string {
	return map[uint16]string{
		7:  "debian-installer/amd64/grub/grub.cfg",
		11: "debian-installer/arm64/grub/grub.cfg",
	}
}

func (s *SecureBoot) setDefaults() {
	if s.Loaders == nil {
		s.Loaders = DefaultSecureBootLoaders()
	}
}

// validate reports each bad value of serve.secure_boot to bad.
func (s SecureBoot) validate(bad func(format string, a ...any)) {
	for arch, name := range s.Loaders {
		if err := tftpName(name); err != nil {
			bad("serve.secure_boot.loaders[%d] %q: %v", arch, name, err)
		}
	}
}

// validateSignedGrubConfigs reports each bad value of serve.signed_grub_cfg
// to bad: a name that is not a TFTP file name, or one name given for two
// architectures, which would leave the requester's architecture unknown.
func validateSignedGrubConfigs(m map[uint16]string, bad func(format string, a ...any)) {
	arches := make([]uint16, 0, len(m))
	for arch := range m {
		arches = append(arches, arch)
	}
	slices.Sort(arches)
	seen := map[string]uint16{}
	for _, arch := range arches {
		name := m[arch]
		if err := tftpName(name); err != nil {
			bad("serve.signed_grub_cfg[%d] %q: %v: give signed GRUB's prefix followed by /grub.cfg (%s)", arch, name, err, signedGrubExample(arch))
			continue
		}
		clean := strings.TrimPrefix(name, "/")
		if other, ok := seen[clean]; ok {
			bad("serve.signed_grub_cfg[%d] %q is also the name of architecture %d: give each architecture's GRUB its own prefix", arch, name, other)
		}
		seen[clean] = arch
	}
}

// signedGrubExample is the example serve.signed_grub_cfg[arch]'s error gives: the
// default of arch, or those of the architectures that have one.
func signedGrubExample(arch uint16) string {
	defaults := DefaultSignedGrubConfigs()
	if d, ok := defaults[arch]; ok {
		return "default " + d
	}
	arches := make([]uint16, 0, len(defaults))
	for a := range defaults {
		arches = append(arches, a)
	}
	slices.Sort(arches)
	var s []string
	for _, a := range arches {
		s = append(s, fmt.Sprintf("architecture %d's is %s", a, defaults[a]))
	}
	return "Debian 12's signed GRUB has none for architecture " + fmt.Sprint(arch) + "; " + strings.Join(s, ", ")
}

// tftpName checks a file name relative to the TFTP root, as clients ask
// for it: not empty, no "..", no empty or "." elements.
func tftpName(name string) error {
	if err := tftpChars(name); err != nil {
		return err
	}
	for _, p := range strings.Split(strings.TrimPrefix(name, "/"), "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("not a file name relative to the TFTP root (like debian-installer/amd64/grub/grub.cfg)")
		}
	}
	return nil
}

// maxTFTPName is the longest TFTP file name vmprov serve accepts (as its TFTP
// server does, so that a request fits one datagram; RFC 1350 sets no limit).
const maxTFTPName = 255

// tftpChars checks name against the rule vmprov serve's TFTP server applies to
// every requested name and served prefix: printable ASCII (RFC 1350's netascii
// without control characters) and at most maxTFTPName bytes.
func tftpChars(name string) error {
	if len(name) > maxTFTPName {
		return fmt.Errorf("%d bytes long, more than TFTP's %d", len(name), maxTFTPName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= 0x7f {
			return fmt.Errorf("byte %#x at %d is not printable ASCII, all a TFTP name may hold", c, i)
		}
	}
	return nil
}
