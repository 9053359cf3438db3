package bench

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Exchange is perfdhcp's statistics of one half of an exchange:
// DISCOVER-OFFER or REQUEST-ACK (DHCPv4), SOLICIT-ADVERTISE or
// REQUEST-REPLY (DHCPv6).
type Exchange struct {
	Sent, Received, Drops, Orphans, Rejected uint64
	AvgDelay                                 time.Duration
}

// PerfdhcpReport is the final report of a `perfdhcp -4` or `perfdhcp -6`
// run.
type PerfdhcpReport struct {
	// Rate is the completed 4-way exchanges per second perfdhcp measured.
	Rate float64
	// Expected is the rate asked for with -r; 0 when none was.
	Expected float64
	// Malformed counts malformed packets received.
	Malformed uint64
	// DO and RA are the DISCOVER-OFFER and REQUEST-ACK halves; in DHCPv6
	// the SOLICIT-ADVERTISE and REQUEST-REPLY halves.
	DO, RA Exchange
}

// ParsePerfdhcp reads the final report perfdhcp prints. It fails when the
// report lacks the rate or either half's sent and received counts, so a
// run that printed only an error is not taken for an idle server.
func ParsePerfdhcp(out string) (PerfdhcpReport, error) {
	var r PerfdhcpReport
	var cur *Exchange
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "***Statistics for: DISCOVER-OFFER"),
			strings.HasPrefix(line, "***Statistics for: SOLICIT-ADVERTISE"):
			cur = &r.DO
			continue
		case strings.HasPrefix(line, "***Statistics for: REQUEST-ACK"),
			strings.HasPrefix(line, "***Statistics for: REQUEST-REPLY"):
			cur = &r.RA
			continue
		case strings.HasPrefix(line, "***"):
			cur = nil
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if key == "Rate" {
			// "7.9742 4-way exchanges/second, expected rate: 10"
			f := strings.Fields(val)
			if len(f) == 0 {
				return r, fmt.Errorf("perfdhcp: rate line %q", line)
			}
			v, err := parseNumber(f[0])
			if err != nil {
				return r, fmt.Errorf("perfdhcp: rate line %q: %w", line, err)
			}
			r.Rate = v
			seen["rate"] = true
			if _, exp, ok := strings.Cut(val, "expected rate:"); ok {
				if v, err := parseNumber(strings.TrimSpace(exp)); err == nil {
					r.Expected = v
				}
			}
			continue
		}
		if key == "Malformed packets" {
			r.Malformed, _ = strconv.ParseUint(val, 10, 64)
			continue
		}
		if cur == nil {
			continue
		}
		var dst *uint64
		switch key {
		case "sent packets":
			dst = &cur.Sent
		case "received packets":
			dst = &cur.Received
		case "drops":
			dst = &cur.Drops
		case "orphans":
			dst = &cur.Orphans
		case "rejected leases":
			dst = &cur.Rejected
		case "avg delay":
			ms, err := parseNumber(strings.TrimSuffix(val, " ms"))
			if err != nil {
				return r, fmt.Errorf("perfdhcp: delay line %q: %w", line, err)
			}
			ns := math.Round(ms * float64(time.Millisecond))
			if ns >= math.MaxInt64 {
				return r, fmt.Errorf("perfdhcp: delay line %q: out of range", line)
			}
			cur.AvgDelay = time.Duration(ns)
			continue
		default:
			continue
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return r, fmt.Errorf("perfdhcp: line %q: %w", line, err)
		}
		*dst = v
		name := "do"
		if cur == &r.RA {
			name = "ra"
		}
		seen[name+" "+key] = true
	}
	for _, k := range []string{"rate", "do sent packets", "do received packets", "ra sent packets", "ra received packets"} {
		if !seen[k] {
			return r, fmt.Errorf("perfdhcp: no %q in the report", k)
		}
	}
	return r, nil
}

// Drops is the number of exchanges that did not complete: DISCOVERs
// without OFFER plus REQUESTs without ACK.
func (r PerfdhcpReport) Drops() uint64 { return r.DO.Drops + r.RA.Drops }

// Incomplete is the fraction of the exchanges offered, offered in all or
// the DISCOVERs (Solicits) perfdhcp sent if more, that did not end with an
// ACK (Reply): lost in either half, or never started because perfdhcp
// could not keep the rate. It is 1 when nothing was offered.
func (r PerfdhcpReport) Incomplete(offered uint64) float64 {
	n := max(offered, r.DO.Sent)
	if n == 0 || r.RA.Received >= n {
		return boolFloat(n == 0)
	}
	return float64(n-r.RA.Received) / float64(n)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
