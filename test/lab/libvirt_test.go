package lab_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
)

func TestLibvirtGuestOnBridge(t *testing.T) {
	lab.RequireRoot(t, "ip", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	ns := lab.NamespaceForTest(t)
	if err := ns.AddBridge(t.Context(), lab.Bridge{Name: "br135", IPv4: netip.MustParsePrefix("192.0.2.1/24")}); err != nil {
		t.Fatal(err)
	}
	lv := lab.LibvirtForTest(t, ns.Name)

	out, err := lv.Virsh(t.Context(), "pool-info", lab.PoolName)
	if err != nil || !strings.Contains(out, "running") {
		t.Fatalf("pool %s not running: %q %v", lab.PoolName, out, err)
	}

	const name = "vmprov-lab-test"
	xml := `<domain type='qemu'>
  <name>` + name + `</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='bridge'>
      <source bridge='br135'/>
      <mac address='02:04:06:08:70:0b'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`
	f := filepath.Join(t.TempDir(), "domain.xml")
	if err := os.WriteFile(f, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.Virsh(t.Context(), "define", f); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.Virsh(t.Context(), "start", name); err != nil {
		t.Fatalf("%v\n%s", err, readFile(lv.DomainLog(name)))
	}
	ports, err := ns.IP(t.Context(), "-o", "link", "show", "master", "br135")
	if err != nil || !strings.Contains(ports, "vnet") || !strings.Contains(ports, "fe:04:06:08:70:0b") {
		t.Errorf("guest tap is not a port of br135: %q %v", ports, err)
	}
	dumped, err := lv.Virsh(t.Context(), "dumpxml", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("expanded domain XML:\n%s", dumped)
	if _, err := lv.Virsh(t.Context(), "destroy", name); err != nil {
		t.Error(err)
	}
	if _, err := lv.Virsh(t.Context(), "undefine", name); err != nil {
		t.Error(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ports, _ = ns.IP(t.Context(), "-o", "link", "show", "master", "br135"); !strings.Contains(ports, "vnet") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(ports, "vnet") {
		t.Errorf("tap still on br135 after destroy: %q", ports)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
