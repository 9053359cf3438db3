package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmprov/vmprov/orchestrator/virt/libvirtconn"
	"github.com/vmprov/vmprov/test/lab"
)

// vmprov runs the command line in-process and returns exit code and output.
func vmprov(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// labConfig writes a config for a real BIND and the libvirt test driver.
func labConfig(t *testing.T) string {
	t.Helper()
	cfg, _ := labConfigBIND(t)
	return cfg
}

// labConfigBIND is labConfig that also returns the BIND it configures.
func labConfigBIND(t *testing.T) (string, *lab.BIND) {
	t.Helper()
	b := lab.BINDForTest(t)
	return labConfigFor(t, b), b
}

func TestCLIWorkflow(t *testing.T) {
	cfg := labConfig(t)
	// The test driver keeps its state while a connection of the process is
	// open; each command opens and closes its own.
	keep, err := libvirtconn.Open("test:///default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Close() })

	code, out, errs := vmprov(t, "--config", cfg, "create", "--name", "cli1", "--ip", "192.0.2.172", "--distro", "core", "--script", "test.ipxe", "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errs)
	}
	var plan map[string]any
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("dry run output is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"name", "fqdn", "vlan", "mac", "ipv4", "ipv6", "records", "domain_xml"} {
		if _, ok := plan[k]; !ok {
			t.Errorf("dry run JSON lacks %q", k)
		}
	}
	if plan["mac"] != "02:04:06:08:72:ac" || plan["vlan"] != float64(135) || plan["fqdn"] != "cli1.example.com." {
		t.Errorf("plan = %v", plan)
	}
	if x, _ := plan["domain_xml"].(string); !strings.Contains(x, "<bios useserial=\"yes\">") || strings.Contains(x, "firmware=") {
		t.Errorf("default firmware is not SeaBIOS:\n%s", x)
	}
	// --firmware efi: OVMF, chosen by libvirt.
	code, out, errs = vmprov(t, "--config", cfg, "create", "--name", "cli1", "--ip", "192.0.2.172", "--distro", "core", "--firmware", "efi", "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run --firmware efi: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, `\u003cos firmware=\"efi\"\u003e`) {
		t.Errorf("--firmware efi: domain XML has no <os firmware=\"efi\">:\n%s", out)
	}
	// --netboot http: OVMF with its PXE boot options off (EDK2's fw_cfg
	// switches), so that it takes UEFI HTTP boot; an IPv6-only VM with
	// OVMF: IPv4 PXE off.
	for _, tt := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"--ip", "192.0.2.172", "--netboot", "http"}, []string{fwcfgEntry("IPv4PXESupport"), fwcfgEntry("IPv6PXESupport")}, nil},
		{[]string{"--vlan", "135"}, []string{fwcfgEntry("IPv4PXESupport")}, []string{"IPv6PXESupport"}},
		{[]string{"--ip", "192.0.2.172"}, nil, []string{"<sysinfo"}},
	} {
		args := append([]string{"--config", cfg, "create", "--name", "cli1", "--distro", "core", "--firmware", "efi", "--dry-run", "-o", "json"}, tt.args...)
		code, out, errs := vmprov(t, args...)
		if code != 0 {
			t.Fatalf("dry run %s: exit %d: %s", tt.args, code, errs)
		}
		var p struct {
			DomainXML string `json:"domain_xml"`
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(p.DomainXML, w) {
				t.Errorf("--firmware efi %s: domain XML lacks %s:\n%s", tt.args, w, p.DomainXML)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(p.DomainXML, w) {
				t.Errorf("--firmware efi %s: domain XML has %s:\n%s", tt.args, w, p.DomainXML)
			}
		}
	}
	// Nothing changed: show finds nothing.
	if code, _, errs := vmprov(t, "--config", cfg, "show", "cli1"); code == 0 || !strings.Contains(errs, "no such host") {
		t.Errorf("show after dry run: exit %d, %s", code, errs)
	}

	if code, out, errs := vmprov(t, "--config", cfg, "create", "--name", "cli1", "--ip", "192.0.2.172", "--distro", "core"); code != 0 {
		t.Fatalf("create: exit %d: %s%s", code, out, errs)
	}
	code, out, errs = vmprov(t, "--config", cfg, "list", "-o", "json")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list output is not a JSON array: %v\n%s", err, out)
	}
	found := false
	for _, h := range list {
		if h["name"] == "cli1" {
			found = true
			if h["ipv4"] != "192.0.2.172" || h["mac"] != "02:04:06:08:72:ac" {
				t.Errorf("list entry = %v", h)
			}
		}
	}
	if !found {
		t.Errorf("list lacks cli1: %s", out)
	}
	if code, out, _ := vmprov(t, "--config", cfg, "show", "cli1"); code != 0 || !strings.Contains(out, "192.0.2.172") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	if code, _, errs := vmprov(t, "--config", cfg, "create", "--name", "cli1", "--ip", "192.0.2.173", "--distro", "core"); code == 0 || !strings.Contains(errs, "cli1") {
		t.Errorf("second create: exit %d, %s", code, errs)
	}
	if code, _, errs := vmprov(t, "--config", cfg, "destroy", "cli1"); code != 0 {
		t.Fatalf("destroy: exit %d: %s", code, errs)
	}
	if code, _, _ := vmprov(t, "--config", cfg, "show", "cli1"); code == 0 {
		t.Error("show after destroy succeeded")
	}
}

func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n"), 0o600)
	os.WriteFile(good, []byte("dns: {zone: example.com., server: '127.0.0.1:9', tsig: {secret_file: "+secret+"}}\nvlans: [{id: 135, ipv4: 192.0.2.0/24}]\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("dns: {zone: example.com., ttl: 5, zonee: x}\n"), 0o600)
	wide := filepath.Join(dir, "wide.yaml")
	os.WriteFile(wide, []byte("dns: {zone: example.com.}\nvlans: [{id: 135, ipv4: 10.0.0.0/16}]\n"), 0o600)
	nosecret := filepath.Join(dir, "nosecret.yaml")
	os.WriteFile(nosecret, []byte("dns: {zone: example.com., tsig: {secret_file: "+filepath.Join(dir, "missing")+"}}\nvlans: [{id: 135, ipv4: 192.0.2.0/24}]\n"), 0o600)

	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad name", []string{"--config", good, "create", "--name", "a_b", "--vlan", "135", "--distro", "core", "--dry-run"}, []string{"a_b", "RFC 1123"}},
		{"unknown vlan", []string{"--config", good, "create", "--name", "a", "--vlan", "7", "--distro", "core", "--dry-run"}, []string{"--vlan 7", "135"}},
		{"outside subnet", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "198.51.100.1", "--distro", "core", "--dry-run"}, []string{"198.51.100.1", "192.0.2.0/24"}},
		{"unknown distro", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "win95", "--dry-run"}, []string{"win95"}},
		{"bad ip", []string{"--config", good, "create", "--name", "a", "--ip", "300.1.1.1", "--distro", "core"}, []string{"300.1.1.1"}},
		{"bad firmware", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "core", "--firmware", "uefi", "--dry-run"}, []string{`--firmware "uefi"`, "efi (OVMF)"}},
		{"http boot with bios", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "core", "--firmware", "bios", "--netboot", "http", "--dry-run"}, []string{"--netboot http needs UEFI firmware", "--firmware efi"}},
		{"bad netboot", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "core", "--netboot", "tftp", "--dry-run"}, []string{`--netboot "tftp"`, "pxe", "http"}},
		{"bad txt", []string{"--config", good, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "core", "--txt", "novalue"}, []string{"novalue", "KEY=VALUE"}},
		{"unknown key", []string{"--config", typo, "list"}, []string{"zonee"}},
		{"wide subnet", []string{"--config", wide, "list"}, []string{"10.0.0.0/16", "/20"}},
		{"missing secret", []string{"--config", nosecret, "create", "--name", "a", "--vlan", "135", "--ip", "192.0.2.9", "--distro", "core"}, []string{"missing", "tsig-keygen"}},
		{"missing config", []string{"--config", filepath.Join(dir, "none.yaml"), "list"}, []string{"none.yaml", "does not exist"}},
		{"bad output", []string{"--config", good, "list", "-o", "yaml"}, []string{"yaml"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := vmprov(t, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
		})
	}
}

func TestCLIHosts(t *testing.T) {
	cfg := labConfig(t)
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := vmprov(t, append([]string{"--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("vmprov %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	run("host", "add", "--name", "sm1", "--mac", "00:25:90:96:C4:9A", "--ip", "192.0.2.55", "--ipv6", "2001:db8:135::55", "--distro", "core", "--script", "test.ipxe")
	out := run("host", "show", "sm1", "-o", "json")
	if !strings.Contains(out, `"192.0.2.55"`) || !strings.Contains(out, "distribution=core") {
		t.Errorf("host show: %s", out)
	}
	// The same MAC cannot be registered twice, under any name.
	if code, _, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "sm2", "--mac", "00:25:90:96:c4:9a", "--distro", "core"); code == 0 || !strings.Contains(errs, "00-25-90-96-c4-9a._mac") {
		t.Errorf("second add of the MAC: exit %d, %s", code, errs)
	}
	var hosts []map[string]any
	if err := json.Unmarshal([]byte(run("host", "list", "-o", "json")), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || hosts[0]["name"] != "sm1" || hosts[0]["mac"] != "00:25:90:96:c4:9a" {
		t.Errorf("host list = %v", hosts)
	}
	out = run("reinstall", "sm1", "--distro", "rocky9", "--txt", "puppet_environment=prod", "-o", "json")
	if !strings.Contains(out, "distribution=rocky9") || !strings.Contains(out, "filename=test.ipxe") || !strings.Contains(out, "puppet_environment=prod") {
		t.Errorf("reinstall: %s", out)
	}
	if code, _, errs := vmprov(t, "--config", cfg, "reinstall", "sm1", "--distro", "plan9"); code == 0 || !strings.Contains(errs, "plan9") {
		t.Errorf("reinstall with a bad distro: exit %d, %s", code, errs)
	}
	run("host", "remove", "sm1")
	if out := run("host", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("host list after remove = %s", out)
	}
	if code, _, _ := vmprov(t, "--config", cfg, "host", "show", "sm1"); code == 0 {
		t.Error("host show after remove succeeded")
	}
}

func TestCLIIPXE(t *testing.T) {
	code, _, errs := vmprov(t, "ipxe", "build", "--src", t.TempDir(), "--boot-url", "http://192.0.2.1")
	if code == 0 || !strings.Contains(errs, "not an iPXE source tree") {
		t.Errorf("ipxe build of an empty dir: exit %d, %s", code, errs)
	}
	if code, _, errs := vmprov(t, "ipxe", "install"); code == 0 || !strings.Contains(errs, "ROM") {
		t.Errorf("ipxe install without ROM: exit %d, %s", code, errs)
	}
}

// fwcfgEntry is the domain XML line that turns EDK2's switch name off.
func fwcfgEntry(name string) string {
	return `<entry name="opt/org.tianocore/` + name + `">n</entry>`
}
