package lab_test

import (
	"github.com/google/go-cmp/cmp"
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
	startGuest(t, ns, lv, "vmprov-lab-test")
	dumped, err := lv.Virsh(t.Context(), "dumpxml", "vmprov-lab-test")
	if err != nil {
		t.Fatal(err)
	}
	// The domain XML needs neither <emulator> nor a machine type.
	for _, want := range []string{"<emulator>/usr/bin/qemu-system-x86_64</emulator>", "machine='pc-i440fx-"} {
		if !strings.Contains(dumped, want) {
			t.Errorf("expanded domain XML lacks %q:\n%s", want, dumped)
		}
	}
	stopGuest(t, ns, lv, "vmprov-lab-test")
}

// Two lab libvirtds share nothing: each sees only its own guests, even with
// the same name, and the system's /etc/libvirt is untouched.
func TestLibvirtInstancesAreIsolated(t *testing.T) {
	lab.RequireRoot(t, "ip", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
	var nss []*lab.Namespace
	var lvs []*lab.Libvirt
	for range 2 {
		ns := lab.NamespaceForTest(t)
		if err := ns.AddBridge(t.Context(), lab.Bridge{Name: "br135"}); err != nil {
			t.Fatal(err)
		}
		nss, lvs = append(nss, ns), append(lvs, lab.LibvirtForTest(t, ns.Name))
	}
	for i := range lvs {
		startGuest(t, nss[i], lvs[i], "vmprov-twin")
	}
	for i, lv := range lvs {
		out, err := lv.Virsh(t.Context(), "list", "--all", "--name")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"vmprov-twin"}, strings.Fields(out)); diff != "" {
			t.Errorf("libvirtd %d domains (-want +got):\n%s", i, diff)
		}
	}
	if _, err := os.Stat("/etc/libvirt/qemu/vmprov-twin.xml"); err == nil {
		t.Error("the guest definition leaked into the system's /etc/libvirt/qemu")
	}
	// Stop leaves the second guest running until LibvirtForTest's cleanup
	// destroys it.
	stopGuest(t, nss[0], lvs[0], "vmprov-twin")
}

// startGuest defines and starts a disk-less TCG guest on br135 and checks
// that its tap joined the bridge inside ns.
func startGuest(t *testing.T, ns *lab.Namespace, lv *lab.Libvirt, name string) {
	t.Helper()
	f := guestXML(t, name, "02:04:06:08:70:0b")
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
}

// guestXML writes the domain XML of a disk-less TCG guest on br135 that
// boots from the network, and returns its file.
func guestXML(t *testing.T, name, mac string) string {
	t.Helper()
	xml := `<domain type='qemu'>
  <name>` + name + `</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='bridge'>
      <source bridge='br135'/>
      <mac address='` + mac + `'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// stopGuest destroys and undefines name and checks that its tap is gone.
func stopGuest(t *testing.T, ns *lab.Namespace, lv *lab.Libvirt, name string) {
	t.Helper()
	if _, err := lv.Virsh(t.Context(), "destroy", name); err != nil {
		t.Error(err)
	}
	if _, err := lv.Virsh(t.Context(), "undefine", name); err != nil {
		t.Error(err)
	}
	var ports string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ports, _ = ns.IP(t.Context(), "-o", "link", "show", "master", "br135"); !strings.Contains(ports, "vnet") {
			return
		}
	}
	t.Errorf("tap still on br135 after destroy: %q", ports)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
