package docs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/vmprov/vmprov/config"
	"github.com/vmprov/vmprov/test/lab"
)

// TestProvision runs test/provision.sh, the Vagrantfile's provisioning,
// installing below a temporary root and bringing the lab up in a namespace
// of its own (without libvirtd: only one may run on a machine). It then
// starts the installed `vmprov serve` with the installed configuration in
// that namespace, as the unit and its drop-in would, registers a host with
// the installed CLI and checks that a DHCPv4 client with the host's MAC gets
// the host's address from it.
func TestProvision(t *testing.T) {
	lab.RequireRoot(t, "ip", "named", "radvd", "make", "go", "bash")
	root := repoRoot(t)
	tmp := t.TempDir()
	inst := filepath.Join(tmp, "root")
	labDir := filepath.Join(tmp, "lab")
	netns := fmt.Sprintf("vmprovt-%08x", rand.Uint32())
	t.Cleanup(func() {
		if err := lab.Down(labDir); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "test", "provision.sh"), root)
	cmd.Env = append(os.Environ(),
		"VMPROV_ROOT="+inst, "VMPROV_LAB_DIR="+labDir, "VMPROV_LAB_NETNS="+netns,
		"VMPROV_LAB_FLAGS=--no-libvirt")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test/provision.sh: %v\n%s", err, out)
	}
	t.Logf("test/provision.sh:\n%s", out)

	bin := filepath.Join(inst, "usr", "local", "bin", "vmprov")
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("vmprov not installed as an executable: %v", err)
	}
	shipped, err := os.ReadFile(filepath.Join(root, unitPath))
	if err != nil {
		t.Fatal(err)
	}
	installed, err := os.ReadFile(filepath.Join(inst, "etc", "systemd", "system", "vmprov-serve.service"))
	if err != nil || !bytes.Equal(shipped, installed) {
		t.Errorf("the installed unit is not %s: %v", unitPath, err)
	}
	dropIn, err := os.ReadFile(filepath.Join(inst, "etc", "systemd", "system", "vmprov-serve.service.d", "lab.conf"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(dropIn))
	if err != nil {
		t.Fatalf("drop-in: %v", err)
	}
	if got, want := u.last("Service", "NetworkNamespacePath"), "/run/netns/"+netns; got != want {
		t.Errorf("drop-in NetworkNamespacePath=%s, want %s", got, want)
	}
	cfgPath := filepath.Join(inst, "etc", "vmprov", "vmprov.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("installed configuration: %v", err)
	}
	if b, err := os.ReadFile(cfgPath); err == nil {
		t.Logf("%s:\n%s", cfgPath, b)
	}
	if fi, err := os.Stat(cfg.DNS.TSIG.SecretFile); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("TSIG secret %s: %v, want mode 0640", cfg.DNS.TSIG.SecretFile, err)
	}
	if _, err := cfg.DNS.TSIG.LoadSecret(); err != nil {
		t.Error(err)
	}
	st, err := lab.ReadState(labDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Netns != netns {
		t.Fatalf("the lab is in namespace %q, want %q", st.Netns, netns)
	}
	if len(cfg.VLANs) == 0 || len(cfg.Serve.Interfaces) == 0 || cfg.Serve.Interfaces[0] != st.Bridge {
		t.Fatalf("the configuration does not serve the lab's bridge %s: %+v", st.Bridge, cfg.Serve)
	}
	ns := &lab.Namespace{Name: netns}

	// What systemd would run: ExecStart inside the drop-in's namespace.
	exe := strings.Fields(readUnit(t).last("Service", "ExecStart"))
	args := append([]string{"netns", "exec", netns, bin}, exe[1:]...)
	args[len(args)-1] = cfgPath // --config /etc/vmprov/vmprov.yaml below the temporary root
	serve := exec.Command("ip", args...)
	var serveLog bytes.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: serve, log: &serveLog, done: make(chan error, 1)}
	go func() { p.done <- serve.Wait() }()
	t.Cleanup(func() {
		if serve.ProcessState == nil {
			_ = serve.Process.Kill()
			<-p.done
		}
	})
	gw := cfg.VLANs[0].Gateway
	if err := p.waitHealthy(ctx, ns, netip.AddrPortFrom(gw, 80)); err != nil {
		t.Fatalf("%v\n%s", err, serveLog.String())
	}

	vmprov := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netns, bin, "--config", cfgPath}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vmprov %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	hostIP := gw.Next().Next().Next().Next() // .5 in the lab's /24
	mac := net.HardwareAddr{0x00, 0x25, 0x90, 0x96, 0xc4, 0x9a}
	vmprov("host", "add", "--name", "sm1", "--mac", mac.String(), "--ip", hostIP.String(), "--distro", "core")
	if out := vmprov("host", "list"); !strings.Contains(out, "sm1") || !strings.Contains(out, hostIP.String()) {
		t.Errorf("host list after host add:\n%s", out)
	}

	client := lab.NamespaceForTest(t)
	if err := lab.AddVeth(ctx,
		lab.VethEnd{Netns: netns, Name: "vp1", Master: st.Bridge},
		lab.VethEnd{Netns: client.Name, Name: "eth0", MAC: mac}); err != nil {
		t.Fatal(err)
	}
	var lease *nclient4.Lease
	err = client.Do(func() error {
		c, err := nclient4.New("eth0", nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(5))
		if err != nil {
			return err
		}
		defer c.Close()
		lease, err = c.Request(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("DHCPv4 from the installed vmprov serve: %v\n%s", err, serveLog.String())
	}
	if got := lease.ACK.YourIPAddr.String(); got != hostIP.String() || lease.ACK.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("DHCPv4 %s gave %s, want %s", lease.ACK.MessageType(), got, hostIP)
	}
	vmprov("host", "remove", "sm1")
	if err := p.stop(); err != nil {
		t.Errorf("vmprov serve on SIGTERM: %v\n%s", err, serveLog.String())
	}
}
