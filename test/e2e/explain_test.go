package e2e

import (
	"encoding/json"
	"testing"

	"github.com/vmprov/vmprov/test/lab/demo"
)

// explained is the part of `vmprov explain -o json` the e2e tests compare
// with what serve answered the booting VM.
type explained struct {
	Host *struct {
		FQDN         string `json:"fqdn"`
		MAC          string `json:"mac"`
		IdentifiedBy string `json:"identified_by"`
	} `json:"host"`
	DHCPv4 *struct {
		Address string `json:"address"`
		File    string `json:"file"`
	} `json:"dhcp4"`
	DHCPv6 *struct {
		File string `json:"file"`
	} `json:"dhcp6"`
	HTTP []struct {
		Path   string `json:"path"`
		Status string `json:"status"`
		SHA256 string `json:"sha256"`
	} `json:"http"`
}

// checkExplain runs `vmprov explain NAME -o json` in the lab after the
// boot b and checks that it predicts, byte for byte, what the running serve
// answered the real client: the boot file of its DHCP answer (DHCPv4 ACK,
// or DHCPv6 Reply on an IPv6-only VLAN) and the /pxedust script, whose
// sha256 serve logs with the request.
func checkExplain(t *testing.T, e *demo.Env, b *demo.Boot) {
	t.Helper()
	out, err := e.Vmprov(t.Context(), "explain", b.Host.Name, "-o", "json")
	if err != nil {
		t.Fatalf("vmprov explain %s: %v", b.Host.Name, err)
	}
	var x explained
	if err := json.Unmarshal(out, &x); err != nil {
		t.Fatalf("vmprov explain %s -o json: %v\n%s", b.Host.Name, err, out)
	}
	if x.Host == nil || x.Host.MAC != b.Host.MAC || x.Host.IdentifiedBy == "" {
		t.Fatalf("explain identified %+v, want the host with MAC %s", x.Host, b.Host.MAC)
	}
	if b.Host.IPv4.IsValid() {
		ack, ok := b.Timeline.First(demo.DHCP4, "dhcp4 ACK")
		switch {
		case !ok:
			t.Errorf("no DHCPv4 ACK logged to compare explain with")
		case x.DHCPv4 == nil || x.DHCPv4.File != ack.Line.File || x.DHCPv4.Address != b.Host.IPv4.String():
			t.Errorf("explain DHCPv4 = %+v, serve ACKed %s with boot file %q", x.DHCPv4, b.Host.IPv4, ack.Line.File)
		}
	} else {
		reply, ok := b.Timeline.First(demo.DHCP6, "dhcp6 REPLY")
		switch {
		case !ok:
			t.Errorf("no DHCPv6 Reply logged to compare explain with")
		case x.DHCPv6 == nil || x.DHCPv6.File != reply.Line.File:
			t.Errorf("explain DHCPv6 = %+v, serve's Reply had boot file %q", x.DHCPv6, reply.Line.File)
		}
	}
	var served string
	for _, ev := range b.Timeline.Events {
		if ev.Kind == demo.HTTP && ev.Line.File == "/pxedust" && ev.Line.Status == 200 {
			served = ev.Line.SHA256
		}
	}
	var predicted string
	for _, f := range x.HTTP {
		if f.Path == "/pxedust" {
			predicted = f.SHA256
		}
	}
	if served == "" || predicted != served {
		t.Errorf("explain's /pxedust has sha256 %q; serve logged %q for the one it sent", predicted, served)
	}
}
