// Package serveconfig maps vmprov's YAML configuration onto the explicit
// configurations of the boot service: the VLANs, the DNS policy, the
// Booter (netboot) and the BSDP images (bsdp). The command line wires
// vmprov serve and vmprov explain with it, and tests build servers from a
// configuration string with it. It is the only netboot package that reads
// package config; the servers take named fields.
package serveconfig

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/bsdp"
)

// VLANs returns the configured VLANs (vlans:).
func VLANs(c *config.Config) netboot.VLANs {
	out := make(netboot.VLANs, len(c.VLANs))
	for i, v := range c.VLANs {
		out[i] = netboot.VLAN{
			ID: v.ID, Bridge: v.Bridge,
			IPv4: v.IPv4, Gateway: v.Gateway,
			IPv6:       v.IPv6,
			DNSServers: append([]netip.Addr(nil), v.DNSServers...),
		}
	}
	return out
}

// Scheme returns the MAC prefixes of addressing:, the defaults for keys
// that do not parse (Load has refused those already).
func Scheme(c *config.Config) inventory.Scheme {
	s := inventory.DefaultScheme()
	if p, err := config.ParseMACPrefix(c.Addressing.StrictMACPrefix); err == nil {
		s.Strict = p
	}
	if p, err := config.ParseMACPrefix(c.Addressing.SLAACMACPrefix); err == nil {
		s.SLAAC = p
	}
	return s
}

// Policy returns the DNS policy's configuration: dns.zone, the VLANs and
// the MAC prefixes.
func Policy(c *config.Config, log *slog.Logger) netboot.PolicyConfig {
	return netboot.PolicyConfig{Zone: c.DNS.Zone, VLANs: VLANs(c), Scheme: Scheme(c), Log: log}
}

// Booter returns the boot decision's configuration: boot:,
// serve.loaders and serve.secure_boot.loaders, and whether bsdp.images has
// any.
func Booter(c *config.Config) netboot.Booter {
	return netboot.Booter{
		URL: c.Boot.URL, URLv6: c.Boot.URLv6, Site: c.Boot.Site, Assets: c.Boot.Assets,
		Loaders:           ArchMap(c.Serve.Loaders),
		SecureBootLoaders: ArchMap(c.Serve.SecureBoot.Loaders),
		BSDP:              len(c.BSDP.Images) > 0,
	}
}

// ArchMap keys a table of serve: (loaders, signed GRUB configurations) by
// client architecture.
func ArchMap(m map[uint16]string) map[netboot.Arch]string {
	out := make(map[netboot.Arch]string, len(m))
	for a, l := range m {
		out[netboot.Arch(a)] = l
	}
	return out
}

// AssetDirs returns serve.asset_dirs.
func AssetDirs(c *config.Config) netboot.AssetDirs {
	out := make(netboot.AssetDirs, len(c.Serve.AssetDirs))
	for i, d := range c.Serve.AssetDirs {
		out[i] = netboot.AssetDir{Prefix: d.Prefix, Dir: d.Dir}
	}
	return out
}

// BSDPImages returns bsdp.images.
func BSDPImages(c *config.Config) []bsdp.Image {
	var out []bsdp.Image
	for _, im := range c.BSDP.Images {
		out = append(out, bsdp.Image{ID: bsdp.ImageID(im.ID), Name: im.Name, BootFile: im.BootFile})
	}
	return out
}

// DHCP returns what the DHCPv4 and DHCPv6 servers share: the policy, the
// Booter, the VLANs, serve.interfaces, serve.lease_time and dns.zone.
func DHCP(c *config.Config, p netboot.Policy, log *slog.Logger) netboot.DHCPConfig {
	return netboot.DHCPConfig{
		Policy: p, Booter: Booter(c), VLANs: VLANs(c), Interfaces: c.Serve.Interfaces,
		LeaseTime: time.Duration(c.Serve.LeaseTime) * time.Second, Domain: c.DNS.Zone, Log: log,
	}
}
