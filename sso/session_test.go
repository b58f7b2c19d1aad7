package sso

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// signedInBrowser signs alice in through OIDC and returns her browser.
func signedInBrowser(t *testing.T, mutate func(*TenantConfig)) (*browser, *gateway, *storage.User) {
	t.Helper()
	op, g := oidcSetup(t, mutate)
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice")
	b := newBrowser(t)
	mustContain(t, "sign-in", b.get(g.URL()+"/").body, "for alice@acme.test")
	return b, g, alice
}

// lookup runs Service.Lookup with the browser's cookies.
func lookup(g *gateway, b *browser) (*storage.Session, *storage.User, error) {
	req := httptest.NewRequest(http.MethodGet, g.URL()+"/", nil)
	for _, c := range b.jar.Cookies(mustURL(g.URL())) {
		req.AddCookie(c)
	}
	return g.service().Lookup(req)
}

func TestSessionIdleTimeout(t *testing.T) {
	b, g, alice := signedInBrowser(t, func(c *TenantConfig) {
		c.Session.IdleTimeout = 30 * time.Minute
		c.Session.AbsoluteTimeout = 8 * time.Hour
	})
	// Activity every 20 minutes keeps the session alive past the idle limit.
	for i := 0; i < 3; i++ {
		g.clock.Advance(20 * time.Minute)
		if _, _, err := lookup(g, b); err != nil {
			t.Fatalf("after %d active periods: %v", i+1, err)
		}
	}
	g.clock.Advance(31 * time.Minute)
	if _, _, err := lookup(g, b); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle session still valid: %v", err)
	}
	if n := len(g.sessionsOf(alice.ID)); n != 0 {
		t.Errorf("expired session not deleted (%d left)", n)
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	b, g, _ := signedInBrowser(t, func(c *TenantConfig) {
		c.Session.IdleTimeout = 30 * time.Minute
		c.Session.AbsoluteTimeout = 2 * time.Hour
	})
	for i := 0; i < 5; i++ { // 100 minutes of activity
		g.clock.Advance(20 * time.Minute)
		if _, _, err := lookup(g, b); err != nil {
			t.Fatalf("at %d min: %v", (i+1)*20, err)
		}
	}
	g.clock.Advance(21 * time.Minute) // 121 min after sign-in, 21 min idle
	if _, _, err := lookup(g, b); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session outlived its absolute timeout: %v", err)
	}
	// The app sends the browser to sign in again.
	b.stopAt("/sso/login")
	resp, err := b.client.Get(g.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc.Path != "/sso/login" || loc.Query().Get("rd") != "/x" {
		t.Fatalf("expired session: %d to %v", resp.StatusCode, loc)
	}
}

func TestSessionLastSeenWrittenAtMostOncePerMinute(t *testing.T) {
	b, g, alice := signedInBrowser(t, nil)
	first := g.sessionsOf(alice.ID)[0].LastSeen
	gen := g.store.Generation(testTenant)
	for i := 0; i < 5; i++ {
		g.clock.Advance(5 * time.Second)
		if _, _, err := lookup(g, b); err != nil {
			t.Fatal(err)
		}
	}
	if g.store.Generation(testTenant) != gen || !g.sessionsOf(alice.ID)[0].LastSeen.Equal(first) {
		t.Fatal("LastSeen written within the first minute")
	}
	g.clock.Advance(40 * time.Second)
	sess, _, err := lookup(g, b)
	if err != nil {
		t.Fatal(err)
	}
	stored := g.sessionsOf(alice.ID)[0].LastSeen
	if !stored.After(first) || !sess.LastSeen.Equal(stored) {
		t.Fatalf("LastSeen not refreshed after a minute: %v -> %v", first, stored)
	}
	// The refresh is bookkeeping: it must not empty the identity caches.
	if g.store.Generation(testTenant) != gen {
		t.Fatal("the LastSeen refresh advanced the store's Generation")
	}
}

func TestSessionEndsWithUser(t *testing.T) {
	b, g, alice := signedInBrowser(t, nil)
	// Deactivated: Lookup says so (the identity handler refuses).
	alice.Active = false
	g.putUser(alice)
	if _, u, err := lookup(g, b); !errors.Is(err, ErrUserInactive) || u == nil || u.ID != alice.ID {
		t.Fatalf("inactive user: %v", err)
	}
	// Deleted (SCIM deletes the user and its sessions; here the user only,
	// to show Lookup copes with an orphaned session too).
	err := g.store.Update(context.Background(), testTenant, func(tx storage.Tx) error { return tx.DeleteUser(alice.ID) })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lookup(g, b); !errors.Is(err, ErrNoSession) {
		t.Fatalf("deleted user: %v", err)
	}
}

func TestSessionFixation(t *testing.T) {
	b, g, alice := signedInBrowser(t, nil)
	before := b.cookie(g.URL(), DefaultCookieName)
	// A second sign-in in the same browser gets a new id; the old session
	// is deleted, so a planted or leaked id is worth nothing afterwards.
	p := b.get(g.URL() + "/sso/login?rd=/again")
	mustContain(t, "second sign-in", p.body, "app page /again")
	after := b.cookie(g.URL(), DefaultCookieName)
	if after == "" || after == before {
		t.Fatalf("session id not renewed: %q -> %q", before, after)
	}
	sessions := g.sessionsOf(alice.ID)
	if len(sessions) != 1 || sessions[0].IDHash != storage.HashSecret(after) {
		t.Fatalf("old session kept: %+v", sessions)
	}
	// A garbage or planted cookie gets no session.
	for _, v := range []string{"", "x", strings.Repeat("a", 64), strings.Repeat("z", 500)} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: v})
		if _, _, err := g.service().Lookup(req); !errors.Is(err, ErrNoSession) {
			t.Errorf("cookie %q: %v", v, err)
		}
	}
}

func TestCookieAttributesUnderTLS(t *testing.T) {
	svc := &Service{cfg: TenantConfig{Session: SessionConfig{CookieName: "gw"}}}
	req := httptest.NewRequest(http.MethodGet, "https://app.example/", nil)
	req.TLS = &tls.ConnectionState{}
	w := httptest.NewRecorder()
	svc.setSessionCookie(w, req, "id")
	c := w.Result().Cookies()[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.Path != "/" || c.MaxAge != 0 {
		t.Errorf("session cookie under TLS: %+v", c)
	}
}

func TestConfigValidation(t *testing.T) {
	oidc := &OIDCConfig{Issuer: "https://idp.example", ClientID: "c"}
	saml := &SAMLConfig{IDPMetadataURL: "https://idp.example/md", EntityID: "https://sp.example"}
	for _, tc := range []struct {
		name string
		cfg  TenantConfig
		want string
	}{
		{"no tenant", TenantConfig{OIDC: oidc}, "tenant is required"},
		{"no protocol", TenantConfig{Tenant: "t"}, "exactly one of oidc and saml"},
		{"both protocols", TenantConfig{Tenant: "t", OIDC: oidc, SAML: saml}, "exactly one of oidc and saml"},
		{"bad cookie name", TenantConfig{Tenant: "t", OIDC: oidc, Session: SessionConfig{CookieName: "a;b"}}, "cookie name"},
		{"tiny absolute timeout", TenantConfig{Tenant: "t", OIDC: oidc, Session: SessionConfig{AbsoluteTimeout: time.Second}}, "absolute"},
		{"tiny idle timeout", TenantConfig{Tenant: "t", OIDC: oidc, Session: SessionConfig{IdleTimeout: time.Second}}, "idle"},
		{"bad domain", TenantConfig{Tenant: "t", OIDC: oidc, AllowedDomains: []string{"a@b.c"}}, "not a domain"},
		{"oidc without client", TenantConfig{Tenant: "t", OIDC: &OIDCConfig{Issuer: "https://idp.example"}}, "client_id"},
		{"oidc issuer not a URL", TenantConfig{Tenant: "t", OIDC: &OIDCConfig{Issuer: "idp.example", ClientID: "c"}}, "not an http(s) URL"},
		{"oidc relative post-logout", TenantConfig{Tenant: "t", OIDC: &OIDCConfig{Issuer: "https://idp.example", ClientID: "c", PostLogoutRedirect: "/bye"}}, "post_logout_redirect"},
		{"saml two sources", TenantConfig{Tenant: "t", SAML: &SAMLConfig{IDPMetadataURL: "https://i/md", IDPMetadataFile: "/f", EntityID: "e"}}, "exactly one"},
		{"saml partial manual", TenantConfig{Tenant: "t", SAML: &SAMLConfig{IDPSSOURL: "https://i/sso", EntityID: "e"}}, "by hand needs"},
		{"saml no entity id", TenantConfig{Tenant: "t", SAML: &SAMLConfig{IDPMetadataURL: "https://i/md"}}, "entity_id"},
		{"saml key without cert", TenantConfig{Tenant: "t", SAML: &SAMLConfig{IDPMetadataURL: "https://i/md", EntityID: "e", SPKeyPEM: "x"}}, "sp_key and sp_cert"},
		{"saml fast refresh", TenantConfig{Tenant: "t", SAML: &SAMLConfig{IDPMetadataURL: "https://i/md", EntityID: "e", IDPMetadataRefresh: time.Second}}, "refresh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	cfg, err := TenantConfig{Tenant: "t", OIDC: &OIDCConfig{Issuer: "https://idp.example", ClientID: "c", Scopes: []string{"email"}}, AllowedDomains: []string{" Acme.COM "}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDC.Scopes[0] != "openid" || cfg.AllowedDomains[0] != "acme.com" || cfg.Session.CookieName != DefaultCookieName ||
		cfg.Session.IdleTimeout != time.Hour || cfg.Session.AbsoluteTimeout != 12*time.Hour || cfg.OIDC.GroupsClaim != "groups" {
		t.Errorf("defaults: %+v %+v", cfg, cfg.OIDC)
	}
}

// A request carrying several different session cookies (one planted for a
// longer path or a parent domain) carries no session, and the browser is
// told to drop the ones on the way to its path.
func TestSessionCookieAmbiguity(t *testing.T) {
	svc := &Service{cfg: TenantConfig{Session: SessionConfig{CookieName: "sess"}}}
	cases := []struct {
		name    string
		cookies string
		want    string
		ok      bool
	}{
		{"one", "sess=a", "a", true},
		{"same value twice", "sess=a; sess=a", "a", true},
		{"planted first", "sess=evil; sess=a", "", false},
		{"none", "other=a", "", false},
		{"empty", "sess=", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/app/x", nil)
			r.Header.Set("Cookie", c.cookies)
			got, ok := svc.sessionCookie(r)
			if got != c.want || ok != c.ok {
				t.Fatalf("sessionCookie = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/app/x", nil)
	r.Header.Set("Cookie", "sess=evil; sess=a")
	w := httptest.NewRecorder()
	svc.ExpireStrayCookies(w, r)
	var paths []string
	for _, c := range w.Result().Cookies() {
		if c.Name != "sess" || c.MaxAge >= 0 {
			t.Fatalf("unexpected cookie %v", c)
		}
		paths = append(paths, c.Path)
	}
	if want := []string{"/app", "/app/", "/app/x", "/app/x/"}; !slices.Equal(paths, want) {
		t.Fatalf("expired paths %v, want %v", paths, want)
	}
	// Under TLS the cookie is __Host- prefixed, so it cannot be planted
	// with a Path or a Domain.
	r = httptest.NewRequest(http.MethodGet, "https://gw.example/", nil)
	if got := svc.sessionCookieName(r); got != "__Host-sess" {
		t.Fatalf("cookie name under TLS = %q", got)
	}
}
