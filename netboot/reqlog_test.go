package netboot_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vmprov/vmprov/netboot"
)

// A RequestLog writes what slog.Logger.With would have: the shared
// attributes in order, then the line's own; branches taken with With do
// not see each other's attributes, and disabled levels write nothing.
func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("proto", "dhcp4")
	base := netboot.NewRequestLog(l, "mac", "02:04:06:08:72:0a", "xid", "0x1")
	withHost := base.With("host", "demo1.example.com.")
	// A sibling branch appended to the same shared prefix must not
	// overwrite withHost's attribute.
	withVLAN := base.With("vlan", 135)
	withHost.Info("dhcp4 OFFER", "file", "boot.ipxe")
	withVLAN.Warn("odd")
	base.Debug("ignored traffic")
	base.Error("declined")

	want := []string{
		`level=INFO msg="dhcp4 OFFER" proto=dhcp4 mac=02:04:06:08:72:0a xid=0x1 host=demo1.example.com. file=boot.ipxe`,
		`level=WARN msg=odd proto=dhcp4 mac=02:04:06:08:72:0a xid=0x1 vlan=135`,
		`level=ERROR msg=declined proto=dhcp4 mac=02:04:06:08:72:0a xid=0x1`,
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(buf.String()), "\n")); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}
