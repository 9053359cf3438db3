package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/test/lab"
)

// TestCLIRefusesWhatServeRefuses: create, host add and reinstall check the
// boot intent by the rules `vmprov serve` renders it with, so a value serve
// would answer with 404 fails the command, names the value and the rule, and
// leaves DNS as it was.
func TestCLIRefusesWhatServeRefuses(t *testing.T) {
	cfg, b := labConfigBIND(t)
	name, alg, secret := b.TSIG()
	client, err := dnsupdate.New(dnsupdate.Config{Server: b.Addr().String(), KeyName: name, Algorithm: alg, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	// zones returns every record of the forward and reverse zones; any
	// update changes at least the SOA serial.
	zones := func() []string {
		t.Helper()
		var out []string
		for _, z := range append([]string{lab.TestZone}, lab.TestReverseZones()...) {
			rrs, err := client.Transfer(t.Context(), z)
			if err != nil {
				t.Fatalf("transfer %s: %v", z, err)
			}
			for _, rr := range rrs {
				out = append(out, rr.String())
			}
		}
		slices.Sort(out)
		return out
	}
	// sm1 is there to be reinstalled.
	if code, _, errs := vmprov(t, "--config", cfg, "host", "add", "--name", "sm1", "--mac", "00:25:90:96:c4:9a", "--ip", "192.0.2.55", "--distro", "core", "--txt", "role=web"); code != 0 {
		t.Fatalf("host add sm1: exit %d: %s", code, errs)
	}
	before := zones()

	create := []string{"create", "--name", "vm1", "--vlan", "135", "--ip", "192.0.2.10", "--distro", "core"}
	hostAdd := []string{"host", "add", "--name", "sm2", "--mac", "00:25:90:96:c4:9b", "--ip", "192.0.2.56", "--distro", "core"}
	reinstall := []string{"reinstall", "sm1", "--distro", "rocky9"}
	nameRule := `name "puppet-env": character '-' at 6 (want [A-Za-z_][A-Za-z0-9_]*)`
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"create txt name", append(create, "--txt", "puppet-env=prod"), []string{"--txt puppet-env=prod: ", nameRule}},
		{"create txt value", append(create, "--txt", "role=a(b)"), []string{"--txt role=a(b): ", `role="a(b)": character '(' at 1 is not allowed`}},
		{"create txt iPXE setting", append(create, "--txt", "ip=192.0.2.9"), []string{"--txt ip=192.0.2.9: ", `name "ip" is an iPXE network setting`}},
		{"create txt twice", append(create, "--txt", "role=a", "--txt", "role=b"), []string{`name "role" set twice (role=a and role=b)`}},
		{"create txt filename", append(create, "--txt", "filename=x.ipxe"), []string{"--txt filename=x.ipxe: set filename with --script"}},
		{"create txt mirror", append(create, "--txt", "mirror=ftp://m.example.com"), []string{"--txt mirror=ftp://m.example.com: ", "scheme must be http or https"}},
		{"create script parent", append(create, "--script", "../x"), []string{"--script ../x: ", `".." would leave bootstrap/SITE/`}},
		{"create script absolute", append(create, "--script", "/etc/passwd"), []string{"--script /etc/passwd: ", "absolute path"}},
		{"create script hidden", append(create, "--script", ".x.ipxe"), []string{"--script .x.ipxe: ", "not starting with a dot"}},
		{"create script subdirectory", append(create, "--script", "sub/x.ipxe"), []string{"--script sub/x.ipxe: ", `script "sub/x.ipxe" is in a subdirectory`}},
		{"create txt arch arm64", append(create, "--txt", "arch=arm64"), []string{"--txt arch=arm64: ", `arch "arm64": use x86_64 or aarch64 (vmprov create --arch aarch64)`}},
		{"host add txt arch amd64", append(hostAdd, "--txt", "arch=amd64"), []string{"--txt arch=amd64: ", `arch "amd64": use x86_64 or aarch64`}},
		{"reinstall txt arch arm64", append(reinstall, "--txt", "arch=arm64"), []string{"--txt arch=arm64: ", `arch "arm64": use x86_64 or aarch64`}},
		{"host add txt name", append(hostAdd, "--txt", "puppet-env=prod"), []string{"--txt puppet-env=prod: ", nameRule}},
		{"host add txt value", append(hostAdd, "--txt", "role=a(b)"), []string{"--txt role=a(b): ", "'(' at 1"}},
		{"host add script parent", append(hostAdd, "--script", "../x"), []string{"--script ../x: ", `".."`}},
		{"reinstall txt name", append(reinstall, "--txt", "puppet-env=prod"), []string{"--txt puppet-env=prod: ", nameRule}},
		{"reinstall txt value", append(reinstall, "--txt", "role=a(b)"), []string{"--txt role=a(b): ", "'(' at 1"}},
		{"reinstall script parent", append(reinstall, "--script", "../x"), []string{"--script ../x: ", `".."`}},
		{"reinstall txt distribution", append(reinstall, "--txt", "distribution=noble"), []string{"--txt distribution=noble: set distribution with --distro"}},
		{"reinstall distro", []string{"reinstall", "sm1", "--distro", "plan9"}, []string{`unknown distribution "plan9"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := vmprov(t, append([]string{"--config", cfg}, tt.args...)...)
			if code != 1 { // a refused request; a malformed command line exits 2
				t.Errorf("exit %d, want 1\n%s%s", code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
			if diff := cmp.Diff(before, zones()); diff != "" {
				t.Errorf("DNS changed (-before +after):\n%s", diff)
			}
		})
	}
}
