package attacktest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestCrossTenantSession carries a session cookie of one tenant to another
// tenant's protected routes (its own site, and a route of the first
// tenant's site): both tenants use the same cookie name, and browsers send
// a host's cookies to every port, so this is what a browser does on its
// own. The other tenant refuses the session (401, or a redirect to its own
// sign-in) and its backend sees no identity.
func TestCrossTenantSession(t *testing.T) {
	g := startGateway(t)
	aliceBrowser := g.signInOIDC(t, "alice")
	alice := aliceBrowser.Cookie(g.acme, sessionCookie)
	gina := g.signInSAML(t, ginaUser, ginaPass).Cookie(g.globex, sessionCookie)
	g.backend.take()

	// send requests u as a script with the Cookie header given, and returns
	// the answer and the X-Remote-User values the backend got.
	send := func(t *testing.T, u, cookie string) (answer, []string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		a := do(t, req)
		var users []string
		for _, r := range g.backend.take() {
			ids := identityHeaders(r.Header, "X-Remote-")
			if len(ids) == 0 {
				continue
			}
			if u := ids["X-Remote-User"]; len(u) == 1 {
				users = append(users, u[0])
			} else {
				users = append(users, fmt.Sprint(ids)) // an identity without one user
			}
		}
		return a, users
	}
	c := func(v string) string { return sessionCookie + "=" + v }

	tests := []struct {
		name, url, cookie string
		want              string // the only user the backend may see ("" none; the request is refused)
		status            int
	}{
		{"acme's session on globex's site", g.globex + "/docs", c(alice), "", http.StatusUnauthorized},
		{"acme's session on a globex route of acme's site", g.acme + "/globex/docs", c(alice), "", http.StatusUnauthorized},
		{"globex's session on acme's site", g.acme + "/app/page", c(gina), "", http.StatusUnauthorized},
		{"globex's session on acme's public route", g.acme + "/public/page", c(gina), "", http.StatusOK},
		{"both sessions on globex's site, acme's first", g.globex + "/docs", c(alice) + "; " + c(gina), ginaEmail, 0},
		{"both sessions on acme's site, globex's first", g.acme + "/app/page", c(gina) + "; " + c(alice), aliceName, 0},
		// Controls: each session works where it belongs, a globex session
		// also on the globex route of acme's site.
		{"acme's session on acme's site", g.acme + "/app/page", c(alice), aliceName, http.StatusOK},
		{"globex's session on globex's site", g.globex + "/docs", c(gina), ginaEmail, http.StatusOK},
		{"globex's session on the globex route of acme's site", g.acme + "/globex/docs", c(gina), ginaEmail, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, users := send(t, tt.url, tt.cookie)
			if tt.status != 0 && a.status != tt.status {
				t.Errorf("%d, want %d\n%.300s", a.status, tt.status, a.body)
			}
			for _, u := range users {
				if u != tt.want {
					t.Errorf("the backend saw %q, want only %q", u, tt.want)
				}
			}
			if tt.want != "" && tt.status == http.StatusOK && len(users) != 1 {
				t.Errorf("the backend saw %v, want %q", users, tt.want)
			}
		})
	}

	t.Run("a browser signed in to acme visits globex", func(t *testing.T) {
		// The jar sends acme's cookie to globex's port: the browser is sent
		// to globex's IdP, and the backend sees nothing.
		globexHosts := []string{hostOf(t, g.globex), hostOf(t, g.saml.MetadataURL())}
		p := browse(t, aliceBrowser, g.globex+"/docs", globexHosts, nil)
		if !strings.Contains(p.Body, `name="password"`) || p.URL.Host != hostOf(t, g.saml.MetadataURL()) {
			t.Errorf("landed on %s (%d), want the SAML IdP's login form", p.URL, p.Status)
		}
		if seen := g.backend.take(); len(seen) != 0 {
			t.Errorf("the backend got %d requests", len(seen))
		}
		// The acme session is untouched by the visit.
		if a, users := send(t, g.acme+"/app/page", c(alice)); a.status != http.StatusOK || len(users) != 1 || users[0] != aliceName {
			t.Errorf("acme's session after the visit: %d %v", a.status, users)
		}
	})
}
