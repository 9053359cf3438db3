package e2e

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"testing"
)

// haltEFI returns a minimal x86-64 EFI application (PE32+, subsystem 10)
// whose entry point disables interrupts and halts: the stand-in kernel of
// the UEFI boot test. iPXE for UEFI accepts a kernel only if the firmware's
// LoadImage does (a text file, which BIOS iPXE takes as a PXE image, is
// refused with "Exec format error"), and when the install script boots it
// the VM stops quietly instead of netbooting again. No relocations are
// needed: the code is position independent.
func haltEFI() []byte {
	const (
		peOffset   = 0x40
		fileAlign  = 0x200
		sectAlign  = 0x1000
		textRVA    = sectAlign
		textOffset = fileAlign
	)
	code := []byte{0xfa, 0xf4, 0xeb, 0xfd} // cli; 1: hlt; jmp 1b
	img := make([]byte, textOffset+fileAlign)
	le := binary.LittleEndian
	copy(img, "MZ")
	le.PutUint32(img[0x3c:], peOffset)
	copy(img[peOffset:], "PE\x00\x00")

	coff := img[peOffset+4:]
	le.PutUint16(coff[0:], pe.IMAGE_FILE_MACHINE_AMD64)
	le.PutUint16(coff[2:], 1) // sections
	le.PutUint16(coff[16:], 240)
	le.PutUint16(coff[18:], pe.IMAGE_FILE_EXECUTABLE_IMAGE|pe.IMAGE_FILE_LARGE_ADDRESS_AWARE)

	opt := coff[20:]
	le.PutUint16(opt[0:], 0x20b) // PE32+
	le.PutUint32(opt[4:], fileAlign)
	le.PutUint32(opt[16:], textRVA) // AddressOfEntryPoint
	le.PutUint32(opt[20:], textRVA) // BaseOfCode
	le.PutUint64(opt[24:], 0x400000)
	le.PutUint32(opt[32:], sectAlign)
	le.PutUint32(opt[36:], fileAlign)
	le.PutUint32(opt[56:], 2*sectAlign) // SizeOfImage
	le.PutUint32(opt[60:], fileAlign)   // SizeOfHeaders
	le.PutUint16(opt[68:], pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	le.PutUint64(opt[72:], 0x10000) // stack reserve
	le.PutUint64(opt[80:], 0x10000) // stack commit
	le.PutUint32(opt[108:], 16)     // data directories, all empty

	sect := opt[240:]
	copy(sect[0:8], ".text")
	le.PutUint32(sect[8:], uint32(len(code)))
	le.PutUint32(sect[12:], textRVA)
	le.PutUint32(sect[16:], fileAlign)
	le.PutUint32(sect[20:], textOffset)
	le.PutUint32(sect[36:], pe.IMAGE_SCN_CNT_CODE|pe.IMAGE_SCN_MEM_EXECUTE|pe.IMAGE_SCN_MEM_READ)
	copy(img[textOffset:], code)
	return img
}

// TestUEFIHaltImage checks the stand-in kernel with Go's PE reader: an
// x86-64 EFI application whose entry point is its halting code.
func TestUEFIHaltImage(t *testing.T) {
	f, err := pe.NewFile(bytes.NewReader(haltEFI()))
	if err != nil {
		t.Fatal(err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header %T, want PE32+", f.OptionalHeader)
	}
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		t.Errorf("machine %#x subsystem %d, want AMD64 EFI application", f.Machine, oh.Subsystem)
	}
	if len(f.Sections) != 1 || f.Sections[0].VirtualAddress != oh.AddressOfEntryPoint {
		t.Fatalf("sections %+v, entry %#x: want one section at the entry point", f.Sections, oh.AddressOfEntryPoint)
	}
	code, err := f.Sections[0].Data()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xfa, 0xf4, 0xeb, 0xfd}; !bytes.HasPrefix(code, want) {
		t.Errorf("entry code % x, want % x (cli; hlt; jmp back to hlt)", code[:len(want)], want)
	}
	if oh.SizeOfImage < f.Sections[0].VirtualAddress+f.Sections[0].VirtualSize || oh.SizeOfHeaders > f.Sections[0].Offset {
		t.Errorf("SizeOfImage %#x, SizeOfHeaders %#x do not fit the section %+v", oh.SizeOfImage, oh.SizeOfHeaders, f.Sections[0].SectionHeader)
	}
}
