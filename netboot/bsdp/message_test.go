package bsdp

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var theImage = BootImage{ID: 0x81000089, Name: "The-Image"}

func TestDecodeTestdata(t *testing.T) {
	tests := []struct {
		file string
		want Message
		// canonical inputs come back byte for byte from Encode.
		canonical bool
	}{
		{"seed001_discover.txt", Message{SelectedImage: 0x81000089}, true},
		{"seed001_list.txt", Message{
			Type:           MessageTypeList,
			ServerPriority: 0x8000,
			DefaultImage:   0x81000089,
			Images:         []BootImage{theImage},
		}, true},
		{"seed001_select.txt", Message{
			Type:          MessageTypeSelect,
			SelectedImage: 0x81000089,
			MachineName:   "The-Image",
		}, true},
		{"client_inform_list.txt", Message{
			Type:           MessageTypeList,
			Version:        Version1_1,
			ReplyPort:      1020,
			MaxMessageSize: 1500,
		}, true},
		{"client_inform_select.txt", Message{
			Type:           MessageTypeSelect,
			Version:        Version1_1,
			ServerID:       netip.MustParseAddr("172.22.10.2"),
			SelectedImage:  0x81000089,
			MaxMessageSize: 1500,
		}, true},
		{"client_list_filter.txt", Message{
			Type:              MessageTypeList,
			Version:           Version1_1,
			NetBoot10Firmware: true,
			ReplyPort:         68,
			MaxMessageSize:    1500,
			AttributesFilter:  []uint16{0x8100, 0x0100},
		}, false},
		{"padded_unknown.txt", Message{
			Type:    MessageTypeSelect,
			Unknown: []Option{{Code: 200, Value: []byte("abc")}},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := readHex(t, tt.file)
			got, err := Decode(in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got, cmpOpts); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			enc := got.Encode()
			if tt.canonical && !bytes.Equal(enc, in) {
				t.Errorf("Encode = % x, want % x", enc, in)
			}
			again, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if diff := cmp.Diff(got, again, cmpOpts); diff != "" {
				t.Errorf("Decode(Encode) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // in the error text
	}{
		{"no length byte", "01", "no length byte"},
		{"length beyond end", "01:02:01", "length 2 exceeds the 1 bytes left"},
		{"message type of 2 bytes", "01:02:01:01", "length 2, want 1"},
		{"version of 1 byte", "02:01:01", "length 1, want 2"},
		{"server id of 3 bytes", "03:03:ac:16:0a", "length 3, want 4"},
		{"priority of 3 bytes", "04:03:80:00:00", "length 3, want 2"},
		{"reply port of 0 bytes", "05:00", "length 0, want 2"},
		{"default image of 2 bytes", "07:02:00:89", "length 2, want 4"},
		{"selected image of 5 bytes", "08:05:81:00:00:89:00", "length 5, want 4"},
		{"max size of 1 byte", "0c:01:05", "length 1, want 2"},
		{"image entry too short", "09:04:81:00:00:89", "image entry of 4 bytes"},
		{"image name overruns", "09:06:81:00:00:89:02:41", "image name length 2 exceeds the 1 bytes left"},
		{"second image short", "09:08:81:00:00:89:00:81:00:00", "image entry of 3 bytes"},
		{"odd attributes", "0b:03:81:00:01", "odd length 3"},
		{"netboot 1.0 with a value", "0a:01:01", "length 1, want 0"},
		{"bad duplicate", "01:01:01:01:00", "length 0, want 1"},
		{"error offset", "01:01:01:02:01:01", "option 2 at offset 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(parseHex(t, tt.in))
			if err == nil {
				t.Fatalf("Decode = %v, want an error", m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range [][]byte{nil, {}, {0}, {255}, {0, 0, 255, 1}} {
		m, err := Decode(in)
		if err != nil {
			t.Fatalf("Decode(% x): %v", in, err)
		}
		if diff := cmp.Diff(&Message{}, m, cmpOpts); diff != "" {
			t.Errorf("Decode(% x) (-want +got):\n%s", in, diff)
		}
		if enc := m.Encode(); len(enc) != 0 {
			t.Errorf("Encode = % x, want nothing", enc)
		}
	}
}

func TestDecodeJoinsLists(t *testing.T) {
	in := parseHex(t, `
		09:05:00:00:00:01:00          # image 1, no name
		01:01:01
		09:07:00:00:00:02:02:41:42    # image 2 "AB"
		0b:02:01:00 0b:02:81:00       # two filter TLVs
	`)
	got, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Type:             MessageTypeList,
		Images:           []BootImage{{ID: 1}, {ID: 2, Name: "AB"}},
		AttributesFilter: []uint16{0x0100, 0x8100},
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}

func TestEncodeAll(t *testing.T) {
	m := &Message{
		Type:              MessageTypeSelect,
		Version:           Version1_1,
		ServerID:          netip.MustParseAddr("::ffff:192.0.2.1"),
		ServerPriority:    7,
		ReplyPort:         1020,
		BootImageListPath: "p",
		DefaultImage:      0x01000001,
		SelectedImage:     0x81000002,
		Images:            []BootImage{{ID: 3, Name: "n"}},
		NetBoot10Firmware: true,
		AttributesFilter:  []uint16{0x8100},
		MaxMessageSize:    1500,
		ShadowMountPath:   "afp://u:p@h/v",
		ShadowFilePath:    "s",
		MachineName:       "m",
		Unknown:           []Option{{Code: 99, Value: []byte{1}}, {Code: 13}},
	}
	want := parseHex(t, `
		01:01:02 02:02:01:01 03:04:c0:00:02:01 04:02:00:07 05:02:03:fc 06:01:70
		07:04:01:00:00:01 08:04:81:00:00:02 09:06:00:00:00:03:01:6e 0a:00
		0b:02:81:00 0c:02:05:dc 80:0d:61:66:70:3a:2f:2f:75:3a:70:40:68:2f:76
		81:01:73 82:01:6d 63:01:01 0d:00
	`)
	if got := m.Encode(); !bytes.Equal(got, want) {
		t.Errorf("Encode =\n% x\nwant\n% x", got, want)
	}
	wantString := `SELECT version=1.1 server_id=::ffff:192.0.2.1 priority=7 reply_port=1020 image_list_path="p" ` +
		`default=0x01000001 selected=0x81000002 images=[0x00000003:"n"] netboot1.0 attributes=[0x8100] ` +
		`max_message_size=1500 shadow_mount_path=<13 bytes> shadow_file_path="s" machine_name="m" option99=01 option13=`
	if got := m.String(); got != wantString {
		t.Errorf("String =\n%s\nwant\n%s", got, wantString)
	}
}

func TestEncodeSplitsLongLists(t *testing.T) {
	m := &Message{Type: MessageTypeList}
	for i := range 40 {
		m.Images = append(m.Images, BootImage{ID: ImageID(0x81000000 + i + 1), Name: strings.Repeat("x", 20+i)})
	}
	for i := range 300 {
		m.AttributesFilter = append(m.AttributesFilter, uint16(i))
	}
	enc := m.Encode()
	tlvs := map[Code]int{}
	for i := 0; i < len(enc); i += 2 + int(enc[i+1]) {
		tlvs[Code(enc[i])]++
	}
	// 40 entries of 25 to 64 bytes (1780) need at least 7 TLVs of at most
	// 255 bytes; 300 attributes need 3 of at most 127. Decode below fails
	// if an entry straddles two TLVs.
	if tlvs[CodeBootImageList] < 7 || tlvs[CodeAttributesFilter] != 3 {
		t.Errorf("TLVs per code = %v, want at least 7 image lists and 3 filters", tlvs)
	}
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got, cmpOpts); diff != "" {
		t.Errorf("Decode(Encode) (-want +got):\n%s", diff)
	}
}

func TestEncodeCuts(t *testing.T) {
	long := strings.Repeat("n", 300)
	m := &Message{
		Images:      []BootImage{{ID: 1, Name: long}},
		MachineName: long,
		ServerID:    netip.MustParseAddr("2001:db8::1"),
		Unknown:     []Option{{Code: 0, Value: []byte{1}}, {Code: 255}, {Code: 200, Value: []byte(long)}},
	}
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Images:      []BootImage{{ID: 1, Name: long[:250]}},
		MachineName: long[:255],
		Unknown:     []Option{{Code: 200, Value: []byte(long[:255])}},
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("Decode(Encode) (-want +got):\n%s", diff)
	}
	var nilMsg *Message
	if nilMsg.Encode() != nil || nilMsg.String() != "<nil>" {
		t.Error("nil Message does not encode to nothing")
	}
}

func TestImageID(t *testing.T) {
	tests := []struct {
		id      ImageID
		install bool
		kind    ImageKind
		index   uint16
		attrs   uint16
		str     string
	}{
		{0x81000089, true, KindMacOSX, 137, 0x8100, "0x81000089"},
		{0x01000001, false, KindMacOSX, 1, 0x0100, "0x01000001"},
		{0x83001000, true, KindDiagnostics, 4096, 0x8300, "0x83001000"},
		{0x00000007, false, KindMacOS9, 7, 0, "0x00000007"},
		{0x7f00ffff, false, 0x7f, 0xffff, 0x7f00, "0x7f00ffff"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			got := struct {
				Install bool
				Kind    ImageKind
				Index   uint16
				Attrs   uint16
				Str     string
				New     ImageID
			}{tt.id.Install(), tt.id.Kind(), tt.id.Index(), tt.id.Attributes(), tt.id.String(),
				NewImageID(tt.install, tt.kind, tt.index)}
			want := got
			want.Install, want.Kind, want.Index, want.Attrs, want.Str, want.New = tt.install, tt.kind, tt.index, tt.attrs, tt.str, tt.id
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := NewImageID(false, 0xff, 1); got != 0x7f000001 {
		t.Errorf("NewImageID with kind 0xff = %s, want the kind masked to 7 bits", got)
	}
	for k, want := range map[ImageKind]string{KindMacOS9: "Mac OS 9", KindMacOSX: "Mac OS X",
		KindMacOSXServer: "Mac OS X Server", KindDiagnostics: "Hardware Diagnostics", 9: "ImageKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("ImageKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{MessageTypeList.String(), "LIST"},
		{MessageTypeSelect.String(), "SELECT"},
		{MessageTypeFailed.String(), "FAILED"},
		{MessageType(9).String(), "MessageType(9)"},
		{Version1_0.String(), "1.0"},
		{Version1_1.String(), "1.1"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
