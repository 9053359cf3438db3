package dhcp4

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/netboot/tftp"
	"github.com/vmprov/vmprov/test/lab"
)

// ipxeEFI is the loader the boot test serves (Debian package ipxe).
const ipxeEFI = "/usr/lib/ipxe/ipxe.efi"

// firmwareDeadline bounds one boot under TCG on a shared machine: OVMF
// start, DHCP, the loader download and iPXE's own DHCP.
const firmwareDeadline = 4 * time.Minute

// TestFirmwareBoot boots OVMF under QEMU on a lab segment, with no option
// ROM on its NIC so that EDK2's own network stack runs, against Serve, the
// TFTP server and an HTTP server: the firmware must take vmprov's offer,
// load ipxe.efi (over TFTP for PXE, over HTTP for UEFI HTTP boot), and the
// iPXE it started must come back with user class iPXE and fetch
// boot.ipxe. This checks the PXE offer without vendor class and option 43
// (see Server.boot) against the firmware it was decided for.
func TestFirmwareBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots firmware under QEMU for minutes")
	}
	lab.RequireRoot(t, "ip", "named", "qemu-system-x86_64")
	for _, f := range []string{lab.OVMF, ipxeEFI, "/dev/net/tun"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, ipxe; the tun device)", f)
		}
	}
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	dnsc, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
dns: {zone: ` + lab.TestZone + `}
boot: {url: "http://192.0.2.1:8080"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, dns_servers: [192.0.2.1]}
serve: {interfaces: [br135], loaders: {7: ipxe.efi}}   # ipxe.efi stays selectable
`))
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for _, s := range []string{
		"pxe11.example.com. 300 IN A 192.0.2.11", "11.2.0.192.in-addr.arpa. 300 IN PTR pxe11.example.com.",
		"http12.example.com. 300 IN A 192.0.2.12", "12.2.0.192.in-addr.arpa. 300 IN PTR http12.example.com.",
	} {
		rrs = append(rrs, mustRR(t, s))
	}
	loadRecords(t, dnsc, append([]string{lab.TestZone}, lab.TestReverseZones()...), rrs)

	seg := lab.SegmentForTest(t)
	logs := newLogRecorder(t)
	log := slog.New(logs)
	policy := netboot.NewDNSPolicy(serveconfig.Policy(cfg, log), dnsc)

	// DHCP, TFTP and HTTP in the segment's router namespace.
	dsrv, err := New(testServerConfig(cfg, policy, log))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	loader, err := os.ReadFile(ipxeEFI)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ipxe.efi"), loader, 0o644); err != nil {
		t.Fatal(err)
	}
	tsrv, err := tftp.New(tftp.Config{Root: root, Policy: policy, Booter: serveconfig.Booter(cfg), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer tsrv.Close()
	web := &requestLog{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ipxe/ipxe.efi", func(w http.ResponseWriter, r *http.Request) {
		web.add(r)
		http.ServeContent(w, r, "ipxe.efi", time.Time{}, bytes.NewReader(loader))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		web.add(r)
		fmt.Fprint(w, "#!ipxe\necho vmprov test boot script\nshell\n")
	})
	var tconn *net.UDPConn
	var hln net.Listener
	if err := seg.Router.Do(func() error {
		var err error
		if tconn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 69}); err != nil {
			return err
		}
		hln, err = net.Listen("tcp", "192.0.2.1:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := seg.Router.Do(func() error { return dsrv.Serve(sctx) }); err != nil {
			t.Errorf("dhcp4 Serve: %v", err)
		}
	})
	wg.Go(func() {
		if err := seg.Router.Do(func() error { return tsrv.ServeConn(sctx, tconn) }); err != nil {
			t.Errorf("tftp ServeConn: %v", err)
		}
	})
	hs := &http.Server{Handler: mux}
	wg.Go(func() { _ = hs.Serve(hln) })
	t.Cleanup(func() {
		stop()
		_ = hs.Close()
		wg.Wait()
	})
	logs.wait(t, "dhcp4 listening", "iface=br135")

	mac := func(ip string) net.HardwareAddr {
		m, err := inventory.DefaultScheme().StrictMAC(135, netip.MustParseAddr(ip))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("ovmf pxe", func(t *testing.T) {
		m := mac("192.0.2.11")
		seg.OVMFForTest(t, m, "tap11")
		logs.waitFor(t, firmwareDeadline, "dhcp4 ACK", "mac="+m.String(), "class=pxe", "arch=7", "file=ipxe.efi")
		logs.waitFor(t, firmwareDeadline, "tftp transfer", "ip=192.0.2.11", "file=ipxe.efi", fmt.Sprintf("bytes=%d", len(loader)))
		logs.waitFor(t, firmwareDeadline, "dhcp4 ACK", "mac="+m.String(), "class=ipxe", "file=http://192.0.2.1:8080/boot.ipxe")
		web.waitFor(t, firmwareDeadline, "192.0.2.11 GET /boot.ipxe")
	})
	t.Run("ovmf http boot", func(t *testing.T) {
		m := mac("192.0.2.12")
		seg.OVMFForTest(t, m, "tap12",
			"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
			"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
		logs.waitFor(t, firmwareDeadline, "dhcp4 ACK", "mac="+m.String(), "class=http", "arch=16", "file=http://192.0.2.1:8080/ipxe/ipxe.efi")
		web.waitFor(t, firmwareDeadline, "192.0.2.12 GET /ipxe/ipxe.efi")
		logs.waitFor(t, firmwareDeadline, "dhcp4 ACK", "mac="+m.String(), "class=ipxe", "file=http://192.0.2.1:8080/boot.ipxe")
		web.waitFor(t, firmwareDeadline, "192.0.2.12 GET /boot.ipxe")
	})
}

// requestLog records HTTP requests as "IP METHOD PATH".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	l.mu.Lock()
	l.reqs = append(l.reqs, host+" "+r.Method+" "+r.URL.Path)
	l.mu.Unlock()
}

func (l *requestLog) waitFor(t testing.TB, timeout time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, r := range l.reqs {
			if r == want {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no HTTP request %q within %v; requests: %s", want, timeout, strings.Join(l.reqs, ", "))
}
