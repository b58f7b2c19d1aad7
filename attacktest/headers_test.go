package attacktest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// forgedMarker is in every value an attacker forges; the backend must never
// see it.
const forgedMarker = "FORGED"

// identitySuffixes are the identity headers the gateway sets, after the
// prefix.
var identitySuffixes = []string{"User", "Email", "Name", "Groups", "Role", "Assertion"}

// forgery is one way of sending identity headers of the route's prefix.
type forgery struct {
	name   string
	header func(prefix string) http.Header // raw keys, sent as they are
}

// eachName builds a header with one key per identity header, spelled by
// spell.
func eachName(prefix string, spell func(string) string, values ...string) http.Header {
	h := http.Header{}
	for _, s := range identitySuffixes {
		vs := values
		if len(vs) == 0 {
			vs = []string{forgedMarker + "-" + s}
		}
		k := spell(prefix + s)
		h[k] = append(h[k], vs...)
	}
	return h
}

var forgeries = []forgery{
	{"canonical", func(p string) http.Header { return eachName(p, http.CanonicalHeaderKey) }},
	{"lower case", func(p string) http.Header { return eachName(p, strings.ToLower) }},
	{"upper case", func(p string) http.Header { return eachName(p, strings.ToUpper) }},
	{"mixed case", func(p string) http.Header {
		// X-Remote-user, x-REMOTE-USER and X-remote-User style.
		h := eachName(p, func(n string) string { return n[:len(p)] + strings.ToLower(n[len(p):]) })
		for k, v := range eachName(p, func(n string) string { return strings.ToLower(n[:2]) + strings.ToUpper(n[2:]) }) {
			h[k] = v
		}
		return h
	}},
	{"underscores", func(p string) http.Header {
		return eachName(p, func(n string) string { return strings.ReplaceAll(n, "-", "_") })
	}},
	{"underscores lower case", func(p string) http.Header {
		return eachName(p, func(n string) string { return strings.ToLower(strings.ReplaceAll(n, "-", "_")) })
	}},
	{"one underscore", func(p string) http.Header {
		return eachName(p, func(n string) string { return strings.Replace(n, "-", "_", 1) })
	}},
	{"several values", func(p string) http.Header {
		return eachName(p, http.CanonicalHeaderKey, forgedMarker+"-1", forgedMarker+"-2", "admin")
	}},
	{"several keys", func(p string) http.Header {
		h := http.Header{}
		spellings := []func(string) string{
			http.CanonicalHeaderKey, strings.ToLower, strings.ToUpper,
			func(n string) string { return strings.ReplaceAll(n, "-", "_") },
		}
		for i, spell := range spellings {
			for k, v := range eachName(p, spell, fmt.Sprintf("%s-%d", forgedMarker, i)) {
				h[k] = v
			}
		}
		return h
	}},
	{"other names under the prefix", func(p string) http.Header {
		return http.Header{
			p + "Admin":                         {forgedMarker + "-admin"},
			p + "User-Id":                       {forgedMarker + "-user-id"},
			strings.ToLower(p):                  {forgedMarker + "-bare-prefix"},
			p + "Tenant":                        {forgedMarker + "-tenant"},
			strings.ToUpper(p + "Groups-Extra"): {forgedMarker + "-groups"},
		}
	}},
	{"empty values", func(p string) http.Header { return eachName(p, http.CanonicalHeaderKey, "") }},
	{"Connection names the identity headers", func(p string) http.Header {
		// A client may list headers in Connection so that the proxy drops
		// them on the way to the backend: the gateway's own must still
		// arrive.
		h := eachName(p, http.CanonicalHeaderKey)
		h["Connection"] = []string{"keep-alive, " + strings.Join(prefixed(p, identitySuffixes), ", ")}
		return h
	}},
}

func prefixed(prefix string, suffixes []string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = prefix + s
	}
	return out
}

// normalisedName is how CGI-style upstreams see a header name: lower case,
// "_" for "-".
func normalisedName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// identityHeaders are the headers of h under prefix (in any spelling),
// by canonical name with "-".
func identityHeaders(h http.Header, prefix string) map[string][]string {
	out := map[string][]string{}
	np := normalisedName(prefix)
	for k, v := range h {
		if strings.HasPrefix(normalisedName(k), np) {
			name := http.CanonicalHeaderKey(normalisedName(k))
			out[name] = append(out[name], v...)
		}
	}
	return out
}

// noForgedValue fails when anything the backend received carries the
// forged marker.
func noForgedValue(t *testing.T, r received) {
	t.Helper()
	for what, h := range map[string]http.Header{"header": r.Header, "trailer": r.Trailer} {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(k, forgedMarker) || strings.Contains(v, forgedMarker) {
					t.Errorf("the backend got a forged %s %s: %q", what, k, v)
				}
			}
		}
	}
}

// assertionClaims decodes (without verifying: the reference test verifies
// the signature) the payload of an X-Remote-Assertion.
func assertionClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a JWS", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("assertion payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("assertion payload: %v", err)
	}
	return claims
}

// sameIdentity checks that got holds exactly the gateway's values of want,
// each once. Assertions differ between requests (they are signed with a
// time); they must name the same user and role.
func sameIdentity(t *testing.T, got, want map[string][]string) {
	t.Helper()
	var names []string
	for k := range got {
		names = append(names, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		g, w := got[k], want[k]
		if len(g) != 1 || len(w) != 1 {
			t.Errorf("%s: backend got %q, the gateway sets %q", k, g, w)
			continue
		}
		if strings.HasSuffix(k, "-Assertion") {
			gc, wc := assertionClaims(t, g[0]), assertionClaims(t, w[0])
			for _, c := range []string{"sub", "preferred_username", "role", "tenant", "aud"} {
				if fmt.Sprint(gc[c]) != fmt.Sprint(wc[c]) {
					t.Errorf("%s claim %s = %v, want %v", k, c, gc[c], wc[c])
				}
			}
			continue
		}
		if g[0] != w[0] {
			t.Errorf("%s = %q, want the gateway's %q", k, g[0], w[0])
		}
	}
}

// TestForgedIdentityHeaders sends identity headers in every spelling, with
// duplicates, to a protected route with a real session and without one, to
// a public route, and to a route with its own header prefix: the backend
// never sees a forged value, and with a session it sees exactly the
// gateway's values, once.
func TestForgedIdentityHeaders(t *testing.T) {
	g := startGateway(t)
	session := g.signInOIDC(t, "alice").Cookie(g.acme, sessionCookie)
	g.backend.take()

	routes := []struct {
		name, path, prefix string
		public             bool
		want               map[string]string // the gateway's values with alice's session
	}{
		{"protected route with an assertion", "/app/page?q=1", "X-Remote-", false, map[string]string{
			"X-Remote-User": aliceName, "X-Remote-Email": aliceName, "X-Remote-Name": "Alice Liddell",
			"X-Remote-Groups": "Engineering", "X-Remote-Role": "editor", "X-Remote-Assertion": "",
		}},
		{"public route", "/public/page", "X-Remote-", true, map[string]string{
			"X-Remote-User": aliceName, "X-Remote-Email": aliceName, "X-Remote-Name": "Alice Liddell",
			"X-Remote-Groups": "Engineering", "X-Remote-Role": "editor",
		}},
		{"route with header_prefix X-Auth-", "/custom/page", "X-Auth-", false, map[string]string{
			"X-Auth-User": aliceName, "X-Auth-Email": aliceName, "X-Auth-Name": "Alice Liddell",
			"X-Auth-Groups": "Engineering", "X-Auth-Role": "editor",
		}},
	}
	send := func(t *testing.T, path, session string, h http.Header) (answer, []received) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, g.acme+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v // as spelt: the client sends keys as they are
		}
		if session != "" {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		}
		a := do(t, req)
		return a, g.backend.take()
	}

	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			// The gateway's own values, from a request that forges nothing.
			a, seen := send(t, rt.path, session, nil)
			if a.status != http.StatusOK || len(seen) != 1 {
				t.Fatalf("baseline: %d, backend got %d requests\n%s", a.status, len(seen), a.body)
			}
			baseline := identityHeaders(seen[0].Header, rt.prefix)
			for k, v := range rt.want {
				got := baseline[k]
				if len(got) != 1 || (v != "" && got[0] != v) {
					t.Fatalf("baseline %s = %q, want %q", k, got, v)
				}
			}
			if len(baseline) != len(rt.want) {
				t.Fatalf("baseline identity headers %v, want %v", baseline, rt.want)
			}

			for _, f := range forgeries {
				forged := f.header(rt.prefix)
				t.Run(f.name+", signed in", func(t *testing.T) {
					a, seen := send(t, rt.path, session, forged)
					if a.status != http.StatusOK || len(seen) != 1 {
						t.Fatalf("%d, backend got %d requests\n%s", a.status, len(seen), a.body)
					}
					noForgedValue(t, seen[0])
					sameIdentity(t, identityHeaders(seen[0].Header, rt.prefix), baseline)
				})
				t.Run(f.name+", no session", func(t *testing.T) {
					a, seen := send(t, rt.path, "", forged)
					if !rt.public {
						if a.status != http.StatusUnauthorized || len(seen) != 0 {
							t.Fatalf("%d, backend got %d requests, want 401 and none\n%s", a.status, len(seen), a.body)
						}
						return
					}
					if a.status != http.StatusOK || len(seen) != 1 {
						t.Fatalf("%d, backend got %d requests\n%s", a.status, len(seen), a.body)
					}
					noForgedValue(t, seen[0])
					if ids := identityHeaders(seen[0].Header, rt.prefix); len(ids) != 0 {
						t.Errorf("the backend got identity headers without a session: %v", ids)
					}
				})
			}
		})
	}

	t.Run("forged trailers", func(t *testing.T) {
		// Identity headers sent as trailers of a chunked body, which some
		// frameworks merge into the headers.
		for _, withSession := range []bool{true, false} {
			req, err := http.NewRequest(http.MethodPost, g.acme+"/public/upload", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1
			req.Trailer = eachName("X-Remote-", http.CanonicalHeaderKey)
			for k, v := range eachName("x_remote_", strings.ToLower) {
				req.Trailer[k] = v
			}
			if withSession {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
			}
			a := do(t, req)
			seen := g.backend.take()
			if a.status != http.StatusOK || len(seen) != 1 {
				t.Fatalf("session %v: %d, backend got %d requests\n%s", withSession, a.status, len(seen), a.body)
			}
			noForgedValue(t, seen[0])
			if ids := identityHeaders(seen[0].Trailer, "X-Remote-"); len(ids) != 0 {
				t.Errorf("session %v: the backend got identity trailers %v", withSession, ids)
			}
		}
	})

	t.Run("malformed header lines", func(t *testing.T) {
		// What net/http's client refuses to send: the gateway refuses the
		// request or strips the header, and never passes a forged identity
		// header on. (A line starting with a space continues the previous
		// header's value, here X-Other's, where the marker is harmless.)
		for _, line := range []string{
			"X-Remote-User : " + forgedMarker,
			"X-Remote-User\t: " + forgedMarker,
			" X-Remote-User: " + forgedMarker,
			"X-Remote-User:" + forgedMarker,
		} {
			for _, path := range []string{"/app/page", "/public/page"} {
				_, clean := send(t, path, session, nil)
				if len(clean) != 1 {
					t.Fatalf("baseline of %s: backend got %d requests", path, len(clean))
				}
				a := rawRequest(t, g.acme, "GET "+path+" HTTP/1.1\nHost: "+strings.TrimPrefix(g.acme, "http://")+
					"\nCookie: "+sessionCookie+"="+session+"\nX-Other: 1\n"+line+"\nConnection: close\n\n")
				seen := g.backend.take()
				if a.status/100 == 5 {
					t.Errorf("%q on %s: %d", line, path, a.status)
				}
				for _, r := range seen {
					for k, v := range identityHeaders(r.Header, "X-Remote-") {
						if strings.Contains(strings.Join(v, ","), forgedMarker) {
							t.Errorf("%q on %s: the backend got %s: %q", line, path, k, v)
						}
					}
				}
				t.Logf("%q on %s: %d", line, path, a.status)
				if a.status == http.StatusOK && len(seen) == 1 {
					sameIdentity(t, identityHeaders(seen[0].Header, "X-Remote-"), identityHeaders(clean[0].Header, "X-Remote-"))
				}
			}
		}
	})
}
