package dnsupdate

import (
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// ErrPrerequisite matches (with errors.Is) an update refused because one of
// its prerequisites did not hold: the server answered YXDOMAIN, YXRRSET,
// NXDOMAIN or NXRRSET (RFC 2136 3.2). Nothing was changed. Callers use it to
// say "the name is already in use" or "the records no longer hold our
// values".
var ErrPrerequisite = errors.New("dns update prerequisite not met")

// ErrMaybeApplied matches (with errors.Is) a failed Apply that the server
// may nevertheless have applied: an attempt was sent and its answer never
// came (the connection failed or timed out after the request went out), and
// what followed did not settle the question. Above all, when the server
// applied that attempt, the retry fails the prerequisites the attempt made
// false, and the error matches both ErrPrerequisite and ErrMaybeApplied.
// Only the records can tell then: the caller reads them back and compares
// them with the change set.
//
// A SERVFAIL is an answer, not a lost one: RFC 2136 3.4 makes a failed
// update change nothing.
var ErrMaybeApplied = errors.New("dns update may have been applied")

// maybeAppliedError is the failure of an Apply one of whose attempts went
// unanswered.
type maybeAppliedError struct {
	err        error // how Apply failed in the end
	unanswered error // how the first unanswered attempt failed
}

func (e *maybeAppliedError) Error() string {
	if errors.As(e.err, new(unansweredError)) {
		// The last attempt went unanswered too.
		return fmt.Sprintf("%v: the server may have applied the update", e.err)
	}
	return fmt.Sprintf("%v, after an attempt that got no answer (%v): the server may have applied that attempt", e.err, e.unanswered)
}

func (e *maybeAppliedError) Unwrap() []error { return []error{e.err, ErrMaybeApplied} }

// Operations named by RcodeError.Op.
const (
	OpUpdate   = "update"
	OpQuery    = "query"
	OpTransfer = "transfer"
)

// RcodeError is a definite answer from the server that refuses an
// operation, or a TSIG failure. Its message names the server, the zone (or
// queried name) and the key, and suggests the likely fix.
type RcodeError struct {
	// Op is OpUpdate, OpQuery or OpTransfer.
	Op string
	// Rcode is the response code; for TSIG failures it is the TSIG error
	// (dns.RcodeBadSig, dns.RcodeBadKey, dns.RcodeBadTime), which the
	// server reports in the TSIG record of a NOTAUTH response (RFC 8945
	// 5.3.2). A response that fails verification here counts as BADSIG,
	// or BADTIME when only its time is off.
	Rcode int
	// Zone is the zone updated or transferred; Name is the queried name.
	Zone, Name string
	// Server is host:port; Key is the TSIG key name, "" when unsigned.
	Server, Key string
}

// Error explains the refusal and what usually fixes it.
func (e *RcodeError) Error() string {
	rc := rcodeName(e.Rcode)
	key := e.Key
	if key == "" {
		key = "(none: unsigned)"
	}
	switch e.Rcode {
	case dns.RcodeBadSig, dns.RcodeBadKey, dns.RcodeBadTime:
		return fmt.Sprintf("%s: TSIG key %s rejected by %s (%s): check the secret/algorithm/clock", e.what(), key, e.Server, rc)
	}
	switch e.Op {
	case OpUpdate:
		switch e.Rcode {
		case dns.RcodeRefused:
			if e.Key == "" {
				return fmt.Sprintf("unsigned update refused by %s for zone %s: configure a TSIG key that its allow-update / update-policy allows", e.Server, e.Zone)
			}
			return fmt.Sprintf("update refused by %s for zone %s: is key %s allowed in its allow-update / update-policy?", e.Server, e.Zone, e.Key)
		case dns.RcodeNotAuth:
			if e.Key == "" {
				return fmt.Sprintf("update: %s is not authoritative for %s (NOTAUTH): check dns.server and dns.zone", e.Server, e.Zone)
			}
			return fmt.Sprintf("update: %s is not authoritative for %s (or the key %s is unknown/rejected) (NOTAUTH): check dns.server, dns.zone and the key", e.Server, e.Zone, e.Key)
		case dns.RcodeNotZone:
			return fmt.Sprintf("update for zone %s at %s: name outside zone %s (NOTZONE)", e.Zone, e.Server, e.Zone)
		case dns.RcodeYXDomain:
			return fmt.Sprintf("update for zone %s at %s: prerequisite failed: name already exists (YXDOMAIN)", e.Zone, e.Server)
		case dns.RcodeYXRrset:
			return fmt.Sprintf("update for zone %s at %s: prerequisite failed: RRset already exists (YXRRSET)", e.Zone, e.Server)
		case dns.RcodeNameError:
			return fmt.Sprintf("update for zone %s at %s: prerequisite failed: name does not exist (NXDOMAIN)", e.Zone, e.Server)
		case dns.RcodeNXRrset:
			return fmt.Sprintf("update for zone %s at %s: prerequisite failed: RRset does not exist or holds other values (NXRRSET)", e.Zone, e.Server)
		case dns.RcodeServerFailure:
			return fmt.Sprintf("update for zone %s: %s failed (SERVFAIL): see its log", e.Zone, e.Server)
		case dns.RcodeNotImplemented:
			return fmt.Sprintf("update for zone %s: %s does not implement dynamic updates (NOTIMP)", e.Zone, e.Server)
		case dns.RcodeFormatError:
			return fmt.Sprintf("update for zone %s: %s could not parse the update (FORMERR)", e.Zone, e.Server)
		}
	case OpQuery:
		switch e.Rcode {
		case dns.RcodeRefused:
			return fmt.Sprintf("query for %s refused by %s: it serves no zone holding %s, or its allow-query excludes this host", e.Name, e.Server, e.Name)
		case dns.RcodeServerFailure:
			return fmt.Sprintf("query for %s: %s failed (SERVFAIL): see its log", e.Name, e.Server)
		case dns.RcodeNotAuth:
			return fmt.Sprintf("query for %s: %s is not authoritative (or the key %s is unknown/rejected) (NOTAUTH)", e.Name, e.Server, key)
		}
	case OpTransfer:
		switch e.Rcode {
		case dns.RcodeRefused, dns.RcodeNotAuth:
			return fmt.Sprintf("zone transfer of %s refused by %s (%s): is it authoritative for %s, with allow-transfer { key %s; }; for the zone?", e.Zone, e.Server, rc, e.Zone, key)
		case dns.RcodeServerFailure:
			return fmt.Sprintf("zone transfer of %s: %s failed (SERVFAIL): see its log", e.Zone, e.Server)
		}
	}
	return fmt.Sprintf("%s at %s: %s", e.what(), e.Server, rc)
}

// what names the operation and its subject.
func (e *RcodeError) what() string {
	switch e.Op {
	case OpQuery:
		return "query for " + e.Name
	case OpTransfer:
		return "zone transfer of " + e.Zone
	}
	return e.Op + " for zone " + e.Zone
}

// Is makes errors.Is(err, ErrPrerequisite) true for the prerequisite rcodes
// of an update (RFC 2136 3.2.1 and 3.2.2).
func (e *RcodeError) Is(target error) bool {
	return target == ErrPrerequisite && e.Op == OpUpdate && prerequisiteRcode(e.Rcode)
}

// prerequisiteRcode reports whether rcode is one an RFC 2136 server
// answers when a prerequisite fails.
func prerequisiteRcode(rcode int) bool {
	switch rcode {
	case dns.RcodeYXDomain, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeNXRrset:
		return true
	}
	return false
}

func rcodeName(rcode int) string {
	switch rcode {
	case dns.RcodeBadSig: // shares 16 with BADVERS, but only TSIG errors reach here
		return "BADSIG"
	case dns.RcodeBadKey:
		return "BADKEY"
	case dns.RcodeBadTime:
		return "BADTIME"
	}
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// checkResponse turns a response into nil or an *RcodeError. ok lists the
// rcodes that are not errors for this operation besides NOERROR. tsigErr is
// the verification error of a signed request's response, if any.
//
// A response is accepted only when its signature verifies. A refusal is
// reported with the server's rcode even when it is unsigned or does not
// verify (RFC 8945 5.3.2 makes some of them unsigned, and miekg/dns cannot
// verify a signed NOTAUTH): nothing is trusted from it, and its rcode says
// more than "bad signature" would.
func (c *Client) checkResponse(op, zone, name string, r *dns.Msg, tsigErr error, ok ...int) error {
	e := &RcodeError{Op: op, Zone: zone, Name: name, Server: c.server, Key: c.key}
	accepted := r.Rcode == dns.RcodeSuccess || slices.Contains(ok, r.Rcode)
	if c.key != "" {
		if t := r.IsTsig(); t != nil && t.Error != dns.RcodeSuccess {
			e.Rcode = int(t.Error)
			return e
		}
		if tsigErr != nil && accepted {
			e.Rcode = dns.RcodeBadSig
			if errors.Is(tsigErr, dns.ErrTime) {
				e.Rcode = dns.RcodeBadTime
			}
			return e
		}
	}
	if accepted {
		return nil
	}
	e.Rcode = r.Rcode
	return e
}
