package httpboot

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
)

// recorder captures what the access log and the metrics need.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	host   string // the identified host, when there is one
	err    string // why the answer is not a success
	warn   bool   // the request or the DNS data behind it was malformed
	// sha256 is the digest of a generated per-client script, logged so
	// that an operator can match what a host got with vmprov explain.
	sha256 string
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for static files.
func (w *recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// note returns the recorder behind w, or a throwaway one.
func note(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{}
}

// write sends body with status; HEAD gets the headers only.
func write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func plain(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	write(w, r, status, []byte(msg))
}

// notFoundBody is the one body of every 404: it says nothing about any host.
const notFoundBody = "not found\n"

func notFound(w http.ResponseWriter, r *http.Request) {
	plain(w, r, http.StatusNotFound, notFoundBody)
}

// invalid answers 404 for a host whose DNS data cannot be rendered (an
// intent variable iPXE cannot carry, an unknown distribution) and marks the
// request for a Warn log.
func invalid(w http.ResponseWriter, r *http.Request, err error) {
	rec := note(w)
	rec.err, rec.warn = err.Error(), true
	notFound(w, r)
}

// script sends a generated, per-client text: never cached by proxies.
func script(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	note(w).sha256 = hex.EncodeToString(sum[:])
	w.Header().Set("Cache-Control", "no-store")
	write(w, r, http.StatusOK, body)
}
