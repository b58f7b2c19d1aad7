package attacktest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// cookiePairs splits the Cookie lines a backend received into name=value
// pairs, in order.
func cookiePairs(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, p := range strings.Split(l, ";") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// gatewayCookie says whether a cookie name is one of the gateway's own:
// the session cookie, with or without __Host-, and the sign-in flow
// cookies (whatever their suffix).
func gatewayCookie(name string) bool { return strings.Contains(name, sessionCookie) }

// TestGatewayCookiesNotForwarded sends the session cookie and sign-in flow
// cookies, between the app's own cookies, to protected and public routes
// signed in and not: the backend (which keeps the raw bytes) must never
// get one of the gateway's cookies, and must get the app's, intact and in
// order. The control is a route without identity, where the session
// cookie does arrive.
func TestGatewayCookiesNotForwarded(t *testing.T) {
	g := startBoundaryGateway(t, nil)
	_, eve := g.signIn(t, g.acme, "eve")

	// A real flow cookie, from a sign-in that is started and left.
	b := gatewaytest.NewBrowser(t)
	b.StopRedirects()
	p := b.Get(g.acme + "/sso/login?rd=%2Fraw%2Fx")
	var flow string
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if strings.HasPrefix(c.Name, sessionCookie+"_flow_") {
			flow = c.Name + "=" + c.Value
		}
	}
	if flow == "" {
		t.Fatalf("starting a sign-in set no flow cookie: %d %v", p.Status, p.Header["Set-Cookie"])
	}
	const madeUpFlow = sessionCookie + "_flow_0123456789ab=forged"

	jars := []struct {
		name  string
		lines func(session string) []string
	}{
		{"session between the app's cookies", func(s string) []string {
			return []string{"app=1; " + sessionCookie + "=" + s + "; theme=dark"}
		}},
		{"session first, flow cookies between", func(s string) []string {
			return []string{sessionCookie + "=" + s + "; app=1; " + flow + "; " + madeUpFlow + "; theme=dark"}
		}},
		{"two Cookie lines", func(s string) []string {
			return []string{"app=1; " + sessionCookie + "=" + s, flow + "; theme=dark"}
		}},
		{"the session cookie twice", func(s string) []string {
			return []string{sessionCookie + "=" + s + "; app=1; " + sessionCookie + "=" + s + "; theme=dark; " + madeUpFlow}
		}},
	}
	routes := []struct {
		name, path, session string
	}{
		{"protected route, signed in", "/raw/x", eve},
		{"public route, signed in", "/raw-public/x", eve},
		{"public route, a stale session", "/raw-public/x", randomToken(t)},
		{"public route, a flow cookie only", "/raw-public/x", ""},
	}
	for _, r := range routes {
		for i, j := range jars {
			name, lines := r.name+"/"+j.name, j.lines(r.session)
			if r.session == "" {
				// Without a session there is one jar to send.
				if i > 0 {
					break
				}
				name, lines = r.name, []string{"app=1; " + flow + "; " + madeUpFlow + "; theme=dark"}
			}
			t.Run(name, func(t *testing.T) {
				g.raw.Take()
				raw := "GET " + r.path + " HTTP/1.1\nHost: " + strings.TrimPrefix(g.acme, "http://") + "\nAccept: application/json\nConnection: close\n"
				for _, l := range lines {
					raw += "Cookie: " + l + "\n"
				}
				a := rawRequest(t, g.acme, raw+"\n")
				seen := g.raw.Take()
				if a.status != http.StatusOK || len(seen) != 1 {
					t.Fatalf("%d, the backend got %d requests\n%.300s", a.status, len(seen), a.body)
				}
				got := cookiePairs(seen[0].HeaderValues("Cookie"))
				var app []string
				for _, c := range got {
					name, _, _ := strings.Cut(c, "=")
					if gatewayCookie(name) {
						t.Errorf("the backend got the gateway's cookie %s", name)
						continue
					}
					app = append(app, c)
				}
				if strings.Join(app, "; ") != "app=1; theme=dark" {
					t.Errorf("the backend got the app's cookies as %q, want %q", app, "app=1; theme=dark")
				}
			})
		}
	}

	t.Run("control: a route without identity passes the session cookie", func(t *testing.T) {
		g.raw.Take()
		raw := "GET /raw-open/x HTTP/1.1\nHost: x\nConnection: close\nCookie: app=1; " + sessionCookie + "=" + eve + "; theme=dark\n\n"
		if a := rawRequest(t, g.acme, raw); a.status != http.StatusOK {
			t.Fatalf("%d", a.status)
		}
		seen := g.raw.Take()
		if len(seen) != 1 || !strings.Contains(strings.Join(seen[0].HeaderValues("Cookie"), "\n"), sessionCookie+"="+eve) {
			t.Fatalf("the backend did not see the session cookie: %+v", seen)
		}
	})
}
