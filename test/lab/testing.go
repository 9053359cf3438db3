package lab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
)

// TestZone is the forward zone of BINDForTest and Up.
const TestZone = "example.com."

// TestReverseZones returns the reverse zones of BINDForTest and Up:
// 192.0.2.0/24 and 2001:db8:135::/64.
func TestReverseZones() []string {
	return []string{"2.0.192.in-addr.arpa.", "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa."}
}

// RequireRoot skips t unless the process runs as root and every named binary
// is on PATH.
func RequireRoot(t testing.TB, binaries ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab: needs root")
	}
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("lab: needs %s on PATH (test/install-deps.sh installs the Debian packages: make deps)", b)
		}
	}
}

// testKeyName and testAlgorithm are the key of every *ForTest DNS server.
const (
	testKeyName   = "vmprov."
	testAlgorithm = "hmac-sha256"
)

// testListen is where *ForTest servers listen: port on 127.0.0.1.
func testListen(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
}

// BINDForTest starts named on a port of 127.0.0.1 reserved for t (see
// ReservePort) with zone example.com., reverse zones for 192.0.2.0/24 and
// 2001:db8:135::/64, key "vmprov." (hmac-sha256) with a fresh secret, and
// stops it when t ends. edit, if given, changes the configuration first
// (e.g. the zones). It skips t when not root or when named is missing.
func BINDForTest(t testing.TB, edit ...func(*BINDConfig)) *BIND {
	t.Helper()
	RequireRoot(t, "named")
	dir := t.TempDir()
	return startForTest(t, func(port uint16) (*BIND, error) {
		cfg := BINDConfig{Dir: dir, Listen: testListen(port), Zone: TestZone, ReverseZones: TestReverseZones(),
			KeyName: testKeyName, Algorithm: testAlgorithm, Secret: GenerateSecret()}
		for _, e := range edit {
			e(&cfg)
		}
		return StartBIND(t.Context(), cfg, nil)
	})
}

// NamespaceForTest creates a fresh network namespace with a unique name
// (lo up, DAD off) and deletes it when t ends. It skips t when not root or
// when ip is missing.
func NamespaceForTest(t testing.TB) *Namespace {
	t.Helper()
	RequireRoot(t, "ip")
	name := fmt.Sprintf("vmprovt-%08x", rand.Uint32())
	ns, err := NewNamespace(t.Context(), name)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(context.Background()); err != nil {
			t.Errorf("lab: %v", err)
		}
	})
	return ns
}

// LibvirtForTest starts a private libvirtd (see Libvirt) in network
// namespace netns with its files in a temporary directory, and stops it and
// its guests when t ends. It skips t when not root or when libvirtd, virtlogd,
// virsh or ip is missing.
func LibvirtForTest(t testing.TB, netns string) *Libvirt {
	t.Helper()
	RequireRoot(t, "ip", "libvirtd", "virtlogd", "virsh", "mount")
	// A short directory: libvirt's socket path must fit in 107 bytes.
	dir, err := os.MkdirTemp("", "vmprov-lv-")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	l, err := StartLibvirt(t.Context(), dir, netns, nil)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("lab: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("lab: libvirt files kept in %s", dir)
		}
	})
	return l
}

// Segment is one L2 segment for protocol tests: a router namespace holding a
// bridge, and client namespaces each plugged into the bridge by a veth pair.
type Segment struct {
	Router  *Namespace
	Bridge  Bridge
	clients int
}

// SegmentForTest creates a router namespace with bridge br135
// (192.0.2.1/24, 2001:db8:135::1/64) and deletes it when t ends. Servers
// under test bind inside Router (see Namespace.Do).
func SegmentForTest(t testing.TB) *Segment {
	t.Helper()
	s := &Segment{Router: NamespaceForTest(t), Bridge: Bridge{
		Name: "br135",
		IPv4: netip.MustParsePrefix("192.0.2.1/24"),
		IPv6: netip.MustParsePrefix("2001:db8:135::1/64"),
	}}
	if err := s.Router.AddBridge(t.Context(), s.Bridge); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return s
}

// ClientForTest creates a client namespace whose interface "eth0" (MAC mac,
// or a kernel-chosen one when nil; addrs added without DAD) is a port of the
// segment's bridge, and deletes it when t ends. With no addrs the client has
// only its IPv6 link-local address: what a DHCP or SLAAC client starts with.
func (s *Segment) ClientForTest(t testing.TB, mac net.HardwareAddr, addrs ...netip.Prefix) *Namespace {
	t.Helper()
	ns := NamespaceForTest(t)
	s.clients++
	port := fmt.Sprintf("vc%d", s.clients)
	err := AddVeth(t.Context(),
		VethEnd{Netns: s.Router.Name, Name: port, Master: s.Bridge.Name},
		VethEnd{Netns: ns.Name, Name: "eth0", MAC: mac, Addrs: addrs})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return ns
}
