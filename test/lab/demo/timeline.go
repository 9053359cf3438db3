package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// LogLine is one JSON line of `vmprov serve --log-json`.
type LogLine struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Msg    string    `json:"msg"`
	Proto  string    `json:"proto"`
	IP     string    `json:"ip"`
	MAC    string    `json:"mac"`
	File   string    `json:"file"`
	Status int       `json:"status"`
	Class  string    `json:"class"`
	Type   string    `json:"type"` // DHCPv6 message type of the request
	Host   string    `json:"host"`
	// SHA256 is the digest of a generated HTTP answer (/pxedust, the
	// install scripts), as vmprov explain prints it.
	SHA256 string `json:"sha256"`
}

// ParseLog parses the JSON lines of a serve log; other lines are skipped.
func ParseLog(r io.Reader) ([]LogLine, error) {
	var lines []LogLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var ln LogLine
		if json.Unmarshal(sc.Bytes(), &ln) == nil {
			lines = append(lines, ln)
		}
	}
	return lines, sc.Err()
}

// ReadLog parses the serve log at path.
func ReadLog(path string) ([]LogLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLog(f)
}

// Kind names what an event is.
type Kind string

// Kinds of events.
const (
	DHCP4 Kind = "dhcp4"
	DHCP6 Kind = "dhcp6"
	HTTP  Kind = "http"
	TFTP  Kind = "tftp"
)

// Event is one serve log line about a host, timed from its create.
type Event struct {
	At   time.Duration // since the create started
	Kind Kind
	Line LogLine
}

// String formats the event as one timeline row.
func (ev Event) String() string {
	ln := ev.Line
	var what string
	switch ev.Kind {
	case HTTP, TFTP:
		what = fmt.Sprintf("%-5s GET %s -> %d", ev.Kind, ln.File, ln.Status)
	default:
		what = fmt.Sprintf("%-5s %s", ev.Kind, strings.TrimPrefix(ln.Msg, string(ev.Kind)+" "))
		if ln.Type != "" {
			what = fmt.Sprintf("%-5s %s -> %s", ev.Kind, ln.Type, strings.TrimPrefix(ln.Msg, string(ev.Kind)+" "))
		}
		if ln.File != "" {
			what += " file=" + ln.File
		}
	}
	from := ln.IP
	if from == "" {
		from = ln.MAC
	}
	return fmt.Sprintf("%7.1fs  %-40s %s", ev.At.Seconds(), from, what)
}

// Timeline is the ordered events of one host's boot.
type Timeline struct {
	Host   Host
	Start  time.Time
	Events []Event
}

// Request is one HTTP or TFTP request of a timeline.
type Request struct {
	Kind   Kind
	File   string
	Status int
}

// Requests returns the HTTP and TFTP requests, in order.
func (t Timeline) Requests() []Request {
	var out []Request
	for _, ev := range t.Events {
		if ev.Kind == HTTP || ev.Kind == TFTP {
			out = append(out, Request{ev.Kind, ev.Line.File, ev.Line.Status})
		}
	}
	return out
}

// First returns the first event of kind k whose message is msg (any when
// empty), and whether there is one.
func (t Timeline) First(k Kind, msg string) (Event, bool) {
	for _, ev := range t.Events {
		if ev.Kind == k && (msg == "" || ev.Line.Msg == msg) {
			return ev, true
		}
	}
	return Event{}, false
}

// Has reports whether the host requested file over HTTP or TFTP.
func (t Timeline) Has(file string) bool {
	return slices.ContainsFunc(t.Requests(), func(r Request) bool { return r.File == file })
}

// Build selects the lines about h — DHCP lines with its MAC, HTTP and TFTP
// lines from one of its addresses — logged at or after start.
func Build(h Host, start time.Time, lines []LogLine) Timeline {
	t := Timeline{Host: h, Start: start}
	for _, ln := range lines {
		if ev, ok := event(h, start, ln); ok {
			t.Events = append(t.Events, ev)
		}
	}
	return t
}

func event(h Host, start time.Time, ln LogLine) (Event, bool) {
	if ln.Time.Before(start) {
		return Event{}, false
	}
	ev := Event{At: ln.Time.Sub(start), Line: ln}
	switch {
	case strings.HasPrefix(ln.Msg, "dhcp4 ") && ln.MAC == h.MAC:
		ev.Kind = DHCP4
	case strings.HasPrefix(ln.Msg, "dhcp6 ") && ln.MAC == h.MAC:
		ev.Kind = DHCP6
	case ln.Msg == "http request" || strings.HasPrefix(ln.Msg, "tftp"):
		a, err := netip.ParseAddr(ln.IP)
		if err != nil || !slices.Contains(h.Addrs(), a.Unmap()) || ln.File == "" {
			return Event{}, false
		}
		ev.Kind = HTTP
		if ln.Proto == "tftp" || strings.HasPrefix(ln.Msg, "tftp") {
			ev.Kind = TFTP
		}
	default:
		return Event{}, false
	}
	return ev, true
}

// Follow reads the serve log as it grows and returns the timeline of h from
// start once done(timeline) is true. each, if not nil, sees every event as
// it is read. It fails when ctx ends, timeout passes or serve exits first,
// returning the timeline so far.
func (e *Env) Follow(ctx context.Context, h Host, start time.Time, timeout time.Duration, done func(Timeline) bool, each func(Event)) (Timeline, error) {
	t := Timeline{Host: h, Start: start}
	f, err := os.Open(e.ServeLog)
	if err != nil {
		return t, fmt.Errorf("follow %s: %w", e.ServeLog, err)
	}
	defer f.Close()
	rd := bufio.NewReader(f)
	var partial []byte
	deadline := time.Now().Add(timeout)
	for {
		for {
			b, err := rd.ReadBytes('\n')
			if err != nil { // io.EOF: a partial line stays for later
				partial = append(partial, b...)
				break
			}
			b = append(partial, b...)
			partial = nil
			var ln LogLine
			if json.Unmarshal(b, &ln) != nil {
				continue
			}
			if ev, ok := event(h, start, ln); ok {
				t.Events = append(t.Events, ev)
				if each != nil {
					each(ev)
				}
			}
		}
		if done(t) {
			return t, nil
		}
		if exited, why := e.Serve.Exited(); exited {
			return t, fmt.Errorf("follow %s: %s", h.Name, why)
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("follow %s: not done within %v of create", h.Name, timeout)
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("follow %s: %w", h.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
