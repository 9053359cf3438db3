package templates

import (
	"errors"
	"fmt"
	"strings"
)

// Family groups distributions that install the same way.
type Family string

const (
	// FamilyEL installs with Anaconda: images/pxeboot vmlinuz + initrd.img,
	// inst.ks= and inst.repo=, answer file ks.cfg.
	FamilyEL Family = "el"
	// FamilyDebian installs with debian-installer (Debian, and Ubuntu up to xenial as in
	// seed 000): netboot linux + initrd.gz, url= preseed, answer file preseed.cfg.
	FamilyDebian Family = "debian"
	// FamilyUbuntu installs with Subiquity from the live server image: casper vmlinuz +
	// initrd, url= ISO, autoinstall ds=nocloud-net;s=URL/, answer files user-data, meta-data.
	FamilyUbuntu Family = "ubuntu"
)

// Distribution is one value the TXT key distribution may take. Paths are relative to the
// mirror base URL (template input MirrorURL, default BOOT/assets) and may contain ${arch}
// (x86_64, aarch64: the host's TXT arch) and ${debarch} (its Debian name: amd64, arm64),
// which iPXE expands at boot and Go expands for per-host files.
type Distribution struct {
	Name    string // the TXT value: core, xenial, bookworm, noble, rocky9, ...
	Family  Family
	Release string // human name, e.g. centos/7
	PXEBoot string // directory holding the kernel and initrd
	Kernel  string // file name in PXEBoot
	Initrd  string // file name in PXEBoot
	Repo    string // FamilyEL: install tree for inst.repo= and the kickstart url
	Archive string // FamilyDebian: archive directory for mirror/http/directory
	ISO     string // FamilyUbuntu: live server ISO for url=
}

// ErrUnknownDistribution is returned (wrapped) for a distribution not in Distributions.
var ErrUnknownDistribution = errors.New("unknown distribution")

// Distributions returns the supported distributions in dispatch order. The CLI validates
// --distro against it; install/default.ipxe is generated from it.
func Distributions() []Distribution {
	return []Distribution{
		{Name: "core", Family: FamilyEL, Release: "centos/7",
			PXEBoot: "centos/7/os/${arch}/images/pxeboot", Kernel: "vmlinuz", Initrd: "initrd.img",
			Repo: "centos/7/os/${arch}"},
		{Name: "rocky9", Family: FamilyEL, Release: "rocky/9",
			PXEBoot: "rocky/9/BaseOS/${arch}/os/images/pxeboot", Kernel: "vmlinuz", Initrd: "initrd.img",
			Repo: "rocky/9/BaseOS/${arch}/os"},
		{Name: "alma9", Family: FamilyEL, Release: "almalinux/9",
			PXEBoot: "almalinux/9/BaseOS/${arch}/os/images/pxeboot", Kernel: "vmlinuz", Initrd: "initrd.img",
			Repo: "almalinux/9/BaseOS/${arch}/os"},
		{Name: "fedora", Family: FamilyEL, Release: "fedora/42",
			PXEBoot: "fedora/linux/releases/42/Everything/${arch}/os/images/pxeboot", Kernel: "vmlinuz", Initrd: "initrd.img",
			Repo: "fedora/linux/releases/42/Everything/${arch}/os"},
		{Name: "xenial", Family: FamilyDebian, Release: "ubuntu/16.04",
			PXEBoot: "ubuntu-installer/xenial/amd64", Kernel: "linux", Initrd: "initrd.gz",
			Archive: "ubuntu"},
		{Name: "bookworm", Family: FamilyDebian, Release: "debian/12",
			PXEBoot: "debian/dists/bookworm/main/installer-${debarch}/current/images/netboot/debian-installer/${debarch}",
			Kernel:  "linux", Initrd: "initrd.gz", Archive: "debian"},
		{Name: "trixie", Family: FamilyDebian, Release: "debian/13",
			PXEBoot: "debian/dists/trixie/main/installer-${debarch}/current/images/netboot/debian-installer/${debarch}",
			Kernel:  "linux", Initrd: "initrd.gz", Archive: "debian"},
		{Name: "jammy", Family: FamilyUbuntu, Release: "ubuntu/22.04",
			PXEBoot: "ubuntu/jammy/casper", Kernel: "vmlinuz", Initrd: "initrd",
			ISO: "ubuntu/jammy/ubuntu-22.04-live-server-amd64.iso"},
		{Name: "noble", Family: FamilyUbuntu, Release: "ubuntu/24.04",
			PXEBoot: "ubuntu/noble/casper", Kernel: "vmlinuz", Initrd: "initrd",
			ISO: "ubuntu/noble/ubuntu-24.04-live-server-amd64.iso"},
	}
}

// LookupDistribution returns the distribution called name.
func LookupDistribution(name string) (Distribution, error) {
	var names []string
	for _, d := range Distributions() {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Distribution{}, fmt.Errorf("%w %q (supported: %s)", ErrUnknownDistribution, name, strings.Join(names, ", "))
}

// AnswerFiles returns the per-host files the installer of d fetches from
// BOOT/bootstrap/install/{name}/{arch}/.
func (d Distribution) AnswerFiles() []string {
	switch d.Family {
	case FamilyEL:
		return []string{"ks.cfg"}
	case FamilyDebian:
		return []string{"preseed.cfg"}
	case FamilyUbuntu:
		return []string{"user-data", "meta-data"}
	}
	return nil
}

// expandArch replaces ${arch} in a mirror path with arch and ${debarch} with its Debian
// name (DebianArch).
func expandArch(path, arch string) string {
	return strings.NewReplacer("${arch}", arch, "${debarch}", DebianArch(arch)).Replace(path)
}

// DebianArch is Debian's name of the architecture arch (TXT arch=, as EL and the kernel
// name it): arm64 for aarch64, amd64 for x86_64. CheckVar and the renderers refuse
// any other arch, so no other name reaches it as the amd64 installer.
// install/default.ipxe sets ${debarch} the same way.
func DebianArch(arch string) string {
	if arch == ArchARM64 {
		return "arm64"
	}
	return "amd64"
}

// Host architectures (TXT arch=; Host.Arch).
const (
	ArchX8664 = "x86_64"
	ArchARM64 = "aarch64"
)

// PXEBootFor is the directory of d's kernel and initrd under the mirror for a host of
// architecture arch (TXT arch=; empty means x86_64), as the per-host files expand it.
func (d Distribution) PXEBootFor(arch string) string {
	if arch == "" {
		arch = ArchX8664
	}
	return expandArch(d.PXEBoot, arch)
}
