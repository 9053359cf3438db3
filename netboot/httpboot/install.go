package httpboot

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/templates"
)

// installFile is a request under /bootstrap/install/ (templates package doc):
//
//	default.ipxe
//	{distribution}/firstboot
//	{distribution}/{arch}/{ks.cfg|preseed.cfg|user-data|meta-data}
type installFile struct {
	dist, arch string // empty when the path has none
	name       string
}

// path writes f back as the path it was parsed from.
func (f installFile) path() string {
	return strings.Join(slices.DeleteFunc([]string{f.dist, f.arch, f.name}, func(s string) bool { return s == "" }), "/")
}

// parseInstallPath parses the {path...} of /bootstrap/install/. Only known
// distributions, the answer files of their family and plain arch names
// ([a-z0-9_], 1 to 32) are accepted.
func parseInstallPath(p string) (installFile, bool) {
	parts := strings.Split(p, "/")
	switch len(parts) {
	case 1:
		if parts[0] == "default.ipxe" {
			return installFile{name: parts[0]}, true
		}
	case 2:
		if _, err := templates.LookupDistribution(parts[0]); err == nil && parts[1] == "firstboot" {
			return installFile{dist: parts[0], name: parts[1]}, true
		}
	case 3:
		d, err := templates.LookupDistribution(parts[0])
		if err == nil && validArch(parts[1]) && slices.Contains(d.AnswerFiles(), parts[2]) {
			return installFile{dist: parts[0], arch: parts[1], name: parts[2]}, true
		}
	}
	return installFile{}, false
}

func validArch(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// defaultArch is the arch install/default.ipxe assumes when TXT sets none.
const defaultArch = "x86_64"

// handleInstall serves the built-in install dispatch and the per-host files.
// Per-host files go only to the FCrDNS-confirmed host they describe, and
// only for the distribution and arch of its boot intent.
func (s *Server) handleInstall(w http.ResponseWriter, r *http.Request) {
	f, ok := parseInstallPath(r.PathValue("path"))
	if !ok {
		note(w).err = "no such install file"
		notFound(w, r)
		return
	}
	if f.name == "default.ipxe" {
		s.installScript(w, r)
		return
	}
	addr, d, ok := s.decide(w, r)
	if !ok {
		return
	}
	in := d.Host.Intent
	if dist, _ := in.Get(inventory.KeyDistribution); dist != f.dist {
		note(w).err = "not the distribution of this host's boot intent"
		notFound(w, r)
		return
	}
	if f.name == "firstboot" {
		script(w, r, templates.Firstboot())
		return
	}
	arch, ok := in.Get("arch")
	if !ok {
		arch = defaultArch
	}
	if arch != f.arch {
		note(w).err = "not the arch of this host's boot intent"
		notFound(w, r)
		return
	}
	h := s.cfg.Booter.TemplateHost(d, addr.Is6())
	h.Arch = f.arch
	if f.name != "meta-data" {
		// The installer fetches its own answer file: it is installing, and
		// the file carries its callback (docs/design.md, "A host's life").
		h.DoneToken = s.markInstalling(r, addr, d, f.name)
	}
	render := map[string]func(templates.Host) ([]byte, error){
		"ks.cfg":      templates.Kickstart,
		"preseed.cfg": templates.Preseed,
		"user-data":   templates.UserData,
		"meta-data":   templates.MetaData,
	}[f.name]
	body, err := render(h)
	if err != nil {
		invalid(w, r, err)
		return
	}
	script(w, r, body)
}

// installScript serves install/default.ipxe. For a confirmed host its
// kernel command line carries the host's TXT variables and the variables
// its site script sets (seed 000's puppet_server); anyone else gets the
// generic dispatch, which names no host. A DNS failure is 503: the generic
// script would boot the host without its variables.
func (s *Server) installScript(w http.ResponseWriter, r *http.Request) {
	addr := s.clientAddr(r)
	var names []string
	d, err := s.cfg.Policy.Decide(r.Context(), netboot.Client{Addr: addr})
	switch {
	case err == nil:
		note(w).host = strings.TrimSuffix(d.Host.FQDN, ".")
		for _, v := range d.Host.Intent {
			names = append(names, v.Key)
		}
		if len(d.Host.Intent) > 0 {
			names = append(names, s.siteVarNames(d.Host.Intent.Filename())...)
		}
	case !errors.Is(err, netboot.ErrUnknown):
		note(w).err = err.Error()
		plain(w, r, http.StatusServiceUnavailable, "service unavailable\n")
		return
	}
	names = slices.DeleteFunc(names, func(n string) bool { return templates.ValidVarName(n) != nil })
	body, err := templates.InstallScript(templates.InstallInput{
		BootURL:   s.bootURL(addr),
		MirrorURL: s.cfg.Booter.MirrorURL(addr.Is6()),
		VarNames:  names,
	})
	if err != nil {
		note(w).err = err.Error()
		plain(w, r, http.StatusInternalServerError, "internal server error\n")
		return
	}
	script(w, r, body)
}

// maxSiteScript bounds how much of a site script is read for its variables.
const maxSiteScript = 64 << 10

// siteVarNames returns the names the site script DIR/bootstrap/{site}/{file}
// sets with `set NAME VALUE` lines, in order.
func (s *Server) siteVarNames(file string) []string {
	f, _, err := s.open("bootstrap", s.cfg.Booter.Site+"/"+file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(io.LimitReader(f, maxSiteScript))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "set" && !slices.Contains(names, fields[1]) {
			names = append(names, fields[1])
		}
	}
	return names
}
