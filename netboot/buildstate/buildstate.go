// Package buildstate keeps a host's build state in its TXT record
// (docs/design.md, "A host's life"): the callback token an installer
// presents when it is done, and the state changes vmprov serve writes, each
// one RFC 2136 update whose prerequisite is the TXT RRset it read
// (RFC 2136 section 2.4.2), so that a concurrent reinstall always wins over
// a late callback and several serve instances never apply one change twice.
//
// It holds no state of its own: every instance that shares the token secret
// and the DNS server decides the same.
package buildstate

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmprov/vmprov/dnsupdate"
	"github.com/vmprov/vmprov/inventory"
	"github.com/vmprov/vmprov/netboot"
)

// tokenHexLen is the length of a token's HMAC-SHA256 in hex.
const tokenHexLen = 2 * sha256.Size

// Token returns the installer callback token of host fqdn for its boot
// intent in: "FQDN:HMAC", FQDN without its trailing dot, HMAC the hex
// HMAC-SHA256 keyed by secret over the FQDN and the intent without its
// state. The state is left out so that marking a host installing keeps its
// token valid; everything else is in, and create, host add and reinstall
// write a fresh build_id, so a reinstall revokes the tokens of every earlier
// build. The token holds only [a-z0-9.:-].
func Token(secret []byte, fqdn string, in inventory.Intent) string {
	return strings.TrimSuffix(canonicalName(fqdn), ".") + ":" + hex.EncodeToString(sum(secret, fqdn, in))
}

// Verify reports whether sum (as ParseToken returns it) is the token HMAC
// of fqdn for the intent in, comparing in constant time.
func Verify(secret []byte, fqdn string, in inventory.Intent, got []byte) bool {
	return hmac.Equal(sum(secret, fqdn, in), got)
}

func sum(secret []byte, fqdn string, in inventory.Intent) []byte {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "vmprov done token 1\n%s\n", canonicalName(fqdn))
	for _, s := range in.Without(inventory.KeyState).TXT() {
		fmt.Fprintf(m, "%d:%s\n", len(s), s) // length-prefixed: no string can pass for two
	}
	return m.Sum(nil)
}

func canonicalName(fqdn string) string { return dns.CanonicalName(fqdn) }

// ErrMalformedToken is wrapped by ParseToken's errors.
var ErrMalformedToken = errors.New("malformed token")

// ParseToken splits a token into the host it names (fully qualified,
// lower-case) and its HMAC. Errors name the token (cut to 100 bytes) and
// the form it should have.
func ParseToken(tok string) (fqdn string, mac []byte, err error) {
	shown := tok
	if len(shown) > 100 {
		shown = shown[:100] + "..."
	}
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s (want HOST.ZONE:%d hex digits, as the host's answer file has it)", ErrMalformedToken, shown, why, tokenHexLen)
	}
	name, h, ok := strings.Cut(tok, ":")
	switch {
	case tok == "":
		return "", nil, bad("empty")
	case !ok:
		return "", nil, bad("no ':'")
	case len(h) != tokenHexLen:
		return "", nil, bad(fmt.Sprintf("%d characters after ':'", len(h)))
	}
	if !hostName(name) {
		return "", nil, bad(fmt.Sprintf("%q is not a host name", name))
	}
	mac, err = hex.DecodeString(h)
	if err != nil || strings.ToLower(h) != h {
		return "", nil, bad("not lower-case hex after ':'")
	}
	return canonicalName(name), mac, nil
}

// hostName reports whether s is a fully qualified host name written without
// its trailing dot: at least two RFC 1123 labels, at most 253 bytes.
func hostName(s string) bool {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// DNS is what a Writer needs of the DNS client (dnsupdate.Client): Lookup
// asks the primary directly (no cache, so a change reads what the
// prerequisite will be checked against) and Apply sends one RFC 2136
// update. Both are safe for concurrent use.
type DNS interface {
	Lookup(ctx context.Context, name string, qtype uint16) (dnsupdate.Answer, error)
	dnsupdate.Updater
}

var _ DNS = (*dnsupdate.Client)(nil)

// Writer changes build states in one zone. It is safe for concurrent use.
type Writer struct {
	dns  DNS
	zone string
	// transitions counts the changes Apply wrote, by the state entered.
	transitions *prometheus.CounterVec
}

// NewWriter returns a Writer that reads and updates zone (fully qualified)
// through d, which signs with the key of serve.tsig.
func NewWriter(d DNS, zone string) *Writer {
	return &Writer{dns: d, zone: dns.Fqdn(zone), transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmprov_build_transitions_total",
		Help: "Build state changes this server wrote to DNS, by the state entered.",
	}, []string{"to"})}
}

// Collector returns vmprov_build_transitions_total{to}: the changes Apply
// wrote, whichever server asked (HTTP for answer files and the callback,
// TFTP for per-host GRUB and PXELINUX configs).
func (w *Writer) Collector() prometheus.Collector { return w.transitions }

// Change is one build state change of one host.
type Change struct {
	FQDN string // the host, fully qualified
	To   inventory.State
	// From lists the states the change may leave. A host found in another
	// state (already To, or installed when To is installing) is left as it
	// is, and Apply reports that without an error.
	From []inventory.State
	// Check, when set, judges the intent read from DNS before anything is
	// written (the callback's token); its error refuses the change and is
	// returned as it is. It is called again after every read.
	Check func(inventory.Intent) error
}

// Result is what Apply found and did.
type Result struct {
	From    inventory.State  // the state read
	To      inventory.State  // the state the host is in now
	Intent  inventory.Intent // the host's intent now
	Changed bool             // this call wrote the change
}

// Errors of Apply that are about the host, not DNS.
var (
	// ErrNoIntent: the host has no TXT record, or one that is not a boot
	// intent by the rules serve renders with.
	ErrNoIntent = errors.New("no boot intent")
	// ErrContended: the TXT record changed under every attempt.
	ErrContended = errors.New("the TXT record kept changing")
)

// maxAttempts bounds the reads and writes of one Apply.
const maxAttempts = 4

// Apply reads the host's TXT record and, when its state is one of c.From
// and c.Check accepts its intent, replaces it with the same intent in state
// c.To, in one update whose prerequisite is the RRset it read. When the
// prerequisite fails (a reinstall, another serve instance), it reads again
// and decides again: if another instance made the change, the result is
// To with Changed false. An update whose answer was lost and whose records
// now hold exactly what it sent counts as its own. Errors from DNS are
// returned wrapped; they mean nothing is known to have changed, and the
// caller may retry.
func (w *Writer) Apply(ctx context.Context, c Change) (Result, error) {
	fqdn := dns.Fqdn(c.FQDN)
	var sent []string
	for attempt := 0; attempt < maxAttempts; attempt++ {
		rrs, in, err := w.read(ctx, fqdn)
		if err != nil {
			return Result{}, err
		}
		cur := in.State()
		res := Result{From: cur, To: cur, Intent: in}
		if c.Check != nil {
			if err := c.Check(in); err != nil {
				return res, err
			}
		}
		if sent != nil && cur == c.To && slices.Equal(txtStrings(rrs), sent) {
			res.Changed = true // our own write, whose answer was lost
			w.transitions.WithLabelValues(string(c.To)).Inc()
			return res, nil
		}
		if cur == c.To || !slices.Contains(c.From, cur) {
			return res, nil
		}
		next := in.With(inventory.KeyState, string(c.To))
		hdr := dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: rrs[0].Header().Ttl}
		cs := dnsupdate.ChangeSet{Zone: w.zone, RRsetEquals: rrs,
			RemoveRRset: []dnsupdate.RRKey{{Name: fqdn, Type: dns.TypeTXT}},
			Add:         []dns.RR{&dns.TXT{Hdr: hdr, Txt: next.TXT()}}}
		err = w.dns.Apply(ctx, cs)
		switch {
		case err == nil:
			w.transitions.WithLabelValues(string(c.To)).Inc()
			return Result{From: cur, To: c.To, Intent: next, Changed: true}, nil
		case errors.Is(err, dnsupdate.ErrMaybeApplied):
			sent = next.TXT()
		case !errors.Is(err, dnsupdate.ErrPrerequisite):
			return res, fmt.Errorf("build state %s of %s: %w", c.To, fqdn, err)
		}
	}
	return Result{}, fmt.Errorf("build state %s of %s: %w in %d attempts", c.To, fqdn, ErrContended, maxAttempts)
}

// read returns the host's TXT RRset and the intent it holds, read the way
// the boot policy reads it (netboot.ParseIntent).
func (w *Writer) read(ctx context.Context, fqdn string) ([]dns.RR, inventory.Intent, error) {
	a, err := w.dns.Lookup(ctx, fqdn, dns.TypeTXT)
	if err != nil {
		return nil, nil, fmt.Errorf("read TXT of %s: %w", fqdn, err)
	}
	var rrs []dns.RR
	for _, rr := range a.Records {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, fqdn) {
			rrs = append(rrs, t)
		}
	}
	if len(rrs) == 0 {
		return nil, nil, fmt.Errorf("%s: %w: it has no TXT record", fqdn, ErrNoIntent)
	}
	in, err := netboot.ParseIntent(txtStrings(rrs))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %w", fqdn, ErrNoIntent, err)
	}
	return rrs, in, nil
}

// txtStrings flattens a TXT RRset in the order the boot policy does:
// records sorted by their strings, so that every instance reads one intent.
func txtStrings(rrs []dns.RR) []string {
	recs := make([][]string, 0, len(rrs))
	for _, rr := range rrs {
		recs = append(recs, rr.(*dns.TXT).Txt)
	}
	slices.SortStableFunc(recs, func(a, b []string) int {
		return cmp.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00"))
	})
	var out []string
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}
