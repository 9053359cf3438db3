package grubimage

import (
	"bytes"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Image is what Inspect reads from a GRUB EFI image.
type Image struct {
	// Machine is the PE machine type (pe.IMAGE_FILE_MACHINE_AMD64 for
	// x86_64-efi).
	Machine uint16 `json:"machine"`
	// PE32Plus is true for a PE32+ (64-bit) image.
	PE32Plus bool `json:"pe32plus"`
	// Subsystem is the PE subsystem: pe.IMAGE_SUBSYSTEM_EFI_APPLICATION.
	Subsystem uint16 `json:"subsystem"`
	// Modules are the embedded modules' names, in image order.
	Modules []string `json:"modules"`
	// Config is the embedded early configuration; Prefix the prefix.
	Config string `json:"config"`
	Prefix string `json:"prefix"`
	// Memdisk is the size of an embedded memdisk, 0 if none.
	Memdisk int `json:"memdisk,omitempty"`
}

// GRUB's module area (include/grub/kernel.h): a grub_module_info header
// ("mimg", offset and size of the area) then objects, each a type and a
// size (header included), each padded to the pointer size.
const (
	moduleMagic  = 0x676d696d // "mimg"
	objELF       = 0
	objMemdisk   = 1
	objConfig    = 2
	objPrefix    = 3
	maxModuleObj = 4096 // far more than GRUB has modules
)

// ErrNotGRUB: the file is a PE image but holds no GRUB module area.
var ErrNotGRUB = errors.New("no GRUB module area (section mods)")

// machines maps a format's CPU to its PE machine type.
var machines = map[string]uint16{
	"x86_64": pe.IMAGE_FILE_MACHINE_AMD64,
	"i386":   pe.IMAGE_FILE_MACHINE_I386,
	"arm64":  pe.IMAGE_FILE_MACHINE_ARM64,
	"arm":    pe.IMAGE_FILE_MACHINE_ARMNT,
	"ia64":   pe.IMAGE_FILE_MACHINE_IA64,
}

// Inspect decodes a GRUB EFI image built by grub-mkimage: its PE headers
// and the module area GRUB reads at start (modules, early configuration,
// prefix).
func Inspect(b []byte) (*Image, error) {
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a PE image: %w", err)
	}
	defer f.Close()
	im := &Image{Machine: f.Machine}
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		im.PE32Plus, im.Subsystem = true, h.Subsystem
	case *pe.OptionalHeader32:
		im.Subsystem = h.Subsystem
	default:
		return nil, errors.New("PE image without optional header")
	}
	s := f.Section("mods")
	if s == nil {
		return nil, ErrNotGRUB
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("section mods: %w", err)
	}
	if err := im.readModules(data); err != nil {
		return nil, fmt.Errorf("section mods: %w", err)
	}
	return im, nil
}

func (im *Image) readModules(data []byte) error {
	le := binary.LittleEndian
	var off, size uint64
	align := uint64(8)
	if im.PE32Plus {
		if len(data) < 24 {
			return ErrNotGRUB
		}
		if le.Uint32(data) != moduleMagic {
			return ErrNotGRUB
		}
		off, size = le.Uint64(data[8:]), le.Uint64(data[16:])
	} else {
		if len(data) < 12 || le.Uint32(data) != moduleMagic {
			return ErrNotGRUB
		}
		off, size, align = uint64(le.Uint32(data[4:])), uint64(le.Uint32(data[8:])), 4
	}
	if size > uint64(len(data)) || off > size {
		return fmt.Errorf("module area offset %d size %d beyond the section (%d bytes)", off, size, len(data))
	}
	area := data[off:size]
	for n := 0; len(area) > 0; n++ {
		if n == maxModuleObj {
			return fmt.Errorf("more than %d objects", maxModuleObj)
		}
		if len(area) < 8 {
			return fmt.Errorf("object %d: truncated header", n)
		}
		typ, sz := le.Uint32(area), uint64(le.Uint32(area[4:]))
		if sz < 8 || sz > uint64(len(area)) {
			return fmt.Errorf("object %d: size %d out of range", n, sz)
		}
		body := area[8:sz]
		switch typ {
		case objELF:
			name, err := moduleName(body)
			if err != nil {
				return fmt.Errorf("object %d: %w", n, err)
			}
			im.Modules = append(im.Modules, name)
		case objMemdisk:
			im.Memdisk = len(body)
		case objConfig:
			im.Config = cString(body)
		case objPrefix:
			im.Prefix = cString(body)
		}
		if sz%align != 0 { // objects are padded; tolerate an unpadded last one
			sz = min(uint64(len(area)), (sz+align-1)/align*align)
		}
		area = area[sz:]
	}
	return nil
}

// moduleName reads a module's .modname section.
func moduleName(b []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	s := f.Section(".modname")
	if s == nil {
		return "", errors.New("module without .modname")
	}
	if s.Size > 256 {
		return "", errors.New("module name longer than 256 bytes")
	}
	d, err := s.Data()
	if err != nil {
		return "", fmt.Errorf("module name: %w", err)
	}
	return cString(d), nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Check compares the image with the plan it was built from: an EFI
// application for the plan's CPU holding every module asked for, the
// configuration and the prefix.
func (im *Image) Check(p *Plan) error {
	cpu, _, _ := strings.Cut(p.Format, "-")
	if want, ok := machines[cpu]; ok && im.Machine != want {
		return fmt.Errorf("image machine %#x, want %#x for %s", im.Machine, want, p.Format)
	}
	if im.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		return fmt.Errorf("image subsystem %d is not an EFI application (%d)", im.Subsystem, pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	}
	for _, m := range p.Modules {
		if !slices.Contains(im.Modules, m) {
			return fmt.Errorf("module %s missing from the image", m)
		}
	}
	if im.Config != p.Config {
		return errors.New("embedded configuration differs from the one asked for")
	}
	if im.Prefix != p.Prefix {
		return fmt.Errorf("embedded prefix %q, want %q", im.Prefix, p.Prefix)
	}
	return nil
}
