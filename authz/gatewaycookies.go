package authz

import (
	"net/http"
	"strings"
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
// it is, without allocating.
func stripGatewayCookies(h http.Header, owns func(name string) bool) {
	for key, values := range h {
		if !strings.EqualFold(key, "Cookie") {
			continue
		}
		if !anyOwnedCookie(values, owns) {
			continue
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

// keepForeignCookies returns line without the owned cookies, in the
// "a=1; b=2" form browsers send.
func keepForeignCookies(line string, owns func(string) bool) string {
	var b strings.Builder
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
