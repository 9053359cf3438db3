package netboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoaderDirs are folders of packaged boot loaders (serve.loader_dirs, by
// default those of Debian's ipxe and debian-installer-12-netboot-*
// packages) that TFTP and HTTP's /ipxe/ route fall back to for a file
// their own folder under serve.dir lacks. So the loaders of serve.loaders
// need no copying, and a file of the same name under serve.dir overrides
// the packaged one. Empty: no fallback.
//
// Only a plain file name is looked up: no folder, no "..", nothing that
// leaves the folder by its name. Symbolic links inside a folder are
// followed (Debian's /usr/lib/ipxe/ipxe.efi links to /boot/ipxe.efi): the
// folders are the operator's choice; a client chooses only a name in them.
type LoaderDirs []string

// errNotPlain is why a name is not looked up in LoaderDirs.
var errNotPlain = errors.New("not a plain file name")

// Open opens the regular file name from the first folder of l that holds
// it, and returns it with its information; the caller closes it. The
// error wraps fs.ErrNotExist when no folder holds it, or when name is not
// a plain file name, so a caller answers it as "not found".
func (l LoaderDirs) Open(name string) (*os.File, fs.FileInfo, error) {
	if !PlainFileName(name) {
		return nil, nil, fmt.Errorf("loader dirs: %q: %w (%w)", name, fs.ErrNotExist, errNotPlain)
	}
	for _, dir := range l {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue // missing here, or an unreadable folder: try the next
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			continue
		}
		return f, fi, nil
	}
	return nil, nil, fmt.Errorf("loader dirs: %s: %w", name, fs.ErrNotExist)
}

// PlainFileName reports whether name is one file name without a folder:
// not empty, not "." or "..", no "/" or "\", no control characters and
// nothing outside printable ASCII.
func PlainFileName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	if strings.ContainsAny(name, `/\`) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
