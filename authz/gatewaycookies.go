package authz

import (
	"net/http"
	"strings"
	"unicode"
)

// CookieOwner is implemented by a SessionResolver whose cookies belong to
// the gateway (the session cookie, sign-in flow cookies). The gate removes
// them from the request before it goes on: an upstream holding a user's
// session id could replay it as that user on every route of the tenant,
// and no app behind the gateway needs it.
type CookieOwner interface {
	// OwnsCookie says whether a cookie of this name is the gateway's.
	OwnsCookie(name string) bool
}

// stripGatewayCookies removes every cookie owns claims from the request's
// Cookie headers, keeping the app's own cookies as sent (order and
// spelling). A request carrying none of the gateway's cookies is left as
// it is. It does not allocate when the gateway's cookies come before or
// after the app's in a single Cookie line (the session cookie, for Path=/,
// is usually first): what is kept is then a substring of the line, put in
// place of it.
func stripGatewayCookies(h http.Header, owns func(name string) bool) {
	for key, values := range h {
		if strings.EqualFold(key, "Cookie") {
			stripGatewayCookieLines(h, key, values, owns)
		}
	}
}

// stripGatewayCookieLines strips the gateway's cookies from the values of
// h[key].
func stripGatewayCookieLines(h http.Header, key string, values []string, owns func(name string) bool) {
	if !anyOwnedCookie(values, owns) {
		return
	}
	if len(values) == 1 {
		// The slice is the request's own (as parsed by the server):
		// replace its one value rather than allocate another.
		if line := keepForeignCookies(values[0], owns); line != "" {
			values[0] = line
		} else {
			delete(h, key)
		}
		return
	}
	var kept []string
	for _, v := range values {
		if line := keepForeignCookies(v, owns); line != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, key)
	} else {
		h[key] = kept
	}
}

// anyOwnedCookie says whether any cookie in the header lines is owned.
func anyOwnedCookie(lines []string, owns func(string) bool) bool {
	for _, line := range lines {
		for rest := line; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			if owns(cookieName(part)) {
				return true
			}
		}
	}
	return false
}

// keepForeignCookies returns line without the owned cookies. When the
// cookies kept are one run of the line (nothing owned between them), that
// run of the line is returned as sent; otherwise they are joined in the
// "a=1; b=2" form browsers send.
func keepForeignCookies(line string, owns func(string) bool) string {
	first, last := -1, -1 // bounds of the run of kept pairs
	gap := false          // an owned pair after the first kept one
	ownedAfterLast := false
	for start := 0; start <= len(line); {
		end := strings.IndexByte(line[start:], ';')
		if end < 0 {
			end = len(line)
		} else {
			end += start
		}
		part := line[start:end]
		if trimmed := strings.TrimSpace(part); trimmed != "" {
			if owns(cookieName(trimmed)) {
				if first >= 0 {
					ownedAfterLast = true
				}
			} else {
				if ownedAfterLast {
					gap = true
				}
				// The run starts and ends at the trimmed pair.
				lead := len(part) - len(strings.TrimLeftFunc(part, unicode.IsSpace))
				if first < 0 {
					first = start + lead
				}
				last = start + lead + len(trimmed)
			}
		}
		start = end + 1
	}
	if first < 0 {
		return ""
	}
	if !gap {
		return line[first:last]
	}
	var b strings.Builder
	b.Grow(len(line))
	for rest := line; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ";")
		part = strings.TrimSpace(part)
		if part == "" || owns(cookieName(part)) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}

// cookieName is the name of one "name=value" pair, trimmed as net/http
// trims it (so " portcullis_session =x" is seen as the session cookie,
// as a lenient backend would read it).
func cookieName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	return strings.TrimSpace(name)
}
