package bsdp

import "fmt"

// ImageID identifies a boot image: the high 16 bits are attributes (bit 31
// install, bits 24-30 kind, bits 16-23 reserved), the low 16 bits the index
// (Apple bootp bsdp.h, "boot_image_id"). 0x81000089 is an install image
// (0x80) of kind Mac OS X (0x01) with index 137, as in seed 001.
type ImageID uint32

// ImageKind is the kind of operating system an image boots (bsdp.h
// bsdp_image_kind_t); 4-127 are reserved.
type ImageKind uint8

// Image kinds defined by Apple.
const (
	KindMacOS9       ImageKind = 0
	KindMacOSX       ImageKind = 1
	KindMacOSXServer ImageKind = 2
	KindDiagnostics  ImageKind = 3
)

const (
	attrInstall  = 0x8000 // BSDP_IMAGE_ATTRIBUTES_INSTALL
	attrKindMask = 0x7f00 // BSDP_IMAGE_ATTRIBUTES_KIND_MASK
)

// NewImageID builds an image ID from its parts; kind is masked to 7 bits.
func NewImageID(install bool, kind ImageKind, index uint16) ImageID {
	attrs := uint16(kind) << 8 & attrKindMask
	if install {
		attrs |= attrInstall
	}
	return ImageID(uint32(attrs)<<16 | uint32(index))
}

// Attributes returns the high 16 bits: what a client's attributes filter
// list (code 11) is matched against.
func (id ImageID) Attributes() uint16 { return uint16(id >> 16) }

// Index returns the low 16 bits. Apple reserves indexes below 4096 for
// images local to one server and 4096 and above for images several servers
// offer identically (load balancing).
func (id ImageID) Index() uint16 { return uint16(id) }

// Install reports whether the image installs an operating system.
func (id ImageID) Install() bool { return id.Attributes()&attrInstall != 0 }

// Kind returns the image kind.
func (id ImageID) Kind() ImageKind { return ImageKind(id.Attributes() & attrKindMask >> 8) }

// String returns the ID in hex, e.g. "0x81000089".
func (id ImageID) String() string { return fmt.Sprintf("0x%08x", uint32(id)) }

// String names the kind.
func (k ImageKind) String() string {
	switch k {
	case KindMacOS9:
		return "Mac OS 9"
	case KindMacOSX:
		return "Mac OS X"
	case KindMacOSXServer:
		return "Mac OS X Server"
	case KindDiagnostics:
		return "Hardware Diagnostics"
	}
	return fmt.Sprintf("ImageKind(%d)", uint8(k))
}

// BootImage is one entry of a boot image list (code 9): the ID, then a
// length byte and the name a Mac shows in its boot picker.
type BootImage struct {
	ID   ImageID
	Name string
}
