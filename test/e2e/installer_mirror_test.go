package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// diPrompts are how d-i's text frontend (cdebconf, DEBIAN_FRONTEND=text on
// the install command line) waits for an answer on the serial console: a
// string, select, boolean or password question ends in a "Prompt: '?' for
// help" line, a note or an error in "[Press enter to continue]".
var diPrompts = []string{"Prompt: '", "[Press enter to continue]"}

// terminalControl matches the escape sequences of d-i's screen session on
// the serial console (ECMA-48 control sequences, character set and keypad
// selections).
var terminalControl = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])`)

// diQuestion returns the last lines d-i printed on console up to its first
// question's prompt, without terminal control sequences, or "" if it has
// asked nothing yet.
func diQuestion(console string) string {
	console = terminalControl.ReplaceAllString(console, "")
	end := -1
	for _, p := range diPrompts {
		if i := strings.Index(console, p); i >= 0 && (end < 0 || i < end) {
			end = i + len(p)
		}
	}
	if end < 0 {
		return ""
	}
	return lastLines(console[:end], 15)
}

// TestInstallerReachesMirror boots Debian 12's real installer (d-i, package
// debian-installer-12-netboot-amd64) through vmprov's chain on a BIOS VM
// (SeaBIOS, iPXE) with vmprov's own preseed.cfg, no site preseed: the
// host's TXT mirror= names a mirror in the lab, boot.url/assets/lab-mirror,
// that holds only d-i's kernel and initrd where a Debian mirror has them.
// It checks, from serve's log and the serial console, that
//
//   - iPXE fetches the chain and d-i's kernel and initrd from the mirror;
//   - d-i's own DHCP client (no iPXE, no PXE class) gets its address from
//     serve, after the initrd;
//   - d-i fetches the host's preseed.cfg (200);
//   - the preseed takes d-i to the mirror step without a question, at
//     d-i's default priority (high): its next requests are Release files
//     under the configured mirror (404 here), bookworm's among them, and
//     the first question on the console (d-i's text frontend on ttyS0)
//     is the mirror error that follows.
func TestInstallerReachesMirror(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("boots the Debian installer under TCG for minutes")
	}
	lab.RequireDebianInstaller(t)
	e := startDemo(t)
	const sub = "lab-mirror"
	kernel, initrd, err := lab.StageDebianMirror(filepath.Join(e.Dir, "serve"), sub, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	mirror := e.BootURL + "/assets/" + sub
	mirrorDir := "/assets/" + sub + "/debian/" // preseed mirror/http/directory
	const name, ip = "di2", "192.0.2.41"
	began := time.Now()
	b, _ := bootVM(t, e, demo.BootSpec{Name: name, Timeout: installerDeadline,
		// extra= is appended to vmprov's install command line, after its
		// priority=critical, and the kernel hands init the last value of
		// an environment parameter: d-i runs at its default priority,
		// high, and asks every question the preseed leaves unanswered,
		// not only the critical ones.
		Args: []string{"--vlan", "135", "--ip", ip, "--distro", "bookworm",
			"--txt", "mirror=" + mirror, "--txt", "extra=priority=high",
			"--memory", "1024", "--vcpus", "1", "--disk-size", "1"},
		Until: func(b *demo.Boot) bool { return b.Console != nil && diQuestion(b.Console.Text()) != "" },
	}, 60)
	t.Logf("create to d-i's first question: %v", time.Since(began).Round(time.Second))

	// No question before the mirror's: the first one d-i asks is the
	// mirror error after its Release requests failed.
	q := diQuestion(b.Console.Text())
	t.Logf("d-i's first question:\n%s", q)
	if !strings.Contains(q, "Bad archive mirror") {
		t.Errorf("d-i asked a question before the mirror error: the preseed leaves it unanswered:\n%s", q)
	}

	// The chain, then d-i: its preseed, then the mirror.
	hexhyp := strings.ReplaceAll(b.Host.MAC, ":", "-")
	preseed := demo.Request{Kind: demo.HTTP, File: "/bootstrap/install/bookworm/x86_64/preseed.cfg", Status: 200}
	want := []demo.Request{
		{Kind: demo.HTTP, File: "/boot.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/mac/" + hexhyp + "/ipxe", Status: 404},
		{Kind: demo.HTTP, File: "/pxedust", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/" + demo.Site + "/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: "/bootstrap/install/default.ipxe", Status: 200},
		{Kind: demo.HTTP, File: kernel, Status: 200},
		{Kind: demo.HTTP, File: initrd, Status: 200},
		preseed,
	}
	got := b.Timeline.Requests()
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("requests\n  got  %v\n  want %v, then d-i's requests to the mirror %s", got, want, mirror)
	}
	// choose-mirror reads the suites' Release files (oldstable, stable,
	// testing, unstable: which codename each is) and then the Release of
	// the release it installs.
	mirrorReqs := got[len(want):]
	if len(mirrorReqs) == 0 {
		t.Fatalf("d-i fetched its preseed and then nothing from the mirror %s", mirror)
	}
	for _, r := range mirrorReqs {
		if !strings.HasPrefix(r.File, mirrorDir+"dists/") || !strings.HasSuffix(r.File, "/Release") {
			t.Errorf("after its preseed d-i asked for %s (%d), want only Release files under the mirror's %sdists/", r.File, r.Status, mirrorDir)
		}
	}
	if !slices.Contains(mirrorReqs, demo.Request{Kind: demo.HTTP, File: mirrorDir + "dists/bookworm/Release", Status: 404}) {
		t.Errorf("d-i's mirror requests %v lack %sdists/bookworm/Release", mirrorReqs, mirrorDir)
	}

	// d-i's own DHCP: an ACK to the VM's MAC between the initrd download
	// and the preseed request, to a client that is neither iPXE nor PXE.
	var afterInitrd, ack bool
	for _, ev := range b.Timeline.Events {
		switch {
		case ev.Kind == demo.HTTP && ev.Line.File == initrd:
			afterInitrd = true
		case ev.Kind == demo.HTTP && ev.Line.File == preseed.File:
			afterInitrd = false
		case afterInitrd && ev.Kind == demo.DHCP4 && ev.Line.Msg == "dhcp4 ACK":
			ack = true
			if ev.Line.Class != "none" || ev.Line.File != "" {
				t.Errorf("d-i's DHCP ACK: class %q file %q, want class none and no boot file", ev.Line.Class, ev.Line.File)
			}
		}
	}
	if !ack {
		t.Errorf("no DHCPv4 ACK to %s between the initrd and the preseed requests: serve did not answer d-i's DHCP", b.Host.MAC)
	}

	for _, ev := range []struct{ what, file string }{{"initrd", initrd}, {"preseed", preseed.File}, {"mirror", mirrorReqs[0].File}} {
		for _, e := range b.Timeline.Events {
			if e.Line.File == ev.file {
				t.Logf("%-8s at %v after create", ev.what, e.At.Round(time.Second))
				break
			}
		}
	}
}
