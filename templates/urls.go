package templates

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidURL is wrapped by every error ValidURL returns.
var ErrInvalidURL = errors.New("invalid URL")

// ValidURL checks a base URL that scripts append paths to (boot service, mirror): http or
// https, a host, no query or fragment, no trailing slash, and only characters iPXE, GRUB,
// YAML and shell read literally (no whitespace, $, {, }, #, |, &, quotes, backslash, ;).
// IPv6 literals in brackets are fine (http://[2001:db8:135::1]).
func ValidURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	for i := 0; i < len(raw); i++ {
		if !valueChar(raw[i]) {
			return fmt.Errorf("%w: %q: character %q at %d is not allowed in a boot script", ErrInvalidURL, raw, raw[i], i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidURL, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrInvalidURL, raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q: no host", ErrInvalidURL, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%w: %q: must be a plain base URL (no user info, query or fragment)", ErrInvalidURL, raw)
	}
	if strings.HasSuffix(raw, "/") {
		return fmt.Errorf("%w: %q: drop the trailing slash", ErrInvalidURL, raw)
	}
	return nil
}

// validSegment checks a single path segment (site, bootstrap filename): [A-Za-z0-9._-],
// not starting with a dot, at most 128 bytes.
func validSegment(what, s string) error {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return fmt.Errorf("invalid %s %q: want 1-128 characters of [A-Za-z0-9._-], not starting with a dot", what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid %s %q: character %q at %d (want [A-Za-z0-9._-])", what, s, c, i)
		}
	}
	return nil
}
