package bsdp

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Seed 001's Mac mini mm1.
var (
	macMM1 = net.HardwareAddr{0xa8, 0x20, 0x66, 0x34, 0xff, 0xe9}
	ipMM1  = net.IPv4(172, 22, 10, 51).To4()
)

// newPacket builds a client packet of DHCP type typ with vendor class class
// and, when vendor is not nil, option 43 vendor.
func newPacket(t testing.TB, typ dhcpv4.MessageType, class string, vendor []byte, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mods = append([]dhcpv4.Modifier{
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{0x4d, 0x61, 0x63, 0x73}),
		dhcpv4.WithHwAddr(macMM1),
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(class)),
	}, mods...)
	if vendor != nil {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, vendor))
	}
	p, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseVendorClass(t *testing.T) {
	tests := []struct {
		in          string
		arch, model string
		ok          bool
	}{
		{"AAPLBSDPC/i386/MacBookPro11,1", "i386", "MacBookPro11,1", true},
		{"AAPLBSDPC/ppc/PowerMac3,1", "ppc", "PowerMac3,1", true},
		{"AAPLBSDPC/i386/a/b", "i386", "a/b", true},
		{"AAPLBSDPC//", "", "", true},
		{"AAPLBSDPC", "", "", false},
		{"AAPLBSDPC/i386", "", "", false},
		{"AAPLBSDPCX/i386/M", "", "", false},
		{"aaplbsdpc/i386/M", "", "", false},
		{"AAPLBSDPC/i386/Mac\x00", "", "", false},
		{"AAPLBSDPC/i3\n86/Mac", "", "", false},
		{"PXEClient:Arch:00000:UNDI:002001", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			arch, model, ok := ParseVendorClass(tt.in)
			if arch != tt.arch || model != tt.model || ok != tt.ok {
				t.Errorf("ParseVendorClass(%q) = %q, %q, %v, want %q, %q, %v", tt.in, arch, model, ok, tt.arch, tt.model, tt.ok)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	list := readHex(t, "client_inform_list.txt")
	tests := []struct {
		name    string
		pkt     *dhcpv4.DHCPv4
		want    *Request
		wantErr error
	}{
		{
			name: "INFORM[LIST] with reply port and BSDP max size",
			pkt: newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/MacBookPro11,1", list,
				dhcpv4.WithClientIP(ipMM1), dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1000))),
			want: &Request{
				DHCPType:       dhcpv4.MessageTypeInform,
				ClientIP:       netip.MustParseAddr("172.22.10.51"),
				Arch:           "i386",
				Model:          "MacBookPro11,1",
				Message:        Message{Type: MessageTypeList, Version: Version1_1, ReplyPort: 1020, MaxMessageSize: 1500},
				ReplyPort:      1020,
				MaxMessageSize: 1500,
			},
		},
		{
			name: "DISCOVER without option 43 takes DHCP max size",
			pkt: newPacket(t, dhcpv4.MessageTypeDiscover, "AAPLBSDPC/i386/iMac12,1", nil,
				dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1400))),
			want: &Request{
				DHCPType:       dhcpv4.MessageTypeDiscover,
				ClientIP:       netip.MustParseAddr("0.0.0.0"),
				Arch:           "i386",
				Model:          "iMac12,1",
				ReplyPort:      68,
				MaxMessageSize: 1400,
			},
		},
		{
			name: "sizes below 576 count as 576",
			pkt: newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/ppc/PowerMac3,1", parseHex(t, "0c:02:01:00"),
				dhcpv4.WithClientIP(ipMM1)),
			want: &Request{
				DHCPType:       dhcpv4.MessageTypeInform,
				ClientIP:       netip.MustParseAddr("172.22.10.51"),
				Arch:           "ppc",
				Model:          "PowerMac3,1",
				Message:        Message{MaxMessageSize: 256},
				ReplyPort:      68,
				MaxMessageSize: 576,
			},
		},
		{
			name:    "PXE client",
			pkt:     newPacket(t, dhcpv4.MessageTypeDiscover, "PXEClient:Arch:00000:UNDI:002001", nil),
			wantErr: ErrNotBSDP,
		},
		{
			name:    "server vendor class",
			pkt:     newPacket(t, dhcpv4.MessageTypeAck, "AAPLBSDPC", list),
			wantErr: ErrNotBSDP,
		},
		{
			name:    "malformed option 43",
			pkt:     newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/M", parseHex(t, "01:05:01")),
			wantErr: ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest(tt.pkt)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRequest error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("ParseRequest (-want +got):\n%s", diff)
			}
			if wantBSDP := !errors.Is(tt.wantErr, ErrNotBSDP); IsBSDP(tt.pkt) != wantBSDP {
				t.Errorf("IsBSDP = %v, want %v", !wantBSDP, wantBSDP)
			}
		})
	}
}

func TestReplyPort(t *testing.T) {
	tests := []struct {
		name   string
		vendor []byte
		want   uint16
	}{
		{"code 5", readHex(t, "client_inform_list.txt"), 1020},
		{"no code 5", readHex(t, "client_inform_select.txt"), 68},
		{"no option 43", nil, 68},
		{"malformed", parseHex(t, "05:01:03"), 68},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/M", tt.vendor)
			if got := ReplyPort(pkt); got != tt.want {
				t.Errorf("ReplyPort = %d, want %d", got, tt.want)
			}
		})
	}
}
