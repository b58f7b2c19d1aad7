// Package cookieheader reads and edits a request's Cookie header on the hot
// path of every proxied request without allocating: net/http's
// Request.CookiesNamed builds a *Cookie for every pair it keeps, and an
// identity route only needs one value, or the header without the gateway's
// own cookies.
package cookieheader

import (
	"net/http"
	"strings"
)

// maxCookies is net/http's limit on the cookies of one request (Go's
// defaultCookieMaxNum): above it Request.Cookies returns none, and so does
// Value, so the two never disagree about whether a session is present.
const maxCookies = 3000

// Value returns the value of the cookie named name in h's Cookie lines, read
// exactly as http.Request.CookiesNamed reads them (pairs split on ';', names
// and pairs trimmed of spaces and tabs, surrounding double quotes removed, a
// pair with an invalid value byte ignored), and distinct, the number of
// times the value changes from one such pair to the next plus one (0: no
// such cookie; more than 1: the request carries conflicting values, e.g. one
// cookie planted for a longer path). name must be a valid cookie name.
func Value(h http.Header, name string) (value string, distinct int) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return "", 0
	}
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookies {
		return "", 0
	}
	for _, line := range lines {
		for rest := trim(line); rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			part = trim(part)
			if part == "" {
				continue
			}
			n, v, _ := strings.Cut(part, "=")
			if trim(n) != name {
				continue
			}
			v, ok := parseValue(v)
			if !ok {
				continue
			}
			if distinct == 0 || v != value {
				value = v
				distinct++
			}
		}
	}
	return value, distinct
}

// parseValue is net/http's parseCookieValue (double quotes allowed).
func parseValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if !validValueByte[raw[i]] {
			return "", false
		}
	}
	return raw, true
}

// validValueByte is net/http's validCookieValueByte as a table: a session
// id is checked byte by byte on every request.
var validValueByte = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != ';' && b != '\\'
	}
	return t
}()

// trim is textproto.TrimString: ASCII space, tab, CR and LF.
func trim(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
