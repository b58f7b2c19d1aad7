package authz

import (
	"net/http"
	"strings"
)

// A backend may read a path differently from Caddy's matchers, and then a
// route's policy guards one page while the backend serves another:
//
//   - servlet containers (Jetty, Tomcat) drop ";params" from every segment,
//     so "/j/admin;x/secret" misses `handle /j/admin/*` yet is served as
//     /j/admin/secret;
//   - Windows servers and some frameworks read "\" as "/", and drop a
//     segment's trailing dots and spaces ("/admin./secret");
//   - a NUL or another control byte ends or splits the path in C-based
//     servers and CGI;
//   - "." and ".." segments are resolved by some backends and not by others.
//
// An identity route refuses such paths (400) instead of guessing which
// reading the backend has. The checks run on the decoded path and on up to
// two further decodings of it, so percent-encoded forms ("%3b", "%5c",
// "%00", "%2e") and double-encoded ones ("%253b") are refused too.

// maxPathDecodings bounds the extra decodings looked through.
const maxPathDecodings = 2

// pathRefusal says why a request path is refused ("" when it is not).
type pathRefusal string

const (
	pathOK            pathRefusal = ""
	pathParameter     pathRefusal = "a path parameter (;) in a segment"
	pathBackslash     pathRefusal = "a backslash in the path"
	pathControl       pathRefusal = "a control character in the path"
	pathTrailingDotSp pathRefusal = "a path segment ending in a dot or a space (or a . or .. segment)"
)

// pathRules is a route's setting for the check.
type pathRules struct {
	// params are the path parameter names (lower-cased) the route lets
	// through on the last segment only, e.g. "jsessionid" for servlet
	// apps that track sessions in the URL.
	params []string
}

// check returns why the route refuses path p, or pathOK.
func (pr pathRules) check(p string) pathRefusal {
	layer := p
	for i := 0; ; i++ {
		if why := pr.checkLayer(layer); why != pathOK {
			return why
		}
		if i == maxPathDecodings || strings.IndexByte(layer, '%') < 0 {
			return pathOK
		}
		next := decodeLeniently(layer)
		if next == layer {
			return pathOK
		}
		layer = next
	}
}

// checkLayer checks one decoding of the path. It allocates nothing.
func (pr pathRules) checkLayer(p string) pathRefusal {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7F:
			return pathControl
		case c == '\\':
			return pathBackslash
		}
	}
	for rest := p; rest != ""; {
		var seg string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			seg, rest = rest, ""
		}
		last := rest == "" && !strings.HasSuffix(p, "/")
		name := seg
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			if !last || !pr.paramsAllowed(seg[i+1:]) {
				return pathParameter
			}
			name = seg[:i]
		}
		if n := len(name); n > 0 && (name[n-1] == '.' || name[n-1] == ' ') {
			return pathTrailingDotSp
		}
	}
	return pathOK
}

// paramsAllowed says whether every ";name[=value]" of a last segment is one
// the route lets through. The value may not hold another ';'.
func (pr pathRules) paramsAllowed(params string) bool {
	if len(pr.params) == 0 {
		return false
	}
	for _, p := range strings.Split(params, ";") {
		name, _, _ := strings.Cut(p, "=")
		ok := false
		for _, allowed := range pr.params {
			if strings.EqualFold(name, allowed) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// requestPathRefusal checks the path of r as it goes on (after any
// rewrite) and, when it differs, the path the client sent.
func (pr pathRules) requestPathRefusal(r *http.Request) pathRefusal {
	if why := pr.check(r.URL.Path); why != pathOK {
		return why
	}
	if raw := r.URL.RawPath; raw != "" {
		// RawPath keeps encodings Path lost ("%2F"); a decoding of it
		// may show what Path hides behind an encoded slash.
		if why := pr.check(raw); why != pathOK {
			return why
		}
	}
	return pathOK
}
