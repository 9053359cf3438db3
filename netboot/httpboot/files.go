package httpboot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
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
	s.sendFile(w, r, f, fi, err)
}

// sendFile sends f, which open returned with fi and err, and closes it.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo, err error) {
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

// handleLoader serves DIR/ipxe/{path...}; a plain file name DIR/ipxe lacks
// comes from the first of Config.LoaderDirs that has it, so that UEFI HTTP
// boot finds a packaged loader (serve.loaders) with nothing copied.
func (s *Server) handleLoader(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	f, fi, err := s.open("ipxe", name)
	if errors.Is(err, fs.ErrNotExist) {
		if lf, lfi, lerr := s.cfg.LoaderDirs.Open(name); lerr == nil {
			f, fi, err = lf, lfi, nil
		}
	}
	s.sendFile(w, r, f, fi, err)
}

// handleAsset serves DIR/assets/{path...}; a path DIR/assets lacks comes
// from the first of Config.AssetDirs whose prefix it is under, so that a
// packaged installer is served where a mirror keeps it with nothing copied.
func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	f, fi, err := s.open("assets", name)
	if errors.Is(err, fs.ErrNotExist) {
		if af, afi, aerr := s.cfg.AssetDirs.Open(name); aerr == nil {
			f, fi, err = af, afi, nil
		}
	}
	s.sendFile(w, r, f, fi, err)
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
// MAC); absent ones are the normal case and answer 404. Strict and SLAAC
// MACs follow from addresses, so anyone could name another host's folder:
// unless Config.PublicMACScripts, the script goes only to the requester
// that owns the MAC (macOwner), and everyone else gets the same 404 as for
// a missing script, decided before the file is looked at.
func (s *Server) handleMAC(w http.ResponseWriter, r *http.Request) {
	name, ok := macFolder(r.PathValue("hexhyp"))
	if !ok {
		note(w).err = "not a MAC"
		notFound(w, r)
		return
	}
	if !s.cfg.PublicMACScripts && !s.macOwner(w, r, name) {
		return
	}
	s.serveFile(w, r, "mac", name+"/ipxe")
}

// macOwner reports whether the requester is the host with the MAC of
// folder name (hexhyp). false means the answer is written: 404 for anyone
// else, 503 when DNS failed. Confirmed by address, a host's MAC is derived
// from its records (strict MAC, EUI-64); a bare-metal host's own MAC is
// published as its _mac CNAME, which only a decision by that MAC finds, so
// the requester also owns the MAC when that decision names the same host
// (as netboot/tftp's per-host files).
func (s *Server) macOwner(w http.ResponseWriter, r *http.Request, name string) bool {
	_, d, ok := s.decide(w, r)
	if !ok {
		return false
	}
	mac, err := inventory.ParseHexHyp(name)
	if err != nil { // macFolder accepted it
		note(w).err = err.Error()
		notFound(w, r)
		return false
	}
	if bytes.Equal(d.Host.MAC, mac) {
		return true
	}
	dm, err := s.cfg.Policy.Decide(r.Context(), netboot.Client{MAC: mac})
	rec := note(w)
	switch {
	case err == nil && dm.Host.FQDN == d.Host.FQDN:
		return true
	case err != nil && !errors.Is(err, netboot.ErrUnknown):
		rec.err = err.Error()
		plain(w, r, http.StatusServiceUnavailable, "service unavailable\n")
		return false
	}
	rec.err, rec.warn = "per-MAC script of another MAC refused", true
	notFound(w, r)
	return false
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
