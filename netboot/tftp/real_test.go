package tftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/serveconfig"
	"github.com/vmprov/vmprov/test/lab"
)

// TestRealDNS serves TFTP on the bridge of a lab segment that three client
// namespaces join, and identifies the requesters through vmprov's
// DNS policy reading real BIND: each host gets its own grub.cfg and
// pxelinux.cfg, rendered by package templates, and not another's; the
// bare-metal one asks by the MAC of its _mac CNAME.
func TestRealDNS(t *testing.T) {
	lab.RequireRoot(t, "ip", "named")
	ctx := t.Context()
	bind := lab.BINDForTest(t)
	name, alg, secret := bind.TSIG()
	dnsc, err := dnsupdate.New(dnsupdate.Config{Server: bind.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	var add []dns.RR
	for _, s := range []string{
		"web10.example.com. 300 IN A 192.0.2.10",
		`web10.example.com. 300 IN TXT "filename=test.ipxe" "distribution=core"`,
		"web11.example.com. 300 IN A 192.0.2.11",
		`web11.example.com. 300 IN TXT "distribution=bookworm"`,
		// bare metal: its MAC is its _mac CNAME, not derived from 192.0.2.12.
		"web12.example.com. 300 IN A 192.0.2.12",
		`web12.example.com. 300 IN TXT "distribution=rocky9"`,
		"00-25-90-96-c4-9a._mac.example.com. 300 IN CNAME web12.example.com.",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		add = append(add, rr)
	}
	if err := dnsc.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestZone, Add: add}); err != nil {
		t.Fatal(err)
	}
	var ptrs []dns.RR
	for _, s := range []string{"10.2.0.192.in-addr.arpa. 300 IN PTR web10.example.com.", "11.2.0.192.in-addr.arpa. 300 IN PTR web11.example.com.", "12.2.0.192.in-addr.arpa. 300 IN PTR web12.example.com."} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		ptrs = append(ptrs, rr)
	}
	if err := dnsc.Apply(ctx, dnsupdate.ChangeSet{Zone: lab.TestReverseZones()[0], Add: ptrs}); err != nil {
		t.Fatal(err)
	}

	seg := lab.SegmentForTest(t) // br135, 192.0.2.1/24, in seg.Router
	srvNS := seg.Router
	clients := map[string]*lab.Namespace{}
	for _, ip := range []string{"192.0.2.10", "192.0.2.11", "192.0.2.12"} {
		clients[ip] = seg.ClientForTest(t, nil, netip.MustParsePrefix(ip+"/24"))
	}

	root, _ := testRoot(t)
	s, err := New(Config{Root: root, Policy: netboot.NewDNSPolicy(serveconfig.Policy(cfg, nil), dnsc), Booter: serveconfig.Booter(cfg), Render: Templates(serveconfig.Booter(cfg)), Timeout: time.Second, Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- srvNS.Do(func() error {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 69})
			if err != nil {
				return err
			}
			close(ready)
			return s.ServeConn(sctx, conn)
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeConn: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("ServeConn did not return within 30 s of its context ending")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ServeConn: %v", err)
	}

	// fetch downloads name from inside the client namespace of ip.
	fetch := func(t *testing.T, ip, name string) ([]byte, error) {
		var body []byte
		var ferr error
		if err := clients[ip].Do(func() error {
			body, _, ferr = get(t, "192.0.2.1:69", name, 1428)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return body, ferr
	}
	strict := func(ip string) string {
		mac, err := inventory.DefaultScheme().StrictMAC(135, netip.MustParseAddr(ip))
		if err != nil {
			t.Fatal(err)
		}
		return inventory.HexHyp(mac)
	}
	mac10, mac11 := strict("192.0.2.10"), strict("192.0.2.11") // 02-04-06-08-72-0a, -0b
	tests := []struct {
		from, name, want, err string
	}{
		{"192.0.2.10", "/boot/grub/x86_64-efi/grub.cfg-01-" + mac10, "menuentry 'vmprov: install core on web10.example.com'", ""},
		{"192.0.2.10", "pxelinux.cfg/01-" + mac10, "# vmprov pxelinux.cfg for web10.example.com (02:04:06:08:72:0a)", ""},
		{"192.0.2.11", "grub.cfg-01-" + mac11, "menuentry 'vmprov: install bookworm on web11.example.com'", ""},
		{"192.0.2.11", "grub.cfg-01-" + mac10, "", "file not found"},
		{"192.0.2.10", "boot/grub/i386-pc/grub.cfg-01-" + mac11, "", "file not found"},
		{"192.0.2.10", "undionly.kpxe", "", ""},
		{"192.0.2.12", "grub.cfg-01-00-25-90-96-c4-9a", "# vmprov grub.cfg for web12.example.com (00:25:90:96:c4:9a)", ""},
		{"192.0.2.12", "pxelinux.cfg/01-00-25-90-96-c4-9a", "# vmprov pxelinux.cfg for web12.example.com (00:25:90:96:c4:9a)", ""},
		{"192.0.2.10", "grub.cfg-01-00-25-90-96-c4-9a", "", "file not found"},
		{"192.0.2.12", "grub.cfg-01-" + mac10, "", "file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.from+" "+tt.name, func(t *testing.T) {
			body, err := fetch(t, tt.from, tt.name)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %d bytes, %v; want error %q", len(body), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(body, []byte(tt.want)) {
				t.Errorf("body does not contain %q:\n%s", tt.want, body)
			}
		})
	}
	waitStats(t, s, "5 generated files, 4 refused per-host files", func(st Stats) bool { return st.Generated == 5 && st.NotFound == 4 })
}

// TestAtftpWindowsize downloads with Debian's atftp, which asks for
// windowsize (RFC 7440) when told to: the OACK grants it, atftp
// acknowledges once a window instead of once a block, and the file
// arrives whole, a file of more than 65535 blocks too (block numbers
// wrap). Without the option atftp gets lockstep, one ACK a block.
func TestAtftpWindowsize(t *testing.T) {
	if _, err := exec.LookPath("atftp"); err != nil {
		t.Skip("needs atftp (Debian package atftp)")
	}
	root, files := testRoot(t)
	big := make([]byte, 65600*512-100) // 65600 blocks of 512 bytes
	for i := range big {
		big[i] = byte(i*7 + i/512)
	}
	if err := os.WriteFile(filepath.Join(root, "big.img"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	files["big.img"] = big
	_, addr := startServer(t, Config{Root: root})
	host, port, _ := net.SplitHostPort(addr)
	atftp := func(t *testing.T, name string, opts ...string) (log string, acks int) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "got")
		args := []string{"--trace"}
		for _, o := range opts {
			args = append(args, "--option", o)
		}
		args = append(args, "-g", "-r", name, "-l", out, host, port)
		ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
		defer cancel()
		b, err := exec.CommandContext(ctx, "atftp", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("atftp %s: %v\n%.2000s", strings.Join(args, " "), err, b)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(files[name]) {
			t.Errorf("atftp got %d bytes with another sha256 than the %d-byte %s", len(got), len(files[name]), name)
		}
		return string(b), strings.Count(string(b), "sent ACK <block:")
	}
	loader := len(files["ipxe.efi"])
	blocks := loader/1428 + 1

	t.Run("windowsize 16", func(t *testing.T) {
		log, acks := atftp(t, "ipxe.efi", "blksize 1428", "windowsize 16", "tsize 0")
		if w := fmt.Sprintf("received OACK <tsize: %d, windowsize: 16, blksize: 1428", loader); !strings.Contains(log, w) {
			t.Errorf("atftp --trace has no %q:\n%.1000s", w, log)
		}
		// One ACK for the OACK and one a window of 16, a few more if a
		// block was lost on the way.
		if acks < 1+blocks/16 || acks > blocks/4 {
			t.Errorf("atftp sent %d ACKs for %d blocks in windows of 16, want about %d", acks, blocks, 1+(blocks+15)/16)
		}
	})
	t.Run("windowsize 100 capped at 64", func(t *testing.T) {
		log, _ := atftp(t, "ipxe.efi", "blksize 1428", "windowsize 100")
		if !strings.Contains(log, "received OACK <windowsize: 64, blksize: 1428") {
			t.Errorf("atftp --trace has no OACK of windowsize 64:\n%.1000s", log)
		}
	})
	t.Run("lockstep without windowsize", func(t *testing.T) {
		log, acks := atftp(t, "ipxe.efi", "blksize 1428")
		// atftp writes "received OACK <blksize: 1428, \b\b>".
		if !strings.Contains(log, "received OACK <blksize: 1428, \b\b>") {
			t.Errorf("atftp --trace has no OACK of blksize alone:\n%.1000s", log)
		}
		if acks != 1+blocks {
			t.Errorf("atftp sent %d ACKs for %d blocks, want one for the OACK and one a block", acks, blocks)
		}
	})
	t.Run("more than 65535 blocks", func(t *testing.T) {
		atftp(t, "big.img", "blksize 512", "windowsize 16")
	})
}
