package ipxebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writeFileAtomic writes data to a temporary file in path's directory and renames it over
// path, so readers see the old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return replaceFile(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replaceFile atomically replaces path with what fill writes.
func replaceFile(path string, perm fs.FileMode, fill func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".vmprov-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

// copyFile copies the regular file src to dst (atomically), keeping its permission bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return replaceFile(dst, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// skipInTree reports whether rel (slash-separated, relative to the top of an iPXE tree)
// is left out of copies and content hashes: git metadata and earlier build products.
func skipInTree(rel string, d fs.DirEntry) bool {
	if !d.IsDir() {
		return false
	}
	if rel == ".git" {
		return true
	}
	if dir, name := filepath.Split(rel); dir == "src/" && (name == "bin" || strings.HasPrefix(name, "bin-")) {
		return true
	}
	return false
}

// generatedHeader reports whether rel is a header Build writes itself.
func generatedHeader(rel string) bool {
	return rel == "src/config/local/general.h" || rel == "src/config/local/console.h"
}

// copyTree copies the iPXE tree at src into dst (which must not exist), leaving out what
// skipInTree names. Symbolic links are recreated, not followed.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipInTree(rel, d) {
			return fs.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyPlain(path, target)
		}
		return nil // sockets, fifos: nothing a build reads
	})
}

// copyPlain copies a regular file without the atomic dance (the destination is new).
func copyPlain(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// hashTree returns a SHA-256 over the paths, kinds, executable bits and contents of the
// files under root for which keep returns true, in lexical order; "" if there are none.
func hashTree(root string, keep func(rel string) bool) (string, error) {
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipInTree(rel, d) {
			return fs.SkipDir
		}
		if d.IsDir() || !keep(rel) {
			return nil
		}
		n++
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "L %q %q\n", rel, link)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			sum, _, err := FileSHA256(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "F %q %o %s\n", rel, fi.Mode().Perm()&0o111, sum)
		}
		return nil
	})
	if err != nil || n == 0 {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
