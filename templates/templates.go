// Package templates renders every text vmprov hands to a booting machine: the iPXE script
// embedded in the ROM (also served as /boot.ipxe), the /pxedust answer, the bootstrap and
// install dispatch scripts, kickstart, preseed and autoinstall answer files, the firstboot
// script, and per-host grub.cfg and pxelinux.cfg files.
//
// The boot chain follows seed 000: embedded script → /mac/{hexhyp}/ipxe → /pxedust (set one
// variable per TXT key, then chain the site bootstrap script) → /bootstrap/install/default.ipxe
// (distribution dispatch). Files under /bootstrap/install are laid out as
//
//	BOOT/bootstrap/install/default.ipxe
//	BOOT/bootstrap/install/{distribution}/{arch}/ks.cfg        (family el)
//	BOOT/bootstrap/install/{distribution}/{arch}/preseed.cfg   (family debian)
//	BOOT/bootstrap/install/{distribution}/{arch}/user-data     (family ubuntu, with meta-data)
//	BOOT/bootstrap/install/{distribution}/firstboot
//
// and installer kernels come from a mirror (default BOOT/assets) at the paths in
// Distributions.
//
// iPXE has no quoting, so every value that reaches a script is validated before rendering
// (ValidVarName, ValidVarValue, and URL checks); a render function either returns a script
// that iPXE parses as intended or an error naming the offending input.
//
// The package is a leaf: it imports only the standard library and holds no state.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
)

//go:embed files
var files embed.FS

// render executes the embedded template at path (relative to files/) with data.
// Templates are parsed per call: they are small and rendering is not on a hot path
// that parsing would dominate (DNS lookups are).
func render(path string, data any) ([]byte, error) {
	t, err := template.New(path).Option("missingkey=error").ParseFS(files, "files/"+path)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, lastElem(path), data); err != nil {
		return nil, fmt.Errorf("render %s: %w", path, err)
	}
	return b.Bytes(), nil
}

func lastElem(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
