package cli

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/inventory"
)

// TestCLIHostShowDestroy: host show prints what host add printed, the MAC
// and the _mac CNAME included; destroy of a bare-metal host removes all of
// it, so that its MAC can be registered again; and host add --ip works when
// the first VLAN of the configuration is IPv4-only.
func TestCLIHostShowDestroy(t *testing.T) {
	cfg, _ := labConfigBIND(t)
	// VLAN 140, IPv4-only, comes first.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v4first := strings.Replace(string(text), "vlans:\n", "vlans:\n  - {id: 140, bridge: br140, ipv4: 198.51.100.0/24}\n", 1)
	if err := os.WriteFile(cfg, []byte(v4first), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := vmprov(t, append([]string{"--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("vmprov %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	added := run("host", "add", "--name", "sm1", "--mac", "00:25:90:96:c4:9a", "--ip", "192.0.2.55", "--distro", "core", "--script", "test.ipxe")
	for _, want := range []string{"mac:    00:25:90:96:c4:9a\n", "00-25-90-96-c4-9a._mac.example.com.                CNAME sm1.example.com.\n"} {
		if !strings.Contains(added, want) {
			t.Errorf("host add printed no %q:\n%s", want, added)
		}
	}
	if diff := cmp.Diff(added, run("host", "show", "sm1")); diff != "" {
		t.Errorf("host show differs from host add (-add +show):\n%s", diff)
	}
	var shown struct {
		MAC     string             `json:"mac"`
		Records []inventory.Record `json:"records"`
	}
	if err := json.Unmarshal([]byte(run("host", "show", "sm1", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	cname := inventory.Record{Name: "00-25-90-96-c4-9a._mac.example.com.", Type: "CNAME", Data: "sm1.example.com."}
	if shown.MAC != "00:25:90:96:c4:9a" || !slices.Contains(shown.Records, cname) {
		t.Errorf("host show -o json = %+v, want the MAC and its CNAME", shown)
	}

	if out := run("destroy", "sm1"); out != "destroyed sm1\n" {
		t.Errorf("destroy printed %q", out)
	}
	if code, _, errs := vmprov(t, "--config", cfg, "host", "show", "sm1"); code != 1 || !strings.Contains(errs, "no such host") {
		t.Errorf("host show after destroy: exit %d, %s", code, errs)
	}
	if out := run("host", "list"); strings.Contains(out, "sm1") {
		t.Errorf("host list after destroy:\n%s", out)
	}
	// The MAC is free again.
	run("host", "add", "--name", "sm2", "--mac", "00:25:90:96:c4:9a", "--ip", "192.0.2.56", "--distro", "core")
	run("host", "remove", "sm2")
}
