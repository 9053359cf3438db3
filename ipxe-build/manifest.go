package ipxebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// ManifestFile is the name of the manifest written beside the outputs.
const ManifestFile = "manifest.json"

// Manifest records what a build used and produced; it is written to OUT/manifest.json and
// kept with each cache entry.
type Manifest struct {
	Version int       `json:"version"` // manifest format, 1
	Key     string    `json:"key"`     // cache key: sha256 of every input below
	Built   time.Time `json:"built"`
	Source  Source    `json:"source"`
	Config  []Header  `json:"config"`
	Script  Script    `json:"script"`
	Targets []string  `json:"targets"`
	Make    []string  `json:"make"` // make arguments (paths relative to the scratch tree)
	Outputs []Output  `json:"outputs"`
	// Cached is true when Build answered from the cache; not stored.
	Cached bool `json:"-"`
}

// Source identifies the iPXE tree a build used.
type Source struct {
	Dir    string `json:"dir,omitempty"`     // --src
	GitURL string `json:"git_url,omitempty"` // --git
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"` // iPXE commit, if known
	Dirty  bool   `json:"dirty,omitempty"`  // Dir is a git work tree with local changes
	// TreeSHA256 is the content hash of the tree when no clean commit identifies it.
	TreeSHA256 string `json:"tree_sha256,omitempty"`
	// LocalSHA256 hashes the tree's own config/local/ files (git ignores them).
	LocalSHA256 string `json:"local_sha256,omitempty"`
}

// Header is one generated config header.
type Header struct {
	Path    string `json:"path"` // relative to src/, e.g. config/local/general.h
	SHA256  string `json:"sha256"`
	Content string `json:"content"`
}

// Script is the embedded script.
type Script struct {
	SHA256  string `json:"sha256"`
	Content string `json:"content"`
}

// Output is one built file.
type Output struct {
	Target string `json:"target"` // e.g. bin/1af41000.rom; also its path under OUT
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Objects are the iPXE config objects the link map shows were linked in (obj_ipv6,
	// obj_https, ...); empty when make left no map (e.g. ISO images).
	Objects []string `json:"objects,omitempty"`
	// ScriptEmbedded says the script was found in the uncompressed image TARGET.tmp.
	ScriptEmbedded bool `json:"script_embedded,omitempty"`
}

// ReadManifest reads a manifest.json written by Build.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("read manifest %s: unsupported version %d", path, m.Version)
	}
	return &m, nil
}

func writeManifest(path string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// FileSHA256 returns the hex SHA-256 of the file at path and its size.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("sha256: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("sha256 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
