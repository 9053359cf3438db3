package dnsupdate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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
//
// An answer does not say which server software gave it, and BIND, Knot DNS
// and PowerDNS give one rcode for different causes (Knot answers BADKEY when
// its acl lacks the action, PowerDNS REFUSED or NOTAUTH when the signature
// does not verify), so a hint names the usual fix of each of them.
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
	// UnsignedReply reports that a signed request got an answer without a
	// TSIG record: the server did not take the request as signed with the
	// key. PowerDNS answers a key it does not hold, or a wrong secret, so.
	UnsignedReply bool
}

// Error explains the refusal and what usually fixes it.
func (e *RcodeError) Error() string {
	rc := rcodeName(e.Rcode)
	key := e.Key
	if key == "" {
		key = "(none: unsigned)"
	}
	switch e.Rcode {
	case dns.RcodeBadSig:
		return fmt.Sprintf("%s: TSIG key %s rejected by %s (%s): the signature does not verify: check the secret/algorithm/clock (the server's secret of %s must be the one in dns.tsig.secret_file)", e.what(), key, e.Server, rc, key)
	case dns.RcodeBadTime:
		return fmt.Sprintf("%s: TSIG key %s rejected by %s (%s): the clocks of this host and the server differ by more than %d s: check the secret/algorithm/clock", e.what(), key, e.Server, rc, tsigFudge)
	case dns.RcodeBadKey:
		// Knot checks its acl before the signature: a key the acl does not
		// allow the action gets BADKEY, right secret or wrong.
		why := "the server does not hold the key with this algorithm"
		switch e.Op {
		case OpUpdate:
			why += ", or its acl does not allow the key to update the zone (Knot answers BADKEY to both, whatever the secret)"
		case OpTransfer:
			why += ", or its acl does not allow the key to transfer the zone (Knot answers BADKEY to both, whatever the secret)"
		case OpQuery:
			// vmprov signs the SOA queries that find a reverse zone.
			why += fmt.Sprintf(", or no acl of the zone holding the name names the key (Knot answers BADKEY to both: give every zone vmprov updates an acl with key %s and action update)", key)
		}
		return fmt.Sprintf("%s: TSIG key %s rejected by %s (%s): %s. %s", e.what(), key, e.Server, rc, why, serverFix(e.Op, e.Zone, key, true))
	}
	// PowerDNS answers a signature it cannot verify with an unsigned
	// REFUSED (updates) or NOTAUTH, not with BADSIG or BADKEY.
	const pdnsBadKey = "PowerDNS answers so to a key it does not hold, or whose secret or algorithm differ: compare pdnsutil list-tsig-keys with dns.tsig"
	switch e.Op {
	case OpUpdate:
		switch e.Rcode {
		case dns.RcodeRefused:
			if e.Key == "" {
				return fmt.Sprintf("unsigned update refused by %s for zone %s: configure a TSIG key (dns.tsig) that its allow-update / update-policy allows. %s", e.Server, e.Zone, serverFix(e.Op, e.Zone, "KEY", false))
			}
			if e.UnsignedReply {
				return fmt.Sprintf("update refused by %s for zone %s, unsigned: the server did not accept key %s (%s), or does not allow it to update the zone. %s", e.Server, e.Zone, e.Key, pdnsBadKey, serverFix(e.Op, e.Zone, e.Key, false))
			}
			return fmt.Sprintf("update refused by %s for zone %s: is key %s allowed to update it? %s", e.Server, e.Zone, e.Key, serverFix(e.Op, e.Zone, e.Key, false))
		case dns.RcodeNotAuth:
			if e.Key == "" {
				return fmt.Sprintf("unsigned update for zone %s refused by %s (NOTAUTH): it is not authoritative for %s, or it takes only updates signed with a key (Knot answers so when no acl allows the update): check dns.server and dns.zone, and configure dns.tsig with a key the zone's acl allows to update", e.Zone, e.Server, e.Zone)
			}
			return fmt.Sprintf("update: %s is not authoritative for %s (or the key %s is unknown/rejected) (NOTAUTH): check dns.server, dns.zone and the key; for a reverse zone, the server must hold it or dns.reverse_zones must name the zone it does hold", e.Server, e.Zone, e.Key)
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
			return fmt.Sprintf("update for zone %s: %s does not implement dynamic updates (NOTIMP) for it: PowerDNS answers so when the zone's backend has no transactions (the bind backend): serve the zone from gsqlite3, gmysql or gpgsql", e.Zone, e.Server)
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
			msg := fmt.Sprintf("query for %s: %s is not authoritative (or the key %s is unknown/rejected) (NOTAUTH)", e.Name, e.Server, key)
			if e.UnsignedReply {
				msg += ": " + pdnsBadKey
			}
			return msg
		}
	case OpTransfer:
		switch e.Rcode {
		case dns.RcodeRefused, dns.RcodeNotAuth:
			msg := fmt.Sprintf("zone transfer of %s refused by %s (%s): is it authoritative for %s, with transfers allowed to key %s? %s", e.Zone, e.Server, rc, e.Zone, key, serverFix(e.Op, e.Zone, key, false))
			if e.UnsignedReply {
				msg += "; " + pdnsBadKey
			}
			return msg
		case dns.RcodeServerFailure:
			return fmt.Sprintf("zone transfer of %s: %s failed (SERVFAIL): see its log", e.Zone, e.Server)
		}
	}
	return fmt.Sprintf("%s at %s: %s", e.what(), e.Server, rc)
}

// serverFix says what BIND, Knot DNS and PowerDNS need so that key may do
// op (update or transfer) on zone, and with withKey how each is given the
// key. vmprov needs updates of every zone, and transfers of the forward
// zone for list and host list/remove.
func serverFix(op, zone, key string, withKey bool) string {
	var bind, knot, pdns []string
	if withKey {
		bind = append(bind, fmt.Sprintf("key %q with the algorithm and secret of dns.tsig", key))
		knot = append(knot, fmt.Sprintf("key %s with the algorithm and secret of dns.tsig", key))
		pdns = append(pdns, fmt.Sprintf("pdnsutil import-tsig-key %s ALGORITHM SECRET", key))
	}
	switch op {
	case OpUpdate:
		bind = append(bind, fmt.Sprintf("allow-update { key %s; }; (or an update-policy) in zone %s", key, zone))
		knot = append(knot, fmt.Sprintf("an acl with key %s and action update for zone %s", key, zone))
		pdns = append(pdns, fmt.Sprintf("pdnsutil set-meta %s TSIG-ALLOW-DNSUPDATE %s, with dnsupdate=yes and allow-dnsupdate-from holding this host in pdns.conf", zone, key))
	case OpTransfer:
		bind = append(bind, fmt.Sprintf("allow-transfer { key %s; }; in zone %s", key, zone))
		knot = append(knot, fmt.Sprintf("an acl with key %s and action transfer for zone %s", key, zone))
		pdns = append(pdns, fmt.Sprintf("pdnsutil set-meta %s TSIG-ALLOW-AXFR %s", zone, key))
	}
	return fmt.Sprintf("BIND: %s; Knot: %s; PowerDNS: %s", strings.Join(bind, ", "), strings.Join(knot, ", "), strings.Join(pdns, ", "))
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
	e := &RcodeError{Op: op, Zone: zone, Name: name, Server: c.server, Key: c.key,
		UnsignedReply: c.key != "" && r.IsTsig() == nil}
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
