package bsdp

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// addTestdata seeds f with every testdata/*.txt, decoded as in seed 001.
func addTestdata(f *testing.F, add func(b []byte)) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus in testdata: %v", err)
	}
	for _, file := range files {
		add(readHex(f, filepath.Base(file)))
	}
}

// FuzzDecode: Decode never panics, fails only with ErrMalformed, and what
// it accepts survives Encode: Decode(Encode(m)) equals m, and encoding that
// again gives the same bytes.
func FuzzDecode(f *testing.F) {
	addTestdata(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := m.Encode()
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(m)): %v\nm = %v\nencoded % x", err, m, enc)
		}
		if diff := cmp.Diff(m, again, cmpOpts); diff != "" {
			t.Fatalf("Decode(Encode(m)) (-m +got):\n%s", diff)
		}
		if enc2 := again.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode is not stable:\n% x\n% x", enc, enc2)
		}
		_ = m.String()
	})
}

// FuzzParseVendorClass: what parses rebuilds the input exactly.
func FuzzParseVendorClass(f *testing.F) {
	for _, s := range []string{"AAPLBSDPC/i386/MacBookPro11,1", "AAPLBSDPC", "AAPLBSDPC/ppc/", "PXEClient:Arch:00007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		arch, model, ok := ParseVendorClass(s)
		if !ok {
			if arch != "" || model != "" {
				t.Fatalf("not ok but arch %q model %q", arch, model)
			}
			return
		}
		if strings.Contains(arch, "/") || VendorClass+"/"+arch+"/"+model != s {
			t.Fatalf("ParseVendorClass(%q) = %q, %q", s, arch, model)
		}
	})
}

// FuzzRespond: any client option 43 and DHCP type gives either ErrIgnore or
// an answer that fits one DHCP option, decodes, and boots only our images;
// Reply never panics on the same input.
func FuzzRespond(f *testing.F) {
	addTestdata(f, func(b []byte) {
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeInform, dhcpv4.MessageTypeDiscover} {
			f.Add(b, uint8(typ), ArchI386, true)
		}
	})
	cfg := seedConfig()
	cfg.Images = append(cfg.Images,
		Image{ID: 0x01000002, Name: "Other", BootFile: "other.efi", Archs: []string{ArchI386, ArchPPC}},
		Image{ID: 0x81001000, Name: strings.Repeat("L", MaxImageNameLen), BootFile: "l.efi"})
	f.Fuzz(func(t *testing.T, vendor []byte, typ uint8, arch string, hasCIAddr bool) {
		pkt, err := dhcpv4.New(
			dhcpv4.WithMessageType(dhcpv4.MessageType(typ)),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("AAPLBSDPC/"+arch+"/Mac1,1")),
			dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, vendor),
		)
		if err != nil {
			t.Fatal(err)
		}
		if hasCIAddr {
			pkt.ClientIPAddr = ipMM1
		}
		if _, err := Reply(pkt, cfg); err == nil && dhcpv4.MessageType(typ) != dhcpv4.MessageTypeInform {
			t.Fatalf("Reply answered DHCP %s", dhcpv4.MessageType(typ))
		}
		req, err := ParseRequest(pkt)
		if err != nil {
			return
		}
		a, err := Respond(req, cfg)
		if err != nil {
			if !errors.Is(err, ErrIgnore) {
				t.Fatalf("Respond error %v is not ErrIgnore", err)
			}
			return
		}
		v := a.VendorOptions()
		if len(v) > 255 {
			t.Fatalf("option 43 of %d bytes", len(v))
		}
		if _, err := Decode(v); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		if a.ServerID != cfg.ServerID {
			t.Fatalf("option 54 %v", a.ServerID)
		}
		if a.BootFile != "" {
			id := a.Message.SelectedImage
			im, ok := cfg.image(id)
			if !ok || im.BootFile != a.BootFile || !im.supports(req.Arch) || a.NextServer != netip.MustParseAddr("172.22.10.2") {
				t.Fatalf("boots %s with %q for %q", id, a.BootFile, req.Arch)
			}
		}
	})
}
