package templates

import (
	"fmt"
)

// BootInput is the input of BootScript.
type BootInput struct {
	BootURL   string // boot service base URL for DHCPv4 clients, e.g. http://boot.example.com
	BootURLv6 string // optional base URL for IPv6-only clients; empty means BootURL
}

// BootScript renders the script embedded in iPXE ROMs and served as /boot.ipxe: ifconf
// DHCPv4 → BOOT/mac/${mac:hexhyp}/ipxe → BOOT/pxedust; no DHCPv4 → IPv6 SLAAC →
// BOOTv6/pxedust; otherwise exit 1 so the firmware tries its next boot device. An
// interface that is configured already (an iPXE that fetched /boot.ipxe after its own
// DHCPv4, router adverts or DHCPv6 lease) is used as it is, without configuring it again:
// its IPv4 address goes to BOOT, its IPv6 address (${net0.ndp.0/ip6}, ${net0.dhcpv6/ip6};
// never the link-local ${net0/ip6}) to BOOTv6.
func BootScript(in BootInput) ([]byte, error) {
	if err := ValidURL(in.BootURL); err != nil {
		return nil, fmt.Errorf("boot script: boot URL: %w", err)
	}
	if in.BootURLv6 == "" {
		in.BootURLv6 = in.BootURL
	} else if err := ValidURL(in.BootURLv6); err != nil {
		return nil, fmt.Errorf("boot script: IPv6 boot URL: %w", err)
	}
	return render("boot.ipxe", in)
}

// PXEDustInput is the input of PXEDust.
type PXEDustInput struct {
	BootURL  string // base URL the client reached the boot service at
	Site     string // {site} in BOOT/bootstrap/{site}/{filename}
	Filename string // the host's TXT filename= (the bootstrap script)
	// Vars are the host's TXT key=value pairs in TXT order. A filename entry is skipped
	// (Filename carries it); distribution, if present, is emitted first as in seed 000.
	Vars []Var
}

// PXEDust renders the /pxedust answer for a host confirmed by forward-confirmed reverse DNS:
//
//	#!ipxe
//
//	set distribution core
//	chain --replace --autofree http://boot.example.com/bootstrap/example/test.ipxe
func PXEDust(in PXEDustInput) ([]byte, error) {
	if err := ValidURL(in.BootURL); err != nil {
		return nil, fmt.Errorf("pxedust: boot URL: %w", err)
	}
	if err := validSegment("site", in.Site); err != nil {
		return nil, fmt.Errorf("pxedust: %w", err)
	}
	if err := validSegment("filename", in.Filename); err != nil {
		return nil, fmt.Errorf("pxedust: %w", err)
	}
	if err := validVars(in.Vars); err != nil {
		return nil, fmt.Errorf("pxedust: %w", err)
	}
	in.Vars = orderVars(in.Vars)
	return render("pxedust.ipxe", in)
}

// orderVars drops filename and moves distribution to the front, keeping the rest in order.
func orderVars(vars []Var) []Var {
	out := make([]Var, 0, len(vars))
	for _, v := range vars {
		if v.Name == "distribution" {
			out = append(out, v)
		}
	}
	for _, v := range vars {
		if v.Name != "distribution" && v.Name != "filename" {
			out = append(out, v)
		}
	}
	return out
}

// BootstrapInput is the input of Bootstrap.
type BootstrapInput struct {
	BootURL string
	Vars    []Var // site-wide settings, e.g. puppet_server
}

// Bootstrap renders a default site bootstrap script (BOOT/bootstrap/{site}/{filename}):
// optional site-wide `set` lines, then a chain to BOOT/bootstrap/install/default.ipxe.
func Bootstrap(in BootstrapInput) ([]byte, error) {
	if err := ValidURL(in.BootURL); err != nil {
		return nil, fmt.Errorf("bootstrap script: boot URL: %w", err)
	}
	if err := validVars(in.Vars); err != nil {
		return nil, fmt.Errorf("bootstrap script: %w", err)
	}
	return render("bootstrap.ipxe", in)
}

// InstallInput is the input of InstallScript.
type InstallInput struct {
	BootURL   string
	MirrorURL string // base of installer kernels, trees and ISOs; empty means BootURL + "/assets"
	// VarNames are the host's variable names (TXT keys, site variables). Each one that is
	// not ReservedVar is appended to the kernel command line as name=${name} when set.
	VarNames []string
}

type installData struct {
	BootURL, MirrorURL string
	Distributions      []Distribution
	KernelVars         []string
}

// InstallScript renders BOOT/bootstrap/install/default.ipxe: the distribution dispatch of
// seed 000, generated from Distributions, ending in
//
//	kernel ${vmlinuz} ${cmdline}
//	initrd ${pxeboot}/${initrd}
//	boot
func InstallScript(in InstallInput) ([]byte, error) {
	if err := ValidURL(in.BootURL); err != nil {
		return nil, fmt.Errorf("install script: boot URL: %w", err)
	}
	if in.MirrorURL == "" {
		in.MirrorURL = in.BootURL + "/assets"
	}
	if err := ValidURL(in.MirrorURL); err != nil {
		return nil, fmt.Errorf("install script: mirror URL: %w", err)
	}
	for _, n := range in.VarNames {
		if err := ValidVarName(n); err != nil {
			return nil, fmt.Errorf("install script: %w", err)
		}
	}
	return render("install/default.ipxe", installData{
		BootURL:       in.BootURL,
		MirrorURL:     in.MirrorURL,
		Distributions: Distributions(),
		KernelVars:    kernelVars(in.VarNames),
	})
}
