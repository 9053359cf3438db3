package bsdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// DefaultPriority is the server priority used when ServerConfig.Priority is
// zero: Apple's BSDP_PRIORITY_BASE, and seed 001's 0x8000.
const DefaultPriority = 32768

// MaxImageNameLen is the longest image name a server may offer: 255 bytes
// of option 43 less two TLV headers and the entry's ID and length (Apple
// bsdp.h BSDP_IMAGE_NAME_MAX).
const MaxImageNameLen = 246

// maxVendorOptionsLen is the most option 43 content an answer carries.
// Apple clients parse every option 43 instance on its own (dhcpol_parse_vendor),
// so a BSDP TLV must not straddle two instances; dhcpv4 splits long options
// at arbitrary bytes (RFC 3396), so answers keep option 43 to one instance.
const maxVendorOptionsLen = 255

// udpIPOverhead is what the IPv4 and UDP headers add to a DHCP message
// (Apple's DHCP_PACKET_OVERHEAD).
const udpIPOverhead = 20 + 8

// ErrIgnore means a BSDP request gets no BSDP answer, following Apple's
// server: an INFORM gets no reply at all, a DISCOVER or REQUEST is served as
// plain DHCP. The wrapping error says why.
var ErrIgnore = errors.New("BSDP request not answered")

// Image is a NetBoot image the server offers.
type Image struct {
	ID ImageID
	// Name is what the Mac's boot picker shows, at most MaxImageNameLen bytes.
	Name string
	// BootFile is the DHCP file field of an ACK[SELECT], fetched over TFTP
	// from NextServer: "mactel64.efi" (GRUB) for i386 in seed 001.
	BootFile string
	// RootPath is DHCP option 17 of an ACK[SELECT]; empty leaves it out.
	RootPath string
	// Archs are the client architectures the image boots; nil means
	// [ArchI386], the Intel Macs of seed 001.
	Archs []string
}

func (im *Image) supports(arch string) bool {
	if len(im.Archs) == 0 {
		return arch == ArchI386
	}
	return slices.Contains(im.Archs, arch)
}

// matches applies a client's attributes filter list (code 11): an empty
// list takes every image, else the image's attributes must be in it
// (Apple nbimages.c NBImageEntry_attributes_match).
func (im *Image) matches(filter []uint16) bool {
	return len(filter) == 0 || slices.Contains(filter, im.ID.Attributes())
}

// ServerConfig is what the BSDP server offers. It is a value: a caller that
// knows the client may set MachineName per request.
type ServerConfig struct {
	// ServerID is the server's IPv4 address on the client's network: DHCP
	// option 54 of every answer, and what a SELECT must name in code 3.
	ServerID netip.Addr
	// NextServer is siaddr, the TFTP server of BootFile; invalid means
	// ServerID.
	NextServer netip.Addr
	// ServerName is sname; empty leaves it out.
	ServerName string
	// Priority is the server priority (code 4) of ACK[LIST]; clients take
	// the image list of the highest. Zero means DefaultPriority.
	Priority uint16
	// Images are offered in this order.
	Images []Image
	// DefaultImage is the image a Mac boots with the N key; zero, or an
	// image the client cannot boot, means the first one it can.
	DefaultImage ImageID
	// MachineName is code 130 of ACK[SELECT], the name the booted system
	// takes (seed 001 sends the image name); empty leaves it out.
	MachineName string
}

// Validate reports every problem of c at once.
func (c ServerConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !c.ServerID.Is4() {
		bad("server ID %v is not an IPv4 address", c.ServerID)
	}
	if c.NextServer.IsValid() && !c.NextServer.Is4() {
		bad("next server %v is not an IPv4 address", c.NextServer)
	}
	if len(c.ServerName) > 63 {
		bad("server name of %d bytes does not fit the 64-byte sname field", len(c.ServerName))
	}
	if len(c.MachineName) > 255 {
		bad("machine name of %d bytes is longer than 255", len(c.MachineName))
	}
	if len(c.Images) == 0 {
		bad("no images")
	}
	seen := make(map[ImageID]bool)
	for _, im := range c.Images {
		switch {
		case im.ID.Index() == 0:
			bad("image %s: index 0 is reserved for no image", im.ID)
		case seen[im.ID]:
			bad("image %s: listed twice", im.ID)
		}
		seen[im.ID] = true
		if im.Name == "" || len(im.Name) > MaxImageNameLen {
			bad("image %s: name of %d bytes, want 1 to %d", im.ID, len(im.Name), MaxImageNameLen)
		}
		if im.BootFile == "" || len(im.BootFile) > 127 {
			bad("image %s: boot file of %d bytes, want 1 to 127 (the 128-byte file field)", im.ID, len(im.BootFile))
		}
		if len(im.RootPath) > 255 {
			bad("image %s: root path of %d bytes is longer than 255", im.ID, len(im.RootPath))
		}
		for _, a := range im.Archs {
			if a == "" || strings.ContainsAny(a, "/\x00\n") {
				bad("image %s: architecture %q is not a vendor class field", im.ID, a)
			}
		}
	}
	if c.DefaultImage != 0 && !seen[c.DefaultImage] {
		bad("default image %s is not among the images", c.DefaultImage)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bsdp: invalid server config: %w", err)
	}
	return nil
}

func (c *ServerConfig) priority() uint16 {
	if c.Priority == 0 {
		return DefaultPriority
	}
	return c.Priority
}

func (c *ServerConfig) nextServer() netip.Addr {
	if c.NextServer.IsValid() {
		return c.NextServer
	}
	return c.ServerID
}

// defaultImage returns the image a client of arch with attributes filter
// filter boots by default.
func (c *ServerConfig) defaultImage(arch string, filter []uint16) (*Image, bool) {
	var first *Image
	for i := range c.Images {
		im := &c.Images[i]
		if !im.supports(arch) || !im.matches(filter) {
			continue
		}
		if im.ID == c.DefaultImage {
			return im, true
		}
		if first == nil {
			first = im
		}
	}
	return first, first != nil
}

func (c *ServerConfig) image(id ImageID) (*Image, bool) {
	i := slices.IndexFunc(c.Images, func(im Image) bool { return im.ID == id })
	if i < 0 {
		return nil, false
	}
	return &c.Images[i], true
}

// Answer is the server's answer to one BSDP request: option 43 and the DHCP
// fields that go with it.
type Answer struct {
	// Message is option 43: ACK[LIST], ACK[SELECT] or ACK[FAILED] to an
	// INFORM, only the selected image to a DISCOVER or REQUEST.
	Message Message
	// ServerID is DHCP option 54; SELECTs name it in code 3.
	ServerID netip.Addr
	// NextServer (siaddr), BootFile (file) and RootPath (option 17) are set
	// when the answer boots an image.
	NextServer netip.Addr
	BootFile   string
	RootPath   string
	ServerName string // sname
	// ReplyPort is the UDP port the answer goes to.
	ReplyPort uint16
	// Dropped counts the images left out of ACK[LIST] so that option 43 fits
	// one DHCP option (255 bytes).
	Dropped int
}

// VendorOptions returns the content of option 43.
func (a *Answer) VendorOptions() []byte { return a.Message.Encode() }

// Apply writes a into resp, a reply the caller built (an OFFER or ACK with
// the client's address for DISCOVER and REQUEST): vendor class "AAPLBSDPC",
// options 43, 54 and 17, siaddr, sname and file. It leaves every other
// field and option alone.
func (a *Answer) Apply(resp *dhcpv4.DHCPv4) {
	resp.UpdateOption(dhcpv4.OptClassIdentifier(VendorClass))
	if v := a.VendorOptions(); len(v) > 0 {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, v))
	}
	if a.ServerID.Is4() {
		resp.UpdateOption(dhcpv4.OptServerIdentifier(ip4(a.ServerID)))
	}
	if a.NextServer.Is4() {
		resp.ServerIPAddr = ip4(a.NextServer)
	}
	if a.ServerName != "" {
		resp.ServerHostName = a.ServerName
	}
	if a.BootFile != "" {
		resp.BootFileName = a.BootFile
	}
	if a.RootPath != "" {
		resp.UpdateOption(dhcpv4.OptRootPath(a.RootPath))
	}
}

func ip4(a netip.Addr) net.IP {
	b := a.As4()
	return net.IP(b[:])
}

func (a *Answer) boot(im *Image, cfg *ServerConfig) {
	a.NextServer = cfg.nextServer()
	a.BootFile = im.BootFile
	a.RootPath = im.RootPath
}

// Respond decides the answer to req from cfg, as Apple's server does
// (bootp bsdpd.c bsdp_request), without its per-client state:
//
//   - Every request needs BSDP version 1.0 or 1.1 (code 2). NetBoot 1.0
//     firmware (version 0.0 or code 10) is not served.
//   - DISCOVER and REQUEST (the N key): option 43 selects the default image
//     (seed 001: 08:04:81:00:00:89) and file, siaddr and root path boot it.
//     The reply goes to port 68 as any DHCP reply.
//   - INFORM needs ciaddr, and a privileged port if it asks for another
//     reply port (code 5).
//   - INFORM[LIST]: LIST, server priority, default image and the images the
//     client's architecture boots that pass its attributes filter (none for
//     a 1.0 client); DHCP option 54 carries the server identifier.
//   - INFORM[SELECT] naming another server in code 3, or none, is ignored.
//     An image that is not ours or not for the client's architecture gets
//     ACK[FAILED]; no image means the default image. Otherwise SELECT,
//     the selected image and MachineName, with file, siaddr and root path.
//
// Requests not answered return an error wrapping ErrIgnore; an invalid cfg
// returns another error. The caller decides beforehand, from DNS, whether
// the client is to be netbooted at all.
func Respond(req *Request, cfg ServerConfig) (*Answer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bsdp: respond: %w", err)
	}
	ignore := func(format string, a ...any) error {
		return fmt.Errorf("bsdp: respond: %s: %w", fmt.Sprintf(format, a...), ErrIgnore)
	}
	m := &req.Message
	switch {
	case m.NetBoot10Firmware:
		return nil, ignore("NetBoot 1.0 firmware is not served")
	case m.Version == 0:
		return nil, ignore("no BSDP version (NetBoot 1.0 firmware is not served)")
	case m.Version != Version1_0 && m.Version != Version1_1:
		return nil, ignore("unsupported BSDP version %s", m.Version)
	}

	a := &Answer{ServerID: cfg.ServerID, ServerName: cfg.ServerName, ReplyPort: DefaultReplyPort}
	switch req.DHCPType {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest:
		im, ok := cfg.defaultImage(req.Arch, m.AttributesFilter)
		if !ok {
			return nil, ignore("no image for architecture %q", req.Arch)
		}
		a.Message = Message{SelectedImage: im.ID}
		a.boot(im, &cfg)
		return a, nil
	case dhcpv4.MessageTypeInform:
	default:
		return nil, ignore("DHCP %s", req.DHCPType)
	}
	if req.ReplyPort >= 1024 {
		return nil, ignore("reply port %d is not privileged", req.ReplyPort)
	}
	if !req.ClientIP.IsValid() || req.ClientIP.IsUnspecified() {
		return nil, ignore("INFORM without ciaddr")
	}
	a.ReplyPort = req.ReplyPort

	switch m.Type {
	case MessageTypeList:
		def, ok := cfg.defaultImage(req.Arch, m.AttributesFilter)
		if !ok {
			return nil, ignore("no image for architecture %q", req.Arch)
		}
		a.Message = Message{Type: MessageTypeList, ServerPriority: cfg.priority(), DefaultImage: def.ID}
		if m.Version == Version1_0 {
			return a, nil // bsdpd.c: 1.0 clients get no image list
		}
		// The list goes in one code 9 TLV after the fixed options.
		// Like bsdpd.c, the list is cut after the last image that fits.
		room := maxVendorOptionsLen - len(a.Message.Encode()) - 2
		for i := range cfg.Images {
			im := &cfg.Images[i]
			if !im.supports(req.Arch) || !im.matches(m.AttributesFilter) {
				continue
			}
			if n := 5 + len(im.Name); a.Dropped == 0 && n <= room {
				room -= n
				a.Message.Images = append(a.Message.Images, BootImage{ID: im.ID, Name: im.Name})
				continue
			}
			a.Dropped++
		}
		return a, nil

	case MessageTypeSelect:
		if !m.ServerID.IsValid() {
			return nil, ignore("SELECT without server identifier")
		}
		if m.ServerID.Unmap() != cfg.ServerID.Unmap() {
			return nil, ignore("SELECT for server %s, not %s", m.ServerID, cfg.ServerID)
		}
		var im *Image
		ok := false
		if m.SelectedImage == 0 {
			im, ok = cfg.defaultImage(req.Arch, nil)
		} else if im, ok = cfg.image(m.SelectedImage); ok && !im.supports(req.Arch) {
			ok = false
		}
		if !ok {
			a.Message = Message{Type: MessageTypeFailed}
			return a, nil
		}
		a.Message = Message{Type: MessageTypeSelect, SelectedImage: im.ID, MachineName: cfg.MachineName}
		a.boot(im, &cfg)
		return a, nil

	case 0:
		return nil, ignore("no BSDP message type")
	default:
		return nil, ignore("client sent BSDP %s", m.Type)
	}
}

// Reply builds the complete DHCPACK to a BSDP INFORM, to be sent from the
// server port to the client's ciaddr on ReplyPort(req). Its errors are
// those of ParseRequest and Respond; a DISCOVER or REQUEST is an error too,
// since its reply carries an address only the DHCP server can give (it
// calls ParseRequest, Respond and Answer.Apply instead). When the ACK[LIST]
// exceeds the client's maximum message size, images are left out from the
// end, as Apple's server does.
func Reply(req *dhcpv4.DHCPv4, cfg ServerConfig) (*dhcpv4.DHCPv4, error) {
	r, err := ParseRequest(req)
	if err != nil {
		return nil, err
	}
	if r.DHCPType != dhcpv4.MessageTypeInform {
		return nil, fmt.Errorf("bsdp: reply: DHCP %s is answered by the DHCP server with Answer.Apply, not by Reply", r.DHCPType)
	}
	a, err := Respond(r, cfg)
	if err != nil {
		return nil, err
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	if err != nil {
		return nil, fmt.Errorf("bsdp: reply: %w", err)
	}
	// RFC 2131 section 4.3.5: an ACK to an INFORM has no yiaddr and is
	// unicast to ciaddr.
	resp.ClientIPAddr = slices.Clone(req.ClientIPAddr)
	a.Apply(resp)
	for {
		size := len(resp.ToBytes()) + udpIPOverhead
		if size <= r.MaxMessageSize {
			return resp, nil
		}
		if len(a.Message.Images) == 0 {
			return nil, fmt.Errorf("bsdp: reply: %d-byte reply exceeds the client's maximum message size of %d bytes", size, r.MaxMessageSize)
		}
		a.Message.Images = a.Message.Images[:len(a.Message.Images)-1]
		a.Dropped++
		a.Apply(resp)
	}
}
