package demo

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testdata/serve.log is the serve log of a `make lab` run (demo1 on VLAN
// 135, demo6 on the IPv6-only VLAN 136); testdata/console-demo1.log is
// demo1's serial console from the same run.
var (
	demo1 = Host{Name: "demo1", FQDN: "demo1.example.com.", VLAN: 135, MAC: "02:04:06:08:72:0a",
		IPv4: netip.MustParseAddr("192.0.2.10"), IPv6: netip.MustParseAddr("2001:db8:135:0:4:6ff:fe08:720a")}
	demo6 = Host{Name: "demo6", FQDN: "demo6.example.com.", VLAN: 136, MAC: "2a:4a:6a:9e:2b:4f",
		IPv6: netip.MustParseAddr("2001:db8:136:0:284a:6aff:fe9e:2b4f")}
)

func TestBuild(t *testing.T) {
	lines, err := ReadLog("testdata/serve.log")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		host      Host
		wantDHCP  Kind
		wantFile  string
		wantFirst string // message of the first event
	}{
		{"dual-stack", demo1, DHCP4, "http://192.0.2.1:8080/boot.ipxe", "dhcp4 OFFER"},
		{"IPv6-only", demo6, DHCP6, "http://[2001:db8:136::1]:8080/boot.ipxe", "dhcp6 REPLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := Build(tt.host, lines[0].Time, lines)
			if diff := cmp.Diff(WantRequests(tt.host), tl.Requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			reply, ok := DHCPReply(tl)
			if !ok || reply.Kind != tt.wantDHCP || reply.Line.File != tt.wantFile {
				t.Errorf("DHCPReply = %+v, %v; want %s with file %s", reply, ok, tt.wantDHCP, tt.wantFile)
			}
			if tl.Events[0].Line.Msg != tt.wantFirst {
				t.Errorf("first event %q, want %q", tl.Events[0].Line.Msg, tt.wantFirst)
			}
			for i := 1; i < len(tl.Events); i++ {
				if tl.Events[i].At < tl.Events[i-1].At {
					t.Errorf("event %d at %v before event %d at %v", i, tl.Events[i].At, i-1, tl.Events[i-1].At)
				}
			}
			if !tl.Has(InitrdPath) {
				t.Errorf("no request for %s", InitrdPath)
			}
			// Nothing from before the start, nor of the other host.
			if got := Build(tt.host, lines[len(lines)-1].Time.Add(time.Second), lines); len(got.Events) != 0 {
				t.Errorf("events after the end of the log: %v", got.Events)
			}
		})
	}
	other := Build(Host{Name: "x", MAC: "02:04:06:08:72:0b", IPv4: netip.MustParseAddr("192.0.2.11")}, time.Time{}, lines)
	if len(other.Events) != 0 {
		t.Errorf("events of a host that did not boot: %v", other.Events)
	}
}

func TestKernelCmdline(t *testing.T) {
	console, err := os.ReadFile("testdata/console-demo1.log")
	if err != nil {
		t.Fatal(err)
	}
	full := string(console)
	i := strings.Index(full, endMarker)
	tests := []struct {
		name        string
		console     string
		wantCmdline string
		wantModules []string
		wantOK      bool
	}{
		{"boot", full,
			"http://192.0.2.1:8080/assets/centos/7/os/x86_64/images/pxeboot/vmlinuz inst.ks=http://192.0.2.1:8080/bootstrap/install/core/x86_64/ks.cfg inst.repo=http://192.0.2.1:8080/assets/centos/7/os/x86_64 net.ifnames=0 firstboot=http://192.0.2.1:8080/bootstrap/install/core/firstboot console=ttyS0,115200",
			[]string{"http://192.0.2.1:8080/assets/centos/7/os/x86_64/images/pxeboot/initrd.img"}, true},
		{"not yet at the end", full[:i], "", nil, false},
		{"no kernel", "iPXE\r\nNo bootable device.\r\n", "", nil, false},
		{"second boot wins", "VMPROV-CMDLINE: a\r\nVMPROV-END\r\nVMPROV-CMDLINE: b c=d\r\nVMPROV-MODULE: m\r\nVMPROV-END\r\n",
			"b c=d", []string{"m"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, mods, ok := KernelCmdline(tt.console)
			if cl != tt.wantCmdline || ok != tt.wantOK || !cmp.Equal(mods, tt.wantModules) {
				t.Errorf("KernelCmdline = %q, %q, %v; want %q, %q, %v", cl, mods, ok, tt.wantCmdline, tt.wantModules, tt.wantOK)
			}
		})
	}
}

func FuzzKernelCmdline(f *testing.F) {
	console, err := os.ReadFile("testdata/console-demo1.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(console))
	f.Add("VMPROV-CMDLINE: VMPROV-END")
	f.Fuzz(func(t *testing.T, s string) {
		cl, mods, ok := KernelCmdline(s)
		if !ok && (cl != "" || mods != nil) {
			t.Errorf("not ok but %q %q", cl, mods)
		}
		if strings.ContainsAny(cl, "\n") {
			t.Errorf("command line %q spans lines", cl)
		}
	})
}

func FuzzParseLog(f *testing.F) {
	log, err := os.ReadFile("testdata/serve.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(log)
	f.Add([]byte("{\"msg\":\"http request\"}\nnot json\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := ParseLog(bytes.NewReader(b))
		if err != nil {
			return // a line over the scanner's limit
		}
		if len(lines) > bytes.Count(b, []byte("\n"))+1 {
			t.Errorf("%d lines from %d newlines", len(lines), bytes.Count(b, []byte("\n")))
		}
		_ = Build(demo1, time.Time{}, lines).Requests()
	})
}

func TestCheck(t *testing.T) {
	lines, err := ReadLog("testdata/serve.log")
	if err != nil {
		t.Fatal(err)
	}
	console, err := os.ReadFile("testdata/console-demo1.log")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{BootURL: "http://192.0.2.1:8080", BootURL6: "http://[2001:db8:136::1]:8080", EchoKernel: true}
	boot := func(h Host, drop string, cmdline string) *Boot {
		tl := Build(h, time.Time{}, lines)
		var evs []Event
		for _, ev := range tl.Events {
			if ev.Line.File != drop {
				evs = append(evs, ev)
			}
		}
		tl.Events = evs
		b := &Boot{Host: h, Timeline: tl, Console: &Console{Path: "console.log"}}
		b.Cmdline, b.Modules, _ = KernelCmdline(cmdline)
		return b
	}
	tests := []struct {
		name    string
		b       *Boot
		wantErr []string
	}{
		{"demo1", boot(demo1, "", string(console)), nil},
		{"no pxedust", boot(demo1, "/pxedust", string(console)), []string{"requests"}},
		{"no DHCP reply", boot(demo6, "http://[2001:db8:136::1]:8080/boot.ipxe", string(console)), []string{"no DHCP reply", "firstboot=http://[2001:db8:136::1]"}},
		{"no console", boot(demo1, "", ""), []string{"printed no command line"}},
		{"no firstboot", boot(demo1, "", strings.ReplaceAll(string(console), " firstboot=", " firstboat=")), []string{"lacks \"firstboot="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.Check(tt.b)
			if (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("Check = %v, want error %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
