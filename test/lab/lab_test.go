package lab_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/vmprov/vmprov/test/lab"
)

func TestReverseZone(t *testing.T) {
	tests := []struct {
		prefix, want string
		wantErr      bool
	}{
		{"192.0.2.0/24", "2.0.192.in-addr.arpa.", false},
		{"198.18.0.0/16", "18.198.in-addr.arpa.", false},
		{"192.0.2.7/24", "2.0.192.in-addr.arpa.", false},
		{"2001:db8:135::/64", "0.0.0.0.5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", false},
		{"2001:db8:135::/48", "5.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", false},
		{"2001:db8:13f::/52", "0.f.3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", false},
		{"2001:db8:13f::/44", "3.1.0.8.b.d.0.1.0.0.2.ip6.arpa.", false},
		{"192.0.2.0/23", "", true},
		{"2001:db8::/62", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, err := lab.ReverseZone(netip.MustParsePrefix(tt.prefix))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ReverseZone(%s) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func TestUpDown(t *testing.T) {
	lab.RequireRoot(t, "ip", "named", "radvd", "libvirtd", "virtlogd", "virsh")
	dir, err := os.MkdirTemp("", "vmprov-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	opts := lab.Options{Dir: dir, Netns: fmt.Sprintf("vmprovt-%08x", rand.Uint32())}
	t.Cleanup(func() { _ = lab.Down(dir) })

	first, err := lab.Up(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Up again on a running lab replaces it.
	l, err := lab.Up(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range first.State.Processes {
		if alive(p) {
			t.Errorf("%s (pid %d) of the first lab survived the second Up", p.Name, p.PID)
		}
	}

	st, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.State, st); diff != "" {
		t.Errorf("state.json (-want +got):\n%s", diff)
	}
	var names []string
	for _, p := range st.Processes {
		names = append(names, p.Name)
		if !alive(p) {
			t.Errorf("%s (pid %d) not running", p.Name, p.PID)
		}
	}
	if diff := cmp.Diff([]string{"named", "libvirtd", "virtlogd", "radvd"}, names); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
	wantState := lab.State{Netns: opts.Netns, Bridge: "br135", IPv4: "192.0.2.1/24", IPv6: "2001:db8:135::1/64",
		DNS: "192.0.2.1:53", Zone: "example.com.", ReverseZones: lab.TestReverseZones(), Pool: lab.PoolName}
	gotState := st
	gotState.Processes, gotState.KeyFile, gotState.LibvirtURI = nil, "", ""
	if diff := cmp.Diff(wantState, gotState); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}

	// BIND answers inside the namespace on the bridge address.
	m := new(dns.Msg)
	m.SetQuestion("ns1.example.com.", dns.TypeA)
	r, err := l.BIND.Exchange(t.Context(), m)
	if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "192.0.2.1") {
		t.Errorf("ns1.example.com. A: %v %v", r, err)
	}
	if _, err := l.Libvirt.Virsh(t.Context(), "pool-info", lab.PoolName); err != nil {
		t.Error(err)
	}

	// Down works from the state file alone, as from another process.
	if err := lab.Down(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Processes {
		if alive(p) {
			t.Errorf("%s (pid %d) still running after Down", p.Name, p.PID)
		}
	}
	if _, err := os.Stat("/run/netns/" + opts.Netns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still exists after Down", opts.Netns)
	}
	if _, err := lab.ReadState(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state.json still there after Down: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Down: %v", err)
	}
}

// alive reports whether p runs and is not a zombie.
func alive(p lab.Process) bool {
	if syscall.Kill(p.PID, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}
