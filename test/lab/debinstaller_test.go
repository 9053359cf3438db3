package lab

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDebianCallbackPreseed: the site preseed holds one early_command, a
// valid shell command line that fetches the given answer file and reports
// each step on the console.
func TestDebianCallbackPreseed(t *testing.T) {
	const answer = "http://192.0.2.1:8080/bootstrap/install/bookworm/x86_64/preseed.cfg"
	p := DebianCallbackPreseed(answer)
	var cmds []string
	for _, l := range strings.Split(p, "\n") {
		if c, ok := strings.CutPrefix(l, "d-i preseed/early_command string "); ok {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) != 1 {
		t.Fatalf("%d early_command lines, want 1:\n%s", len(cmds), p)
	}
	for _, w := range []string{"wget -q -O /tmp/vmprov-preseed.cfg " + answer + " ", DebianInstallerMarker + "installed", DebianInstallerMarker + "failed", "/done?token="} {
		if !strings.Contains(cmds[0], w) {
			t.Errorf("early_command lacks %q: %s", w, cmds[0])
		}
	}
	if out, err := exec.CommandContext(t.Context(), "sh", "-n", "-c", cmds[0]).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s\n%s", err, out, cmds[0])
	}
}
