package httpboot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
	"github.com/vmprov/vmprov/netboot/buildstate"
	"github.com/vmprov/vmprov/templates"
)

// BuildWriter changes hosts' build states in DNS (buildstate.Writer, with
// serve's own TSIG key). Apply reads the host's TXT record, lets c.Check
// judge it, and writes c.To only from one of c.From, with a prerequisite on
// what it read; see buildstate.Writer.Apply. It is called concurrently.
type BuildWriter interface {
	Apply(ctx context.Context, c buildstate.Change) (buildstate.Result, error)
}

var _ BuildWriter = (*buildstate.Writer)(nil)

// doneRetryAfter is what a 503 of /done asks the installer to wait, in
// seconds; the firstboot script waits 15 s between its tries anyway.
const doneRetryAfter = "15"

// maxDoneBody bounds a POST /done body (token=... as a form).
const maxDoneBody = 4 << 10

// errRevoked is a token that is well formed and names the caller, but is
// not the token of its current intent.
var errRevoked = errors.New("revoked")

// handleDone is the installer's callback, GET or POST /done?token=T
// (docs/design.md, "A host's life"): the FCrDNS-confirmed host that the
// token names, with the token of its current intent, is marked installed.
// A malformed token is 400; any other caller or token 403; a DNS failure
// 503 with Retry-After, and nothing changes for any of them. A host already
// installed gets 200 again, so the call is idempotent and several serve
// instances answering it at once write once.
func (s *Server) handleDone(w http.ResponseWriter, r *http.Request) {
	rec := note(w)
	if r.Method == http.MethodHead {
		// HEAD reaches GET routes; it must not change anything.
		w.Header().Set("Allow", "GET, POST")
		rec.err = "method not allowed"
		plain(w, r, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	if s.cfg.Build == nil {
		rec.err = "build states are not tracked (no serve.tsig secret)"
		notFound(w, r)
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" && r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxDoneBody)
		tok = r.PostFormValue("token")
	}
	name, sum, err := buildstate.ParseToken(tok)
	if err != nil {
		rec.err, rec.warn = err.Error(), true
		plain(w, r, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	addr := s.clientAddr(r)
	forbid := func(msg string) {
		rec.err = msg
		plain(w, r, http.StatusForbidden, msg+"\n")
	}
	d, err := s.cfg.Policy.Decide(r.Context(), netboot.Client{Addr: addr})
	switch {
	case errors.Is(err, netboot.ErrUnknown) || err == nil && d.Host.FQDN == "":
		forbid(fmt.Sprintf("%s is not a host in DNS (no forward-confirmed reverse DNS): only %s may report its own install with its token", addr, strings.TrimSuffix(name, ".")))
		return
	case err != nil:
		rec.err = err.Error()
		w.Header().Set("Retry-After", doneRetryAfter)
		plain(w, r, http.StatusServiceUnavailable, "service unavailable: DNS did not answer; try again\n")
		return
	}
	host := strings.TrimSuffix(d.Host.FQDN, ".")
	rec.host = host
	if !strings.EqualFold(d.Host.FQDN, name) {
		forbid(fmt.Sprintf("the token names %s, but %s is %s", strings.TrimSuffix(name, "."), addr, host))
		return
	}
	res, err := s.cfg.Build.Apply(r.Context(), buildstate.Change{
		FQDN: d.Host.FQDN, To: inventory.StateInstalled,
		From: []inventory.State{inventory.StateInstall, inventory.StateInstalling},
		Check: func(in inventory.Intent) error {
			if !buildstate.Verify(s.cfg.DoneSecret, d.Host.FQDN, in, sum) {
				return errRevoked
			}
			return nil
		},
	})
	switch {
	case errors.Is(err, errRevoked):
		forbid(fmt.Sprintf("the token is not the one of %s's current boot intent: a reinstall since has revoked it, or it was never issued", host))
		return
	case errors.Is(err, buildstate.ErrNoIntent):
		forbid(fmt.Sprintf("%s has no boot intent to mark installed", host))
		return
	case err != nil:
		rec.err = err.Error()
		w.Header().Set("Retry-After", doneRetryAfter)
		plain(w, r, http.StatusServiceUnavailable, "service unavailable: DNS refused the build state write; try again\n")
		return
	}
	s.transitioned(r.Context(), host, res, "installer callback from "+addr.String())
	plain(w, r, http.StatusOK, fmt.Sprintf("%s %s\n", host, res.To))
}

// markInstalling marks the host of decision d installing when its installer
// fetches its own answer file (file), and returns the callback token that
// file carries: computed from the intent just read from DNS, or from d's
// (cached) intent when DNS could not be read. A failed mark is logged and
// the file is served all the same: install and installing boot alike. A
// HEAD request marks nothing.
func (s *Server) markInstalling(r *http.Request, addr netip.Addr, d netboot.Decision, file string) string {
	if s.cfg.Build == nil {
		return ""
	}
	ctx := r.Context()
	in := d.Host.Intent
	if r.Method == http.MethodHead {
		return buildstate.Token(s.cfg.DoneSecret, d.Host.FQDN, in)
	}
	res, err := s.cfg.Build.Apply(ctx, buildstate.Change{
		FQDN: d.Host.FQDN, To: inventory.StateInstalling, From: []inventory.State{inventory.StateInstall},
	})
	if err != nil {
		s.log.Warn("build state not marked installing", "host", strings.TrimSuffix(d.Host.FQDN, "."), "file", file, "ip", addr.String(), "err", err)
	} else {
		s.transitioned(ctx, strings.TrimSuffix(d.Host.FQDN, "."), res, "answer file "+file+" fetched by "+addr.String())
		in = res.Intent
	}
	return buildstate.Token(s.cfg.DoneSecret, d.Host.FQDN, in)
}

// transitioned logs a change that this server wrote (the writer counts it).
func (s *Server) transitioned(ctx context.Context, host string, res buildstate.Result, by string) {
	if !res.Changed {
		return
	}
	s.log.InfoContext(ctx, "build state changed", "host", host, "from", string(res.From), "to", string(res.To), "by", by)
}

// hostVars are the intent's variables for /pxedust's set lines: the
// build record (state, build_id) is vmprov's, not a host variable.
func hostVars(in inventory.Intent) []templates.Var {
	var out []templates.Var
	for _, v := range netboot.TemplateVars(in) {
		if !templates.BuildVar(v.Name) {
			out = append(out, v)
		}
	}
	return out
}
