package sso

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
)

func TestOwnsCookie(t *testing.T) {
	for _, base := range []string{DefaultCookieName, "acme"} {
		svc := &Service{cfg: TenantConfig{Session: SessionConfig{CookieName: base}}}
		for _, tc := range []struct {
			name string
			want bool
		}{
			{base, true},
			{"__Host-" + base, true},
			{base + "_flow_0123456789ab", true},
			{"__Host-" + base + "_flow_0123456789ab", true},
			{base + "_flow_", true},
			{base + "X", false},
			{base + "_flowX", false},
			{base + "_session", false},
			{"__Secure-" + base, false},
			{"__host-" + base, false},
			{"__Host-__Host-" + base, false},
			{"x" + base, false},
			{"other", false},
			{"__Host-", false},
			{"", false},
		} {
			if got := svc.OwnsCookie(tc.name); got != tc.want {
				t.Errorf("base %q: OwnsCookie(%q) = %v, want %v", base, tc.name, got, tc.want)
			}
		}
		names := []string{"__Host-" + base + "_flow_0123456789ab", "other_cookie", base, "__Host-" + base}
		if a := testing.AllocsPerRun(100, func() {
			for _, n := range names {
				svc.OwnsCookie(n)
			}
		}); a != 0 {
			t.Errorf("OwnsCookie allocates %v times", a)
		}
	}
	// An operator's own __Host- name is owned as configured.
	svc := &Service{cfg: TenantConfig{Session: SessionConfig{CookieName: "__Host-gw"}}}
	for name, want := range map[string]bool{"__Host-gw": true, "__Host-gw_flow_ab": true, "gw": false} {
		if svc.OwnsCookie(name) != want {
			t.Errorf("__Host-gw: OwnsCookie(%q) != %v", name, want)
		}
	}
}

var flowCookieRE = regexp.MustCompile(`^__Host-portcullis_session_flow_[0-9a-f]{12}$`)

// checkHTTPSFlowCookie checks a flow cookie set on HTTPS: __Host-, Secure,
// Path=/, no Domain, HttpOnly, and owned by the gateway.
func checkHTTPSFlowCookie(t *testing.T, svc *Service, c *http.Cookie, sameSite http.SameSite) {
	t.Helper()
	if !flowCookieRE.MatchString(c.Name) || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != sameSite || c.MaxAge != int(flowTTL.Seconds()) {
		t.Errorf("flow cookie on HTTPS: %s", c)
	}
	if !svc.OwnsCookie(c.Name) {
		t.Errorf("OwnsCookie(%q) is false", c.Name)
	}
}

// TestCookiesBehindTLSTerminator: with an https external URL, TLS ends in
// front of the gateway (here: plain httptest), yet every cookie is Secure
// and __Host- prefixed, and a flow cookie planted under the unprefixed name
// (what a sibling subdomain or a plain-HTTP response could set) is not
// taken.
func TestCookiesBehindTLSTerminator(t *testing.T) {
	op, err := devidp.Start(devidp.Config{Users: oidcUsers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	g := newGateway(t)
	external := "https://" + mustURL(g.URL()).Host
	op.AddClient(testClientID, testClientSecret, []string{external + "/sso" + PathOIDCCallback}, nil)
	g.start(TenantConfig{ExternalURL: external, OIDC: &OIDCConfig{Issuer: op.Issuer, ClientID: testClientID, ClientSecret: testClientSecret}})
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice")

	// client is a browser behind the terminator, driven by hand: it follows
	// redirects up to the gateway's https URL, which the test then sends to
	// the gateway in plain HTTP, as the terminator would.
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme == "https" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	begin := func() (*http.Cookie, *url.URL) {
		resp, err := noFollow.Get(g.URL() + "/sso/login?rd=/after")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(resp.Cookies()) != 1 {
			t.Fatalf("start set cookies %v", resp.Cookies())
		}
		flow := resp.Cookies()[0]
		checkHTTPSFlowCookie(t, g.service(), flow, http.SameSiteLaxMode)
		resp, err = client.Get(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb, err := resp.Location()
		if err != nil || !strings.HasPrefix(cb.String(), external+"/sso"+PathOIDCCallback) {
			t.Fatalf("the provider sent the browser to %v (%v)", cb, err)
		}
		cb.Scheme, cb.Host = "http", mustURL(g.URL()).Host
		return flow, cb
	}

	t.Run("sign-in", func(t *testing.T) {
		flow, cb := begin()
		req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
		req.AddCookie(&http.Cookie{Name: flow.Name, Value: flow.Value})
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after" {
			t.Fatalf("callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			switch {
			case c.Name == "__Host-"+DefaultCookieName:
				session = c
			case c.Name == flow.Name:
				if c.MaxAge >= 0 || c.Path != "/" || !c.Secure {
					t.Errorf("flow cookie not cleared as set: %s", c)
				}
			default:
				t.Errorf("unexpected cookie %s", c)
			}
		}
		if session == nil || !session.Secure || session.Path != "/" || session.Domain != "" || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie: %v", session)
		}
		r := httptest.NewRequest(http.MethodGet, g.URL()+"/app", nil)
		r.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		if _, u, err := g.service().Lookup(r); err != nil || u.ID != alice.ID {
			t.Fatalf("Lookup: %v %v", u, err)
		}
		// The unprefixed name is not the session cookie on HTTPS.
		r = httptest.NewRequest(http.MethodGet, g.URL()+"/app", nil)
		r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: session.Value})
		if _, _, err := g.service().Lookup(r); err != ErrNoSession {
			t.Fatalf("Lookup with the unprefixed name: %v", err)
		}
	})
	t.Run("planted unprefixed flow cookie", func(t *testing.T) {
		g.nextRefusalWindow()
		flow, cb := begin()
		req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
		req.AddCookie(&http.Cookie{Name: strings.TrimPrefix(flow.Name, "__Host-"), Value: flow.Value})
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("callback with a planted cookie: %d", resp.StatusCode)
		}
		mustContain(t, "reason", g.lastRefusal(), "did not send the sign-in cookie")
	})
}

// TestSAMLFlowCookieBehindTLSTerminator: the SAML flow cookie must come
// back with the IdP's cross-site POST, so on HTTPS it is SameSite=None
// (and Secure, __Host-).
func TestSAMLFlowCookieBehindTLSTerminator(t *testing.T) {
	idp := startSAMLIdPWithUsers(t)
	g := newGateway(t)
	external := "https://" + mustURL(g.URL()).Host
	g.start(TenantConfig{ExternalURL: external, SAML: &SAMLConfig{IDPMetadataURL: idp.metadataURL(), EntityID: external + "/sso/saml/metadata"}})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(g.URL() + "/sso/login?rd=/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || len(resp.Cookies()) != 1 {
		t.Fatalf("start: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	checkHTTPSFlowCookie(t, g.service(), resp.Cookies()[0], http.SameSiteNoneMode)
}

// TestSignInOverTLS: the gateway terminates TLS itself; OIDC and SAML
// sign-ins work end to end with __Host- cookies.
func TestSignInOverTLS(t *testing.T) {
	t.Run("oidc", func(t *testing.T) {
		op, err := devidp.Start(devidp.Config{Users: oidcUsers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.Close)
		g := newTLSGateway(t)
		op.AddClient(testClientID, testClientSecret, []string{g.URL() + "/sso" + PathOIDCCallback}, nil)
		g.start(TenantConfig{OIDC: &OIDCConfig{Issuer: op.Issuer, ClientID: testClientID, ClientSecret: testClientSecret}})
		g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
		op.AutoLogin("sub-alice")
		b := newBrowserFor(t, g)
		p := b.get(g.URL() + "/reports?q=1")
		mustContain(t, "page", p.body, "app page /reports?q=1 for alice@acme.test")
		checkTLSCookies(t, g, b, http.SameSiteLaxMode)
	})
	t.Run("saml", func(t *testing.T) {
		idp := startSAMLIdPWithUsers(t)
		g := newTLSGateway(t)
		g.start(TenantConfig{SAML: &SAMLConfig{IDPMetadataURL: idp.metadataURL(), EntityID: g.URL() + "/sso/saml/metadata"}})
		idp.registerSPWith(g.server.Client(), g.URL()+"/sso"+PathSAMLMetadata)
		g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
		b := newBrowserFor(t, g)
		_, p := samlSignIn(t, b, g, "alice", "alice-pw", "/wiki")
		mustContain(t, "page", p.body, "app page /wiki for alice@acme.test")
		checkTLSCookies(t, g, b, http.SameSiteNoneMode)
	})
}

func checkTLSCookies(t *testing.T, g *gateway, b *browser, flowSameSite http.SameSite) {
	t.Helper()
	sawFlow, sawSession := false, false
	for _, c := range b.setCookies() {
		switch {
		case !strings.Contains(c.Name, DefaultCookieName): // the IdP's
		case strings.Contains(c.Name, "_flow_") && c.MaxAge > 0:
			sawFlow = true
			checkHTTPSFlowCookie(t, g.service(), c, flowSameSite)
		case c.Name == "__Host-"+DefaultCookieName && c.Value != "":
			sawSession = true
			if !c.Secure || c.Path != "/" || c.Domain != "" {
				t.Errorf("session cookie: %s", c)
			}
		case c.MaxAge < 0:
		default:
			t.Errorf("unexpected cookie %s", c)
		}
	}
	if !sawFlow || !sawSession {
		t.Errorf("flow cookie set: %v, session cookie set: %v", sawFlow, sawSession)
	}
}
