package sso

import (
	"net/url"
	"strings"
)

// maxReturnPathLen bounds the return path kept across a sign-in.
const maxReturnPathLen = 2048

// SanitizeReturnPath returns raw if it is a same-origin relative path
// ("/app/page?x=1"), and "/" otherwise. It refuses everything a browser could
// read as another origin: scheme-relative "//host", "/\host" (browsers treat
// "\" as "/"), absolute URLs, control characters (browsers drop tabs and
// newlines, so "/\t/host" would become "//host"), and any of these hidden
// behind one or more layers of percent-encoding. The fragment is dropped:
// browsers keep it across a redirect on their own.
func SanitizeReturnPath(raw string) string {
	if len(raw) == 0 || len(raw) > maxReturnPathLen || raw[0] != '/' {
		return "/"
	}
	// Look at every percent-decoding layer, so that a path a backend or a
	// browser decodes once more still does not turn into another origin.
	layer := raw
	for i := 0; i < 4; i++ {
		if !safePathLayer(layer) {
			return "/"
		}
		next, err := url.PathUnescape(layer)
		if err != nil {
			if i == 0 {
				return "/" // malformed escapes in what the browser would see
			}
			break
		}
		if next == layer {
			break
		}
		layer = next
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	out := u.EscapedPath()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/"
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	if len(out) > maxReturnPathLen || !safePathLayer(out) {
		return "/"
	}
	return out
}

// safePathLayer checks one decoding layer of a return path.
func safePathLayer(s string) bool {
	if !strings.HasPrefix(s, "/") {
		// A decoded layer that no longer starts with "/" came from an
		// encoded first character such as "%2F": refuse it too.
		return false
	}
	if strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
