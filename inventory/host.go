package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Var is one key=value of a host's boot intent.
type Var struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Intent is a host's boot intent, the TXT record of NAME.ZONE: one
// "key=value" character-string per variable. filename names the bootstrap
// script, distribution the OS; every other key becomes an iPXE variable.
type Intent []Var

// Reserved intent keys.
const (
	KeyFilename     = "filename"
	KeyDistribution = "distribution"
	// KeyArch is the host's architecture as the install scripts read it
	// (${arch}: x86_64 unless set, aarch64), which picks the installer's
	// paths and console.
	KeyArch = "arch"
	// KeyHypervisor names the member of the fleet (hypervisors: in the
	// configuration) that a VM is defined on, so that show, destroy and
	// reinstall --now go straight to it (docs/design.md, "Many
	// hypervisors"). Like the build state it is vmprov's own key: never an
	// iPXE variable or a kernel argument.
	KeyHypervisor = "hypervisor"
)

// DefaultFilename is the bootstrap script when the intent names none.
const DefaultFilename = "default.ipxe"

// ParseIntent reads TXT character-strings. A string that is not key=value
// with a non-empty key is an error, so a typo in DNS shows up instead of
// booting a wrong OS. It checks only that syntax: which names and values a
// boot intent may hold is templates.CheckIntent's rule, the one the boot
// service renders with and the command line writes with. A key given twice
// keeps its last value.
func ParseIntent(txt []string) (Intent, error) {
	var in Intent
	for _, s := range txt {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("txt %q is not key=value", s)
		}
		in = in.With(k, v)
	}
	return in, nil
}

// Get returns the value of key.
func (in Intent) Get(key string) (string, bool) {
	for _, v := range in {
		if v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

// With returns the intent with key set to value, replacing an earlier value
// in place and appending a new key at the end.
func (in Intent) With(key, value string) Intent {
	out := make(Intent, 0, len(in)+1)
	found := false
	for _, v := range in {
		if v.Key == key {
			v.Value, found = value, true
		}
		out = append(out, v)
	}
	if !found {
		out = append(out, Var{key, value})
	}
	return out
}

// Filename is the bootstrap script the intent names, or DefaultFilename.
func (in Intent) Filename() string {
	if f, ok := in.Get(KeyFilename); ok && f != "" {
		return f
	}
	return DefaultFilename
}

// TXT writes the intent as TXT character-strings, filename first, then
// distribution, then the rest in order (seed 000's dig output order).
func (in Intent) TXT() []string {
	var out []string
	for _, key := range []string{KeyFilename, KeyDistribution} {
		if v, ok := in.Get(key); ok {
			out = append(out, key+"="+v)
		}
	}
	for _, v := range in {
		if v.Key != KeyFilename && v.Key != KeyDistribution {
			out = append(out, v.Key+"="+v.Value)
		}
	}
	return out
}

// Host is everything DNS says about one machine.
type Host struct {
	Name   string           // short name, an RFC 1123 label
	FQDN   string           // Name + "." + zone, fully qualified
	MAC    net.HardwareAddr // nil when not known from DNS
	IPv4   netip.Addr       // zero when the host has no A record
	IPv6   netip.Addr       // zero when the host has no AAAA record
	Intent Intent
	// MACRecord says the MAC is published as a _mac CNAME (bare metal);
	// VM MACs are derived from the addresses instead.
	MACRecord bool
}

// Record is one resource record in presentation form.
type Record struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// Records lists the records that describe h in zone: A, AAAA, their PTRs,
// the TXT intent and, for MACRecord hosts, the _mac CNAME.
func (h Host) Records(zone string) []Record {
	var rs []Record
	if h.IPv4.IsValid() {
		rs = append(rs, Record{h.FQDN, "A", h.IPv4.String()})
	}
	if h.IPv6.IsValid() {
		rs = append(rs, Record{h.FQDN, "AAAA", h.IPv6.String()})
	}
	if txt := h.Intent.TXT(); len(txt) > 0 {
		q := make([]string, len(txt))
		for i, s := range txt {
			q[i] = `"` + s + `"`
		}
		rs = append(rs, Record{h.FQDN, "TXT", strings.Join(q, " ")})
	}
	if h.MACRecord && h.MAC != nil {
		rs = append(rs, Record{MACOwner(h.MAC, zone), "CNAME", h.FQDN})
	}
	if h.IPv4.IsValid() {
		rs = append(rs, Record{ReverseName(h.IPv4), "PTR", h.FQDN})
	}
	if h.IPv6.IsValid() {
		rs = append(rs, Record{ReverseName(h.IPv6), "PTR", h.FQDN})
	}
	return rs
}
