package grubimage

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
	"github.com/vmprov/vmprov/netboot/dhcp4"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/netboot/tftp"
	"github.com/vmprov/vmprov/test/lab"
)

// testKernel is the stand-in kernel of the boot test (Debian package
// ipxe): ipxe.lkrn is a bzImage, so GRUB's linux command accepts it.
const testKernel = "/usr/lib/ipxe/ipxe.lkrn"

// bootDeadline bounds one boot under TCG on a shared machine: OVMF start,
// DHCP, the image download, GRUB's TFTP and HTTP fetches.
const bootDeadline = 5 * time.Minute

// TestGrubBootOVMF boots OVMF under QEMU on a lab segment against
// vmprov's DHCPv4 server (loader for arch 7: the GRUB image) and TFTP
// server (per-host files from DNS through the DNS policy on real BIND):
// the firmware must load the image, GRUB must fetch grub.cfg-01-<mac>
// exactly as the TFTP server names it, and then the kernel and initrd that
// file names, over HTTP from the mirror.
func TestGrubBootOVMF(t *testing.T) {
	if testing.Short() {
		t.Skip("boots firmware under QEMU for minutes")
	}
	requireGRUB(t)
	lab.RequireRoot(t, "ip", "named", "qemu-system-x86_64")
	for _, f := range []string{lab.OVMF, testKernel, "/dev/net/tun"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian packages ovmf, ipxe; the tun device)", f)
		}
	}
	ctx := t.Context()
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	dnsc, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
dns: {zone: ` + lab.TestZone + `}
boot: {url: "http://192.0.2.1"}
vlans:
  - {id: 135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, dns_servers: [192.0.2.1]}
serve: {interfaces: [br135], loaders: {7: mactel64.efi, 9: mactel64.efi}}
`))
	if err != nil {
		t.Fatal(err)
	}
	hosts := []struct{ name, ip string }{{"grub21", "192.0.2.21"}, {"grub22", "192.0.2.22"}}
	fwd := dnsupdate.ChangeSet{Zone: lab.TestZone}
	rev := dnsupdate.ChangeSet{Zone: lab.TestReverseZones()[0]}
	for _, h := range hosts {
		fqdn := h.name + "." + lab.TestZone
		last := h.ip[strings.LastIndexByte(h.ip, '.')+1:]
		fwd.Add = append(fwd.Add, mustRR(t, fqdn+" 300 IN A "+h.ip), mustRR(t, fqdn+` 300 IN TXT "distribution=core"`))
		rev.Add = append(rev.Add, mustRR(t, last+"."+rev.Zone+" 300 IN PTR "+fqdn))
	}
	for _, cs := range []dnsupdate.ChangeSet{fwd, rev} {
		if err := dnsc.Apply(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}

	seg := lab.SegmentForTest(t)
	logs := &logRecorder{t: t}
	log := slog.New(logs)
	policy := netboot.NewDNSPolicy(serveconfig.Policy(cfg, log), dnsc)
	dsrv, err := dhcp4.New(dhcp4.Config{DHCPConfig: serveconfig.DHCP(cfg, policy, log), ServerIPv4: cfg.Serve.ServerIPv4})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	tsrv, err := tftp.New(tftp.Config{Root: root, Policy: policy, Booter: serveconfig.Booter(cfg), Render: tftp.Templates(serveconfig.Booter(cfg)), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer tsrv.Close()
	kernel, err := os.ReadFile(testKernel)
	if err != nil {
		t.Fatal(err)
	}
	initrd := bytes.Repeat([]byte("vmprov initrd\n"), 1000)
	web := &requestLog{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /assets/centos/7/os/x86_64/images/pxeboot/{file}", func(w http.ResponseWriter, r *http.Request) {
		web.add(r)
		switch r.PathValue("file") {
		case "vmlinuz":
			http.ServeContent(w, r, "vmlinuz", time.Time{}, bytes.NewReader(kernel))
		case "initrd.img":
			http.ServeContent(w, r, "initrd.img", time.Time{}, bytes.NewReader(initrd))
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		web.add(r)
		http.NotFound(w, r)
	})
	var tconn *net.UDPConn
	var hln net.Listener
	if err := seg.Router.Do(func() error {
		var err error
		if tconn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 69}); err != nil {
			return err
		}
		hln, err = net.Listen("tcp", "192.0.2.1:80")
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
	logs.waitFor(t, 10*time.Second, "dhcp4 listening", "iface=br135")

	for i, tc := range []struct {
		name string
		opts Options
	}{
		{"firmware DHCP answer", Options{}},
		{"net_bootp and a fixed server as seed 001", Options{DHCP: true, Server: netip.MustParseAddr("192.0.2.1")}},
	} {
		h := hosts[i]
		t.Run(tc.name, func(t *testing.T) {
			// Each case builds its image over the loader's file; the
			// cases run one after the other.
			file := "mactel64.efi"
			tc.opts.Output = filepath.Join(root, file)
			res, err := Build(ctx, tc.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			mac, err := inventory.DefaultScheme().StrictMAC(135, netip.MustParseAddr(h.ip))
			if err != nil {
				t.Fatal(err)
			}
			serial := seg.OVMFForTest(t, mac, fmt.Sprintf("tapg%d", i), "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
			logs.waitFor(t, bootDeadline, "dhcp4 ACK", "mac="+mac.String(), "arch=7", "file="+file)
			logs.waitFor(t, bootDeadline, "tftp transfer", "ip="+h.ip, "file="+file, fmt.Sprintf("bytes=%d", res.Size))
			// GRUB names the file with $net_default_mac: lowercase hex
			// and colons, which netboot/tftp generates for this host only.
			logs.waitFor(t, bootDeadline, "tftp transfer", "ip="+h.ip, "file=/boot/grub/x86_64-efi/grub.cfg-01-"+mac.String()+" ")
			web.waitFor(t, bootDeadline, h.ip+" GET /assets/centos/7/os/x86_64/images/pxeboot/vmlinuz")
			web.waitFor(t, bootDeadline, h.ip+" GET /assets/centos/7/os/x86_64/images/pxeboot/initrd.img")
			out, _ := os.ReadFile(serial)
			if !bytes.Contains(out, []byte("vmprov: GRUB x86_64-efi on "+mac.String())) {
				t.Errorf("serial console lacks the image's greeting for %s:\n%s", mac, out)
			}
		})
	}
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("record %q: %v", s, err)
	}
	return rr
}

// logRecorder is a slog.Handler keeping every line as "LEVEL msg k=v...".
type logRecorder struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
	root  *logRecorder
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	root := r.root
	if root == nil {
		root = r
	}
	return &logRecorder{t: r.t, root: root, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	root := r.root
	if root == nil {
		root = r
	}
	root.mu.Lock()
	root.lines = append(root.lines, b.String())
	root.mu.Unlock()
	r.t.Log(b.String())
	return nil
}

// waitFor returns the first line holding every part, waiting up to d.
func (r *logRecorder) waitFor(t testing.TB, d time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r.mu.Lock()
		for _, l := range r.lines {
			ok := true
			for _, p := range parts {
				if !strings.Contains(l, p) {
					ok = false
					break
				}
			}
			if ok {
				r.mu.Unlock()
				return l
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v", parts, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requestLog records HTTP requests as "IP METHOD PATH".
type requestLog struct {
	t    testing.TB // logs each request when set
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if l.t != nil {
		l.t.Logf("http %s %s %s range=%q", r.RemoteAddr, r.Method, r.URL.Path, r.Header.Get("Range"))
	}
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
