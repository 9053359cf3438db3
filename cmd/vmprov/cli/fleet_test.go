package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// TestCLIFleetExitCodes: with a hypervisor of the fleet refusing
// connections (a loopback port nothing listens on), list, hypervisors and
// list --orphans show what the others hold, name it on stderr and exit 3;
// a create that no hypervisor can take because none answered exits 3 too;
// without hypervisors: a libvirt.uri that is down makes list exit 3 with
// nothing on stdout.
func TestCLIFleetExitCodes(t *testing.T) {
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })
	b := lab.BINDForTest(t)
	cfg := configFor(t, b, `boot: {url: "http://192.0.2.1"}
vlans:
  - {id: 135, bridge: br135, ipv4: 192.0.2.0/24, gateway: 192.0.2.1, ipv6: "2001:db8:135::/64"}
hypervisors:
  - {name: hv1, uri: "test:///default"}
  - {name: hv2, uri: "qemu+tcp://127.0.0.1:1/system"}
`)
	code, out, errs := vmprov(t, "--config", cfg, "list", "-o", "json")
	var listed []map[string]any
	if code != 3 || json.Unmarshal([]byte(out), &listed) != nil || !strings.Contains(errs, "hv2 (qemu+tcp://127.0.0.1:1/system)") {
		t.Errorf("list: exit %d, stdout %q, stderr %q; want exit 3, a JSON list, hv2 named", code, out, errs)
	}
	code, out, errs = vmprov(t, "--config", cfg, "hypervisors", "-o", "json")
	var hs []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error"`
	}
	if code != 3 || json.Unmarshal([]byte(out), &hs) != nil || len(hs) != 2 || !hs[0].Reachable || hs[1].Reachable || hs[1].Error == "" {
		t.Errorf("hypervisors: exit %d, %+v, stderr %q; want exit 3, hv1 reachable, hv2 not with its error", code, hs, errs)
	}
	code, out, _ = vmprov(t, "--config", cfg, "list", "--orphans")
	if code != 3 || !strings.Contains(out, "no orphans on the hypervisors that answered") {
		t.Errorf("list --orphans: exit %d, stdout %q", code, out)
	}
	code, _, errs = vmprov(t, "--config", cfg, "create", "--name", "x1", "--ip", "192.0.2.60", "--distro", "core", "--on", "hv2")
	if code != 3 || !strings.Contains(errs, "--on hv2 cannot take this VM: hv2: unreachable") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("create --on hv2: exit %d, stderr %q; want exit 3 and one line naming hv2", code, errs)
	}
	code, _, errs = vmprov(t, "--config", cfg, "create", "--name", "x1", "--ip", "192.0.2.60", "--distro", "core", "--on", "hv7")
	if code != 1 || !strings.Contains(errs, "--on hv7: no such hypervisor: use one of hv1, hv2") {
		t.Errorf("create --on hv7: exit %d, stderr %q", code, errs)
	}

	// A fleet of one that is down: nothing on stdout.
	code, out, errs = vmprov(t, "--config", cfg, "--connect", "qemu+tcp://127.0.0.1:1/system", "list", "-o", "json")
	if code != 3 || out != "" || !strings.Contains(errs, "qemu+tcp://127.0.0.1:1/system") {
		t.Errorf("list on a libvirt.uri that is down: exit %d, stdout %q, stderr %q; want exit 3 and no list", code, out, errs)
	}
}
