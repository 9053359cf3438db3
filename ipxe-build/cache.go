package ipxebuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// readCache returns the manifest of cache entry key after checking that every output is
// present with the recorded SHA-256. A missing entry is os.ErrNotExist.
func readCache(cacheDir, key string) (*Manifest, error) {
	dir := filepath.Join(cacheDir, key)
	m, err := ReadManifest(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	if m.Key != key {
		return nil, fmt.Errorf("cache entry %s holds key %s", dir, m.Key)
	}
	for _, o := range m.Outputs {
		sum, _, err := FileSHA256(filepath.Join(dir, filepath.FromSlash(o.Target)))
		if err != nil {
			return nil, fmt.Errorf("cache entry %s incomplete: %w", dir, err)
		}
		if sum != o.SHA256 {
			return nil, fmt.Errorf("cache entry %s: %s has sha256 %s, manifest says %s", dir, o.Target, sum, o.SHA256)
		}
	}
	return m, nil
}

// storeCache moves the staged entry into cacheDir/key and returns its path. Another build
// of the same key may have stored it first; then that entry is used.
func storeCache(cacheDir, key, stage string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(cacheDir, key)
	os.RemoveAll(dst) // an unusable entry readCache rejected
	if err := os.Rename(stage, dst); err != nil {
		// Across file systems (scratch on tmpfs), copy into a temporary entry and rename.
		tmp, terr := os.MkdirTemp(cacheDir, ".tmp-"+key+"-")
		if terr != nil {
			return "", terr
		}
		if cerr := copyTree(stage, tmp); cerr != nil && !errors.Is(cerr, os.ErrExist) {
			os.RemoveAll(tmp)
			return "", cerr
		}
		if rerr := os.Rename(tmp, dst); rerr != nil {
			os.RemoveAll(tmp)
			if _, serr := os.Stat(filepath.Join(dst, ManifestFile)); serr == nil {
				return dst, nil
			}
			return "", rerr
		}
	}
	return dst, nil
}

// publish copies the outputs and manifest of entry into out, each file atomically.
func publish(entry, out string, m *Manifest) error {
	for _, o := range m.Outputs {
		rel := filepath.FromSlash(o.Target)
		if err := copyFile(filepath.Join(entry, rel), filepath.Join(out, rel)); err != nil {
			return fmt.Errorf("publish %s: %w", o.Target, err)
		}
	}
	if err := copyFile(filepath.Join(entry, ManifestFile), filepath.Join(out, ManifestFile)); err != nil {
		return fmt.Errorf("publish manifest: %w", err)
	}
	return nil
}
