package grubimage

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/internal/golden"
)

// grubDirForTest makes a GRUB module directory like Debian's
// grub-efi-amd64-bin 2.06 (testdata/moddep-debian-2.06.lst) without the
// modules in drop. Module files are empty: the planner only looks them up.
func grubDirForTest(t *testing.T, drop ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "x86_64-efi")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lst, err := os.ReadFile("testdata/moddep-debian-2.06.lst")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ParseModDep(lst)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, line := range strings.Split(string(lst), "\n") {
		name, _, _ := strings.Cut(line, ":")
		if line != "" && !contains(drop, name) {
			keep = append(keep, line)
		}
	}
	files := map[string]string{
		"moddep.lst": strings.Join(keep, "\n") + "\n",
		"kernel.img": "",
		"modinfo.sh": "grub_modinfo_target_cpu=x86_64\ngrub_modinfo_platform=efi\ngrub_version=\"2.06\"\n",
	}
	for m := range mods {
		if !contains(drop, m) {
			files[m+".mod"] = ""
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// planText is a plan as its golden file shows it: the command line with
// the module directory written GRUBDIR, then the embedded configuration.
func planText(p *Plan) []byte {
	args := p.Args(p.Output, "grub.cfg-net")
	for i, a := range args {
		if a == p.GrubDir {
			args[i] = "GRUBDIR"
		}
	}
	return []byte(p.Mkimage + " " + strings.Join(args, " ") + "\n\n" + p.Config)
}

func TestGrubNewPlanGolden(t *testing.T) {
	tests := []struct {
		name   string
		drop   []string
		opts   Options
		golden string
	}{
		{name: "defaults", golden: "plan-defaults.golden"},
		{
			name:   "seed 001 with DHCP and a fixed server",
			opts:   Options{Output: "/srv/tftp/mactel64.efi", Server: netip.MustParseAddr("192.0.2.1"), DHCP: true},
			golden: "plan-seed.golden",
		},
		{
			name:   "no linuxefi in this GRUB",
			drop:   []string{"linuxefi"},
			golden: "plan-no-linuxefi.golden",
		},
		{
			name: "modules and prefix given",
			opts: Options{
				Output:  "grubx64.efi",
				Prefix:  "(tftp,192.0.2.1)/grub",
				Modules: []string{"normal", "configfile", "net", "efinet", "tftp", "http", "linux", "echo"},
			},
			golden: "plan-modules.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.GrubDir = grubDirForTest(t, tt.drop...)
			p, err := NewPlan(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.GrubVersion != "2.06" {
				t.Errorf("GrubVersion = %q, want 2.06", p.GrubVersion)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), planText(p))
		})
	}
}

func TestGrubDefaultModules(t *testing.T) {
	for _, tt := range []struct {
		name string
		drop []string
		want []string
	}{
		{"debian 2.06", nil, []string{"normal", "configfile", "net", "efinet", "tftp", "efi_gop", "efi_uga", "all_video", "gzio", "part_gpt", "ext2", "echo", "linuxefi", "linux", "http"}},
		{"upstream without linuxefi nor efi_uga", []string{"linuxefi", "efi_uga"}, []string{"normal", "configfile", "net", "efinet", "tftp", "efi_gop", "all_video", "gzio", "part_gpt", "ext2", "echo", "linux", "http"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mods, err := ReadModules(grubDirForTest(t, tt.drop...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, DefaultModules(mods)); diff != "" {
				t.Errorf("DefaultModules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGrubNewPlanErrors(t *testing.T) {
	dir := grubDirForTest(t, "linuxefi")
	noModdep := t.TempDir()
	i386 := grubDirForTest(t)
	if err := os.WriteFile(filepath.Join(i386, "modinfo.sh"), []byte("grub_modinfo_target_cpu=i386\ngrub_modinfo_platform=pc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		is      error
		message string // a part of the error text
	}{
		{"missing module directory", Options{GrubDir: filepath.Join(dir, "nope")}, ErrNoGrubDir, "install Debian package grub-efi-amd64-bin"},
		{"directory without moddep.lst", Options{GrubDir: noModdep}, ErrNoGrubDir, "no moddep.lst"},
		{"unknown module", Options{GrubDir: dir, Modules: []string{"normal", "configfile", "net", "efinet", "tftp", "nosuchmod"}}, ErrUnknownModule, "nosuchmod not in " + dir},
		{"linuxefi where GRUB has only linux", Options{GrubDir: dir, Modules: []string{"normal", "configfile", "net", "efinet", "tftp", "linuxefi"}}, ErrUnknownModule, "use linux instead of linuxefi"},
		{"module name with a slash", Options{GrubDir: dir, Modules: []string{"../normal"}}, ErrInvalid, `module name "../normal"`},
		{"module name like a flag", Options{GrubDir: dir, Modules: []string{"-o"}}, ErrInvalid, `module name "-o"`},
		{"module twice", Options{GrubDir: dir, Modules: []string{"normal", "normal"}}, ErrInvalid, "named twice"},
		{"netboot module missing", Options{GrubDir: dir, Modules: []string{"normal", "configfile", "net", "tftp"}}, ErrInvalid, "must include efinet"},
		{"BIOS format", Options{GrubDir: dir, Format: "i386-pc"}, ErrInvalid, "EFI netboot images only"},
		{"modules of another platform", Options{GrubDir: i386}, ErrInvalid, "holds i386-pc modules, not x86_64-efi"},
		{"prefix with a space", Options{GrubDir: dir, Prefix: "(tftp)/boot grub"}, ErrInvalid, "prefix"},
		{"prefix with a variable", Options{GrubDir: dir, Prefix: "(tftp)/$x"}, ErrInvalid, "prefix"},
		{"relative prefix", Options{GrubDir: dir, Prefix: "boot/grub"}, ErrInvalid, "want a GRUB path"},
		{"IPv6 server", Options{GrubDir: dir, Server: netip.MustParseAddr("2001:db8::1")}, ErrInvalid, "not an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPlan(tt.opts)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("err = %q, want it to contain %q", err, tt.message)
			}
		})
	}
}

func TestGrubBuildErrors(t *testing.T) {
	dir := grubDirForTest(t)
	out := t.TempDir()
	link := filepath.Join(out, "link.efi")
	if err := os.Symlink("/etc/hostname", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		is      error
		message string
	}{
		{"no grub-mkimage", Options{GrubDir: dir, Mkimage: "vmprov-no-such-grub-mkimage", Output: filepath.Join(out, "a.efi")}, ErrNoMkimage, "install Debian package grub-efi-amd64-bin"},
		{"output is a directory", Options{GrubDir: dir, Mkimage: "true", Output: out}, ErrNotRegular, "is a directory"},
		{"output is a symbolic link", Options{GrubDir: dir, Mkimage: "true", Output: link}, ErrNotRegular, "is a symbolic link"},
		{"output is a device", Options{GrubDir: dir, Mkimage: "true", Output: "/dev/null"}, ErrNotRegular, "is a device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(t.Context(), tt.opts, nil)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("err = %q, want it to contain %q", err, tt.message)
			}
		})
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symbolic link changed: %v %v", fi, err)
	}
}

func TestGrubParseModDep(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Modules
		wantErr bool
	}{
		{"empty", "", Modules{}, false},
		{"modules", "tftp: net\nnet: priority_queue datetime boot bufio\nfshelp:\n\n", Modules{
			"tftp": {"net"}, "net": {"priority_queue", "datetime", "boot", "bufio"}, "fshelp": nil,
		}, false},
		{"no colon", "tftp net\n", nil, true},
		{"bad name", "tf/tp: net\n", nil, true},
		{"bad dependency", "tftp: n$et\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseModDep([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
