package bsdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Code is a BSDP option code inside DHCP option 43 (Apple bootp bsdp.h,
// bsdptag_t).
type Code uint8

// BSDP option codes: 1-12 are protocol options, 128-130 describe the
// selected image.
const (
	CodeMessageType       Code = 1   // uint8, MessageType
	CodeVersion           Code = 2   // uint16, Version
	CodeServerID          Code = 3   // IPv4 address
	CodeServerPriority    Code = 4   // uint16, higher wins
	CodeReplyPort         Code = 5   // uint16, privileged port
	CodeBootImageListPath Code = 6   // string, unused by Apple
	CodeDefaultImage      Code = 7   // uint32, ImageID
	CodeSelectedImage     Code = 8   // uint32, ImageID
	CodeBootImageList     Code = 9   // BootImage entries
	CodeNetBoot10Firmware Code = 10  // no value: NetBoot 1.0 firmware
	CodeAttributesFilter  Code = 11  // uint16 list of image attributes
	CodeMaxMessageSize    Code = 12  // uint16, bytes
	CodeShadowMountPath   Code = 128 // string (URL)
	CodeShadowFilePath    Code = 129 // string
	CodeMachineName       Code = 130 // string
)

// MessageType is the BSDP message type (code 1).
type MessageType uint8

// BSDP message types (bsdp.h bsdp_msgtype_t). FAILED is only sent by
// servers, in answer to a SELECT they cannot honour.
const (
	MessageTypeList   MessageType = 1
	MessageTypeSelect MessageType = 2
	MessageTypeFailed MessageType = 3
)

// String returns LIST, SELECT, FAILED or MessageType(n).
func (t MessageType) String() string {
	switch t {
	case MessageTypeList:
		return "LIST"
	case MessageTypeSelect:
		return "SELECT"
	case MessageTypeFailed:
		return "FAILED"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Version is the BSDP protocol version (code 2), major in the high byte.
type Version uint16

// BSDP versions clients send. A 1.0 client is not sent the image list.
const (
	Version1_0 Version = 0x0100
	Version1_1 Version = 0x0101
)

// String returns "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v>>8, v&0xff) }

// Option is a BSDP option this package has no field for, kept as received.
type Option struct {
	Code  Code
	Value []byte
}

// ErrMalformed is wrapped by every Decode error.
var ErrMalformed = errors.New("malformed BSDP options")

// maxNameLen is the longest image name one code 9 TLV can carry
// (255 - 4 bytes ID - 1 byte length).
const maxNameLen = 255 - 5

// Message is a BSDP message: the content of DHCP option 43 in a packet whose
// vendor class is AAPLBSDPC. A zero field is an absent option (a TLV whose
// value is zero decodes as absent too); ServerID is absent when invalid.
type Message struct {
	Type              MessageType // code 1
	Version           Version     // code 2
	ServerID          netip.Addr  // code 3, IPv4
	ServerPriority    uint16      // code 4
	ReplyPort         uint16      // code 5
	BootImageListPath string      // code 6
	DefaultImage      ImageID     // code 7
	SelectedImage     ImageID     // code 8
	// Images is the boot image list (code 9). On the wire it may span
	// several code 9 TLVs, each at most 255 bytes; Decode joins them.
	Images            []BootImage
	NetBoot10Firmware bool     // code 10
	AttributesFilter  []uint16 // code 11; several TLVs are joined too
	MaxMessageSize    uint16   // code 12
	ShadowMountPath   string   // code 128
	ShadowFilePath    string   // code 129
	MachineName       string   // code 130
	// Unknown holds options of other codes in the order received.
	Unknown []Option
}

// Decode parses the content of DHCP option 43. Pad (0) is skipped and End
// (255) ends the options, as in DHCP. When a single-valued option appears
// twice the first one counts, as in Apple's dhcpol_find; both must be well
// formed. Every error wraps ErrMalformed.
func Decode(b []byte) (*Message, error) {
	m := &Message{}
	var seen [256]bool
	for i := 0; i < len(b); {
		code := Code(b[i])
		if code == 0 {
			i++
			continue
		}
		if code == 255 {
			break
		}
		if i+1 >= len(b) {
			return nil, fmt.Errorf("bsdp: decode: option %d at offset %d: no length byte: %w", code, i, ErrMalformed)
		}
		n := int(b[i+1])
		if rest := len(b) - i - 2; n > rest {
			return nil, fmt.Errorf("bsdp: decode: option %d at offset %d: length %d exceeds the %d bytes left: %w",
				code, i, n, rest, ErrMalformed)
		}
		if err := m.decodeOption(code, b[i+2:i+2+n], seen[code]); err != nil {
			return nil, fmt.Errorf("bsdp: decode: option %d at offset %d: %w", code, i, err)
		}
		seen[code] = true
		i += 2 + n
	}
	return m, nil
}

// decodeOption checks v, the value of one TLV, and stores it in m unless a
// single-valued option was already seen.
func (m *Message) decodeOption(code Code, v []byte, seen bool) error {
	wantLen := func(n int) error {
		if len(v) != n {
			return fmt.Errorf("length %d, want %d: %w", len(v), n, ErrMalformed)
		}
		return nil
	}
	switch code {
	case CodeMessageType:
		if err := wantLen(1); err != nil {
			return err
		}
		if !seen {
			m.Type = MessageType(v[0])
		}
	case CodeVersion, CodeServerPriority, CodeReplyPort, CodeMaxMessageSize:
		if err := wantLen(2); err != nil {
			return err
		}
		if seen {
			return nil
		}
		u := binary.BigEndian.Uint16(v)
		switch code {
		case CodeVersion:
			m.Version = Version(u)
		case CodeServerPriority:
			m.ServerPriority = u
		case CodeReplyPort:
			m.ReplyPort = u
		default:
			m.MaxMessageSize = u
		}
	case CodeServerID:
		if err := wantLen(4); err != nil {
			return err
		}
		if !seen {
			m.ServerID = netip.AddrFrom4([4]byte(v))
		}
	case CodeDefaultImage, CodeSelectedImage:
		if err := wantLen(4); err != nil {
			return err
		}
		if seen {
			return nil
		}
		if code == CodeDefaultImage {
			m.DefaultImage = ImageID(binary.BigEndian.Uint32(v))
		} else {
			m.SelectedImage = ImageID(binary.BigEndian.Uint32(v))
		}
	case CodeBootImageList:
		for len(v) > 0 {
			if len(v) < 5 {
				return fmt.Errorf("image entry of %d bytes, want at least 5: %w", len(v), ErrMalformed)
			}
			n := int(v[4])
			if n > len(v)-5 {
				return fmt.Errorf("image name length %d exceeds the %d bytes left: %w", n, len(v)-5, ErrMalformed)
			}
			m.Images = append(m.Images, BootImage{
				ID:   ImageID(binary.BigEndian.Uint32(v)),
				Name: string(v[5 : 5+n]),
			})
			v = v[5+n:]
		}
	case CodeNetBoot10Firmware:
		if err := wantLen(0); err != nil {
			return err
		}
		m.NetBoot10Firmware = true
	case CodeAttributesFilter:
		if len(v)%2 != 0 {
			return fmt.Errorf("odd length %d for a list of 16-bit attributes: %w", len(v), ErrMalformed)
		}
		for ; len(v) > 0; v = v[2:] {
			m.AttributesFilter = append(m.AttributesFilter, binary.BigEndian.Uint16(v))
		}
	case CodeBootImageListPath, CodeShadowMountPath, CodeShadowFilePath, CodeMachineName:
		if seen {
			return nil
		}
		s := string(v)
		switch code {
		case CodeBootImageListPath:
			m.BootImageListPath = s
		case CodeShadowMountPath:
			m.ShadowMountPath = s
		case CodeShadowFilePath:
			m.ShadowFilePath = s
		default:
			m.MachineName = s
		}
	default:
		m.Unknown = append(m.Unknown, Option{Code: code, Value: append([]byte(nil), v...)})
	}
	return nil
}

// Encode returns the content of DHCP option 43 for m: the options present in
// ascending code order, then Unknown in its order. The image list is split
// into code 9 TLVs of at most 255 bytes, names longer than 250 bytes and
// strings longer than 255 bytes are cut, an IPv6 ServerID and Unknown
// options with code 0 or 255 are left out. Decode(Encode(m)) equals m for
// every m Decode returns, and Encode gives seed 001's bytes for its messages.
func (m *Message) Encode() []byte {
	if m == nil {
		return nil
	}
	var b []byte
	put := func(c Code, v []byte) {
		if len(v) > 255 {
			v = v[:255]
		}
		b = append(b, byte(c), byte(len(v)))
		b = append(b, v...)
	}
	put16 := func(c Code, u uint16) {
		if u != 0 {
			put(c, binary.BigEndian.AppendUint16(nil, u))
		}
	}
	put32 := func(c Code, u uint32) {
		if u != 0 {
			put(c, binary.BigEndian.AppendUint32(nil, u))
		}
	}
	putString := func(c Code, s string) {
		if s != "" {
			put(c, []byte(s))
		}
	}

	if m.Type != 0 {
		put(CodeMessageType, []byte{byte(m.Type)})
	}
	put16(CodeVersion, uint16(m.Version))
	if a := m.ServerID.Unmap(); a.Is4() {
		v := a.As4()
		put(CodeServerID, v[:])
	}
	put16(CodeServerPriority, m.ServerPriority)
	put16(CodeReplyPort, m.ReplyPort)
	putString(CodeBootImageListPath, m.BootImageListPath)
	put32(CodeDefaultImage, uint32(m.DefaultImage))
	put32(CodeSelectedImage, uint32(m.SelectedImage))
	var chunk []byte
	for _, im := range m.Images {
		name := im.Name
		if len(name) > maxNameLen {
			name = name[:maxNameLen]
		}
		if len(chunk)+5+len(name) > 255 {
			put(CodeBootImageList, chunk)
			chunk = nil
		}
		chunk = binary.BigEndian.AppendUint32(chunk, uint32(im.ID))
		chunk = append(chunk, byte(len(name)))
		chunk = append(chunk, name...)
	}
	if len(chunk) > 0 {
		put(CodeBootImageList, chunk)
	}
	if m.NetBoot10Firmware {
		put(CodeNetBoot10Firmware, nil)
	}
	for attrs := m.AttributesFilter; len(attrs) > 0; {
		n := min(len(attrs), 127)
		var v []byte
		for _, a := range attrs[:n] {
			v = binary.BigEndian.AppendUint16(v, a)
		}
		put(CodeAttributesFilter, v)
		attrs = attrs[n:]
	}
	put16(CodeMaxMessageSize, m.MaxMessageSize)
	putString(CodeShadowMountPath, m.ShadowMountPath)
	putString(CodeShadowFilePath, m.ShadowFilePath)
	putString(CodeMachineName, m.MachineName)
	for _, o := range m.Unknown {
		if o.Code != 0 && o.Code != 255 {
			put(o.Code, o.Value)
		}
	}
	return b
}

// String summarises m for logs. The shadow mount path is not shown: Apple
// servers put an AFP password in it.
func (m *Message) String() string {
	if m == nil {
		return "<nil>"
	}
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if m.Type != 0 {
		add("%s", m.Type)
	}
	if m.Version != 0 {
		add("version=%s", m.Version)
	}
	if m.ServerID.IsValid() {
		add("server_id=%s", m.ServerID)
	}
	if m.ServerPriority != 0 {
		add("priority=%d", m.ServerPriority)
	}
	if m.ReplyPort != 0 {
		add("reply_port=%d", m.ReplyPort)
	}
	if m.BootImageListPath != "" {
		add("image_list_path=%q", m.BootImageListPath)
	}
	if m.DefaultImage != 0 {
		add("default=%s", m.DefaultImage)
	}
	if m.SelectedImage != 0 {
		add("selected=%s", m.SelectedImage)
	}
	if len(m.Images) > 0 {
		var l []string
		for _, im := range m.Images {
			l = append(l, fmt.Sprintf("%s:%q", im.ID, im.Name))
		}
		add("images=[%s]", strings.Join(l, " "))
	}
	if m.NetBoot10Firmware {
		add("netboot1.0")
	}
	if len(m.AttributesFilter) > 0 {
		add("attributes=%#04x", m.AttributesFilter)
	}
	if m.MaxMessageSize != 0 {
		add("max_message_size=%d", m.MaxMessageSize)
	}
	if m.ShadowMountPath != "" {
		add("shadow_mount_path=<%d bytes>", len(m.ShadowMountPath))
	}
	if m.ShadowFilePath != "" {
		add("shadow_file_path=%q", m.ShadowFilePath)
	}
	if m.MachineName != "" {
		add("machine_name=%q", m.MachineName)
	}
	for _, o := range m.Unknown {
		add("option%d=%x", o.Code, o.Value)
	}
	return strings.Join(p, " ")
}
