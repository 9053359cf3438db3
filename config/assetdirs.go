package config

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// AssetDir is a folder served under /assets/PREFIX/ (HTTP) and
// assets/PREFIX/ (TFTP) for the files serve.dir/assets lacks.
type AssetDir struct {
	Prefix string `yaml:"prefix" json:"prefix"`
	Dir    string `yaml:"dir" json:"dir"`
}

// DefaultAssetDirs is serve.asset_dirs unless set: the installers of
// Debian's debian-installer-12-netboot-amd64 and -arm64 packages where a
// Debian mirror keeps bookworm's netboot kernel and initrd, so that with
// boot.assets at serve itself (its default) a bookworm install needs
// nothing copied. A folder that does not exist is skipped.
func DefaultAssetDirs() []AssetDir {
	var out []AssetDir
	for _, arch := range []string{"amd64", "arm64"} {
		out = append(out, AssetDir{
			Prefix: "debian/dists/bookworm/main/installer-" + arch + "/current/images/netboot/debian-installer/" + arch,
			Dir:    "/usr/lib/debian-installer/images/12/" + arch + "/text/debian-installer/" + arch,
		})
	}
	return out
}

// checkAssetDirs returns what is wrong with serve.asset_dirs.
func checkAssetDirs(dirs []AssetDir, bad func(format string, a ...any)) {
	for i, d := range dirs {
		where := fmt.Sprintf("serve.asset_dirs[%d]", i)
		// path.Clean keeps only a leading "..": every other "." and ".."
		// element, "//" and a trailing "/" make it differ.
		if p := d.Prefix; p == "" || p == "." || p == ".." || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || path.Clean(p) != p {
			bad("%s: prefix %q is not a relative path under /assets/ (e.g. debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64)", where, d.Prefix)
		} else if err := assetPrefixChars(d.Prefix); err != nil {
			bad("%s: prefix %q: %v: give a shorter prefix of printable ASCII (TFTP serves it as assets/PREFIX/FILE)", where, d.Prefix, err)
		}
		if !filepath.IsAbs(d.Dir) {
			bad("%s: dir %q is not an absolute path (e.g. /usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64); [] serves none", where, d.Dir)
		}
	}
}

// assetPrefixChars checks that TFTP can serve a file under prefix: the name
// assets/PREFIX/x, the shortest, is a TFTP name (tftpChars).
func assetPrefixChars(prefix string) error {
	if err := tftpChars(prefix); err != nil {
		return err
	}
	if n := len("assets/" + prefix + "/x"); n > maxTFTPName {
		return fmt.Errorf("TFTP's names of its files, assets/%s/FILE, are over %d bytes", "PREFIX", maxTFTPName)
	}
	return nil
}
