package httpboot

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/templates"
)

// errNotFile means the name exists but is not a regular file.
var errNotFile = errors.New("not a regular file")

// open opens DIR/sub/name confined to DIR/sub: os.Root refuses ".." and
// symbolic links that lead outside it. The caller closes the file.
func (s *Server) open(sub, name string) (*os.File, fs.FileInfo, error) {
	if s.cfg.Dir == "" {
		return nil, nil, fs.ErrNotExist
	}
	root, err := os.OpenRoot(filepath.Join(s.cfg.Dir, sub))
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("open %s: %w", name, errNotFile)
	}
	return f, fi, nil
}

// serveFile serves DIR/sub/name with Range, conditional requests and HEAD
// (http.ServeContent). Anything that cannot be opened is 404; a refusal by
// os.Root (escape) is also logged at Warn.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, sub, name string) {
	f, fi, err := s.open(sub, name)
	if err != nil {
		s.openFailed(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

func (s *Server) openFailed(w http.ResponseWriter, r *http.Request, err error) {
	rec := note(w)
	rec.err = err.Error()
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotFile) {
		rec.warn = true // escapes, permissions, invalid names
	}
	notFound(w, r)
}

// static serves DIR/sub/{path...}.
func (s *Server) static(sub string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serveFile(w, r, sub, r.PathValue("path"))
	}
}

// macFolder returns the folder name under DIR/mac/ for the {hexhyp} of a
// request: the MAC in iPXE's ${mac:hexhyp} form, lower case. ok is false
// for anything that is not a 48-bit MAC.
func macFolder(hexhyp string) (string, bool) {
	if len(hexhyp) != len("02-04-06-08-73-ac") {
		return "", false
	}
	mac, err := inventory.ParseHexHyp(hexhyp)
	if err != nil {
		return "", false
	}
	name := inventory.HexHyp(mac)
	if !strings.EqualFold(name, hexhyp) {
		return "", false // colons or other separators
	}
	return name, true
}

// handleMAC serves a per-MAC script (seed 000's folders named after the
// MAC); absent ones are the normal case and answer 404.
func (s *Server) handleMAC(w http.ResponseWriter, r *http.Request) {
	name, ok := macFolder(r.PathValue("hexhyp"))
	if !ok {
		note(w).err = "not a MAC"
		notFound(w, r)
		return
	}
	s.serveFile(w, r, "mac", name+"/ipxe")
}

// handleSite serves DIR/bootstrap/{site}/{file...}. When the configured
// site has no default.ipxe of its own, the built-in one chains the install
// dispatch.
func (s *Server) handleSite(w http.ResponseWriter, r *http.Request) {
	site, file := r.PathValue("site"), r.PathValue("file")
	f, fi, err := s.open("bootstrap", site+"/"+file)
	if err == nil {
		defer f.Close()
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
		return
	}
	if errors.Is(err, fs.ErrNotExist) && site == s.cfg.Booter.Site && file == inventory.DefaultFilename {
		addr := s.clientAddr(r)
		body, err := templates.Bootstrap(templates.BootstrapInput{BootURL: s.bootURL(addr)})
		if err != nil {
			note(w).err = err.Error()
			plain(w, r, http.StatusInternalServerError, "internal server error\n")
			return
		}
		script(w, r, body)
		return
	}
	s.openFailed(w, r, err)
}
