package authz

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultHeaderPrefix is the prefix of the identity headers unless
// configured otherwise.
const DefaultHeaderPrefix = "X-Remote-"

// HeaderNames names the identity headers sent to the upstream. Every field
// left empty is Prefix followed by its default suffix (User, Email, Name,
// Groups, Role, Assertion).
type HeaderNames struct {
	// Prefix is DefaultHeaderPrefix when empty. Every request header that
	// starts with it is removed from the client's request, not only the
	// ones below, so an upstream reading any X-Remote-* header is safe.
	Prefix    string
	User      string // userName
	Email     string // primary email
	Name      string // display name
	Groups    string // EncodeGroups of the group display names
	Role      string // the role; not sent when the tenant has no roles
	Assertion string // the signed assertion, when the route asks for one
}

// Slots of the resolved header names, in the order values are laid out.
const (
	slotUser = iota
	slotEmail
	slotName
	slotGroups
	slotRole
	slotAssertion
	slotCount
)

// headerSet is HeaderNames resolved for the hot path.
type headerSet struct {
	// names are the canonical names the gate sets, by slot.
	names [slotCount]string
	// prefix is the normalised prefix (see normaliseHeaderName).
	prefix string
	// others are the normalised configured names that do not start with
	// the prefix, so the prefix check alone would miss them.
	others []string
}

// headersNeverStripped are headers a prefix must not cover: a prefix like
// "X-" would strip proxies' own headers.
var headersNeverStripped = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "X-Request-Id", "X-Requested-With", "X-Csrf-Token"}

func (h HeaderNames) resolve() (*headerSet, error) {
	prefix := h.Prefix
	if prefix == "" {
		prefix = DefaultHeaderPrefix
	}
	if err := validHeaderName(prefix); err != nil {
		return nil, fmt.Errorf("header prefix: %w", err)
	}
	s := &headerSet{prefix: normaliseHeaderName(prefix)}
	for _, hdr := range headersNeverStripped {
		if strings.HasPrefix(normaliseHeaderName(hdr), s.prefix) {
			return nil, fmt.Errorf("header prefix %q is too broad: it would strip %s", prefix, hdr)
		}
	}
	given := [slotCount]string{h.User, h.Email, h.Name, h.Groups, h.Role, h.Assertion}
	suffixes := [slotCount]string{"User", "Email", "Name", "Groups", "Role", "Assertion"}
	seen := map[string]bool{}
	for i := range given {
		name := given[i]
		if name == "" {
			name = prefix + suffixes[i]
		}
		if err := validHeaderName(name); err != nil {
			return nil, fmt.Errorf("%s header: %w", strings.ToLower(suffixes[i]), err)
		}
		norm := normaliseHeaderName(name)
		if seen[norm] {
			return nil, fmt.Errorf("header %q is configured for two identity values", name)
		}
		seen[norm] = true
		s.names[i] = http.CanonicalHeaderKey(name)
		if !strings.HasPrefix(norm, s.prefix) {
			s.others = append(s.others, norm)
		}
	}
	return s, nil
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(name string) error {
	if name == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%q is not a valid header name", name)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// normaliseHeaderName lower-cases name and turns '_' into '-'. Underscores
// count as dashes because CGI, FastCGI (PHP) and many frameworks turn both
// into the same variable (HTTP_X_REMOTE_USER), so "X_Remote_User" is a
// forgery of X-Remote-User for such an upstream.
func normaliseHeaderName(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

// matchesNormalised compares a raw header name with a normalised one without
// allocating.
func matchesNormalised(raw, norm string) bool {
	if len(raw) != len(norm) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}

// isIdentityHeader says whether a header the client sent must be removed.
func (s *headerSet) isIdentityHeader(name string) bool {
	if len(name) >= len(s.prefix) && matchesNormalised(name[:len(s.prefix)], s.prefix) {
		return true
	}
	for _, n := range s.others {
		if matchesNormalised(name, n) {
			return true
		}
	}
	return false
}

// strip removes every identity header from h, whatever the case or
// spelling of its key: the map may hold non-canonical keys (set by other
// handlers, or by a server that does not canonicalise), so every key is
// looked at rather than deleting the canonical names.
func (s *headerSet) strip(h http.Header) {
	for name := range h {
		if s.isIdentityHeader(name) {
			delete(h, name)
		}
	}
	s.stripConnectionTokens(h)
}

// headerScan is what one pass over a request's header keys found: the gate
// looks at every key once, whatever its spelling, rather than once per
// concern.
type headerScan struct {
	// upgrade: an Upgrade or HTTP2-Settings header (see filterUpgrade).
	upgrade bool
	// oddCookie: a Cookie header under a key other than the canonical
	// one (set by a handler or a server that does not canonicalise).
	oddCookie bool
}

// stripAndScan is strip, also reporting what filterUpgrade and the
// cookie stripping need to know, in the same pass over the keys.
func (s *headerSet) stripAndScan(h http.Header) headerScan {
	var sc headerScan
	connection := false
	for name := range h {
		switch {
		case s.isIdentityHeader(name):
			delete(h, name)
		case len(name) == len("Connection") && strings.EqualFold(name, "Connection"):
			connection = true
		case strings.EqualFold(name, "Upgrade") || strings.EqualFold(name, "Http2-Settings"):
			sc.upgrade = true
		case name != "Cookie" && strings.EqualFold(name, "Cookie"):
			sc.oddCookie = true
		}
	}
	if connection {
		s.stripConnectionTokens(h)
	}
	return sc
}

// stripConnectionTokens removes identity header names from the Connection
// header. A proxy drops every header Connection names as hop-by-hop after
// this gate has set the identity headers, so a client listing
// "Connection: X-Remote-Role" would make the upstream lose the gateway's own
// values (a role or an assertion it relies on).
func (s *headerSet) stripConnectionTokens(h http.Header) {
	removeConnectionTokens(h, s.isIdentityHeader)
}

// trailerStripper removes identity headers from the request's trailers once
// the body has been read: Go fills r.Trailer in only at the end of the body
// (whatever the Trailer header declared), after the gate ran, and a proxy
// forwards what it finds there.
type trailerStripper struct {
	io.ReadCloser
	r       *http.Request
	headers *headerSet
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err != nil && t.r.Trailer != nil {
		t.headers.strip(t.r.Trailer)
	}
	return n, err
}
