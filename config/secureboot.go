package config

import (
	"fmt"
	"strings"
)

// SecureBoot configures the chain `vmprov serve` hands to hosts whose boot
// intent says firmware=efi-secure (docs/design.md, "Secure Boot"): the
// Microsoft-signed shim, which loads grubx64.efi (GRUB signed by the
// distribution) from its own TFTP folder, which reads grub.cfg under its
// built-in prefix, where serve renders the host's install grub.cfg. The
// defaults are Debian 12's, whose shim and GRUB TFTP finds in
// serve.loader_dirs (package debian-installer-12-netboot-amd64).
type SecureBoot struct {
	// Loaders maps a client architecture (DHCP option 93/61) to the TFTP
	// name of the shim handed to the PXE firmware of Secure Boot hosts.
	// Default DefaultSecureBootLoaders.
	Loaders map[uint16]string `yaml:"loaders" json:"loaders"`
	// GrubConfig is the TFTP name signed GRUB reads its configuration from:
	// its built-in prefix followed by /grub.cfg. Default
	// DefaultSecureBootGrubConfig.
	GrubConfig string `yaml:"grub_cfg" json:"grub_cfg"`
}

// DefaultSecureBootGrubConfig is where the signed grubx64.efi of Debian 12's
// netboot images reads its configuration: its built-in prefix is
// /debian-installer/amd64/grub.
const DefaultSecureBootGrubConfig = "debian-installer/amd64/grub/grub.cfg"

// DefaultSecureBootLoaders is the shim of each client architecture:
// Debian's bootnetx64.efi for x64 UEFI (7).
func DefaultSecureBootLoaders() map[uint16]string {
	return map[uint16]string{7: "bootnetx64.efi"}
}

func (s *SecureBoot) setDefaults() {
	if s.Loaders == nil {
		s.Loaders = DefaultSecureBootLoaders()
	}
	if s.GrubConfig == "" {
		s.GrubConfig = DefaultSecureBootGrubConfig
	}
}

// validate reports each bad value of serve.secure_boot to bad.
func (s SecureBoot) validate(bad func(format string, a ...any)) {
	for arch, name := range s.Loaders {
		if err := tftpName(name); err != nil {
			bad("serve.secure_boot.loaders[%d] %q: %v", arch, name, err)
		}
	}
	if err := tftpName(s.GrubConfig); err != nil {
		bad("serve.secure_boot.grub_cfg %q: %v: give signed GRUB's prefix followed by /grub.cfg (default %s)", s.GrubConfig, err, DefaultSecureBootGrubConfig)
	}
}

// tftpName checks a file name relative to the TFTP root, as clients ask
// for it: not empty, no "..", no empty or "." elements.
func tftpName(name string) error {
	for _, p := range strings.Split(strings.TrimPrefix(name, "/"), "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("not a file name relative to the TFTP root (like debian-installer/amd64/grub/grub.cfg)")
		}
	}
	return nil
}
