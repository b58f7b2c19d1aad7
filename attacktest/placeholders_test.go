package attacktest

import (
	"net/http"
	"strings"
	"testing"
)

// wantHeaderSafe is how the gateway encodes a name for a header: control
// characters other than tab become U+FFFD, surrounding spaces and tabs go.
func wantHeaderSafe(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7F {
			return '\uFFFD'
		}
		return r
	}, s), " \t")
}

// placeholderHeaders are the headers the /names/ route's reverse_proxy sets
// from placeholders, by the identity header carrying the same value.
var placeholderHeaders = map[string]string{
	"X-Forwarded-User":      "X-Remote-User",  // {http.auth.user.id}
	"X-Portcullis-Username": "X-Remote-User",  // {portcullis.user.name}
	"X-Portcullis-Email":    "X-Remote-Email", // {portcullis.user.email}
	"X-Portcullis-Name":     "X-Remote-Name",  // {portcullis.user.display_name}
	"X-Portcullis-Groups":   "X-Remote-Groups",
	"X-Portcullis-Role":     "X-Remote-Role",
}

// TestPlaceholderInjection provisions, over SCIM, a user whose userName,
// displayName and group name hold CR, LF, NUL, ESC and DEL, and a clean
// one, and signs each in to a route whose reverse_proxy copies the
// identity placeholders into headers (header_up X-Forwarded-User
// {http.auth.user.id} and the {portcullis.user.*} ones). The backend must
// answer 200 and the placeholder-fed headers must carry the same encoding
// as the identity headers: nothing injected, nothing refused by the proxy.
func TestPlaceholderInjection(t *testing.T) {
	g := startBoundaryGateway(t, nil)
	people := []struct {
		name, person, userName, displayName, group string
	}{
		{"control: a clean user", "clean", initechEmail("clean"), "Clean User", "Staff"},
		{"control characters in every name", "ctl",
			"ctl\r\nX-Remote-Role: admin\x00\x7f@initech.example",
			"  Evil\r\nX-Remote-Role: admin\x00\x1b[31m\tUser ",
			"Night\nShift\x00"},
	}
	for _, p := range people {
		t.Run(p.name, func(t *testing.T) {
			id := g.scimUser(t, p.userName, p.displayName, initechEmail(p.person))
			g.scimGroup(t, p.group, id)
			_, session := g.signIn(t, g.initech, p.person)
			g.echo.take()
			a := get(t, g.initech+"/names/page", session)
			seen := g.echo.take()
			if a.status != http.StatusOK || len(seen) != 1 {
				t.Fatalf("the backend answered %d (%d requests reached it), want 200:\n%.300s", a.status, len(seen), a.body)
			}
			h := seen[0].Header
			if got, want := h.Get("X-Remote-User"), wantHeaderSafe(p.userName); got != want {
				t.Errorf("X-Remote-User = %q, want %q", got, want)
			}
			if got, want := h.Get("X-Remote-Name"), wantHeaderSafe(p.displayName); got != want {
				t.Errorf("X-Remote-Name = %q, want %q", got, want)
			}
			for ph, idh := range placeholderHeaders {
				if got, want := h.Values(ph), h.Values(idh); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s = %q, want %q as in %s", ph, got, want, idh)
				}
			}
			if got := h.Get("X-Portcullis-Tenant"); got != "initech" {
				t.Errorf("X-Portcullis-Tenant = %q", got)
			}
			if got := h.Get("X-Portcullis-Id"); got == "" || got != wantHeaderSafe(got) {
				t.Errorf("X-Portcullis-Id = %q", got)
			}
			for k, vs := range h {
				for _, v := range vs {
					if strings.ContainsAny(v, "\r\n\x00\x7f") {
						t.Errorf("the backend got %s: %q", k, v)
					}
				}
			}
			if p.person == "clean" {
				if got := h.Get("X-Portcullis-Name"); got != p.displayName {
					t.Errorf("the clean user's X-Portcullis-Name = %q, want %q unchanged", got, p.displayName)
				}
			}
		})
	}
}
