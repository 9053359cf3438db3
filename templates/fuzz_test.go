package templates

import (
	"strings"
	"testing"
)

// FuzzVar checks the variable validators against what iPXE would do with the rendered
// /pxedust answer: whenever a name and value are accepted, the script has exactly one
// `set` line for them, that line splits into exactly three words, and it neither expands
// (${), chains (|| &&) nor comments (#).
func FuzzVar(f *testing.F) {
	for _, s := range [][2]string{
		{"distribution", "core"}, {"puppet_server", "puppet.example.com"},
		{"console", "console=ttyS0,115200"}, {"mirror", "http://[2001:db8::1]:8080/m"},
		{"extra", "quiet splash"}, {"x", "${ip}"}, {"x", "a||b"}, {"x", "a\nchain http://x/"},
		{"ip", "192.0.2.1"}, {"a-b", "c"}, {"x", "#"}, {"_", "%41"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		if ValidVarName(name) != nil || ValidVarValue(name, value) != nil {
			return
		}
		if name == "filename" {
			return // carried by the chain URL, not a set line
		}
		out, err := PXEDust(PXEDustInput{BootURL: "http://boot.example.com", Site: "s", Filename: "f.ipxe",
			Vars: []Var{{name, value}}})
		if err != nil {
			t.Fatalf("accepted %q=%q but PXEDust failed: %v", name, value, err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%q=%q: want 4 lines, got %q", name, value, lines)
		}
		words := strings.Fields(lines[2])
		if len(words) != 3 || words[0] != "set" || words[1] != name || words[2] != value {
			t.Fatalf("%q=%q: set line %q", name, value, lines[2])
		}
		for _, bad := range []string{"${", "||", "&&", "#", "\"", "'", "\\", ";"} {
			if strings.Contains(lines[2], bad) {
				t.Fatalf("%q=%q: set line contains %q", name, value, bad)
			}
		}
	})
}

// FuzzValidURL checks that every accepted base URL renders a boot script whose chain lines
// are single words after the fixed options.
func FuzzValidURL(f *testing.F) {
	for _, s := range []string{"http://boot.example.com", "https://[2001:db8::1]:8443/x", "http://a b", "ftp://x", "http://x/#", "http://x/${y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidURL(raw) != nil {
			return
		}
		out, err := BootScript(BootInput{BootURL: raw})
		if err != nil {
			t.Fatalf("accepted %q but BootScript failed: %v", raw, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "chain ") {
				continue
			}
			w := strings.Fields(l)
			if len(w) < 4 || !strings.HasPrefix(w[3], raw+"/") {
				t.Fatalf("%q: chain line %q", raw, l)
			}
		}
	})
}
