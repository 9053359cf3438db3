package templates

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestCheckIntent is the table of boot-intent rules: what `vmprov create --txt/--script`
// may write is exactly what `vmprov serve` renders.
func TestCheckIntent(t *testing.T) {
	core := Var{"distribution", "core"}
	for _, tt := range []struct {
		name   string
		intent []Var
		want   []string // nil: accepted; else the error mentions each
	}{
		// Accepted.
		{"seed 000", []Var{{"filename", "test.ipxe"}, core}, nil},
		{"no filename", []Var{core}, nil},
		{"empty intent", nil, nil},
		{"underscore name", []Var{core, {"puppet_environment", "prod"}}, nil},
		{"leading underscore", []Var{{"_x9", "1"}}, nil},
		{"value with URL characters", []Var{{"repo", "http://[2001:db8::1]:8080/m?a=b,c@d%20~e+f"}}, nil},
		{"mirror", []Var{{"mirror", "http://[2001:db8::1]:8080/m"}}, nil},
		{"script with dots and dashes", []Var{{"filename", "web-1.v2_test.ipxe"}}, nil},
		{"build state install", []Var{core, {"state", "install"}, {"build_id", "0123abcd"}}, nil},
		{"build state installing", []Var{core, {"state", "installing"}}, nil},
		{"build state installed", []Var{core, {"state", "installed"}}, nil},

		// Build state.
		{"unknown build state", []Var{core, {"state", "done"}}, []string{`state="done"`, "install, installing, installed"}},
		{"build state in capitals", []Var{core, {"state", "INSTALLED"}}, []string{`state="INSTALLED"`}},
		{"build id not hex", []Var{core, {"build_id", "xyz"}}, []string{`build_id="xyz"`, "hex"}},
		{"build id too long", []Var{core, {"build_id", strings.Repeat("a", 33)}}, []string{"1 to 32"}},
		{"firmware efi-secure", []Var{core, {"firmware", "efi-secure"}}, nil},
		{"firmware unknown", []Var{core, {"firmware", "secure"}}, []string{`firmware="secure"`, "bios, efi, efi-secure"}},
		{"hypervisor", []Var{core, {"hypervisor", "hv-2"}}, nil},
		{"hypervisor not a label", []Var{core, {"hypervisor", "hv_2"}}, []string{`hypervisor="hv_2" is not a hypervisor name`}},
		{"arch x86_64", []Var{core, {"arch", "x86_64"}}, nil},
		{"arch aarch64", []Var{core, {"arch", "aarch64"}}, nil},
		{"arch Debian's arm64", []Var{core, {"arch", "arm64"}}, []string{`arch "arm64": use x86_64 or aarch64 (vmprov create --arch aarch64)`}},
		{"arch Debian's amd64", []Var{core, {"arch", "amd64"}}, []string{`arch "amd64": use x86_64 or aarch64`}},
		{"arch empty", []Var{core, {"arch", ""}}, []string{`arch "": use x86_64 or aarch64`}},
		{"build state twice", []Var{core, {"state", "install"}, {"state", "installed"}}, []string{`"state" set twice`}},

		// Names.
		{"name with dash", []Var{{"puppet-env", "prod"}}, []string{`"puppet-env"`, `'-' at 6`, "[A-Za-z_][A-Za-z0-9_]*"}},
		{"name with digit first", []Var{{"9x", "1"}}, []string{`"9x"`, "[A-Za-z_]"}},
		{"name with dot", []Var{{"a.b", "1"}}, []string{`"a.b"`, `'.' at 1`}},
		{"empty name", []Var{{"", "1"}}, []string{"empty name"}},
		{"long name", []Var{{strings.Repeat("a", 65), "1"}}, []string{strings.Repeat("a", 65), "64 bytes"}},
		{"iPXE network setting", []Var{{"ip", "192.0.2.9"}}, []string{`"ip"`, "iPXE network setting"}},
		{"name set twice", []Var{core, {"x", "1"}, {"x", "2"}}, []string{`"x" set twice`, "x=1", "x=2"}},
		{"distribution set twice", []Var{core, {"distribution", "rocky9"}}, []string{`"distribution" set twice`, "distribution=rocky9"}},

		// Values.
		{"value with parenthesis", []Var{{"role", "a(b)"}}, []string{`role="a(b)"`, `'(' at 1`, "allowed:"}},
		{"value with space", []Var{{"extra", "quiet splash"}}, []string{`"quiet splash"`, "' '"}},
		{"value with expansion", []Var{{"x", "${ip}"}}, []string{`"${ip}"`, "'$'"}},
		{"value with chaining", []Var{{"x", "a||b"}}, []string{`"a||b"`, "'|'"}},
		{"value with comment", []Var{{"x", "a#b"}}, []string{`"a#b"`, "'#'"}},
		{"value with quote", []Var{{"x", `a"b`}}, []string{`a\"b`, `'"'`}},
		{"value with newline", []Var{{"x", "a\nchain http://evil/"}}, []string{`'\n'`}},
		{"empty value", []Var{{"x", ""}}, []string{"x: empty value"}},
		{"long value", []Var{{"x", strings.Repeat("v", 254)}}, []string{"x: value longer than 253 bytes"}},
		{"mirror not a URL", []Var{{"mirror", "0"}}, []string{`"0"`, "scheme must be http or https"}},
		{"mirror with slash", []Var{{"mirror", "http://m.example.com/"}}, []string{`"http://m.example.com/"`, "trailing slash"}},

		// Scripts.
		{"script parent", []Var{{"filename", "../x"}}, []string{`"../x"`, `".."`, "bootstrap/SITE/"}},
		{"script parent inside", []Var{{"filename", "a/../../x"}}, []string{`"a/../../x"`, `".."`}},
		{"script absolute", []Var{{"filename", "/etc/passwd"}}, []string{`"/etc/passwd"`, "absolute"}},
		{"script empty", []Var{{"filename", ""}}, []string{"script: empty name"}},
		{"script in a subdirectory", []Var{{"filename", "sub/x.ipxe"}}, []string{`"sub/x.ipxe"`, "subdirectory"}},
		{"script hidden", []Var{{"filename", ".x.ipxe"}}, []string{`".x.ipxe"`, "dot"}},
		{"script with space", []Var{{"filename", "a b"}}, []string{`"a b"`, "' '"}},
		{"script with percent", []Var{{"filename", "%2e%2e"}}, []string{`"%2e%2e"`, "'%'"}},
		{"script too long", []Var{{"filename", strings.Repeat("s", 129)}}, []string{strings.Repeat("s", 129), "1-128"}},

		// Distributions.
		{"unknown distribution", []Var{{"distribution", "plan9"}}, []string{`"plan9"`, "supported: core"}},
		{"distribution case", []Var{{"distribution", "Core"}}, []string{`"Core"`, "supported"}},
		{"empty distribution", []Var{{"distribution", ""}}, []string{`""`, "supported"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckIntent(tt.intent)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckIntent(%q) = %v, want accepted", tt.intent, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckIntent(%q) accepted", tt.intent)
			}
			if !errors.Is(err, ErrInvalidVar) {
				t.Errorf("error %q does not wrap ErrInvalidVar", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	for _, d := range Distributions() {
		if err := CheckIntent([]Var{{"distribution", d.Name}}); err != nil {
			t.Errorf("distribution %s refused: %v", d.Name, err)
		}
	}
	if err := CheckIntent([]Var{{"distribution", "plan9"}}); !errors.Is(err, ErrUnknownDistribution) {
		t.Errorf("unknown distribution: error %q does not wrap ErrUnknownDistribution", err)
	}
}

// TestCheckScript: CheckScript is CheckIntent's filename rule.
func TestCheckScript(t *testing.T) {
	for _, s := range []string{"test.ipxe", "default.ipxe", "a", "A-b_c.9"} {
		if err := CheckScript(s); err != nil {
			t.Errorf("CheckScript(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "..", "../x", "/x", "x/", "a/b", "a b", ".x", "x;y", "x\x00"} {
		err := CheckScript(s)
		if !errors.Is(err, ErrInvalidVar) {
			t.Errorf("CheckScript(%q) = %v, want ErrInvalidVar", s, err)
		}
		if (err == nil) != (CheckIntent([]Var{{"filename", s}}) == nil) {
			t.Errorf("CheckScript and CheckIntent disagree on %q", s)
		}
	}
}

// FuzzCheckIntent checks the promise CheckIntent makes to the command line: an intent
// it accepts is one the boot service renders, as /pxedust and as the distribution's
// answer files.
func FuzzCheckIntent(f *testing.F) {
	for _, s := range [][4]string{
		{"test.ipxe", "core", "puppet_environment", "prod"},
		{"../x", "core", "x", "1"},
		{"sub/x.ipxe", "noble", "mirror", "http://[2001:db8::1]/m"},
		{"x.ipxe", "plan9", "puppet-env", "prod"},
		{"x.ipxe", "bookworm", "role", "a(b)"},
		{"x.ipxe", "jammy", "ip", "192.0.2.1"},
		{"x.ipxe", "noble", "mirror", "0"},
		{"%2e%2e", "rocky9", "_", "%41"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, filename, distribution, name, value string) {
		vars := []Var{{"filename", filename}, {"distribution", distribution}, {name, value}}
		if CheckIntent(vars) != nil {
			return
		}
		if _, err := PXEDust(PXEDustInput{BootURL: "http://boot.example.com", Site: "s", Filename: filename, Vars: vars}); err != nil {
			t.Fatalf("CheckIntent accepted %q but PXEDust refuses it: %v", vars, err)
		}
		h := Host{FQDN: "test-centos7.example.com.", IPv4: netip.MustParseAddr("192.168.35.172"),
			MAC: net.HardwareAddr{0x02, 0x04, 0x06, 0x08, 0x73, 0xac}, Distribution: distribution,
			BootURL: "http://boot.example.com", Site: "example", Vars: vars}
		d, _ := LookupDistribution(distribution)
		for _, file := range d.AnswerFiles() {
			if _, err := InstallFile(h, file); err != nil {
				t.Fatalf("CheckIntent accepted %q but %s does not render: %v", vars, file, err)
			}
		}
	})
}
