package bench

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// WrkReport is the summary wrk prints at the end of a run.
type WrkReport struct {
	Requests     uint64        // completed requests
	Duration     time.Duration // length of the run
	Bytes        float64       // bytes read, as wrk rounds them
	RequestsPerS float64
	BytesPerS    float64
	// SocketErrors sums connect, read, write and timeout errors.
	SocketErrors uint64
	// Non2xx3xx counts responses with another status.
	Non2xx3xx uint64
}

// ParseWrk reads wrk's summary. It fails when the request count or either
// rate is missing.
func ParseWrk(out string) (WrkReport, error) {
	var r WrkReport
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, " requests in "):
			// "123 requests in 10.01s, 7.69GB read"
			f := strings.Fields(strings.NewReplacer(",", " ").Replace(line))
			if len(f) < 6 || f[1] != "requests" || f[2] != "in" || f[5] != "read" {
				return r, fmt.Errorf("wrk: summary line %q", line)
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: summary line %q: %w", line, err)
			}
			d, err := parseWrkDuration(f[3])
			if err != nil {
				return r, fmt.Errorf("wrk: summary line %q: %w", line, err)
			}
			b, err := parseWrkBytes(f[4])
			if err != nil {
				return r, fmt.Errorf("wrk: summary line %q: %w", line, err)
			}
			r.Requests, r.Duration, r.Bytes = n, d, b
			seen["requests"] = true
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := parseNumber(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")))
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.RequestsPerS = v
			seen["req/s"] = true
		case strings.HasPrefix(line, "Transfer/sec:"):
			v, err := parseWrkBytes(strings.TrimSpace(strings.TrimPrefix(line, "Transfer/sec:")))
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.BytesPerS = v
			seen["transfer/s"] = true
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 2"
			f := strings.Fields(strings.NewReplacer(",", " ").Replace(strings.TrimPrefix(line, "Socket errors:")))
			for i := 1; i < len(f); i += 2 {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: %q: %w", line, err)
				}
				r.SocketErrors += v
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.Non2xx3xx = v
		}
	}
	for _, k := range []string{"requests", "req/s", "transfer/s"} {
		if !seen[k] {
			return r, fmt.Errorf("wrk: no %s in the summary", k)
		}
	}
	return r, nil
}

// parseWrkBytes reads wrk's byte counts: "7.69GB", "786.63MB", "512.00B",
// in powers of 1024.
func parseWrkBytes(s string) (float64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := parseNumber(num)
			if err != nil {
				return 0, fmt.Errorf("bytes %q: %w", s, err)
			}
			return v * u.mult, nil
		}
	}
	return 0, fmt.Errorf("bytes %q: no unit", s)
}

// parseWrkDuration reads wrk's durations: "10.01s", "1.00m", "250.00ms",
// "900.00us".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := parseNumber(num)
			if err != nil {
				continue // "ms" ends in "s" too: try the next unit
			}
			ns := math.Round(v * u.mult)
			if ns >= math.MaxInt64 {
				return 0, fmt.Errorf("duration %q: out of range", s)
			}
			return time.Duration(ns), nil
		}
	}
	return 0, fmt.Errorf("duration %q: no unit", s)
}

// parseNumber reads a finite, non-negative decimal number.
func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a finite non-negative number", s)
	}
	return v, nil
}
