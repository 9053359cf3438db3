package grubimage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// moduleArea builds a module area as grub-mkimage lays it out: the
// grub_module_info64 header, then objects of (type, size) padded to 8.
func moduleArea(objs ...[]byte) []byte {
	le := binary.LittleEndian
	var area []byte
	for _, o := range objs {
		area = append(area, o...)
	}
	b := le.AppendUint32(nil, moduleMagic)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint64(b, 24)
	b = le.AppendUint64(b, uint64(24+len(area)))
	return append(b, area...)
}

func object(typ uint32, body string) []byte {
	le := binary.LittleEndian
	body += "\x00"
	for len(body)%8 != 0 {
		body += "\x00"
	}
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, uint32(8+len(body)))
	return append(b, body...)
}

func FuzzParseModDep(f *testing.F) {
	if b, err := os.ReadFile("testdata/moddep-debian-2.06.lst"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("tftp: net\nnet: boot\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mods, err := ParseModDep(b)
		if err != nil {
			return
		}
		for n, deps := range mods {
			if !validName(n) {
				t.Errorf("accepted module name %q", n)
			}
			for _, d := range deps {
				if !validName(d) {
					t.Errorf("accepted dependency %q", d)
				}
			}
		}
	})
}

// FuzzModuleArea feeds the module-area decoder; the seeds are synthetic
// areas and, when grub-mkimage is installed, the mods section of a real
// image (built at run time, never committed).
func FuzzModuleArea(f *testing.F) {
	f.Add(true, moduleArea(object(objConfig, "configfile (tftp)/x\n"), object(objPrefix, "(tftp)/boot/grub")))
	f.Add(true, moduleArea(object(objMemdisk, "disk"), object(7, "future")))
	f.Add(false, []byte("mimg\x0c\x00\x00\x00\x1c\x00\x00\x00\x02\x00\x00\x00\x10\x00\x00\x00abc\x00\x00\x00\x00\x00"))
	if _, err := os.Stat(filepath.Join(DefaultGrubDir(DefaultFormat), "moddep.lst")); err == nil {
		out := filepath.Join(f.TempDir(), "seed.efi")
		if _, err := Build(f.Context(), Options{Output: out, Modules: []string{"normal", "configfile", "net", "efinet", "tftp"}}, nil); err == nil {
			if b, err := os.ReadFile(out); err == nil {
				f.Add(true, b) // a whole image: readModules must reject it cleanly
			}
		}
	}
	f.Fuzz(func(t *testing.T, pe32plus bool, data []byte) {
		im := &Image{PE32Plus: pe32plus}
		_ = im.readModules(data)
	})
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte("MZ"))
	if _, err := os.Stat(filepath.Join(DefaultGrubDir(DefaultFormat), "moddep.lst")); err == nil {
		out := filepath.Join(f.TempDir(), "seed.efi")
		if _, err := Build(f.Context(), Options{Output: out, Modules: []string{"normal", "configfile", "net", "efinet", "tftp"}}, nil); err == nil {
			if b, err := os.ReadFile(out); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Inspect(b)
	})
}

func TestGrubModuleArea(t *testing.T) {
	im := &Image{PE32Plus: true}
	if err := im.readModules(moduleArea(object(objConfig, "echo hi\n"), object(objPrefix, "(tftp)/g"), object(objMemdisk, "1234567"))); err != nil {
		t.Fatal(err)
	}
	if im.Config != "echo hi\n" || im.Prefix != "(tftp)/g" || im.Memdisk != 8 {
		t.Errorf("got %+v", im)
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("mimgxxxxxxxxxxxxxxxxxxxxxxxx"),
		moduleArea(object(objConfig, "x"))[:30],
	} {
		if err := (&Image{PE32Plus: true}).readModules(bad); err == nil {
			t.Errorf("readModules(%q) = nil error", bad)
		}
	}
}
