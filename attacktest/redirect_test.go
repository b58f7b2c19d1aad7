package attacktest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// browserResolve resolves a Location header against the page it came from
// the way a browser's URL parser does (WHATWG URL): surrounding spaces and
// control characters are dropped, tabs and newlines anywhere are removed,
// and "\" counts as "/" in http(s) URLs. A Location that Go's parser
// refuses is returned as an error: the test cannot tell where a browser
// would go, so it is a failure too.
func browserResolve(base *url.URL, location string) (*url.URL, error) {
	s := strings.TrimFunc(location, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	scheme, _, hasScheme := strings.Cut(s, ":")
	if !hasScheme || strings.ContainsAny(scheme, "/\\?#") || strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https") {
		s = strings.ReplaceAll(s, "\\", "/")
	}
	ref, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(ref), nil
}

// browse navigates b to start and on, as a person's browser would: it
// follows redirects, signs in at an IdP's login form with login (the
// SAML IdP's form: user, password), and submits auto-post forms. Every
// redirect and form target must stay on one of the allowed hosts
// (host:port); the last page is returned.
func browse(t *testing.T, b *gatewaytest.Browser, start string, allowed []string, login map[string]string) gatewaytest.Page {
	t.Helper()
	b.StopRedirects()
	defer b.FollowRedirects()
	onAllowedHost := func(u *url.URL, what string) bool {
		for _, h := range allowed {
			if u.Scheme == "http" && u.Host == h {
				return true
			}
		}
		t.Errorf("%s leaves the allowed sites %v: %s", what, allowed, u)
		return false
	}
	p := b.Get(start)
	for hop := 0; hop < 20; hop++ {
		if p.Status >= 300 && p.Status < 400 {
			loc := p.Header.Get("Location")
			next, err := browserResolve(p.URL, loc)
			if err != nil {
				t.Errorf("redirect from %s to %q, which a browser would read in its own way: %v", p.URL, loc, err)
				return p
			}
			if !onAllowedHost(next, "redirect from "+p.URL.String()+" (Location "+loc+")") {
				return p
			}
			p = b.Get(next.String())
			continue
		}
		f, ok := gatewaytest.FirstForm(p.Body)
		if p.Status != http.StatusOK || !ok {
			return p
		}
		target, err := p.URL.Parse(f.Action)
		if err != nil {
			t.Errorf("form action %q on %s: %v", f.Action, p.URL, err)
			return p
		}
		switch {
		case strings.Contains(p.Body, `name="password"`):
			// A login form (samlidp's carries the SAMLRequest along).
			if login == nil {
				return p
			}
			if !onAllowedHost(target, "login form on "+p.URL.String()) {
				return p
			}
			p = b.SubmitForm(p, login)
			login = nil // once: a second form means the sign-in failed
		case f.Values.Get("SAMLResponse") != "" || f.Values.Get("SAMLRequest") != "":
			if !onAllowedHost(target, "auto-post form on "+p.URL.String()) {
				return p
			}
			p = b.SubmitForm(p, nil)
		default:
			return p
		}
	}
	t.Fatalf("more than 20 hops from %s", start)
	return p
}

func hostOf(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Host
}

// returnPathCases are /login?<query> sign-ins and the path they must come
// back to ("/" for everything that is not a same-origin path).
var returnPathCases = []struct {
	name, query, want string
}{
	{"absolute URL", "rd=" + url.QueryEscape("https://evil.example/"), "/"},
	{"scheme-relative", "rd=" + url.QueryEscape("//evil.example"), "/"},
	{"scheme-relative with path", "rd=" + url.QueryEscape("//evil.example/x?y=1"), "/"},
	{"three slashes", "rd=" + url.QueryEscape("///evil.example"), "/"},
	{"backslash", "rd=" + url.QueryEscape(`/\evil.example`), "/"},
	{"backslashes only", "rd=" + url.QueryEscape(`\\evil.example`), "/"},
	{"encoded backslash", "rd=" + url.QueryEscape("/%5Cevil.example"), "/"},
	{"encoded backslash, twice", "rd=" + url.QueryEscape("/%255Cevil.example"), "/"},
	{"encoded slashes, once", "rd=%2F%2Fevil.example", "/"},
	{"encoded slashes, in the value", "rd=" + url.QueryEscape("%2F%2Fevil.example"), "/"},
	{"encoded slash after slash", "rd=" + url.QueryEscape("/%2Fevil.example"), "/"},
	{"encoded tab", "rd=" + url.QueryEscape("/%09/evil.example"), "/"},
	{"tab", "rd=" + url.QueryEscape("/\t/evil.example"), "/"},
	{"newline", "rd=" + url.QueryEscape("/\n/evil.example"), "/"},
	{"javascript", "rd=" + url.QueryEscape("javascript:alert(1)"), "/"},
	{"javascript behind a slash", "rd=" + url.QueryEscape("/javascript:alert(1)"), "/javascript:alert(1)"},
	{"http: without slashes", "rd=" + url.QueryEscape("http:evil.example"), "/"},
	{"https: with one slash", "rd=" + url.QueryEscape("https:/evil.example"), "/"},
	{"leading space", "rd=" + url.QueryEscape(" //evil.example"), "/"},
	{"userinfo-looking path", "rd=" + url.QueryEscape("/@evil.example"), "/@evil.example"},
	{"very long", "rd=" + url.QueryEscape("/"+strings.Repeat("a", 10000)), "/"},
	{"very long, scheme-relative", "rd=" + url.QueryEscape("//evil.example/"+strings.Repeat("a", 10000)), "/"},
	{"two rd, the first foreign", "rd=" + url.QueryEscape("//evil.example") + "&rd=" + url.QueryEscape("/ok"), "/"},
	{"no rd", "", "/"},
	// Controls: a same-origin path comes back as it was.
	{"local path", "rd=" + url.QueryEscape("/reports/q?id=7&x=a%20b"), "/reports/q?id=7&x=a%20b"},
	{"local path with encoded slash", "rd=" + url.QueryEscape("/files/a%2Fb"), "/files/a%2Fb"},
}

// TestOpenRedirect signs in from /sso/login with hostile return paths and
// from protected URLs whose path looks like another origin, through the
// real IdPs: the browser always lands on a same-origin path of the
// gateway, never off-site. Sign-out is never a way off-site either.
func TestOpenRedirect(t *testing.T) {
	g := startGateway(t)
	acmeHosts := []string{hostOf(t, g.acme), hostOf(t, g.oidc.Issuer)}
	globexHosts := []string{hostOf(t, g.globex), hostOf(t, g.saml.MetadataURL())}
	g.oidc.AutoLogin("alice")

	t.Run("OIDC sign-in return path", func(t *testing.T) {
		for _, tc := range returnPathCases {
			t.Run(tc.name, func(t *testing.T) {
				b := gatewaytest.NewBrowser(t)
				p := browse(t, b, g.acme+"/sso/login?"+tc.query, acmeHosts, nil)
				if p.Status != http.StatusOK || p.URL.String() != g.acme+tc.want {
					t.Fatalf("landed on %s (%d), want %s\n%.500s", p.URL, p.Status, g.acme+tc.want, p.Body)
				}
				gatewaytest.ParseEcho(t, p.Body)
			})
		}
	})

	t.Run("SAML sign-in return path", func(t *testing.T) {
		for _, tc := range returnPathCases {
			switch tc.name {
			case "absolute URL", "scheme-relative", "backslash", "encoded slashes, once", "encoded tab", "javascript", "local path":
			default:
				continue // the OIDC cases cover the parsing; these the SAML flow
			}
			t.Run(tc.name, func(t *testing.T) {
				b := gatewaytest.NewBrowser(t)
				p := browse(t, b, g.globex+"/sso/login?"+tc.query, globexHosts, map[string]string{"user": ginaUser, "password": ginaPass})
				if p.Status != http.StatusOK || p.URL.String() != g.globex+tc.want {
					t.Fatalf("landed on %s (%d), want %s\n%.500s", p.URL, p.Status, g.globex+tc.want, p.Body)
				}
				gatewaytest.ParseEcho(t, p.Body)
			})
		}
	})

	t.Run("protected URL that looks like another origin", func(t *testing.T) {
		// Request targets net/http's client would not send as they are.
		for _, target := range []string{
			"//evil.example/x",
			"///evil.example/x",
			`/\evil.example/x`,
			"/%5Cevil.example/x",
			"/%2F%2Fevil.example/x",
			"/%2F/evil.example/x",
			"/%09/evil.example/x",
			"/%252F%252Fevil.example/x",
			"//evil.example/%2E%2E/x",
		} {
			t.Run(target, func(t *testing.T) {
				a := rawRequest(t, g.acme, "GET "+target+" HTTP/1.1\nHost: "+hostOf(t, g.acme)+
					"\nAccept: text/html\nConnection: close\n\n")
				if a.status/100 == 4 && a.status != http.StatusUnauthorized {
					t.Logf("refused with %d", a.status)
					return
				}
				if a.status != http.StatusFound {
					t.Fatalf("%d, want a redirect to sign in\n%s", a.status, a.body)
				}
				loc := a.header.Get("Location")
				page, _ := url.Parse(g.acme + "/")
				next, err := browserResolve(page, loc)
				if err != nil || next.Host != hostOf(t, g.acme) || next.Path != "/sso/login" {
					t.Fatalf("Location %q: %v %v", loc, next, err)
				}
				// The return path it carries is this site's.
				rd := next.Query().Get("rd")
				back, err := browserResolve(page, rd)
				if err != nil || back.Host != hostOf(t, g.acme) {
					t.Fatalf("return path %q resolves to %v (%v)", rd, back, err)
				}
				p := browse(t, gatewaytest.NewBrowser(t), next.String(), acmeHosts, nil)
				if p.Status != http.StatusOK || p.URL.Host != hostOf(t, g.acme) {
					t.Fatalf("landed on %s (%d)", p.URL, p.Status)
				}
				t.Logf("Location %s, landed on %s", loc, p.URL)
			})
		}
	})

	t.Run("sign-out", func(t *testing.T) {
		hostile := url.Values{}
		for _, name := range []string{"rd", "redirect", "redirect_uri", "return", "return_to", "returnTo", "next", "url", "continue", "post_logout_redirect_uri", "RelayState", "target"} {
			hostile.Set(name, "https://evil.example/")
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			// Signed in with OIDC: the gateway sends the browser to the
			// provider's end_session endpoint, which comes back to the
			// registered post_logout_redirect, never to evil.example.
			b := g.signInOIDC(t, "alice")
			old := b.Cookie(g.acme, sessionCookie)
			g.oidc.AutoLogin("") // stop at the provider's form when the landing page asks to sign in again
			u := g.acme + "/sso/logout?" + hostile.Encode()
			var p gatewaytest.Page
			if method == http.MethodGet {
				p = browse(t, b, u, acmeHosts, nil)
			} else {
				b.StopRedirects()
				req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(hostile.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", g.acme)
				p = b.Do(req)
				b.FollowRedirects()
				if p.Status/100 == 3 {
					p = browse(t, b, mustResolve(t, p.URL, p.Header.Get("Location")), acmeHosts, nil)
				}
			}
			t.Logf("%s sign-out landed on %s (%d)", method, p.URL, p.Status)
			if a := get(t, g.acme+"/app", old); a.status != http.StatusUnauthorized {
				t.Errorf("%s sign-out: the old session still gets %d", method, a.status)
			}
			g.oidc.AutoLogin("alice")
		}
		// Not signed in: a page, no redirect anywhere.
		p := browse(t, gatewaytest.NewBrowser(t), g.acme+"/sso/logout?"+hostile.Encode(), acmeHosts, nil)
		if p.URL.Host != hostOf(t, g.acme) {
			t.Errorf("sign-out without a session landed on %s", p.URL)
		}

		// Signed in with SAML: Single Logout at the IdP and back, never
		// to evil.example.
		b := g.signInSAML(t, ginaUser, ginaPass)
		p = browse(t, b, g.globex+"/sso/logout?"+hostile.Encode(), globexHosts, nil)
		t.Logf("SAML sign-out landed on %s (%d)", p.URL, p.Status)
	})
}

func mustResolve(t *testing.T, base *url.URL, loc string) string {
	t.Helper()
	u, err := browserResolve(base, loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}
