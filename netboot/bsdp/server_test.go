package bsdp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/vmprov/vmprov/internal/golden"
)

// seedServerID is seed 001's deploy host, 172.22.10.2: it runs the dhcpd
// (so it is option 54 of the seed's answers) and is the next-server.
var seedServerID = netip.MustParseAddr("172.22.10.2")

// seedConfig is seed 001's NetBoot setup: one image, priority 0x8000, GRUB's
// mactel64.efi for i386, and the machine name the seed sends on SELECT.
func seedConfig() ServerConfig {
	return ServerConfig{
		ServerID:    seedServerID,
		Priority:    0x8000,
		Images:      []Image{{ID: 0x81000089, Name: "The-Image", BootFile: "mactel64.efi"}},
		MachineName: "The-Image",
	}
}

// TestSeed001 checks that option 43 of each answer is byte for byte the
// vendor-encapsulated-options of seed 001's dhcpd.conf. The seed's LIST has
// no BSDP server identifier (code 3) or version (code 2), and neither has
// Apple's own server (bsdpd.c): the server identifier a client puts in its
// SELECT is DHCP option 54, which dhcpd adds itself and Apply sets.
func TestSeed001(t *testing.T) {
	tests := []struct {
		name   string
		typ    dhcpv4.MessageType
		vendor []byte
		want   string // testdata file
		boots  bool
	}{
		{"DISCOVER", dhcpv4.MessageTypeDiscover, parseHex(t, "02:02:01:01"), "seed001_discover.txt", true},
		{"INFORM[LIST]", dhcpv4.MessageTypeInform, readHex(t, "client_inform_list.txt"), "seed001_list.txt", false},
		{"INFORM[SELECT]", dhcpv4.MessageTypeInform, readHex(t, "client_inform_select.txt"), "seed001_select.txt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := newPacket(t, tt.typ, "AAPLBSDPC/i386/MacBookPro11,1", tt.vendor, dhcpv4.WithClientIP(ipMM1))
			req, err := ParseRequest(pkt)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Respond(req, seedConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := a.VendorOptions(), readHex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("option 43 = % x, want % x (%s)", got, want, tt.want)
			}
			// The seed sends filename and next-server with SELECT only;
			// Apple's server (and vmprov) also with the DISCOVER offer.
			wantFile, wantNext := "", netip.Addr{}
			if tt.boots {
				wantFile, wantNext = "mactel64.efi", seedServerID
			}
			if a.BootFile != wantFile || a.NextServer != wantNext || a.ServerID != seedServerID {
				t.Errorf("file %q, siaddr %v, option 54 %v; want %q, %v, %v",
					a.BootFile, a.NextServer, a.ServerID, wantFile, wantNext, seedServerID)
			}
		})
	}
}

func TestReplyGolden(t *testing.T) {
	cfg := seedConfig()
	cfg.ServerName = "deploy"
	tests := []struct {
		name    string
		vendor  string
		want43  []byte
		file    string
		siaddr  net.IP
		port    uint16
		failing bool
	}{
		{"list", "client_inform_list.txt", readHex(t, "seed001_list.txt"), "", net.IPv4zero, 1020, false},
		{"select", "client_inform_select.txt", readHex(t, "seed001_select.txt"), "mactel64.efi", seedServerID.AsSlice(), 68, false},
		{"failed", "", parseHex(t, "01:01:03"), "", net.IPv4zero, 68, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vendor := parseHex(t, "01:01:02 02:02:01:01 03:04:ac:16:0a:02 08:04:81:00:00:90")
			if tt.vendor != "" {
				vendor = readHex(t, tt.vendor)
			}
			req := newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/MacBookPro11,1", vendor,
				dhcpv4.WithClientIP(ipMM1))
			resp, err := Reply(req, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wire := resp.ToBytes()
			// The golden file is a hex dump, readable in a diff.
			golden.Check(t, filepath.Join("testdata", "golden", "reply_"+tt.name+".golden"), []byte(hex.Dump(wire)))

			got, err := dhcpv4.FromBytes(wire)
			if err != nil {
				t.Fatal(err)
			}
			if v := got.Options.Get(dhcpv4.OptionVendorSpecificInformation); !bytes.Equal(v, tt.want43) {
				t.Errorf("option 43 = % x, want % x", v, tt.want43)
			}
			checks := []struct {
				what      string
				got, want any
			}{
				{"op", got.OpCode, dhcpv4.OpcodeBootReply},
				{"message type", got.MessageType(), dhcpv4.MessageTypeAck},
				{"xid", got.TransactionID, req.TransactionID},
				{"chaddr", got.ClientHWAddr.String(), macMM1.String()},
				{"ciaddr", got.ClientIPAddr.String(), ipMM1.String()},
				{"yiaddr", got.YourIPAddr.String(), "0.0.0.0"},
				{"siaddr", got.ServerIPAddr.String(), tt.siaddr.String()},
				{"file", got.BootFileName, tt.file},
				{"sname", got.ServerHostName, "deploy"},
				{"option 54", got.ServerIdentifier().String(), "172.22.10.2"},
				{"option 60", got.ClassIdentifier(), "AAPLBSDPC"},
				{"reply port", ReplyPort(req), tt.port},
			}
			for _, c := range checks {
				if diff := cmp.Diff(c.want, c.got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", c.what, diff)
				}
			}
		})
	}
}

func TestRespond(t *testing.T) {
	ciaddr := netip.MustParseAddr("172.22.10.51")
	other := Image{ID: 0x01000002, Name: "Other", BootFile: "other.efi", RootPath: "http://192.0.2.1/other.dmg"}
	ppc := Image{ID: 0x01000003, Name: "PPC", BootFile: "booter", Archs: []string{ArchPPC}}
	inform := func(m Message) *Request {
		return &Request{DHCPType: dhcpv4.MessageTypeInform, ClientIP: ciaddr, Arch: ArchI386, Message: m, ReplyPort: 68}
	}
	list := Message{Type: MessageTypeList, Version: Version1_1}
	sel := func(server string, id ImageID) Message {
		m := Message{Type: MessageTypeSelect, Version: Version1_1, SelectedImage: id}
		if server != "" {
			m.ServerID = netip.MustParseAddr(server)
		}
		return m
	}
	with := func(f func(*ServerConfig)) ServerConfig {
		c := seedConfig()
		f(&c)
		return c
	}
	many := with(func(c *ServerConfig) {
		for i := range 20 {
			c.Images = append(c.Images, Image{ID: ImageID(0x81000100 + i), Name: fmt.Sprintf("Image-%02d", i), BootFile: "f"})
		}
	})
	seedList := Message{Type: MessageTypeList, ServerPriority: 0x8000, DefaultImage: 0x81000089,
		Images: []BootImage{theImage}}
	seedBoot := func(m Message) *Answer {
		return &Answer{Message: m, ServerID: seedServerID, NextServer: seedServerID, BootFile: "mactel64.efi", ReplyPort: 68}
	}

	tests := []struct {
		name    string
		req     *Request
		cfg     ServerConfig
		want    *Answer
		wantErr string // ErrIgnore with this text, unless it starts with "config:"
	}{
		{name: "LIST", req: inform(list), cfg: seedConfig(),
			want: &Answer{Message: seedList, ServerID: seedServerID, ReplyPort: 68}},
		{name: "LIST reply port", req: func() *Request { r := inform(list); r.ReplyPort = 1020; return r }(), cfg: seedConfig(),
			want: &Answer{Message: seedList, ServerID: seedServerID, ReplyPort: 1020}},
		{name: "LIST from 1.0 client has no image list",
			req: inform(Message{Type: MessageTypeList, Version: Version1_0}), cfg: seedConfig(),
			want: &Answer{Message: Message{Type: MessageTypeList, ServerPriority: 0x8000, DefaultImage: 0x81000089},
				ServerID: seedServerID, ReplyPort: 68}},
		{name: "LIST default priority and chosen default",
			req: inform(list),
			cfg: with(func(c *ServerConfig) {
				c.Priority = 0
				c.Images = append(c.Images, other, ppc)
				c.DefaultImage = other.ID
				c.ServerName = "deploy"
			}),
			want: &Answer{Message: Message{Type: MessageTypeList, ServerPriority: DefaultPriority, DefaultImage: other.ID,
				Images: []BootImage{theImage, {ID: other.ID, Name: "Other"}}}, ServerID: seedServerID, ServerName: "deploy", ReplyPort: 68}},
		{name: "LIST attributes filter",
			req: inform(Message{Type: MessageTypeList, Version: Version1_1, AttributesFilter: []uint16{0x0100}}),
			cfg: with(func(c *ServerConfig) { c.Images = append(c.Images, other) }),
			want: &Answer{Message: Message{Type: MessageTypeList, ServerPriority: 0x8000, DefaultImage: other.ID,
				Images: []BootImage{{ID: other.ID, Name: "Other"}}}, ServerID: seedServerID, ReplyPort: 68}},
		{name: "LIST for ppc", req: func() *Request { r := inform(list); r.Arch = ArchPPC; return r }(),
			cfg: with(func(c *ServerConfig) { c.Images = append(c.Images, ppc) }),
			want: &Answer{Message: Message{Type: MessageTypeList, ServerPriority: 0x8000, DefaultImage: ppc.ID,
				Images: []BootImage{{ID: ppc.ID, Name: "PPC"}}}, ServerID: seedServerID, ReplyPort: 68}},
		{name: "LIST with no image for the arch", req: func() *Request { r := inform(list); r.Arch = ArchPPC; return r }(),
			cfg: seedConfig(), wantErr: `no image for architecture "ppc"`},
		{name: "LIST cut to one DHCP option", req: inform(list), cfg: many,
			want: func() *Answer {
				// 255 - 13 (type, priority, default) - 2 (code 9 header)
				// leaves 240 bytes: The-Image (14) and 17 entries of 13.
				a := &Answer{Message: seedList, ServerID: seedServerID, ReplyPort: 68, Dropped: 3}
				a.Message.Images = nil
				for _, im := range many.Images[:18] {
					a.Message.Images = append(a.Message.Images, BootImage{ID: im.ID, Name: im.Name})
				}
				return a
			}()},
		{name: "SELECT", req: inform(sel("172.22.10.2", 0x81000089)), cfg: seedConfig(),
			want: seedBoot(Message{Type: MessageTypeSelect, SelectedImage: 0x81000089, MachineName: "The-Image"})},
		{name: "SELECT with next server and root path", req: inform(sel("172.22.10.2", other.ID)),
			cfg: with(func(c *ServerConfig) {
				c.Images = append(c.Images, other)
				c.NextServer = netip.MustParseAddr("192.0.2.1")
				c.MachineName = ""
			}),
			want: &Answer{Message: Message{Type: MessageTypeSelect, SelectedImage: other.ID}, ServerID: seedServerID,
				NextServer: netip.MustParseAddr("192.0.2.1"), BootFile: "other.efi", RootPath: other.RootPath, ReplyPort: 68}},
		{name: "SELECT without image takes the default", req: inform(sel("172.22.10.2", 0)), cfg: seedConfig(),
			want: seedBoot(Message{Type: MessageTypeSelect, SelectedImage: 0x81000089, MachineName: "The-Image"})},
		{name: "SELECT of an image not ours fails", req: inform(sel("172.22.10.2", 0x81000090)), cfg: seedConfig(),
			want: &Answer{Message: Message{Type: MessageTypeFailed}, ServerID: seedServerID, ReplyPort: 68}},
		{name: "SELECT of an image for another arch fails", req: inform(sel("172.22.10.2", ppc.ID)),
			cfg:  with(func(c *ServerConfig) { c.Images = append(c.Images, ppc) }),
			want: &Answer{Message: Message{Type: MessageTypeFailed}, ServerID: seedServerID, ReplyPort: 68}},
		{name: "SELECT without image and no default fails",
			req:  func() *Request { r := inform(sel("172.22.10.2", 0)); r.Arch = "arm"; return r }(),
			cfg:  seedConfig(),
			want: &Answer{Message: Message{Type: MessageTypeFailed}, ServerID: seedServerID, ReplyPort: 68}},
		{name: "SELECT for another server", req: inform(sel("172.22.10.3", 0x81000089)), cfg: seedConfig(),
			wantErr: "SELECT for server 172.22.10.3, not 172.22.10.2"},
		{name: "SELECT without server", req: inform(sel("", 0x81000089)), cfg: seedConfig(),
			wantErr: "SELECT without server identifier"},
		{name: "DISCOVER", req: &Request{DHCPType: dhcpv4.MessageTypeDiscover, Arch: ArchI386, ReplyPort: 68,
			Message: Message{Version: Version1_1}}, cfg: seedConfig(),
			want: seedBoot(Message{SelectedImage: 0x81000089})},
		{name: "REQUEST", req: &Request{DHCPType: dhcpv4.MessageTypeRequest, Arch: ArchI386, ReplyPort: 68,
			Message: Message{Type: MessageTypeList, Version: Version1_0}}, cfg: seedConfig(),
			want: seedBoot(Message{SelectedImage: 0x81000089})},
		{name: "DISCOVER with no image for the arch", req: &Request{DHCPType: dhcpv4.MessageTypeDiscover, Arch: ArchPPC,
			Message: Message{Version: Version1_1}}, cfg: seedConfig(), wantErr: `no image for architecture "ppc"`},
		{name: "RELEASE", req: &Request{DHCPType: dhcpv4.MessageTypeRelease, Arch: ArchI386, Message: list},
			cfg: seedConfig(), wantErr: "DHCP RELEASE"},
		{name: "INFORM without ciaddr",
			req: func() *Request { r := inform(list); r.ClientIP = netip.IPv4Unspecified(); return r }(),
			cfg: seedConfig(), wantErr: "INFORM without ciaddr"},
		{name: "no version", req: inform(Message{Type: MessageTypeList}), cfg: seedConfig(), wantErr: "no BSDP version"},
		{name: "version 2.0", req: inform(Message{Type: MessageTypeList, Version: 0x0200}), cfg: seedConfig(),
			wantErr: "unsupported BSDP version 2.0"},
		{name: "NetBoot 1.0 firmware", req: inform(Message{Type: MessageTypeList, Version: Version1_1, NetBoot10Firmware: true}),
			cfg: seedConfig(), wantErr: "NetBoot 1.0 firmware"},
		{name: "unprivileged reply port",
			req: func() *Request { r := inform(list); r.ReplyPort = 1024; return r }(),
			cfg: seedConfig(), wantErr: "reply port 1024 is not privileged"},
		{name: "DISCOVER answers go to port 68", req: &Request{DHCPType: dhcpv4.MessageTypeDiscover, Arch: ArchI386,
			ReplyPort: 2000, Message: Message{Version: Version1_1, ReplyPort: 2000}}, cfg: seedConfig(),
			want: seedBoot(Message{SelectedImage: 0x81000089})},
		{name: "no message type", req: inform(Message{Version: Version1_1}), cfg: seedConfig(), wantErr: "no BSDP message type"},
		{name: "FAILED from a client", req: inform(Message{Type: MessageTypeFailed, Version: Version1_1}), cfg: seedConfig(),
			wantErr: "client sent BSDP FAILED"},
		{name: "invalid config", req: inform(list), cfg: with(func(c *ServerConfig) { c.ServerID = netip.Addr{} }),
			wantErr: "config: server ID invalid IP is not an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Respond(tt.req, tt.cfg)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Respond = %+v, want error %q", got, tt.wantErr)
				}
				configErr := strings.HasPrefix(tt.wantErr, "config: ")
				if errors.Is(err, ErrIgnore) == configErr || !strings.Contains(err.Error(), strings.TrimPrefix(tt.wantErr, "config: ")) {
					t.Errorf("Respond error = %v, want %q (ErrIgnore: %v)", err, tt.wantErr, !configErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("Respond (-want +got):\n%s", diff)
			}
			if n := len(got.VendorOptions()); n > 255 {
				t.Errorf("option 43 of %d bytes does not fit one DHCP option", n)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		cfg  ServerConfig
		want []string // each in the error; none means valid
	}{
		{name: "seed", cfg: seedConfig()},
		{name: "everything wrong", cfg: ServerConfig{
			ServerID:     netip.MustParseAddr("2001:db8::1"),
			NextServer:   netip.MustParseAddr("2001:db8::2"),
			ServerName:   long,
			MachineName:  long,
			DefaultImage: 5,
			Images: []Image{
				{ID: 0x81000000, Name: "a", BootFile: "f"},
				{ID: 1, Name: "", BootFile: long, RootPath: long, Archs: []string{"", "i386/x"}},
				{ID: 1, Name: long[:247], BootFile: "f"},
			},
		}, want: []string{
			"server ID 2001:db8::1 is not an IPv4 address",
			"next server 2001:db8::2 is not an IPv4 address",
			"server name of 300 bytes",
			"machine name of 300 bytes",
			"image 0x81000000: index 0 is reserved",
			"image 0x00000001: name of 0 bytes, want 1 to 246",
			"image 0x00000001: boot file of 300 bytes",
			"image 0x00000001: root path of 300 bytes",
			`image 0x00000001: architecture "" is not`,
			`image 0x00000001: architecture "i386/x" is not`,
			"image 0x00000001: listed twice",
			"image 0x00000001: name of 247 bytes",
			"default image 0x00000005 is not among the images",
		}},
		{name: "no images", cfg: ServerConfig{ServerID: seedServerID}, want: []string{"no images"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestReplyErrors(t *testing.T) {
	list := readHex(t, "client_inform_list.txt")
	tests := []struct {
		name    string
		pkt     *dhcpv4.DHCPv4
		isErr   error // nil: neither ErrIgnore nor ErrNotBSDP
		wantErr string
	}{
		{"not BSDP", newPacket(t, dhcpv4.MessageTypeInform, "PXEClient", list, dhcpv4.WithClientIP(ipMM1)),
			ErrNotBSDP, "vendor class"},
		{"DISCOVER", newPacket(t, dhcpv4.MessageTypeDiscover, "AAPLBSDPC/i386/M", list), nil, "Answer.Apply"},
		{"ignored", newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/M", list), ErrIgnore, "INFORM without ciaddr"},
		{"too large even without images", newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/M", parseHex(t, "01:01:01 02:02:01:01"),
			dhcpv4.WithClientIP(ipMM1),
			dhcpv4.WithGeneric(dhcpv4.OptionClientIdentifier, bytes.Repeat([]byte{1}, 255)),
			dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, bytes.Repeat([]byte{1, 1, 0}, 85)),
		), nil, "exceeds the client's maximum message size of 576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := Reply(tt.pkt, seedConfig())
			if err == nil {
				t.Fatalf("Reply = %v, want an error", resp)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Errorf("error %v does not wrap %v", err, tt.isErr)
			}
			if tt.isErr == nil && (errors.Is(err, ErrIgnore) || errors.Is(err, ErrNotBSDP)) {
				t.Errorf("error %v wraps ErrIgnore or ErrNotBSDP", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

// TestReplyMaxMessageSize: a LIST too large for the client's 576 bytes
// loses images from the end until it fits.
func TestReplyMaxMessageSize(t *testing.T) {
	cfg := seedConfig()
	for i := range 20 {
		cfg.Images = append(cfg.Images, Image{ID: ImageID(0x81000100 + i), Name: fmt.Sprintf("Image-%02d", i), BootFile: "f"})
	}
	vendor := parseHex(t, "01:01:01 02:02:01:01")
	for _, tt := range []struct {
		name       string
		clientID   int // bytes of option 61, copied into the reply
		wantImages int
	}{
		// 28 + 240 (header) + 3, 6, 11 (options 53, 54, 60) + 1 (end) +
		// 2 + 15 + 14 + 13(n-1) (option 43 with n images) = 331 + 13(n-1),
		// plus 202 with option 61: n = 5 fits 576.
		{"fits", 0, 18}, // only the 255-byte option 43 limit applies
		{"cut", 200, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mods []dhcpv4.Modifier
			mods = append(mods, dhcpv4.WithClientIP(ipMM1))
			if tt.clientID > 0 {
				mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionClientIdentifier, bytes.Repeat([]byte{7}, tt.clientID)))
			}
			req := newPacket(t, dhcpv4.MessageTypeInform, "AAPLBSDPC/i386/M", vendor, mods...)
			resp, err := Reply(req, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resp.ToBytes()) + 28; n > 576 {
				t.Errorf("reply of %d bytes exceeds 576", n)
			}
			m, err := Decode(resp.Options.Get(dhcpv4.OptionVendorSpecificInformation))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Images) != tt.wantImages || m.Images[0] != theImage {
				t.Errorf("ACK[LIST] has %d images starting %v, want %d starting %v", len(m.Images), m.Images[0], tt.wantImages, theImage)
			}
		})
	}
}

func TestApply(t *testing.T) {
	// An OFFER the DHCP server built for a DISCOVER, with the address it gives.
	offer, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(ipMM1), dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))))
	if err != nil {
		t.Fatal(err)
	}
	a := &Answer{
		Message:    Message{SelectedImage: 0x81000089},
		ServerID:   seedServerID,
		NextServer: seedServerID,
		BootFile:   "mactel64.efi",
		RootPath:   "http://172.22.10.2/x.dmg",
		ServerName: "deploy",
	}
	a.Apply(offer)
	checks := []struct {
		what      string
		got, want any
	}{
		{"message type", offer.MessageType(), dhcpv4.MessageTypeOffer},
		{"yiaddr", offer.YourIPAddr.String(), "172.22.10.51"},
		{"mask", offer.SubnetMask().String(), "ffffff00"},
		{"option 43", offer.Options.Get(dhcpv4.OptionVendorSpecificInformation), readHex(t, "seed001_discover.txt")},
		{"option 60", offer.ClassIdentifier(), "AAPLBSDPC"},
		{"option 54", offer.ServerIdentifier().String(), "172.22.10.2"},
		{"option 17", offer.RootPath(), "http://172.22.10.2/x.dmg"},
		{"siaddr", offer.ServerIPAddr.String(), "172.22.10.2"},
		{"sname", offer.ServerHostName, "deploy"},
		{"file", offer.BootFileName, "mactel64.efi"},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.what, diff)
		}
	}
}
