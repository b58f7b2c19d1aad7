package sso

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
)

const (
	testClientID     = "portcullis"
	testClientSecret = "s3cret-for-tests"
)

var oidcUsers = []devidp.User{
	{Subject: "sub-alice", PreferredUsername: "alice@acme.test", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Example", Groups: []string{"engineering", "admins"}, Password: "alice-pw"},
	{Subject: "sub-bob", PreferredUsername: "bob", Email: "bob@acme.test", EmailVerified: true, Name: "Bob Example", Groups: []string{"sales"}},
	{Subject: "sub-eve", PreferredUsername: "eve@evil.test", Email: "eve@evil.test", EmailVerified: true, Name: "Eve"},
	{Subject: "sub-carol", PreferredUsername: "carol@acme.test", Email: "carol@acme.test", EmailVerified: true, Name: "Carol"},
}

// oidcSetup runs a provider and a gateway signing in through it.
func oidcSetup(t *testing.T, mutate func(*TenantConfig)) (*devidp.Provider, *gateway) {
	t.Helper()
	return oidcSetupUsers(t, oidcUsers, mutate)
}

// oidcSetupUsers is oidcSetup with a provider that knows users.
func oidcSetupUsers(t *testing.T, users []devidp.User, mutate func(*TenantConfig)) (*devidp.Provider, *gateway) {
	t.Helper()
	op, err := devidp.Start(devidp.Config{Users: users})
	if err != nil {
		t.Fatalf("start provider: %v", err)
	}
	t.Cleanup(op.Close)
	g := newGateway(t)
	op.AddClient(testClientID, testClientSecret,
		[]string{g.URL() + "/sso" + PathOIDCCallback},
		[]string{g.URL() + "/signed-out"})
	cfg := TenantConfig{
		OIDC: &OIDCConfig{
			Issuer: op.Issuer, ClientID: testClientID, ClientSecret: testClientSecret,
			Scopes:             []string{"openid", "email", "profile", "groups"},
			PostLogoutRedirect: g.URL() + "/signed-out",
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g.start(cfg)
	return op, g
}

func TestOIDCSignInProvisionedUser(t *testing.T) {
	op, g := oidcSetup(t, nil)
	alice := &storage.User{UserName: "Alice@Acme.test", Emails: []string{"alice@acme.test"}, Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice")

	b := newBrowser(t)
	p := b.get(g.URL() + "/reports/q3?year=2024")
	if p.status != http.StatusOK || p.url.Path != "/reports/q3" {
		t.Fatalf("landed on %s with %d: %s", p.url, p.status, p.body)
	}
	mustContain(t, "app page", p.body, "app page /reports/q3?year=2024 for Alice@Acme.test")

	// The authorization request carried PKCE S256, state and nonce.
	var auth *url.URL
	for _, u := range b.visited() {
		if u.Path == "/authorize" {
			auth = u
		}
	}
	if auth == nil {
		t.Fatal("the browser never went to the authorization endpoint")
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("no PKCE S256 challenge in %s", auth)
	}
	if len(q.Get("state")) != 64 || q.Get("nonce") == "" || q.Get("nonce") == q.Get("state") {
		t.Errorf("state/nonce missing or reused in %s", auth)
	}

	// The session cookie is a random id, host-only, HttpOnly, Lax; the store
	// keeps only its hash.
	var sessionCookie *http.Cookie
	for _, c := range b.setCookies() {
		if c.Name == DefaultCookieName && c.Value != "" {
			sessionCookie = c
		}
	}
	if sessionCookie == nil {
		t.Fatal("no session cookie set")
	}
	if !sessionCookie.HttpOnly || sessionCookie.SameSite != http.SameSiteLaxMode || sessionCookie.Domain != "" || sessionCookie.Path != "/" || sessionCookie.Secure {
		t.Errorf("session cookie attributes: %+v", sessionCookie)
	}
	if !validSecret(sessionCookie.Value) {
		t.Errorf("session cookie is not a 256-bit random id: %q", sessionCookie.Value)
	}
	sessions := g.sessionsOf(alice.ID)
	if len(sessions) != 1 || sessions[0].IDHash != storage.HashSecret(sessionCookie.Value) || sessions[0].Protocol != "oidc" || sessions[0].IDTokenHint == "" {
		t.Fatalf("stored sessions: %+v", sessions)
	}
	if evs := g.events(storage.EventSignIn); len(evs) != 1 || evs[0].ResourceID != alice.ID ||
		evs[0].ActorName != "Alice@Acme.test" || evs[0].ResourceName != "Alice@Acme.test" {
		t.Errorf("signin.succeeded events (names next to ids): %+v", evs)
	}
	// A SCIM user's groups are SCIM's business, not the claims'.
	if names := g.groupNames(alice.ID); len(names) != 0 {
		t.Errorf("provisioned user got groups from claims: %v", names)
	}
	// Flow cookies are gone.
	for _, c := range b.jar.Cookies(mustURL(g.URL() + "/sso/")) {
		if strings.Contains(c.Name, "_flow_") {
			t.Errorf("flow cookie left behind: %s", c.Name)
		}
	}
}

func TestOIDCJustInTimeUsersAndGroups(t *testing.T) {
	for _, tc := range []struct {
		name        string
		faults      devidp.Faults
		groupsClaim string
		wantGroups  string
	}{
		{"groups in id token", devidp.Faults{}, "", "admins,engineering"},
		{"groups only from userinfo", devidp.Faults{GroupsOnlyInUserinfo: true}, "", "admins,engineering"},
		{"groups claim configured to another name", devidp.Faults{}, "roles", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, g := oidcSetup(t, func(c *TenantConfig) { c.JIT = true; c.OIDC.GroupsClaim = tc.groupsClaim })
			op.SetFaults(tc.faults)
			op.AutoLogin("sub-alice")
			b := newBrowser(t)
			p := b.get(g.URL() + "/")
			mustContain(t, "app page", p.body, "for alice@acme.test groups=")
			if !strings.HasSuffix(p.body, "groups="+tc.wantGroups) {
				t.Fatalf("groups: %s", p.body)
			}
			u := g.userByName("alice@acme.test")
			if u.Source != storage.SourceJIT || u.DisplayName != "Alice Example" || u.PrimaryEmail() != "alice@acme.test" || !u.Active {
				t.Errorf("jit user: %+v", u)
			}
			if evs := g.events(storage.EventJITUserCreated); len(evs) != 1 || evs[0].ResourceID != u.ID {
				t.Errorf("user.jit_created events: %+v", evs)
			}
			for _, e := range g.events(storage.EventMemberAdded) {
				if e.ActorName != "alice@acme.test" || e.ResourceName == "" || !strings.Contains(tc.wantGroups, e.ResourceName) {
					t.Errorf("member_added event without the user's and group's names: %+v", e)
				}
			}
			if want := len(strings.Split(tc.wantGroups, ",")); tc.wantGroups != "" && len(g.events(storage.EventGroupCreated)) != want {
				t.Errorf("group.created events: %d, want %d", len(g.events(storage.EventGroupCreated)), want)
			}
		})
	}
}

func TestOIDCJustInTimeGroupsFollowClaims(t *testing.T) {
	op, g := oidcSetup(t, func(c *TenantConfig) { c.JIT = true })
	op.AutoLogin("sub-bob")
	mustContain(t, "first sign-in", newBrowser(t).get(g.URL()+"/").body, "for bob groups=sales")
	// A JIT user's groups follow the claims at the next sign-in; groups
	// that exist are reused by displayName (case-insensitively).
	bob := g.userByName("bob")
	err := g.store.Update(t.Context(), testTenant, func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: storage.NewID(), DisplayName: "Support", Source: storage.SourceSCIM})
	})
	if err != nil {
		t.Fatal(err)
	}
	op.SetGroups("sub-bob", []string{"support"})
	mustContain(t, "second sign-in", newBrowser(t).get(g.URL()+"/").body, "for bob groups=Support")
	if names := g.groupNames(bob.ID); len(names) != 1 || names[0] != "Support" {
		t.Errorf("groups after second sign-in: %v", names)
	}
}

func TestOIDCRefusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		subject    string
		faults     devidp.Faults
		setup      func(g *gateway)
		mutate     func(*TenantConfig)
		wantStatus int
		wantPage   string
		wantReason string
	}{
		{name: "wrong nonce", subject: "sub-alice", faults: devidp.Faults{WrongNonce: true},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "nonce does not match"},
		{name: "wrong audience", subject: "sub-alice", faults: devidp.Faults{WrongAudience: true},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "expected audience"},
		{name: "wrong issuer", subject: "sub-alice", faults: devidp.Faults{WrongIssuer: true},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "issued by a different provider"},
		{name: "expired id token", subject: "sub-alice", faults: devidp.Faults{Expired: true},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "expired"},
		{name: "signature by a key not in the JWKS", subject: "sub-alice", faults: devidp.Faults{UnpublishedKey: true},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "id token rejected"},
		{name: "inactive provisioned user", subject: "sub-alice",
			setup:      func(g *gateway) { g.putUser(&storage.User{UserName: "alice@acme.test", Active: false}) },
			wantStatus: 403, wantPage: "Your account is deactivated", wantReason: "user is deactivated"},
		{name: "email domain not allowed", subject: "sub-eve", mutate: func(c *TenantConfig) { c.JIT = true; c.AllowedDomains = []string{"acme.test"} },
			wantStatus: 403, wantPage: "not allowed here", wantReason: `email domain "evil.test" is not in allowed_domains`},
		{name: "provisioned user outside allowed domains", subject: "sub-eve", mutate: func(c *TenantConfig) { c.AllowedDomains = []string{"acme.test"} },
			setup:      func(g *gateway) { g.putUser(&storage.User{UserName: "eve@evil.test", Active: true}) },
			wantStatus: 403, wantPage: "not allowed here", wantReason: "allowed_domains"},
		{name: "not provisioned and no JIT", subject: "sub-carol",
			wantStatus: 403, wantPage: "You do not have access", wantReason: "just-in-time creation is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, g := oidcSetup(t, tc.mutate)
			if tc.setup != nil {
				tc.setup(g)
			}
			op.SetFaults(tc.faults)
			op.AutoLogin(tc.subject)
			b := newBrowser(t)
			p := b.get(g.URL() + "/app")
			if p.status != tc.wantStatus || p.url.Path != "/sso"+PathOIDCCallback {
				t.Fatalf("got %d at %s, want %d at the callback:\n%s", p.status, p.url, tc.wantStatus, p.body)
			}
			mustContain(t, "page", p.body, tc.wantPage)
			t.Logf("refusal: %s", g.lastRefusal())
			mustContain(t, "audit reason", g.lastRefusal(), tc.wantReason)
			if b.cookie(g.URL(), DefaultCookieName) != "" {
				t.Error("a refused sign-in set a session cookie")
			}
			if evs := g.events(storage.EventSignIn); len(evs) != 0 {
				t.Errorf("signin.succeeded recorded for a refusal: %+v", evs)
			}
		})
	}
}

// callbackURL runs a sign-in up to the redirect to the callback and returns
// that URL, not yet visited.
func callbackURL(t *testing.T, b *browser, g *gateway) *url.URL {
	t.Helper()
	b.stopAt("/sso" + PathOIDCCallback)
	defer b.followAll()
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/sso"+PathOIDCCallback {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := b.client.Get(g.URL() + "/sso/login?rd=/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Path != "/sso"+PathOIDCCallback {
		t.Fatalf("expected a redirect to the callback, got %d %v", resp.StatusCode, loc)
	}
	return loc
}

func TestOIDCStateIsBoundToTheBrowser(t *testing.T) {
	op, g := oidcSetup(t, nil)
	g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
	op.AutoLogin("sub-alice")

	t.Run("wrong state", func(t *testing.T) {
		g.nextRefusalWindow()
		b := newBrowser(t)
		cb := callbackURL(t, b, g)
		q := cb.Query()
		other, _ := storage.NewSecret() // well-formed, but not this browser's
		q.Set("state", other)
		cb.RawQuery = q.Encode()
		p := b.get(cb.String())
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "sign-in cookie")
	})
	t.Run("callback in another browser", func(t *testing.T) {
		g.nextRefusalWindow()
		cb := callbackURL(t, newBrowser(t), g)
		p := newBrowser(t).get(cb.String())
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "did not send the sign-in cookie")
	})
	t.Run("callback used twice", func(t *testing.T) {
		g.nextRefusalWindow()
		b := newBrowser(t)
		cb := callbackURL(t, b, g)
		flow := b.flowCookie(g, cb.Query().Get("state"))
		if p := b.get(cb.String()); p.status != http.StatusOK || p.url.Path != "/after" {
			t.Fatalf("first use: %d at %s", p.status, p.url)
		}
		// Put the flow cookie back, as an attacker holding it would.
		b.jar.SetCookies(mustURL(g.URL()+"/sso/"), []*http.Cookie{flow})
		p := b.get(cb.String())
		if p.status != http.StatusBadRequest {
			t.Fatalf("second use: status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "already used")
	})
	t.Run("provider error", func(t *testing.T) {
		g.nextRefusalWindow()
		b := newBrowser(t)
		cb := callbackURL(t, b, g)
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"user said no"}}
		p := b.get(g.URL() + "/sso" + PathOIDCCallback + "?" + q.Encode())
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "page", p.body, "did not complete the sign-in")
		mustContain(t, "reason", g.lastRefusal(), "access_denied")
	})
}

// TestOIDCCodeNeedsTheVerifier: a code stolen from the callback URL cannot
// be redeemed without the PKCE verifier that never left the gateway.
func TestOIDCCodeNeedsTheVerifier(t *testing.T) {
	op, g := oidcSetup(t, nil)
	op.AutoLogin("sub-alice")
	cb := callbackURL(t, newBrowser(t), g)
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {cb.Query().Get("code")},
		"redirect_uri": {g.URL() + "/sso" + PathOIDCCallback},
	}
	req, _ := http.NewRequest(http.MethodPost, op.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("token endpoint answered %d to a code without verifier", resp.StatusCode)
	}
}

func TestOIDCForeignReturnPath(t *testing.T) {
	op, g := oidcSetup(t, nil)
	g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
	op.AutoLogin("sub-alice")
	for _, rd := range []string{"https://evil.example/x", "//evil.example/x", `/\evil.example`, "%2F%2Fevil.example", "/%2F%2Fevil.example", "javascript:alert(1)"} {
		b := newBrowser(t)
		p := b.get(g.URL() + "/sso/login?rd=" + url.QueryEscape(rd))
		if p.status != http.StatusOK || p.url.Host != mustURL(g.URL()).Host || p.url.Path != "/" {
			t.Errorf("rd=%q: landed on %s (%d)", rd, p.url, p.status)
		}
	}
}

func TestOIDCLogout(t *testing.T) {
	op, g := oidcSetup(t, nil)
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice")
	b := newBrowser(t)
	b.get(g.URL() + "/")
	if len(g.sessionsOf(alice.ID)) != 1 {
		t.Fatal("no session after sign-in")
	}
	p := b.get(g.URL() + "/sso/logout")
	// RP-initiated logout at the provider, then back to the configured page.
	if p.url.String() != g.URL()+"/signed-out" || op.EndSessionCalls() != 1 {
		t.Fatalf("after logout at %s, end_session calls %d", p.url, op.EndSessionCalls())
	}
	if n := len(g.sessionsOf(alice.ID)); n != 0 {
		t.Fatalf("%d sessions left after logout", n)
	}
	if evs := g.events(storage.EventSignOut); len(evs) != 1 || evs[0].ResourceID != alice.ID || evs[0].ActorName != "alice@acme.test" {
		t.Errorf("signout events: %+v", evs)
	}
	// A page load now starts a new sign-in.
	b.stopAt("/sso/login")
	resp, err := b.client.Get(g.URL() + "/private")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout the app answered %d", resp.StatusCode)
	}

	t.Run("cross-site GET only asks", func(t *testing.T) {
		b := newBrowser(t)
		b.get(g.URL() + "/")
		req, _ := http.NewRequest(http.MethodGet, g.URL()+"/sso/logout", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		p := b.do(req)
		mustContain(t, "page", p.body, "Sign out?")
		if n := len(g.sessionsOf(alice.ID)); n != 1 {
			t.Fatalf("a cross-site GET ended the session (%d left)", n)
		}
		req, _ = http.NewRequest(http.MethodPost, g.URL()+"/sso/logout", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if p := b.do(req); p.status != http.StatusForbidden {
			t.Fatalf("cross-site POST: %d", p.status)
		}
		if n := len(g.sessionsOf(alice.ID)); n != 1 {
			t.Fatalf("a cross-site POST ended the session (%d left)", n)
		}
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
