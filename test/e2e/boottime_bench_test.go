package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// peerBootDeadline bounds one boot measured by BenchmarkBootTime, from
// domain start to the kernel request: SeaBIOS or OVMF, iPXE's DHCP (with a
// whole DHCPv4 timeout on the IPv6-only link) and the chain, under TCG on a
// shared machine.
const peerBootDeadline = 5 * time.Minute

// BenchmarkBootTime boots one VM with real firmware, side by side, through
// `vmprov serve` and through a seed-style peer on the same bridge, with the
// same addresses and the same scripts: dnsmasq with the VM's reservation
// (dhcp-host), its iPXE boot file (dhcp-boot, DHCPv6 bootfile-url) and, for
// UEFI PXE, snponly.efi over its TFTP; nginx serving the scripts vmprov serve
// rendered for the VM (/boot.ipxe, /pxedust, the bootstrap and install
// scripts, fetched from serve once from the VM's own address) and the same
// kernel and initrd. The peer is what seed 000 runs (ISC dhcpd and Apache)
// in its smallest form; like it, it sends iPXE no no-pxedhcp flag.
//
// Each sub-benchmark defines the VM with `vmprov create`, then starts the
// domain b.N times with vmprov serve answering and b.N times with the peer
// answering (serve stopped), and reports the mean seconds from domain
// start to the VM's kernel request of each, their ratio vmprov/peer, the
// seconds from the VM's first DHCP message to its /pxedust request under
// vmprov, and the 1-minute load average at the end. It never fails on a
// timing. The cases, in order: ipv4 (Debian's iPXE ROM, DHCPv4), ipv6only
// (Debian's iPXE ROM on the IPv6-only bridge: SLAAC and DHCPv6) and uefi
// (OVMF's PXE, snponly.efi over TFTP, then iPXE's DHCPv4).
//
//	go test -run '^$' -bench BootTime -benchtime 3x -timeout 60m ./test/e2e/
func BenchmarkBootTime(b *testing.B) {
	requireLab(b)
	for _, bin := range []string{"dnsmasq", "nginx"} {
		lab.RequireRoot(b, bin)
	}
	e := setupDemo(b, buildVmprov(b, b.TempDir()), lab.IPv6OnlyBridge())
	if e.BootURL6 == "" {
		b.Fatal("the demo scenario configured no boot.url_v6 for the IPv6-only bridge")
	}
	// vmprov serve starts again after each peer run. Its DHCPv6 server
	// takes its DUID from a bridge's MAC, and a bridge made by `ip link
	// add` has none (00:00:00:00:00:00) once its last VM has left it; a
	// host's network configuration gives bridges a fixed one, as here.
	for i, br := range []string{e.Lab.State.Bridge, lab.IPv6OnlyBridge().Name} {
		if _, err := e.Lab.Netns.IP(b.Context(), "link", "set", "dev", br, "address", fmt.Sprintf("02:00:00:00:01:%02x", i+1)); err != nil {
			b.Fatal(err)
		}
	}
	small := []string{"--distro", "core", "--memory", "256", "--vcpus", "1", "--disk-size", "1"}
	// A sub-benchmark runs more than once (b.N = 1, then the -benchtime
	// count); each run defines a VM of its own. ip is the IPv4 host part
	// of the first run's VM, 0 for none.
	cases := []struct {
		name string
		args []string
		ip   int
		uefi bool
	}{
		{"ipv4", []string{"--vlan", "135"}, 20, false},
		{"ipv6only", []string{"--vlan", "136"}, 0, false},
		{"uefi", []string{"--vlan", "135", "--firmware", "efi"}, 30, true},
	}
	uefiReady := false
	for _, c := range cases {
		runs := 0
		b.Run(c.name, func(b *testing.B) {
			if c.uefi && !uefiReady {
				prepareUEFI(b, e)
				uefiReady = true
			}
			runs++
			name := fmt.Sprintf("bt-%s-%d", c.name, runs)
			args := append(append([]string{}, c.args...), small...)
			if c.ip != 0 {
				args = append(args, "--ip", fmt.Sprintf("192.0.2.%d", c.ip+runs))
			}
			h, _, err := e.Create(b.Context(), name, args...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := e.Destroy(context.Background(), name); err != nil {
					b.Errorf("%v", err)
				}
			})
			// The measured boots start the domain; stop the one create
			// started.
			stopDomain(b, e, name)
			base := e.BootURL
			if !h.IPv4.IsValid() {
				base = e.BootURL6
			}
			www := captureScripts(b, e, h, base)

			var vm, peer, dhcp time.Duration
			for range b.N {
				d, pd := bootVmprov(b, e, h)
				vm, dhcp = vm+d, dhcp+pd
			}
			p := startPeer(b, e, h, www)
			for range b.N {
				peer += p.boot(b, e, h)
			}
			p.stop(b, e)

			n := float64(b.N)
			load := loadAverage()
			load1, _ := strconv.ParseFloat(strings.Fields(load)[0], 64)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(vm.Seconds()/n, "vmprov-s/boot")
			b.ReportMetric(peer.Seconds()/n, "peer-s/boot")
			b.ReportMetric(vm.Seconds()/peer.Seconds(), "vmprov/peer")
			b.ReportMetric(dhcp.Seconds()/n, "vmprov-dhcp-to-pxedust-s")
			b.ReportMetric(load1, "loadavg-1m")
			b.Logf("%s: domain start to kernel request: vmprov %.1fs, peer %.1fs, ratio vmprov/peer %.2f; vmprov DHCP to /pxedust %.1fs (mean of %d; load average %s)",
				c.name, vm.Seconds()/n, peer.Seconds()/n, vm.Seconds()/peer.Seconds(), dhcp.Seconds()/n, b.N, load)
		})
	}
}

// prepareUEFI gives vmprov serve what a UEFI PXE boot needs, as TestUEFI
// does, and the loader under serve.dir/tftp, where the peer's TFTP finds it
// too: snponly.efi (serve.loaders' default for architecture 7), a kernel
// UEFI iPXE can load, and no option ROM on the NIC so that OVMF's own PXE
// runs.
func prepareUEFI(b *testing.B, e *demo.Env) {
	b.Helper()
	for _, f := range []string{ovmfCode, snponlyEFI, "/usr/share/qemu/firmware/60-edk2-x86_64.json"} {
		if _, err := os.Stat(f); err != nil {
			b.Skipf("needs %s (Debian packages ovmf, ipxe)", f)
		}
	}
	loader, err := os.ReadFile(snponlyEFI)
	if err != nil {
		b.Fatal(err)
	}
	serveDir := filepath.Join(e.Dir, "serve")
	for name, data := range map[string][]byte{
		filepath.Join("tftp", "snponly.efi"):                         loader,
		filepath.FromSlash(strings.TrimPrefix(demo.KernelPath, "/")): haltEFI(),
	} {
		p := filepath.Join(serveDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	setLibvirtROM(b, e.Config, "none")
}

// stopDomain powers the domain off (virsh destroy) and waits until libvirt
// reports it shut off.
func stopDomain(b *testing.B, e *demo.Env, name string) {
	b.Helper()
	if _, err := e.Lab.Libvirt.Virsh(b.Context(), "destroy", name); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := e.Lab.Libvirt.Virsh(b.Context(), "domstate", name)
		if err == nil && strings.TrimSpace(out) == "shut off" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("domain %s not shut off 30s after virsh destroy: %q %v", name, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startDomain starts the domain and returns when it was asked to.
func startDomain(b *testing.B, e *demo.Env, name string) time.Time {
	b.Helper()
	start := time.Now()
	if _, err := e.Lab.Libvirt.Virsh(b.Context(), "start", name); err != nil {
		b.Fatal(err)
	}
	return start
}

// bootVmprov starts h's domain with vmprov serve answering and returns the
// time from domain start to its kernel request, and from its first DHCP
// message to its /pxedust request, as serve logged them.
func bootVmprov(b *testing.B, e *demo.Env, h demo.Host) (kernel, dhcpToPXEDust time.Duration) {
	b.Helper()
	start := startDomain(b, e, h.Name)
	tl, err := e.Follow(b.Context(), h, start, peerBootDeadline, func(tl demo.Timeline) bool { return tl.Has(demo.KernelPath) }, nil)
	stopDomain(b, e, h.Name)
	if err != nil {
		b.Fatalf("boot through vmprov serve: %v\n%v", err, tl.Events)
	}
	var firstDHCP, pxedust time.Duration = -1, -1
	for _, ev := range tl.Events {
		switch {
		case (ev.Kind == demo.DHCP4 || ev.Kind == demo.DHCP6) && firstDHCP < 0:
			firstDHCP = ev.At
		case ev.Kind == demo.HTTP && ev.Line.File == "/pxedust" && pxedust < 0:
			pxedust = ev.At
		case ev.Kind == demo.HTTP && ev.Line.File == demo.KernelPath:
			kernel = ev.At
		}
	}
	if firstDHCP < 0 || pxedust < 0 {
		b.Fatalf("boot through vmprov serve: no DHCP answer or no /pxedust logged:\n%v", tl.Events)
	}
	b.Logf("vmprov: first DHCP %.1fs, /pxedust %.1fs, kernel %.1fs after domain start", firstDHCP.Seconds(), pxedust.Seconds(), kernel.Seconds())
	return kernel, pxedust - firstDHCP
}

// captureScripts fetches what vmprov serve answers h's boot chain, from h's
// own address (added to the bridge for the moment, so that serve's
// forward-confirmed reverse DNS names h), into a web root for the peer,
// with the stand-in kernel and initrd and, for UEFI, snponly.efi.
func captureScripts(b *testing.B, e *demo.Env, h demo.Host, base string) string {
	b.Helper()
	www := filepath.Join(b.TempDir(), "www")
	src, dev := h.IPv4, e.Lab.State.Bridge
	if !src.IsValid() {
		src, dev = h.IPv6, lab.IPv6OnlyBridge().Name
	}
	bits := 32
	if src.Is6() {
		bits = 128
	}
	addr := fmt.Sprintf("%s/%d", src, bits)
	if _, err := e.Lab.Netns.IP(b.Context(), "addr", "add", addr, "dev", dev, "nodad"); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := e.Lab.Netns.IP(context.Background(), "addr", "del", addr, "dev", dev); err != nil {
			b.Errorf("remove %s from %s: %v", addr, dev, err)
		}
	}()
	for _, p := range []string{"/boot.ipxe", "/pxedust", "/bootstrap/" + demo.Site + "/default.ipxe", "/bootstrap/install/default.ipxe"} {
		out, err := e.Lab.Netns.Exec(b.Context(), "curl", "-sSf", "-g", "--interface", src.String(), base+p)
		if err != nil {
			b.Fatalf("fetch %s%s from %s: %v", base, p, src, err)
		}
		writeFile(b, filepath.Join(www, filepath.FromSlash(p)), []byte(out))
	}
	serveDir := filepath.Join(e.Dir, "serve")
	for _, p := range []string{demo.KernelPath, demo.InitrdPath} {
		data, err := os.ReadFile(filepath.Join(serveDir, filepath.FromSlash(p)))
		if err != nil {
			b.Fatal(err)
		}
		writeFile(b, filepath.Join(www, filepath.FromSlash(p)), data)
	}
	return www
}

func writeFile(b *testing.B, path string, data []byte) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

// peer is the seed-style boot service running in place of vmprov serve.
type peer struct {
	dnsmasq, nginx *lab.Daemon
	accessLog      string
}

// startPeer stops vmprov serve and starts dnsmasq and nginx on its
// addresses and ports: the VM's reservation and boot files, and www.
func startPeer(b *testing.B, e *demo.Env, h demo.Host, www string) *peer {
	b.Helper()
	if err := e.Serve.Stop(); err != nil {
		b.Fatalf("stop vmprov serve: %v", err)
	}
	dir := b.TempDir()
	br4, err := netip.ParsePrefix(e.Lab.State.IPv4)
	if err != nil {
		b.Fatal(err)
	}
	br6 := lab.IPv6OnlyBridge()
	zone := strings.TrimSuffix(e.Lab.State.Zone, ".")
	tftp := filepath.Join(filepath.Join(e.Dir, "serve"), "tftp")
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		b.Fatal(err)
	}
	conf := []string{
		"port=0", // no DNS: BIND answers on the bridge
		"interface=" + e.Lab.State.Bridge,
		"interface=" + br6.Name,
		"dhcp-leasefile=" + filepath.Join(dir, "leases"),
		"log-dhcp",
		"log-facility=" + filepath.Join(dir, "dnsmasq.log"),
		"user=root",
		fmt.Sprintf("dhcp-range=%s,static,%s", br4.Masked().Addr(), net.IP(net.CIDRMask(br4.Bits(), 32))),
		fmt.Sprintf("dhcp-range=%s,static,64", br6.IPv6.Masked().Addr()),
		fmt.Sprintf("dhcp-option=option:router,%s", br4.Addr()),
		fmt.Sprintf("dhcp-option=option:dns-server,%s", br4.Addr()),
		"dhcp-option=option:domain-name," + zone,
		"dhcp-userclass=set:ipxe,iPXE",
		"dhcp-match=set:efi64,option:client-arch,7",
		"dhcp-boot=tag:ipxe," + e.BootURL + "/boot.ipxe",
		fmt.Sprintf("dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,%s", br4.Addr()),
		"dhcp-option=tag:ipxe,option6:bootfile-url," + e.BootURL6 + "/boot.ipxe",
		"enable-tftp",
		"tftp-root=" + tftp,
	}
	if h.IPv4.IsValid() {
		conf = append(conf, fmt.Sprintf("dhcp-host=%s,%s,%s", h.MAC, h.IPv4, h.Name))
	}
	dnsmasqConf := filepath.Join(dir, "dnsmasq.conf")
	writeFile(b, dnsmasqConf, []byte(strings.Join(conf, "\n")+"\n"))

	p := &peer{accessLog: filepath.Join(dir, "access.log")}
	nginxConf := filepath.Join(dir, "nginx.conf")
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		b.Fatal(err)
	}
	temp := func(name string) string { return filepath.Join(dir, "tmp", name) }
	// Workers run as root: the web root is under the test's private
	// temporary directory.
	writeFile(b, nginxConf, []byte(fmt.Sprintf(`user root;
worker_processes 1;
pid %s;
error_log %s;
events { worker_connections 64; }
http {
	default_type text/plain;
	log_format timed '$msec $remote_addr "$request" $status';
	access_log %s timed;
	client_body_temp_path %s;
	proxy_temp_path %s;
	fastcgi_temp_path %s;
	uwsgi_temp_path %s;
	scgi_temp_path %s;
	server {
		listen %s:%d;
		listen [%s]:%d;
		root %s;
	}
}
`, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-error.log"), p.accessLog,
		temp("body"), temp("proxy"), temp("fastcgi"), temp("uwsgi"), temp("scgi"),
		br4.Addr(), demo.HTTPPort, br6.IPv6.Addr(), demo.HTTPPort, www)))

	p.dnsmasq, err = e.Lab.Start("peer-dnsmasq", filepath.Join(dir, "dnsmasq.out"), "dnsmasq", "--keep-in-foreground", "--conf-file="+dnsmasqConf)
	if err != nil {
		b.Fatal(err)
	}
	p.nginx, err = e.Lab.Start("peer-nginx", filepath.Join(dir, "nginx.out"), "nginx", "-c", nginxConf, "-g", "daemon off;")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if b.Failed() {
			for _, f := range []string{"dnsmasq.out", "dnsmasq.log", "nginx.out", "nginx-error.log", "access.log"} {
				b.Logf("--- %s ---\n%s", f, demo.Tail(filepath.Join(dir, f), 30))
			}
		}
		_ = p.dnsmasq.Stop()
		_ = p.nginx.Stop()
	})
	// Ready: nginx answers, and dnsmasq is still running after it did.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.Lab.Netns.Exec(b.Context(), "curl", "-sf", "-o", "/dev/null", e.BootURL+"/boot.ipxe")
		if err == nil {
			break
		}
		if done, why := p.nginx.Exited(); done || time.Now().After(deadline) {
			b.Fatalf("peer nginx did not answer within 30s: %v %s", err, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if done, why := p.dnsmasq.Exited(); done {
		b.Fatalf("peer dnsmasq: %s\n%s", why, demo.Tail(filepath.Join(dir, "dnsmasq.out"), 20))
	}
	return p
}

// boot starts h's domain with the peer answering and returns the time
// from domain start to the kernel request in nginx's access log.
func (p *peer) boot(b *testing.B, e *demo.Env, h demo.Host) time.Duration {
	b.Helper()
	start := startDomain(b, e, h.Name)
	defer stopDomain(b, e, h.Name)
	deadline := start.Add(peerBootDeadline)
	for {
		if at, ok := p.requested(b, h, demo.KernelPath, start); ok {
			d := at.Sub(start)
			b.Logf("peer: kernel %.1fs after domain start", d.Seconds())
			return d
		}
		for _, d := range []*lab.Daemon{p.dnsmasq, p.nginx} {
			if done, why := d.Exited(); done {
				b.Fatalf("peer: %s", why)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("boot through the peer: no kernel request from %v within %v", h.Addrs(), peerBootDeadline)
		}
		select {
		case <-b.Context().Done():
			b.Fatal(b.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// requested returns when nginx logged a GET of path from one of h's
// addresses at or after since.
func (p *peer) requested(b *testing.B, h demo.Host, path string, since time.Time) (time.Time, bool) {
	b.Helper()
	f, err := os.Open(p.accessLog)
	if os.IsNotExist(err) {
		return time.Time{}, false
	}
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// log_format timed: 1765126205.123 192.0.2.20 "GET /path HTTP/1.1" 200
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[2] != `"GET` || fields[3] != path {
			continue
		}
		sec, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		at := time.UnixMilli(int64(sec * 1000))
		from, err := netip.ParseAddr(fields[1])
		if err != nil || at.Before(since) {
			continue
		}
		for _, a := range h.Addrs() {
			if a == from.Unmap() {
				return at, true
			}
		}
	}
	return time.Time{}, false
}

// stop stops the peer and starts vmprov serve again, as demo.Setup did.
func (p *peer) stop(b *testing.B, e *demo.Env) {
	b.Helper()
	for _, d := range []*lab.Daemon{p.dnsmasq, p.nginx} {
		if err := d.Stop(); err != nil {
			b.Errorf("stop peer: %v", err)
		}
	}
	var err error
	e.Serve, err = e.Lab.Start("vmprov-serve", e.ServeLog, e.Bin, "serve", "--config", e.Config, "--log-json", "-v")
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := e.Lab.Netns.Exec(b.Context(), "curl", "-sf", "-o", "/dev/null", e.BootURL+"/healthz")
		if err == nil {
			return
		}
		if done, why := e.Serve.Exited(); done || time.Now().After(deadline) {
			b.Fatalf("vmprov serve after the peer: %v %s\n%s", err, why, demo.Tail(e.ServeLog, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
