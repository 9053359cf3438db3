package config

import (
	"fmt"
	"path"
	"strings"
)

// SecureBoot configures the chain `vmprov serve` hands to hosts whose boot
// intent says firmware=efi-secure (docs/design.md, "Secure Boot"): the
// Microsoft-signed shim, which loads grubx64.efi (GRUB signed by the
// distribution) from its own TFTP directory, which reads grub.cfg under
// its built-in prefix, where serve renders the host's install grub.cfg.
// The defaults are Debian 12's, from package
// debian-installer-12-netboot-amd64.
type SecureBoot struct {
	// Dir is a netboot tree served read-only over TFTP behind
	// serve.dir/tftp (a file there of the same name wins), so that the
	// signed binaries need not be copied. Default DefaultSecureBootDir;
	// SecureBootOff serves none.
	Dir string `yaml:"dir" json:"dir"`
	// Loaders maps a client architecture (DHCP option 93/61) to the TFTP
	// name of the shim handed to the PXE firmware of Secure Boot hosts.
	// Default DefaultSecureBootLoaders.
	Loaders map[uint16]string `yaml:"loaders" json:"loaders"`
	// GrubConfig is the TFTP name signed GRUB reads its configuration from:
	// its built-in prefix followed by /grub.cfg. Default
	// DefaultSecureBootGrubConfig.
	GrubConfig string `yaml:"grub_cfg" json:"grub_cfg"`
}

// Defaults of serve.secure_boot: Debian 12's netboot tree as package
// debian-installer-12-netboot-amd64 installs it (netboot.tar.gz unpacked),
// its shim, and the prefix its signed grubx64.efi is built with
// (/debian-installer/amd64/grub).
const (
	DefaultSecureBootDir        = "/usr/lib/debian-installer/images/12/amd64/text"
	DefaultSecureBootGrubConfig = "debian-installer/amd64/grub/grub.cfg"
	// SecureBootOff as serve.secure_boot.dir serves no netboot tree.
	SecureBootOff = "off"
)

// DefaultSecureBootLoaders is the shim of each client architecture in
// Debian's netboot tree: bootnetx64.efi for x64 UEFI (7).
func DefaultSecureBootLoaders() map[uint16]string {
	return map[uint16]string{7: "debian-installer/amd64/bootnetx64.efi"}
}

// TreeEnabled reports whether a netboot tree is configured.
func (s SecureBoot) TreeEnabled() bool { return s.Dir != SecureBootOff }

func (s *SecureBoot) setDefaults() {
	if s.Dir == "" {
		s.Dir = DefaultSecureBootDir
	}
	if s.Loaders == nil {
		s.Loaders = DefaultSecureBootLoaders()
	}
	if s.GrubConfig == "" {
		s.GrubConfig = DefaultSecureBootGrubConfig
	}
}

// validate reports each bad value of serve.secure_boot to bad.
func (s SecureBoot) validate(bad func(format string, a ...any)) {
	if s.TreeEnabled() && !path.IsAbs(s.Dir) {
		bad("serve.secure_boot.dir %q is not an absolute path: give the directory of an unpacked netboot tree (default %s) or %s", s.Dir, DefaultSecureBootDir, SecureBootOff)
	}
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
			return fmt.Errorf("not a file name relative to the TFTP root (like debian-installer/amd64/bootnetx64.efi)")
		}
	}
	return nil
}
