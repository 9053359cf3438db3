package netboot

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// AssetDir is a folder served under a prefix of /assets/ (serve.asset_dirs):
// name Prefix/x is Dir/x.
type AssetDir struct {
	Prefix string
	Dir    string
}

// AssetDirs are the folders HTTP's /assets/ route falls back to for a file
// serve.dir/assets lacks, by default Debian's packaged bookworm installers
// where a Debian mirror keeps them, so that an install needs no copying
// (docs/design.md, "The boot chain"). TFTP serves the same folders as
// trees under assets/.
type AssetDirs []AssetDir

// Open opens the regular file name (a path under /assets/, without the
// leading "/") from the first folder whose prefix it is under, confined to
// that folder (os.Root: no "..", no symbolic link out of it); the caller
// closes it. The error wraps fs.ErrNotExist when no folder holds it.
func (a AssetDirs) Open(name string) (*os.File, fs.FileInfo, error) {
	for _, d := range a {
		rest, ok := strings.CutPrefix(name, d.Prefix+"/")
		if !ok || rest == "" {
			continue
		}
		root, err := os.OpenRoot(d.Dir)
		if err != nil {
			continue // a missing folder: its package is not installed
		}
		f, err := root.Open(rest)
		root.Close()
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			continue
		}
		return f, fi, nil
	}
	return nil, nil, fmt.Errorf("asset dirs: %s: %w", name, fs.ErrNotExist)
}
