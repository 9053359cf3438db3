package templates

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// shapeKeys are the TXT keys the templates interpret (ReservedVar) and one they only pass
// on, to the kernel command line and firstboot. distribution is left out: its values are a
// closed list, each rendered by TestHostFiles.
func shapeKeys() []string {
	return []string{"filename", "pxeboot", "kernel", "vmlinuz", "initrd", "cmdline", "kickstart",
		"preseed", "autoinstall", "console", "arch", "ifnames", "firstboot", "mirror", "repo",
		"iso", "extra", "hostname", "domain", "state", "build_id", "puppet_server", "role"}
}

// shapeBenign is a value of name that every template renders plainly.
func shapeBenign(name string) string {
	switch name {
	case "filename":
		return "benign.ipxe"
	case "mirror", "pxeboot", "repo", "iso", "kickstart", "preseed", "autoinstall", "firstboot":
		return "http://benign.example.com/b"
	case "console":
		return "console=ttyS1"
	case "state":
		return "installing"
	case "build_id":
		return "0123abcd"
	}
	return "benign"
}

// shapeIntent is the TXT intent of the seed host of distro with name set to value.
func shapeIntent(t *testing.T, distro, name, value string) Host {
	h := seedHost(t, distro)
	h.Vars = slices.Clone(h.Vars)
	if i := slices.IndexFunc(h.Vars, func(v Var) bool { return v.Name == name }); i >= 0 {
		h.Vars[i].Value = value
	} else {
		h.Vars = append(h.Vars, Var{name, value})
	}
	return h
}

// A shapeFile is one rendering of host data: every file the boot service serves for a
// host, and the values explain prints.
type shapeFile struct {
	name string
	// render renders the file for h; refusing it is fine when mayRefuse (GrubConfig
	// fetches over plain http only, so a pxeboot URL it cannot use is an error).
	render    func(h Host) ([]byte, error)
	mayRefuse bool
	check     func(p *problems, want, got []byte) // checks beyond sameSkeleton
}

func shapeFiles(d Distribution) []shapeFile {
	fs := []shapeFile{
		{name: "pxedust", render: func(h Host) ([]byte, error) {
			f, _ := varValue(h.Vars, "filename")
			return PXEDust(PXEDustInput{BootURL: h.BootURL, Site: h.Site, Filename: f, Vars: h.Vars})
		}},
		{name: "bootstrap", render: func(h Host) ([]byte, error) {
			return Bootstrap(BootstrapInput{BootURL: h.BootURL, Vars: h.Vars})
		}},
		{name: "install/default.ipxe", render: func(h Host) ([]byte, error) {
			var names []string
			for _, v := range h.Vars {
				names = append(names, v.Name)
			}
			return InstallScript(InstallInput{BootURL: h.BootURL, VarNames: names})
		}},
		{name: "kernel command line", render: func(h Host) ([]byte, error) {
			s, err := KernelCmdline(h)
			return []byte(s), err
		}, check: checkCmdline},
		{name: "install boot", render: func(h Host) ([]byte, error) {
			b, err := Install(h)
			return fmt.Appendf(nil, "%s\n%s\n%s\n%s\n", b.Kernel, b.Initrd, b.Cmdline, b.AnswerFile), err
		}},
		{name: "grub.cfg", render: func(h Host) ([]byte, error) {
			return GrubConfig(GrubInput{Host: h})
		}, mayRefuse: true, check: checkGrub},
		{name: "grub.cfg efi", render: func(h Host) ([]byte, error) {
			return GrubConfig(GrubInput{Host: h, EFI: true})
		}, mayRefuse: true, check: checkGrub},
		{name: "pxelinux.cfg", render: PXELinuxConfig},
		// The script is the same for every host; what it reads at first boot is the kernel
		// command line, checked above (and run with sh by TestFirstbootInternalNames: sh
		// is too slow for a fuzz loop).
		{name: "firstboot", render: func(h Host) ([]byte, error) { return InstallFile(h, "firstboot") }},
	}
	checks := map[string]func(p *problems, want, got []byte){
		"ks.cfg": checkKickstart, "preseed.cfg": checkPreseed, "user-data": checkUserData, "meta-data": checkYAML,
	}
	for _, name := range d.AnswerFiles() {
		fs = append(fs, shapeFile{name: name, render: func(h Host) ([]byte, error) { return InstallFile(h, name) }, check: checks[name]})
	}
	return fs
}

// FuzzRenderShape renders every file made from host data with one TXT variable set to an
// arbitrary value that CheckIntent accepts (the boot service renders nothing else) and
// checks that the files keep the structure they have with a benign value of the same
// variable: the same lines, each with the same skeleton, the same preseed questions, GRUB
// commands, YAML keys and kernel arguments, and shell words that do not glob. A value that
// a template decodes (a %0A in a mirror URL) or leaves unquoted in shell breaks it.
func FuzzRenderShape(f *testing.F) {
	for _, name := range shapeKeys() {
		f.Add(name, shapeBenign(name))
	}
	// The variables of the golden files' hosts (TestHostFiles).
	for _, v := range []Var{
		{"filename", "test.ipxe"}, {"puppet_server", "puppet.example.com"}, {"puppet_environment", "ipxe_test_master"},
		{"pxeboot", "http://repo.example.com/d-i/bookworm"}, {"console", "console=ttyS1,9600"}, {"extra", "quiet"},
		{"ifnames", "1"}, {"mirror", "http://[2001:db8:135::1]/mirror"}, {"mirror", "http://boot.example.com/assets"},
	} {
		f.Add(v.Name, v.Value)
	}
	// Regressions are in testdata/fuzz/FuzzRenderShape.
	f.Fuzz(func(t *testing.T, name, value string) {
		if name == "distribution" {
			return
		}
		for _, distro := range []string{"core", "bookworm", "noble"} {
			got := shapeIntent(t, distro, name, value)
			if CheckIntent(got.Vars) != nil {
				return
			}
			want := shapeIntent(t, distro, name, shapeBenign(name))
			if err := CheckIntent(want.Vars); err != nil {
				t.Fatalf("benign %s=%s refused: %v", name, shapeBenign(name), err)
			}
			d, _ := LookupDistribution(distro)
			for _, file := range shapeFiles(d) {
				wantOut, err := file.render(want)
				if err != nil {
					t.Fatalf("%s %s with benign %s=%s: %v", distro, file.name, name, shapeBenign(name), err)
				}
				gotOut, err := file.render(got)
				if err != nil {
					if file.mayRefuse && errors.Is(err, ErrInvalidHost) {
						continue
					}
					t.Fatalf("%s %s: CheckIntent accepted %s=%q but it does not render: %v", distro, file.name, name, value, err)
				}
				var p problems
				sameSkeleton(&p, wantOut, gotOut)
				if file.check != nil {
					file.check(&p, wantOut, gotOut)
				}
				if len(p) > 0 {
					t.Fatalf("%s %s with %s=%q:\n%s\nrendered:\n%s", distro, file.name, name, value, strings.Join(p, "\n"), gotOut)
				}
			}
		}
	})
}

// problems collects what a check found wrong with a rendered file.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// skeleton replaces every run of the characters a host variable value may hold
// (valueChar) by one "v". Any accepted value renders the same skeleton as any other when
// the templates write it literally; a difference is a character the value did not hold:
// a decoded %0A, %20 or %27.
func skeleton(line string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if valueChar(c) {
			if !in {
				b.WriteByte('v')
			}
			in = true
			continue
		}
		in = false
		b.WriteByte(c)
	}
	return b.String()
}

// sameSkeleton checks that got has the lines of want, each with the same skeleton.
func sameSkeleton(p *problems, want, got []byte) {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	if len(wl) != len(gl) {
		p.add("%d lines, want %d", len(gl), len(wl))
		return
	}
	for i := range wl {
		if w, g := skeleton(wl[i]), skeleton(gl[i]); w != g {
			p.add("line %d: %q has skeleton %q, want %q (as %q)", i+1, gl[i], g, w, wl[i])
		}
	}
}

// checkCmdline: the kernel (and firstboot, which splits it on blanks) sees as many
// arguments.
func checkCmdline(p *problems, want, got []byte) {
	if w, g := len(strings.Fields(string(want))), len(strings.Fields(string(got))); w != g {
		p.add("%d kernel arguments, want %d", g, w)
	}
}

// checkGrub: the same GRUB commands and menu entries, line by line.
func checkGrub(p *problems, want, got []byte) {
	if diff := slices.Compare(firstWords(want), firstWords(got)); diff != 0 {
		p.add("GRUB commands %q, want %q", firstWords(got), firstWords(want))
	}
	for _, b := range [][]byte{want, got} {
		if n := bytes.Count(b, []byte("\nmenuentry ")); n != 1 {
			p.add("%d menu entries, want 1", n)
		}
	}
}

func firstWords(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// checkPreseed: no new d-i directive, and the late_command shell does not glob.
func checkPreseed(p *problems, want, got []byte) {
	count := func(b []byte) int { return bytes.Count(b, []byte("\nd-i ")) }
	if count(want) != count(got) {
		p.add("%d d-i directives, want %d", count(got), count(want))
	}
	const late = "d-i preseed/late_command string "
	for _, l := range strings.Split(string(got), "\n") {
		if cmd, ok := strings.CutPrefix(l, late); ok {
			checkShell(p, cmd)
		}
	}
}

// checkKickstart: the same kickstart commands and sections, and a %post that does not glob.
func checkKickstart(p *problems, want, got []byte) {
	if diff := slices.Compare(firstWords(want), firstWords(got)); diff != 0 {
		p.add("kickstart commands %q, want %q", firstWords(got), firstWords(want))
	}
	post := false
	for _, l := range strings.Split(string(got), "\n") {
		switch {
		case strings.HasPrefix(l, "%post"):
			post = true
		case l == "%end":
			post = false
		case post:
			checkShell(p, l)
		}
	}
}

// checkUserData: the YAML has the same keys and lists, and its late-commands (run with
// sh -c) do not glob.
func checkUserData(p *problems, want, got []byte) {
	checkYAML(p, want, got)
	var doc struct {
		Autoinstall struct {
			LateCommands []string `yaml:"late-commands"`
		} `yaml:"autoinstall"`
	}
	if err := yaml.Unmarshal(got, &doc); err != nil {
		p.add("user-data: %v", err)
		return
	}
	for _, c := range doc.Autoinstall.LateCommands {
		checkShell(p, c)
	}
}

// checkYAML: got parses to the same key paths, list lengths and scalar kinds as want.
func checkYAML(p *problems, want, got []byte) {
	paths := func(b []byte) []string {
		var n yaml.Node
		if err := yaml.Unmarshal(b, &n); err != nil {
			p.add("YAML: %v", err)
			return nil
		}
		var out []string
		var walk func(n *yaml.Node, path string)
		walk = func(n *yaml.Node, path string) {
			switch n.Kind {
			case yaml.DocumentNode:
				for _, c := range n.Content {
					walk(c, path)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					walk(n.Content[i+1], path+"."+n.Content[i].Value)
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					walk(c, fmt.Sprintf("%s[%d]", path, i))
				}
			default:
				out = append(out, path+" "+n.Tag)
			}
		}
		walk(&n, "")
		return out
	}
	if w, g := paths(want), paths(got); !slices.Equal(w, g) {
		p.add("YAML paths %q, want %q", g, w)
	}
}

// checkShell fails t if a shell command line has a glob character outside quotes: the
// shell would replace that word by the names of matching files.
func checkShell(p *problems, line string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '\\':
			i++
		case c == '*' || c == '?' || c == '[':
			p.add("shell %q: unquoted %q at %d would glob", line, c, i)
			return
		}
	}
	if quote != 0 {
		p.add("shell %q: unterminated %c quote", line, quote)
	}
}

// TestURLValuesKeepEscapes: the preseed and grub.cfg write the host and path of a TXT URL
// as the value spells them, so a percent-escape stays one (and a legitimate escaped
// mirror path still works).
func TestURLValuesKeepEscapes(t *testing.T) {
	for _, tt := range []struct {
		name, distro string
		v            Var
		render       func(Host) ([]byte, error)
		want         []string // lines of the output
	}{
		{"preseed newline", "bookworm", Var{"mirror", "http://m.example.com/debian%0Ad-i%20passwd/root-password%20string%20x"}, Preseed, []string{
			"d-i mirror/http/hostname string m.example.com",
			"d-i mirror/http/directory string /debian%0Ad-i%20passwd/root-password%20string%20x/debian",
		}},
		{"preseed tilde", "xenial", Var{"mirror", "https://m.example.com:8443/%7Emirror"}, Preseed, []string{
			"d-i mirror/protocol string https",
			"d-i mirror/https/hostname string m.example.com:8443",
			"d-i mirror/https/directory string /%7Emirror/ubuntu",
		}},
		{"grub IPv6 zone", "core", Var{"mirror", "http://[fe80::1%25%27%3B%24]"}, func(h Host) ([]byte, error) { return GrubConfig(GrubInput{Host: h}) }, []string{
			"\tinitrd (http,[fe80::1%25%27%3B%24])/centos/7/os/x86_64/images/pxeboot/initrd.img",
		}},
		{"grub pxeboot newline", "bookworm", Var{"pxeboot", "http://m.example.com/d%0Ainsmod%20x"}, func(h Host) ([]byte, error) { return GrubConfig(GrubInput{Host: h}) }, []string{
			"\tinitrd (http,m.example.com)/d%0Ainsmod%20x/initrd.gz",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := shapeIntent(t, tt.distro, tt.v.Name, tt.v.Value)
			if err := CheckIntent(h.Vars); err != nil {
				t.Fatalf("CheckIntent: %v", err)
			}
			got, err := tt.render(h)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(got), "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("no line %q in\n%s", w, got)
				}
			}
		})
	}
}
