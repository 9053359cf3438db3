package lab_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

// TestUpIPv6OnlyBridgeAndDaemon brings a lab up with the IPv6-only bridge,
// starts a daemon in it through Lab.Start and checks that state.json
// records both, that BIND serves br136's reverse zone, that br136 has no
// IPv4 address, and that Down stops the daemon by its recorded PID.
func TestUpIPv6OnlyBridgeAndDaemon(t *testing.T) {
	lab.RequireRoot(t, "ip", "named", "radvd", "sleep")
	dir := t.TempDir()
	opts := lab.Options{Dir: dir, Netns: fmt.Sprintf("vmprovt-%08x", rand.Uint32()), NoLibvirt: true,
		More: []lab.Bridge{lab.IPv6OnlyBridge()}}
	t.Cleanup(func() { _ = lab.Down(dir) })
	l, err := lab.Up(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Start("sleeper", filepath.Join(dir, "sleeper.log"), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}

	st, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]lab.BridgeState{{Name: "br136", IPv6: "2001:db8:136::1/64"}}, st.More); diff != "" {
		t.Errorf("state more_bridges (-want +got):\n%s", diff)
	}
	wantZones := append(lab.TestReverseZones(), "0.0.0.0.6.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.")
	if diff := cmp.Diff(wantZones, st.ReverseZones); diff != "" {
		t.Errorf("reverse zones (-want +got):\n%s", diff)
	}
	var names []string
	for _, p := range st.Processes {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"named", "radvd", "radvd", "sleeper"}, names); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
	if got := st.Processes[len(st.Processes)-1]; got != d.Process() {
		t.Errorf("recorded %+v, daemon is %+v", got, d.Process())
	}

	m := new(dns.Msg)
	m.SetQuestion("0.0.0.0.6.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypeSOA)
	r, err := l.BIND.Exchange(t.Context(), m)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("SOA of br136's reverse zone: %v %v", r, err)
	}
	out, err := l.Netns.IP(t.Context(), "-o", "addr", "show", "dev", "br136")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, " inet ") || !strings.Contains(out, "2001:db8:136::1/64") {
		t.Errorf("br136 addresses: want 2001:db8:136::1/64 and no IPv4:\n%s", out)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "radvd-br136", "radvd.conf"))
	if err != nil || !strings.Contains(string(conf), "AdvOtherConfigFlag on;") {
		t.Errorf("radvd.conf of br136 does not set the O flag: %v\n%s", err, conf)
	}

	if err := lab.Down(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Errorf("daemon (pid %d) still running after Down", d.Process().PID)
	}
}
