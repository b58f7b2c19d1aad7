package attacktest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// plant puts an attacker's session cookie into the victim's browser, as a
// sibling site, an XSS in an app behind the gateway or a network attacker
// on plain HTTP can.
func plant(t *testing.T, b *gatewaytest.Browser, site, path, value string) {
	t.Helper()
	u, err := url.Parse(site + "/")
	if err != nil {
		t.Fatal(err)
	}
	b.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: value, Path: path}})
}

// userSeen is the X-Remote-User the backend got for the browser's request
// to u, or "" when the gateway did not pass the request on.
func userSeen(t *testing.T, g *gateway, b *gatewaytest.Browser, u string) string {
	t.Helper()
	g.backend.take()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json") // a script: 401 instead of a sign-in
	b.StopRedirects()
	p := b.Do(req)
	b.FollowRedirects()
	seen := g.backend.take()
	if len(seen) == 0 {
		if p.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d without reaching the backend, want 401", u, p.Status)
		}
		return ""
	}
	return seen[0].Header.Get("X-Remote-User")
}

// TestSessionFixation plants sessions in the victim's browser before sign-in
// (a value the attacker made up, the attacker's own live session, the
// victim's previous session, one scoped to a longer path) and checks that
// sign-in gives the browser a new session id, that the old value gets no
// access afterwards, and that the victim never browses as the attacker.
func TestSessionFixation(t *testing.T) {
	g := startGateway(t)
	acmeHosts := []string{hostOf(t, g.acme), hostOf(t, g.oidc.Issuer)}
	globexHosts := []string{hostOf(t, g.globex), hostOf(t, g.saml.MetadataURL())}

	// signIn signs alice in to acme in b from /sso/login, coming back to
	// /app/page, and returns her session cookie.
	signIn := func(t *testing.T, b *gatewaytest.Browser) string {
		t.Helper()
		g.oidc.AutoLogin("alice")
		p := browse(t, b, g.acme+"/sso/login?rd=%2Fapp%2Fpage", acmeHosts, nil)
		if p.Status != http.StatusOK || p.URL.String() != g.acme+"/app/page" {
			t.Fatalf("sign-in landed on %s (%d)\n%.500s", p.URL, p.Status, p.Body)
		}
		return b.Cookie(g.acme, sessionCookie)
	}

	t.Run("a value the attacker made up", func(t *testing.T) {
		planted := randomToken(t)
		victim := gatewaytest.NewBrowser(t)
		plant(t, victim, g.acme, "/", planted)
		// The victim follows a link to a protected page and signs in.
		g.oidc.AutoLogin("alice")
		p := browse(t, victim, g.acme+"/app/page", acmeHosts, nil)
		if p.Status != http.StatusOK || p.URL.String() != g.acme+"/app/page" {
			t.Fatalf("sign-in landed on %s (%d)", p.URL, p.Status)
		}
		now := victim.Cookie(g.acme, sessionCookie)
		if now == planted || now == "" {
			t.Fatalf("session after sign-in %q, planted %q", now, planted)
		}
		if got := userSeen(t, g, victim, g.acme+"/app/page"); got != aliceName {
			t.Errorf("the victim is %q, want %q", got, aliceName)
		}
		if a := get(t, g.acme+"/app/page", planted); a.status != http.StatusUnauthorized {
			t.Errorf("the planted value gets %d, want 401", a.status)
		}
	})

	t.Run("the attacker's own live session", func(t *testing.T) {
		attackerSession := g.signInOIDC(t, "eve").Cookie(g.acme, sessionCookie)
		victim := gatewaytest.NewBrowser(t)
		plant(t, victim, g.acme, "/", attackerSession)
		now := signIn(t, victim)
		if now == attackerSession || now == "" {
			t.Fatalf("the victim kept the attacker's session id")
		}
		if got := userSeen(t, g, victim, g.acme+"/app/page"); got != aliceName {
			t.Errorf("the victim is %q, want %q", got, aliceName)
		}
		// The planted session is over: it gets the attacker nothing, and
		// certainly not the victim's identity.
		if a := get(t, g.acme+"/app/page", attackerSession); a.status != http.StatusUnauthorized {
			t.Errorf("the attacker's planted session gets %d, want 401", a.status)
		}
	})

	t.Run("the victim's previous session", func(t *testing.T) {
		b := gatewaytest.NewBrowser(t)
		first := signIn(t, b)
		second := signIn(t, b)
		if first == second {
			t.Fatalf("signing in again kept the session id")
		}
		if a := get(t, g.acme+"/app/page", first); a.status != http.StatusUnauthorized {
			t.Errorf("the previous session gets %d, want 401", a.status)
		}
		if got := userSeen(t, g, b, g.acme+"/app/page"); got != aliceName {
			t.Errorf("after signing in again the browser is %q", got)
		}
		// And after sign-out, the last one is over too.
		b.StopRedirects()
		b.Get(g.acme + "/sso/logout")
		b.FollowRedirects()
		if a := get(t, g.acme+"/app/page", second); a.status != http.StatusUnauthorized {
			t.Errorf("the session after sign-out gets %d, want 401", a.status)
		}
	})

	t.Run("the attacker's session planted for a longer path", func(t *testing.T) {
		// A cookie for /app/ is not sent to /sso/..., so sign-in cannot see
		// (and end) it, and afterwards the browser sends it first on every
		// /app/ request, before the victim's own.
		attackerSession := g.signInOIDC(t, "eve").Cookie(g.acme, sessionCookie)
		victim := gatewaytest.NewBrowser(t)
		plant(t, victim, g.acme, "/app/", attackerSession)
		signIn(t, victim)
		for _, path := range []string{"/app/page", "/app/other", "/elsewhere"} {
			if got := userSeen(t, g, victim, g.acme+path); got != aliceName && got != "" {
				t.Errorf("after signing in, the victim's browser on %s is %q (the attacker), want %q or a refusal", path, got, aliceName)
			}
		}
	})

	t.Run("SAML: a value the attacker made up", func(t *testing.T) {
		planted := randomToken(t)
		victim := gatewaytest.NewBrowser(t)
		plant(t, victim, g.globex, "/", planted)
		p := browse(t, victim, g.globex+"/docs", globexHosts, map[string]string{"user": ginaUser, "password": ginaPass})
		if p.Status != http.StatusOK || p.URL.String() != g.globex+"/docs" {
			t.Fatalf("sign-in landed on %s (%d)", p.URL, p.Status)
		}
		if now := victim.Cookie(g.globex, sessionCookie); now == planted || now == "" {
			t.Fatalf("session after sign-in %q, planted %q", now, planted)
		}
		if a := get(t, g.globex+"/docs", planted); a.status != http.StatusUnauthorized {
			t.Errorf("the planted value gets %d, want 401", a.status)
		}
	})
}
