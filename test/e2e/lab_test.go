package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmprov/vmprov/test/lab"
	"github.com/vmprov/vmprov/test/lab/demo"
)

// requireDemoLab skips t unless what the demo scenario's lab needs is here.
func requireDemoLab(t testing.TB) {
	t.Helper()
	lab.RequireRoot(t, "go", "ip", "curl", "named", "radvd", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64")
}

// buildVmprov builds the vmprov command into dir.
func buildVmprov(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vmprov")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/vmprov/vmprov/cmd/vmprov").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// setupDemo brings up a lab (br135, plus the bridges more) in a fresh
// namespace and runs `vmprov serve` in it through the demo scenario that
// `make lab` runs too; everything is torn down when t ends.
func setupDemo(t testing.TB, bin string, more ...lab.Bridge) *demo.Env {
	t.Helper()
	ctx := t.Context()
	// A short directory: libvirt's socket path must fit in 107 bytes.
	labDir, err := os.MkdirTemp("", "vmprov-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Down(labDir); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(labDir)
		} else {
			t.Logf("lab files kept in %s", labDir)
		}
	})
	l, err := lab.Up(ctx, lab.Options{Dir: labDir, Netns: fmt.Sprintf("vmprove-%08x", rand.Uint32()), More: more})
	if err != nil {
		t.Fatal(err)
	}
	e, err := demo.Setup(ctx, l, bin, filepath.Join(labDir, "vmprov"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s ---\n%s", e.ServeLog, demo.Tail(e.ServeLog, 80))
		}
	})
	return e
}

// event is one JSON line of serve's log with the fields beyond
// demo.LogLine's that the UEFI test looks at.
type event struct {
	demo.LogLine
	Arch   string `json:"arch"`   // DHCP client architecture (DHCPv4 option 93, DHCPv6 option 61)
	Bytes  int64  `json:"bytes"`  // TFTP transfer or HTTP response size
	Method string `json:"method"` // HTTP request method
}

// readEvents parses the JSON lines of the serve log logged at or after
// since; other lines are skipped.
func readEvents(t *testing.T, path string, since time.Time) []event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil && !e.Time.Before(since) {
			evs = append(evs, e)
		}
	}
	return evs
}
