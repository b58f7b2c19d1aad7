package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
)

// referenceGateway is the reference configuration of Caddyfile.example
// running in this process against a real OIDC provider (devidp, for tenant
// acme) and a real SAML IdP (crewjam's samlidp, for tenant globex), with
// the two legacy apps as echo backends.
type referenceGateway struct {
	gateway
	acme, globex string // site URLs
	oidc         *devidp.Provider
	saml         *gatewaytest.SAMLIdP
	scimToken    string // acme's
}

// assertionCheck is what the acme backend found verifying X-Remote-Assertion
// against the gateway's JWKS, as an app would.
type assertionCheck struct {
	Error  string         `json:"error,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

// startReference runs the reference with values an administrator would
// fill in replaced by the test's.
func startReference(t *testing.T) *referenceGateway {
	t.Helper()
	g := &referenceGateway{}
	acmePort, globexPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g.acme = fmt.Sprintf("http://127.0.0.1:%d", acmePort)
	g.globex = fmt.Sprintf("http://127.0.0.1:%d", globexPort)
	g.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	g.site = g.acme

	var err error
	g.oidc, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice Liddell"},
		{Subject: "bob", PreferredUsername: "bob@acme.example", Email: "bob@acme.example", EmailVerified: true, Name: "Bob Gone"},
		{Subject: "eve", PreferredUsername: "eve@evil.example", Email: "eve@evil.example", EmailVerified: true, Name: "Eve"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.oidc.Close)
	secret := "test-secret-" + fmt.Sprint(time.Now().UnixNano())
	g.oidc.AddClient("portcullis-acme", secret, []string{g.acme + "/sso/oidc/callback"}, []string{g.acme + "/"})
	// The reference reads the secret from the environment.
	t.Setenv("ACME_OIDC_SECRET", secret)

	g.saml = gatewaytest.StartSAMLIdP(t)
	g.saml.AddUser("gina", "gina-pw", "gina@globex.example", "Gina Writer", []string{"writers", "R&D, Europe"})

	acmeApp := gatewaytest.StartBackend(t, func(r *http.Request) any {
		return checkAssertion(r, g.acme+"/.well-known/portcullis/acme/jwks.json", g.acme+"/portcullis/acme", "legacy-app")
	})
	globexApp := gatewaytest.StartBackend(t, nil)

	cf := referenceCaddyfile(t)
	cf = gatewaytest.ReplaceOnce(t, cf, "{\n\tportcullis {",
		"{\n\tadmin "+g.admin+"\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n\tportcullis {")
	cf = gatewaytest.ReplaceOnce(t, cf, "storage badger /var/lib/portcullis", fmt.Sprintf("storage badger %q", filepath.Join(t.TempDir(), "store")))
	cf = gatewaytest.ReplaceOnce(t, cf, "issuer https://login.acme-idp.example/oauth2/default", "issuer "+g.oidc.Issuer)
	cf = gatewaytest.ReplaceOnce(t, cf, "idp_metadata_url https://idp.globex.example/saml/metadata", "idp_metadata_url "+g.saml.MetadataURL())
	cf = gatewaytest.ReplaceOnce(t, cf, "\napp.acme.example {", fmt.Sprintf("\n:%d {", acmePort))
	cf = gatewaytest.ReplaceOnce(t, cf, "\nwiki.globex.example {", fmt.Sprintf("\n:%d {", globexPort))
	cf = strings.ReplaceAll(cf, "https://app.acme.example", g.acme)
	cf = strings.ReplaceAll(cf, "https://wiki.globex.example", g.globex)
	cf = strings.ReplaceAll(cf, "127.0.0.1:9001", acmeApp.Addr)
	cf = strings.ReplaceAll(cf, "127.0.0.1:9002", globexApp.Addr)
	gatewaytest.Load(t, cf)

	// The IdP admin points the IdP at the SP metadata the gateway serves.
	g.saml.RegisterSP("globex-wiki", g.globex+"/auth/saml/metadata")
	g.scimToken = issueToken(t, g.gateway, "acme")
	return g
}

// checkAssertion checks X-Remote-Assertion the way a backend would: with a
// JOSE library, against the JWKS the gateway publishes, for the issuer and
// audience it expects.
func checkAssertion(r *http.Request, jwksURL, issuer, audience string) assertionCheck {
	raw := r.Header.Get("X-Remote-Assertion")
	if raw == "" {
		return assertionCheck{Error: "no assertion"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	verifier := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(ctx, jwksURL), &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: []string{"ES256"},
	})
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		return assertionCheck{Error: err.Error()}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return assertionCheck{Error: err.Error()}
	}
	return assertionCheck{Claims: claims}
}

// scimCreate creates a SCIM resource of acme and returns its id.
func (g *referenceGateway) scimCreate(t *testing.T, kind string, body map[string]any) string {
	t.Helper()
	a := call(t, http.MethodPost, g.scimBase("acme")+"/"+kind, g.scimToken, body)
	expect(t, a, http.StatusCreated, "SCIM POST /"+kind)
	var res struct {
		ID string `json:"id"`
	}
	a.json(t, &res)
	return res.ID
}

// TestReferenceSignIn runs the reference configuration of Caddyfile.example
// and signs in through it (issue 3): OIDC and SAML from a protected URL,
// through the IdP, back to the page, with the identity headers the backend
// receives; a signed assertion the backend verifies against the JWKS
// endpoint; foreign return paths; users the tenant refuses.
func TestReferenceSignIn(t *testing.T) {
	g := startReference(t)

	aliceID := g.scimCreate(t, "Users", scimUserBody("alice@acme.example", "Alice Liddell", true))
	g.scimCreate(t, "Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]any{{"value": aliceID}},
	})
	bobID := g.scimCreate(t, "Users", scimUserBody("bob@acme.example", "Bob Gone", false))
	g.scimCreate(t, "Users", scimUserBody("eve@evil.example", "Eve", true))

	t.Run("OIDC from a protected URL and back", func(t *testing.T) {
		g.oidc.AutoLogin("alice")
		b := gatewaytest.NewBrowser(t)
		p := b.Get(g.acme + "/edit/page?id=7&x=a%20b")
		if p.Status != http.StatusOK || p.URL.String() != g.acme+"/edit/page?id=7&x=a%20b" {
			t.Fatalf("landed on %s (%d):\n%s", p.URL, p.Status, p.Body)
		}
		e := gatewaytest.ParseEcho(t, p.Body)
		wantHeaders(t, e.Header, map[string]string{
			"X-Remote-User":   "alice@acme.example",
			"X-Remote-Email":  "alice@acme.example",
			"X-Remote-Name":   "Alice Liddell",
			"X-Remote-Groups": "Engineering",
			"X-Remote-Role":   "editor",
		})
		if b.Cookie(g.acme, "acme_session") == "" {
			t.Fatal("no acme_session cookie")
		}

		// The app route adds the signed assertion, which the app
		// verifies against the JWKS endpoint, and a header_up placeholder.
		e = gatewaytest.ParseEcho(t, b.Get(g.acme+"/app/wiki").Body)
		if got := e.Header.Get("X-Forwarded-User"); got != "alice@acme.example" {
			t.Errorf("X-Forwarded-User from {http.auth.user.id} = %q", got)
		}
		var check assertionCheck
		if err := json.Unmarshal(e.Extra, &check); err != nil || check.Error != "" {
			t.Fatalf("assertion not verified: %v %s", err, e.Extra)
		}
		c := check.Claims
		if c["sub"] != aliceID || c["preferred_username"] != "alice@acme.example" || c["role"] != "editor" || c["tenant"] != "acme" {
			t.Errorf("assertion claims %v", c)
		}

		// Sign-out ends the session and sends the browser to the
		// provider's end_session endpoint; the next visit signs in again.
		b.StopRedirects()
		out := b.Get(g.acme + "/sso/logout")
		if out.Status != http.StatusSeeOther || !strings.HasPrefix(out.Header.Get("Location"), g.oidc.Issuer) {
			t.Fatalf("sign-out: %d Location %q", out.Status, out.Header.Get("Location"))
		}
		p = b.Get(g.acme + "/edit/page")
		if p.Status != http.StatusFound || p.Header.Get("Location") != "/sso/login?rd=%2Fedit%2Fpage" {
			t.Fatalf("after sign-out: %d Location %q", p.Status, p.Header.Get("Location"))
		}
	})

	t.Run("default deny: the catch-all is the strictest route", func(t *testing.T) {
		g.oidc.AutoLogin("alice")
		b := gatewaytest.NewBrowser(t)
		if p := b.Get(g.acme + "/app/home"); p.Status != http.StatusOK {
			t.Fatalf("sign-in through /app/home: %d", p.Status)
		}
		for path, want := range map[string]int{
			"/edit/page":        http.StatusOK,         // carved out for editors
			"/other/page":       http.StatusForbidden,  // no carve-out: admins only
			"/edit;x/page":      http.StatusBadRequest, // a servlet would read /edit/page
			"/edit./page":       http.StatusBadRequest,
			"/app%2e%2e/x":      http.StatusBadRequest,
			"/edit%5c..%5cpage": http.StatusBadRequest,
		} {
			if p := b.Get(g.acme + path); p.Status != want {
				t.Errorf("%s: %d, want %d", path, p.Status, want)
			}
		}
	})

	t.Run("foreign return paths go to /", func(t *testing.T) {
		g.oidc.AutoLogin("alice")
		for _, rd := range []string{"https://evil.example/x", "//evil.example/x", "/\\evil.example/x", "%2F%2Fevil.example", "javascript:alert(1)"} {
			b := gatewaytest.NewBrowser(t)
			p := b.Get(g.acme + "/sso/login?rd=" + url.QueryEscape(rd))
			// "/" is the default-deny catch-all (admins only): an editor
			// lands there and is refused, on this site.
			if p.Status != http.StatusForbidden || p.URL.String() != g.acme+"/" {
				t.Errorf("rd=%q: landed on %s (%d)", rd, p.URL, p.Status)
			}
		}
	})

	t.Run("refused users get a page that says why", func(t *testing.T) {
		tests := []struct {
			subject, want string
		}{
			{"bob", "Your account is deactivated"},
			{"eve", "allowed email domains"},
		}
		for _, tt := range tests {
			g.oidc.AutoLogin(tt.subject)
			b := gatewaytest.NewBrowser(t)
			p := b.Get(g.acme + "/edit/page")
			if p.Status != http.StatusForbidden || !strings.Contains(p.Body, tt.want) {
				t.Errorf("%s: %d\n%s", tt.subject, p.Status, p.Body)
			}
			if b.Cookie(g.acme, "acme_session") != "" {
				t.Errorf("%s got a session", tt.subject)
			}
		}
		var page eventsPage
		a := call(t, http.MethodGet, "http://"+g.admin+"/portcullis/tenants/acme/events?type="+storage.EventSignInRefused, "", nil)
		expect(t, a, http.StatusOK, "events")
		a.json(t, &page)
		if len(page.Events) != 2 || page.Events[1].ResourceID != bobID {
			t.Errorf("signin.refused events: %s", a.body)
		}
	})

	t.Run("SAML from a protected URL and back", func(t *testing.T) {
		b := gatewaytest.NewBrowser(t)
		p := b.Get(g.globex + "/docs/page?id=3")
		if !strings.Contains(p.Body, `name="password"`) {
			t.Fatalf("expected the IdP's login form, got %s (%d):\n%s", p.URL, p.Status, p.Body)
		}
		p = b.SubmitForm(p, map[string]string{"user": "gina", "password": "gina-pw"})
		if f, ok := gatewaytest.FirstForm(p.Body); !ok || f.Values.Get("SAMLResponse") == "" {
			t.Fatalf("expected the IdP's auto-post form, got %d:\n%s", p.Status, p.Body)
		}
		p = b.SubmitForm(p, nil)
		if p.Status != http.StatusOK || p.URL.String() != g.globex+"/docs/page?id=3" {
			t.Fatalf("landed on %s (%d):\n%s", p.URL, p.Status, p.Body)
		}
		e := gatewaytest.ParseEcho(t, p.Body)
		wantHeaders(t, e.Header, map[string]string{
			"X-Remote-Email":  "gina@globex.example",
			"X-Remote-Name":   "Gina Writer",
			"X-Remote-Groups": `"R&D, Europe", writers`,
			"X-Remote-Role":   "writer",
		})
		if e.Header.Get("X-Remote-User") == "" || b.Cookie(g.globex, "globex_session") == "" {
			t.Fatalf("no user header or no session cookie: %v", e.Header)
		}
	})
}

// scimUserBody is a SCIM user whose email is its userName.
func scimUserBody(userName, displayName string, active bool) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"displayName": displayName,
		"active":      active,
		"emails":      []map[string]any{{"value": userName, "type": "work", "primary": true}},
	}
}

// wantHeaders checks that each header has exactly the one value given.
func wantHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

// TestSignInBehindTLSTerminator: with an https external_url and TLS ended
// in front of Caddy (the site here is plain HTTP), the sign-in cookies are
// still Secure and __Host- prefixed, and the SAML flow cookie is
// SameSite=None so that it survives the IdP's cross-site POST.
func TestSignInBehindTLSTerminator(t *testing.T) {
	op, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	idp := gatewaytest.StartSAMLIdP(t)
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	port := gatewaytest.FreePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	external := fmt.Sprintf("https://127.0.0.1:%d", port)
	gatewaytest.Load(t, fmt.Sprintf(`{
	admin %s
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %q
		tenant acme {
			oidc {
				issuer %s
				client_id gw
				client_secret s
			}
			external_url %s
		}
		tenant globex {
			saml {
				idp_metadata_url %s
				entity_id %[4]s/saml/metadata
			}
			session {
				cookie_name globex_session
			}
			external_url %[4]s
		}
	}
}

:%[6]d {
	handle /sso/* {
		sso acme
	}
	handle /saml/* {
		sso globex /saml
	}
}
`, admin, filepath.Join(t.TempDir(), "store"), op.Issuer, external, idp.MetadataURL(), port))

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		login, name string
		sameSite    http.SameSite
	}{
		{site + "/sso/login?rd=/x", "__Host-portcullis_session_flow_", http.SameSiteLaxMode},
		{site + "/saml/login?rd=/x", "__Host-globex_session_flow_", http.SameSiteNoneMode},
	} {
		resp, err := client.Get(tc.login)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if resp.StatusCode != http.StatusFound || len(cookies) != 1 {
			t.Fatalf("%s: %d, cookies %v", tc.login, resp.StatusCode, cookies)
		}
		c := cookies[0]
		if !strings.HasPrefix(c.Name, tc.name) || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != tc.sameSite {
			t.Errorf("%s: flow cookie %s", tc.login, c)
		}
		// The OIDC redirect_uri names the external URL (the SAML
		// AuthnRequest is deflated; sso's tests check its ACS URL).
		if loc := resp.Header.Get("Location"); tc.sameSite == http.SameSiteLaxMode && !strings.Contains(loc, url.QueryEscape(external)) {
			t.Errorf("%s: the IdP is not told the external URL: %s", tc.login, loc)
		}
	}
}
