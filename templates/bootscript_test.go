package templates

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ipxeRun runs an iPXE script the way iPXE's shell does, for the commands
// the boot script uses, and returns what the client does on the network:
// "ifconf dhcp", "ifconf ipv6", "chain URL" (with " -> 404" when the URL
// is not in found), and how the script ends ("boot URL", "exit 1",
// "failed: LINE"). The rules are iPXE's (core/exec.c, image/script.c):
// commands joined by && run when the one before succeeded, by || when it
// failed, a skipped command leaves the status as it was, an empty command
// succeeds, and a line that ends failed ends the script.
//
// settings holds the values ${name} and ${name:type} expand to; ifconf adds
// what a configuration sets when link offers it ("dhcp", "ipv6").
func ipxeRun(t *testing.T, script string, settings map[string]string, link map[string]bool, found map[string]bool) []string {
	t.Helper()
	lines := strings.Split(script, "\n")
	if lines[0] != "#!ipxe" {
		t.Fatalf("script starts with %q, not #!ipxe", lines[0])
	}
	labels := map[string]int{}
	for i, l := range lines {
		if name, ok := strings.CutPrefix(l, ":"); ok {
			labels[name] = i
		}
	}
	expand := regexp.MustCompile(`\$\{([^}:]+)(:[^}]*)?\}`)
	var trace []string
	for i := 1; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ":") {
			continue
		}
		rc, process, jump := 0, true, -1
		for cmd := range strings.SplitSeq(strings.NewReplacer("&&", "\x00&", "||", "\x00|").Replace(line), "\x00") {
			op := ""
			if cmd[0] == '&' || cmd[0] == '|' {
				op, cmd = cmd[:1], cmd[1:]
				process = (op == "&") == (rc == 0)
			}
			if !process {
				continue
			}
			args := strings.Fields(expand.ReplaceAllStringFunc(cmd, func(m string) string {
				return settings[expand.FindStringSubmatch(m)[1]]
			}))
			if len(args) == 0 { // an empty command succeeds
				rc = 0
				continue
			}
			rc = 0
			switch args[0] {
			case "echo":
			case "isset":
				if len(args) < 2 || args[1] == "" {
					rc = 1
				}
			case "goto":
				j, ok := labels[args[1]]
				if !ok {
					t.Fatalf("line %d: goto %s: no such label", i+1, args[1])
				}
				jump = j
			case "ifconf":
				if len(args) != 4 || args[1] != "--configurator" || args[3] != "net0" {
					t.Fatalf("line %d: ifconf %q: not the form the test knows", i+1, args[1:])
				}
				trace = append(trace, "ifconf "+args[2])
				if !link[args[2]] {
					rc = 1
					break
				}
				switch args[2] {
				case "dhcp":
					settings["net0/ip"] = "192.0.2.10"
				case "ipv6":
					settings["net0.ndp.0/ip6"] = "2001:db8:136::284a:6aff:fe74:5506"
				}
			case "chain":
				url := args[len(args)-1]
				if !found[url] {
					trace = append(trace, "chain "+url+" -> 404")
					rc = 1
					break
				}
				return append(trace, "boot "+url)
			case "exit":
				return append(trace, "exit "+strings.Join(args[1:], " "))
			default:
				t.Fatalf("line %d: command %s is not one the test knows", i+1, args[0])
			}
		}
		if rc != 0 {
			return append(trace, "failed: "+line)
		}
		if jump >= 0 {
			i = jump
		}
	}
	return append(trace, "end of script")
}

// TestBootScriptReusesConfiguration runs the boot script for each state
// its net0 can be in when it starts: configured already by the iPXE that
// fetched it as /boot.ipxe (from DHCPv4, from router adverts, from a
// DHCPv6 lease), or unconfigured in a ROM. A configured interface is used
// as it is, without another DHCPv4 exchange or timeout; an unconfigured one
// runs DHCPv4, then IPv6 (seed 000's order); no answer exits 1.
func TestBootScriptReusesConfiguration(t *testing.T) {
	const (
		boot  = "http://192.0.2.1:8080"
		boot6 = "http://[2001:db8:135::1]:8080"
	)
	script, err := BootScript(BootInput{BootURL: boot, BootURLv6: boot6})
	if err != nil {
		t.Fatal(err)
	}
	// iPXE always has a link-local IPv6 address (${net0/ip6}): it is no
	// configuration.
	base := map[string]string{"mac": "02:04:06:08:72:0a", "net0/mac": "02:04:06:08:72:0a", "net0/ip6": "fe80::4:6ff:fe08:720a"}
	found := map[string]bool{boot + "/pxedust": true, boot6 + "/pxedust": true}
	perMAC := "chain " + boot + "/mac/${mac:hexhyp}/ipxe -> 404"
	tests := []struct {
		name     string
		settings map[string]string
		link     map[string]bool
		found    map[string]bool
		want     []string
	}{
		{"/boot.ipxe after iPXE's DHCPv4", map[string]string{"net0/ip": "192.0.2.10"}, map[string]bool{"dhcp": true},
			found, []string{perMAC, "boot " + boot + "/pxedust"}},
		{"/boot.ipxe after DHCPv4 and router adverts", map[string]string{"net0/ip": "192.0.2.10", "net0.ndp.0/ip6": "2001:db8:135::4:6ff:fe08:720a"}, map[string]bool{"dhcp": true, "ipv6": true},
			found, []string{perMAC, "boot " + boot + "/pxedust"}},
		{"/boot.ipxe after router adverts (SLAAC) on an IPv6-only link", map[string]string{"net0.ndp.0/ip6": "2001:db8:136::284a:6aff:fe74:5506"}, map[string]bool{"ipv6": true},
			found, []string{"boot " + boot6 + "/pxedust"}},
		{"/boot.ipxe after a DHCPv6 lease", map[string]string{"net0.dhcpv6/ip6": "2001:db8:136::50"}, map[string]bool{"ipv6": true},
			found, []string{"boot " + boot6 + "/pxedust"}},
		{"ROM on an IPv4 link", nil, map[string]bool{"dhcp": true, "ipv6": true},
			found, []string{"ifconf dhcp", perMAC, "boot " + boot + "/pxedust"}},
		{"ROM on an IPv6-only link", nil, map[string]bool{"ipv6": true},
			found, []string{"ifconf dhcp", "ifconf ipv6", "boot " + boot6 + "/pxedust"}},
		{"ROM on a link without answers", nil, nil,
			found, []string{"ifconf dhcp", "ifconf ipv6", "exit 1"}},
		{"configured, but unknown to the boot service", map[string]string{"net0/ip": "192.0.2.10"}, map[string]bool{"dhcp": true},
			nil, []string{perMAC, "chain " + boot + "/pxedust -> 404", "exit 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			settings := map[string]string{}
			for _, m := range []map[string]string{base, tt.settings} {
				for k, v := range m {
					settings[k] = v
				}
			}
			got := ipxeRun(t, string(script), settings, tt.link, tt.found)
			// The per-MAC URL is kept unexpanded in the trace for
			// readability.
			for i, s := range got {
				got[i] = strings.Replace(s, "/mac/02:04:06:08:72:0a/", "/mac/${mac:hexhyp}/", 1)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("what the client does (-want +got):\n%s\nscript:\n%s", diff, script)
			}
		})
	}
}

// TestIPXERun checks the script runner against iPXE's shell rules it
// models, so that TestBootScriptReusesConfiguration cannot pass by the
// runner skipping commands.
func TestIPXERun(t *testing.T) {
	tests := []struct {
		script string
		want   []string
	}{
		{"#!ipxe\nifconf --configurator dhcp net0\nexit 0", []string{"ifconf dhcp", "failed: ifconf --configurator dhcp net0"}},
		{"#!ipxe\nifconf --configurator dhcp net0 ||\nexit 0", []string{"ifconf dhcp", "exit 0"}},
		{"#!ipxe\nisset ${x} && exit 2 ||\nexit 3", []string{"exit 3"}},
		{"#!ipxe\nisset ${y} && exit 2 ||\nexit 3", []string{"exit 2"}},
		{"#!ipxe\nisset ${y} || ifconf --configurator ipv6 net0 || exit 4\nexit 5", []string{"exit 5"}},
		{"#!ipxe\ngoto b\n:a\nexit 1\n:b\nexit 2", []string{"exit 2"}},
		{"#!ipxe\necho hi", []string{"end of script"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.script), func(t *testing.T) {
			got := ipxeRun(t, tt.script, map[string]string{"y": "1"}, nil, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
