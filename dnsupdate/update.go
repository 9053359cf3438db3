package dnsupdate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Updater applies RFC 2136 change sets.
//
// Apply sends cs as one UPDATE message and returns nil once the server has
// applied all of it. The update is atomic (RFC 2136 3.2-3.4): the server
// checks every prerequisite first and, if any fails, changes nothing and the
// error matches ErrPrerequisite; otherwise it applies every change. Other
// refusals are *RcodeError values whose message names the server, zone and
// key.
//
// The Client implementation sends the message over TCP, TSIG-signed when a
// key is configured, re-signed with a fresh time and ID on every attempt.
// It repeats an attempt only after a network error, a timeout or SERVFAIL,
// never after a definite refusal. An attempt whose answer was lost may still
// have been applied: its retry then fails the prerequisites it made false
// (a claim of a free name finds the name taken, by itself). Such a failure,
// and any other after an unanswered attempt, matches ErrMaybeApplied, so
// that the caller can look the records up to tell its own change from
// another's. Apply is safe for concurrent use, returns when ctx ends, and
// does not modify cs.
type Updater interface {
	Apply(ctx context.Context, cs ChangeSet) error
}

// RRKey names an RRset: an owner name (fully qualified) and a type.
type RRKey struct {
	Name string
	Type uint16
}

func (k RRKey) String() string { return k.Name + " " + dns.Type(k.Type).String() }

// ChangeSet is one atomic RFC 2136 update of one zone. Every name is fully
// qualified and inside Zone. Prerequisites are listed in the order the
// server checks them; the updates are applied in the order RemoveName,
// RemoveRRset, Remove, Add, so that an RRset can be replaced by removing it
// and adding its new records in one change set.
type ChangeSet struct {
	// Zone is the zone to update, e.g. "example.com.".
	Zone string

	// NameNotInUse: no RR of any type may exist at these names (2.4.5).
	NameNotInUse []string
	// NameInUse: at least one RR must exist at these names (2.4.4).
	NameInUse []string
	// RRsetAbsent: these RRsets must not exist (2.4.3).
	RRsetAbsent []RRKey
	// RRsetExists: these RRsets must exist, whatever their values (2.4.1).
	RRsetExists []RRKey
	// RRsetEquals: for each name and type present, the RRset must hold
	// exactly these records, no more and no fewer; TTLs are ignored (2.4.2,
	// value dependent).
	RRsetEquals []dns.RR

	// Remove deletes these records (2.5.4); TTLs are ignored.
	Remove []dns.RR
	// RemoveRRset deletes these RRsets (2.5.2).
	RemoveRRset []RRKey
	// RemoveName deletes every RRset at these names (2.5.3).
	RemoveName []string
	// Add adds these records with their TTLs (2.5.1); class IN is implied.
	Add []dns.RR
}

// Validate checks that cs can be sent: a zone, fully qualified names inside
// it, no meta types, no nil records. Both Client and test fakes apply it, so
// an invalid change set fails the same way everywhere and never reaches a
// server.
func (cs ChangeSet) Validate() error {
	if _, ok := dns.IsDomainName(cs.Zone); !ok || !dns.IsFqdn(cs.Zone) {
		return fmt.Errorf("zone %q is not a fully qualified domain name", cs.Zone)
	}
	var errs []error
	name := func(field, n string) {
		switch _, ok := dns.IsDomainName(n); {
		case !ok || n == "":
			errs = append(errs, fmt.Errorf("%s: %q is not a domain name", field, n))
		case !dns.IsFqdn(n):
			errs = append(errs, fmt.Errorf("%s: %q is not fully qualified (end it with a dot)", field, n))
		case !dns.IsSubDomain(cs.Zone, n):
			errs = append(errs, fmt.Errorf("%s: %q is outside zone %s", field, n, cs.Zone))
		}
	}
	typ := func(field string, k RRKey) {
		name(field, k.Name)
		if !dataType(k.Type) {
			errs = append(errs, fmt.Errorf("%s: %s is not a data type", field, k))
		}
	}
	rr := func(field string, r dns.RR) {
		if r == nil || r.Header() == nil {
			errs = append(errs, fmt.Errorf("%s: nil record", field))
			return
		}
		h := r.Header()
		typ(field, RRKey{h.Name, h.Rrtype})
		if h.Class != dns.ClassINET && h.Class != 0 {
			errs = append(errs, fmt.Errorf("%s: %s: class %s is not IN", field, h.Name, dns.Class(h.Class)))
		}
		if _, ok := r.(*dns.ANY); ok {
			errs = append(errs, fmt.Errorf("%s: %s: record without data", field, h.Name))
		}
	}
	for _, n := range cs.NameNotInUse {
		name("NameNotInUse", n)
	}
	for _, n := range cs.NameInUse {
		name("NameInUse", n)
	}
	for _, k := range cs.RRsetAbsent {
		typ("RRsetAbsent", k)
	}
	for _, k := range cs.RRsetExists {
		typ("RRsetExists", k)
	}
	for _, r := range cs.RRsetEquals {
		rr("RRsetEquals", r)
	}
	for _, n := range cs.RemoveName {
		name("RemoveName", n)
	}
	for _, k := range cs.RemoveRRset {
		typ("RemoveRRset", k)
	}
	for _, r := range cs.Remove {
		rr("Remove", r)
	}
	for _, r := range cs.Add {
		rr("Add", r)
	}
	return errors.Join(errs...)
}

// dataType reports whether t can be stored in a zone: not a meta type
// (RFC 6895 3.1) and not one the update protocol reserves.
func dataType(t uint16) bool {
	switch t {
	case dns.TypeNone, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeIXFR, dns.TypeAXFR,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeANY:
		return false
	}
	return true
}

// msg builds the UPDATE message of cs (RFC 2136 2.3-2.5), unsigned and with
// ID 0. cs must be valid. The records of cs are copied, never modified.
func (cs ChangeSet) msg() *dns.Msg {
	m := new(dns.Msg)
	m.Opcode = dns.OpcodeUpdate
	m.Compress = true // RFC 1035 4.1.4 compression; every RFC 2136 server accepts it
	m.Question = []dns.Question{{Name: cs.Zone, Qtype: dns.TypeSOA, Qclass: dns.ClassINET}}
	// Prerequisite section (2.4), carried in the answer section.
	noData := func(name string, t, class uint16) dns.RR {
		return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: class}}
	}
	for _, n := range cs.NameNotInUse {
		m.Answer = append(m.Answer, noData(n, dns.TypeANY, dns.ClassNONE)) // 2.4.5
	}
	for _, n := range cs.NameInUse {
		m.Answer = append(m.Answer, noData(n, dns.TypeANY, dns.ClassANY)) // 2.4.4
	}
	for _, k := range cs.RRsetAbsent {
		m.Answer = append(m.Answer, noData(k.Name, k.Type, dns.ClassNONE)) // 2.4.3
	}
	for _, k := range cs.RRsetExists {
		m.Answer = append(m.Answer, noData(k.Name, k.Type, dns.ClassANY)) // 2.4.1
	}
	for _, r := range cs.RRsetEquals {
		m.Answer = append(m.Answer, withClass(r, dns.ClassINET, 0)) // 2.4.2
	}
	// Update section (2.5), carried in the authority section.
	for _, n := range cs.RemoveName {
		m.Ns = append(m.Ns, noData(n, dns.TypeANY, dns.ClassANY)) // 2.5.3
	}
	for _, k := range cs.RemoveRRset {
		m.Ns = append(m.Ns, noData(k.Name, k.Type, dns.ClassANY)) // 2.5.2
	}
	for _, r := range cs.Remove {
		m.Ns = append(m.Ns, withClass(r, dns.ClassNONE, 0)) // 2.5.4
	}
	for _, r := range cs.Add {
		m.Ns = append(m.Ns, withClass(r, dns.ClassINET, r.Header().Ttl)) // 2.5.1
	}
	return m
}

// withClass returns a copy of r with the given class and TTL.
func withClass(r dns.RR, class uint16, ttl uint32) dns.RR {
	r = dns.Copy(r)
	r.Header().Class = class
	r.Header().Ttl = ttl
	return r
}

// Apply implements Updater.
func (c *Client) Apply(ctx context.Context, cs ChangeSet) error {
	if err := cs.Validate(); err != nil {
		return fmt.Errorf("dns update: %w", err)
	}
	zone := dns.CanonicalName(cs.Zone)
	start := time.Now()
	build := func() *dns.Msg {
		m := cs.msg()
		m.Id = dns.Id()
		return m
	}
	// unanswered is the failure of the first attempt that may have reached
	// the server without its answer reaching us.
	var unanswered error
	err := c.retry(ctx, func() error {
		r, tsigErr, err := c.attempt(ctx, "tcp", build())
		if err != nil {
			if unanswered == nil && errors.As(err, new(unansweredError)) {
				unanswered = err
			}
			return err
		}
		return c.checkResponse(OpUpdate, zone, "", r, tsigErr)
	})
	if err != nil {
		if re := new(RcodeError); !errors.As(err, &re) {
			err = fmt.Errorf("dns update for zone %s at %s: %w", zone, c.server, err)
		}
		if unanswered != nil {
			return &maybeAppliedError{err: err, unanswered: unanswered}
		}
		return err
	}
	c.log.Debug("dns update applied", "zone", zone, "dur", time.Since(start))
	return nil
}
