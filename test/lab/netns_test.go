package lab_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

func TestNamespaceBridgeAndVeth(t *testing.T) {
	srv := lab.NamespaceForTest(t)
	br := lab.Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24"), IPv6: netip.MustParsePrefix("2001:db8:135::1/64")}
	if err := srv.AddBridge(t.Context(), br); err != nil {
		t.Fatal(err)
	}
	cli := lab.NamespaceForTest(t)
	mac, _ := net.ParseMAC("02:04:06:08:70:0a")
	err := lab.AddVeth(t.Context(),
		lab.VethEnd{Netns: srv.Name, Name: "vsrv0", Master: "br135"},
		lab.VethEnd{Netns: cli.Name, Name: "vcli0", MAC: mac, Addrs: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("2001:db8:135::10/64")}})
	if err != nil {
		t.Fatal(err)
	}

	out, err := srv.IP(t.Context(), "link", "show", "master", "br135")
	if err != nil || !strings.Contains(out, "vsrv0") {
		t.Errorf("vsrv0 is not a port of br135: %q %v", out, err)
	}
	// The global address must be usable at once (nodad); the link-local
	// one may still be in duplicate address detection.
	out, err = srv.IP(t.Context(), "-6", "addr", "show", "dev", "br135", "scope", "global")
	if err != nil || strings.Contains(out, "tentative") || !strings.Contains(out, "2001:db8:135::1/64") {
		t.Errorf("br135 IPv6 address missing or tentative: %q %v", out, err)
	}

	// A server socket opened in one namespace answers a client in the other,
	// over the veth and the bridge, in both address families.
	for _, addr := range []string{"192.0.2.1:7000", "[2001:db8:135::1]:7000"} {
		t.Run(addr, func(t *testing.T) {
			var l net.Listener
			if err := srv.Do(func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write([]byte(c.RemoteAddr().String()))
			}()
			c, err := cli.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 100)
			n, _ := c.Read(buf)
			host, _, _ := net.SplitHostPort(string(buf[:n]))
			if want := map[string]string{"192.0.2.1:7000": "192.0.2.10", "[2001:db8:135::1]:7000": "2001:db8:135::10"}[addr]; host != want {
				t.Errorf("server saw client %q, want %q", host, want)
			}
		})
	}

	// Threads that ran Do are back in the original namespace, where br135
	// does not exist. (Checked locally: nothing may be sent out of the host.)
	for range 20 {
		if err := srv.Do(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := net.InterfaceByName("br135"); err == nil {
			t.Fatal("br135 visible outside the namespace after Do")
		}
	}
}

// A broadcast from an unconfigured client reaches a server bound in the
// router namespace, as a DHCPDISCOVER would.
func TestSegmentBroadcast(t *testing.T) {
	seg := lab.SegmentForTest(t)
	mac, _ := net.ParseMAC("02:04:06:08:72:0a")
	cli := seg.ClientForTest(t, mac)

	var srv net.PacketConn
	if err := seg.Router.Do(func() (err error) { srv, err = net.ListenPacket("udp4", "0.0.0.0:6767"); return err }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var c *net.UDPConn
	err := cli.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: 6868})
		if err != nil {
			return err
		}
		// Without an address, the broadcast needs an explicit device.
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); serr == nil {
				serr = syscall.BindToDevice(int(fd), "eth0")
			}
		})
		return errors.Join(err, serr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP([]byte("discover"), &net.UDPAddr{IP: net.IPv4bcast, Port: 6767}); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "discover" || from.(*net.UDPAddr).Port != 6868 {
		t.Errorf("server got %q from %v, want \"discover\" from port 6868", got, from)
	}
}
