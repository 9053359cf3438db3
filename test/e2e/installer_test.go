package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/templates"
	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// installerDeadline bounds the first boot of d-i under TCG: SeaBIOS and
// iPXE, 50 MB of kernel and initrd over HTTP, d-i's boot to its DHCP and
// preseed, and the callback.
const installerDeadline = 10 * time.Minute

// TestInstalledOnce boots Debian 12's real installer (d-i, package
// debian-installer-12-netboot-amd64) through vmprov's chain on a
// network-first VM (--boot network,hd, as bare metal boots), and then
// checks that the installed host boots its disk and that vmprov reinstall
// makes it install again (docs/design.md, "A host's life"):
//
//  1. vmprov create --distro bookworm --boot network,hd: iPXE gets the
//     bookworm chain, fetches d-i's linux and initrd.gz, and d-i boots,
//     gets its address from serve's DHCP and fetches its preseed.
//     The lab has no Debian mirror, so a real install cannot finish: the
//     host's TXT override preseed= names a site preseed
//     (lab.DebianCallbackPreseed) whose early_command fetches the host's
//     own preseed.cfg from serve with d-i's wget (state installing) and
//     calls the done URL in it with its token (state installed), as
//     firstboot does after a real install. vmprov wait sees installed.
//  2. The VM is reset: on its network boot iPXE gets the exit script from
//     /boot.ipxe, no kernel is fetched, and SeaBIOS moves on to the disk.
//  3. vmprov reinstall --now: the next boot fetches the installer again.
//
// The records keep the lab's TTL (300 s): serve still caches installed
// when the reinstall boot asks, and its answers that rest on the build
// state confirm it past the cache, so the reinstall counts at once.
func TestInstalledOnce(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("boots the Debian installer under TCG for minutes")
	}
	lab.RequireDebianInstaller(t)
	e := startDemo(t)
	ctx := t.Context()
	serveDir := filepath.Join(e.Dir, "serve")
	kernel, initrd, err := lab.StageDebianInstaller(serveDir, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	const name, ip = "di1", "192.0.2.40"
	answer := e.BootURL + "/bootstrap/install/bookworm/x86_64/preseed.cfg"
	site := filepath.Join(serveDir, "bootstrap", demo.Site, "di-callback.cfg")
	if err := os.MkdirAll(filepath.Dir(site), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(site, []byte(lab.DebianCallbackPreseed(answer)), 0o644); err != nil {
		t.Fatal(err)
	}

	// 1. The install.
	b, _ := bootVM(t, e, demo.BootSpec{Name: name, Timeout: installerDeadline,
		Args: []string{"--vlan", "135", "--ip", ip, "--distro", "bookworm", "--boot", "network,hd",
			"--txt", "preseed=" + e.BootURL + "/bootstrap/" + demo.Site + "/di-callback.cfg",
			"--memory", "1024", "--vcpus", "1", "--disk-size", "1"},
		Until: func(b *demo.Boot) bool {
			return b.Timeline.Has("/done") || b.Console != nil && strings.Contains(b.Console.Text(), lab.DebianInstallerMarker+"failed")
		},
	}, 40)
	hexhyp := strings.ReplaceAll(b.Host.MAC, ":", "-")
	want := []demo.Request{
		{Kind: demo.HTTP, File: "/boot.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/mac/" + hexhyp + "/ipxe", Status: 404},
		{Kind: demo.HTTP, File: "/pxedust", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/" + demo.Site + "/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/install/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: kernel, Status: 200},
		{Kind: demo.HTTP, File: initrd, Status: 200},
		// d-i itself: the site preseed, the host's own preseed from the
		// early_command's wget, the callback.
		{Kind: demo.HTTP, File: "/bootstrap/" + demo.Site + "/di-callback.cfg", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/install/bookworm/x86_64/preseed.cfg", Status: 200},
		{Kind: demo.HTTP, File: "/done", Status: 200},
	}
	if got := b.Timeline.Requests(); !slices.Equal(got, want) {
		t.Fatalf("install boot: requests\n  got  %v\n  want %v", got, want)
	}
	if got := transitions(t, e.ServeLog, strings.TrimSuffix(b.Host.FQDN, ".")); !slices.Equal(got, []string{"install→installing", "installing→installed"}) {
		t.Errorf("build state changes logged by serve: %q, want install→installing, installing→installed", got)
	}
	out, err := e.Vmprov(ctx, "wait", name, "--for", "installed", "--timeout", "1m")
	if err != nil || !strings.Contains(string(out), "installed") {
		t.Fatalf("vmprov wait %s --for installed: %v\n%s", name, err, out)
	}
	t.Logf("vmprov wait:\n%s", out)

	// 2. A network boot of the installed host: iPXE exits to the disk.
	exitScript, err := templates.LocalScript(templates.LocalInput{FQDN: b.Host.FQDN})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(exitScript)
	seen := len(b.Console.Text())
	reset := time.Now()
	if _, err := e.Lab.Libvirt.Virsh(ctx, "reset", name); err != nil {
		t.Fatal(err)
	}
	const disk = "Booting from Hard Disk"
	tl, err := e.Follow(ctx, b.Host, reset, demo.BootTimeout, func(tl demo.Timeline) bool {
		return strings.Contains(b.Console.Text()[seen:], disk)
	}, func(ev demo.Event) { t.Log(ev) })
	if err != nil {
		t.Fatalf("after the reset: %v\n--- console ---\n%s", err, lastLines(b.Console.Text()[seen:], 30))
	}
	if got, want := tl.Requests(), []demo.Request{{Kind: demo.HTTP, File: "/boot.ipxe", Status: 200}}; !slices.Equal(got, want) {
		t.Errorf("local boot: requests %v, want %v (no chain, no kernel)", got, want)
	}
	if ev, ok := tl.First(demo.HTTP, "http request"); ok && ev.Line.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("local boot: /boot.ipxe sha256 %s, want the exit script's %x", ev.Line.SHA256, sum)
	}
	console := b.Console.Text()[seen:]
	if i, j := strings.Index(console, "is installed: booting from the next boot device"), strings.Index(console, disk); i < 0 || j < i {
		t.Errorf("local boot: the console does not show iPXE's exit and then SeaBIOS booting the disk:\n%s", lastLines(console, 30))
	}

	// 3. vmprov reinstall --now: the next boot installs again.
	_ = b.Console.Close()
	b.Console = nil
	again := time.Now()
	if out, err := e.Vmprov(ctx, "reinstall", name, "--distro", "bookworm", "--now"); err != nil {
		t.Fatalf("vmprov reinstall --now: %v\n%s", err, out)
	}
	b.Timeline = demo.Timeline{Host: b.Host, Start: again}
	if err := e.FollowBoot(ctx, b, again, demo.BootSpec{Timeout: demo.BootTimeout,
		Until: func(b *demo.Boot) bool { return b.Timeline.Has(initrd) },
		Each:  func(ev demo.Event) { t.Log(ev) }}); err != nil {
		t.Fatal(err)
	}
	if !b.Timeline.Has("/pxedust") || !b.Timeline.Has(kernel) {
		t.Errorf("reinstall boot: requests %v, want the chain and d-i's kernel again", b.Timeline.Requests())
	}
}

// transitions returns the build state changes serve logged for host (its
// FQDN without the trailing dot), as "from→to".
func transitions(t *testing.T, logPath, host string) []string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		var ln struct {
			Msg, Host, From, To string
		}
		if json.Unmarshal([]byte(l), &ln) == nil && ln.Msg == "build state changed" && ln.Host == host {
			out = append(out, ln.From+"→"+ln.To)
		}
	}
	return out
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
