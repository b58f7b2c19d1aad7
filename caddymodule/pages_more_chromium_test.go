package caddymodule

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// morePagesCaddyfile has three tenants, each on a site of its own (and
// with its own session cookie, since cookies do not tell ports apart):
//
//   - dir: users come from SCIM only (provisioning scim);
//   - mapped: just-in-time users, who need a mapped group;
//   - down: its OIDC issuer refuses connections.
//
// {ADMIN} admin API, {STORE} store, {ISSUER} devidp, {DIR} {MAPPED} {DOWN}
// the sites' ports, {DEAD} a port nothing listens on, {BACKEND} the app.
const morePagesCaddyfile = `{
	admin {ADMIN}
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger {STORE}
		tenant dir {
			oidc {
				issuer {ISSUER}
				client_id gw-dir
				client_secret {env.PORTCULLIS_TEST_MOREPAGES_SECRET}
			}
			provisioning scim
			session {
				cookie_name dir_session
			}
			roles viewer
			default_role viewer
		}
		tenant mapped {
			oidc {
				issuer {ISSUER}
				client_id gw-mapped
				client_secret {env.PORTCULLIS_TEST_MOREPAGES_SECRET}
			}
			provisioning jit
			session {
				cookie_name mapped_session
			}
			roles viewer
			map_group "Engineering" viewer
			require_mapped_group
		}
		tenant down {
			oidc {
				issuer http://127.0.0.1:{DEAD}
				client_id gw-down
				client_secret {env.PORTCULLIS_TEST_MOREPAGES_SECRET}
			}
			provisioning jit
			session {
				cookie_name down_session
			}
		}
	}
}
:{DIR} {
	handle /scim/v2/dir/* {
		scim dir
	}
	handle /sso/* {
		sso dir
	}
	handle {
		identity dir
		reverse_proxy {BACKEND}
	}
}
:{MAPPED} {
	handle /sso/* {
		sso mapped
	}
	handle {
		identity mapped
		reverse_proxy {BACKEND}
	}
}
:{DOWN} {
	handle /sso/* {
		sso down
	}
	handle {
		identity down
		reverse_proxy {BACKEND}
	}
}
`

// TestChromiumMorePages reaches, in a real headless Chromium through a
// real Caddy, the pages TestChromiumPages does not: not provisioned,
// account deactivated, the sign-out confirmation, no mapped group, an
// IdP's error answer, too many attempts and an unreachable IdP. Each gets
// a screenshot and its words and links checked.
//
// Not reached here: sign_in_required, because every identity route in
// Caddy has its tenant's sign-in to send a browser to (a request that
// accepts text/html is redirected, anything else gets JSON), so the 401
// page only shows for an authz.Gate without a LoginURL (authz's tests);
// server_error, which needs the store to fail under a running gateway.
func TestChromiumMorePages(t *testing.T) {
	execPath := chromiumPath(t)
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "ada", PreferredUsername: "ada", Email: "ada@acme.test", EmailVerified: true,
			Name: "Ada Lovelace", Password: "pw"},
		{Subject: "nobody", PreferredUsername: "nobody", Email: "nobody@acme.test", EmailVerified: true,
			Name: "No Body", Password: "pw"},
		{Subject: "grace", PreferredUsername: "grace", Email: "grace@acme.test", EmailVerified: true,
			Name: "Grace Hopper", Groups: []string{"Marketing"}, Password: "pw"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	const secret = "more-pages-secret"
	t.Setenv("PORTCULLIS_TEST_MOREPAGES_SECRET", secret)
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	ports := map[string]int{}
	sites := map[string]string{}
	for _, name := range []string{"dir", "mapped", "down"} {
		ports[name] = gatewaytest.FreePort(t)
		sites[name] = fmt.Sprintf("http://127.0.0.1:%d", ports[name])
		idp.AddClient("gw-"+name, secret, []string{sites[name] + "/sso/oidc/callback"}, nil)
	}
	backend := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, strings.NewReplacer(
		"{ADMIN}", admin,
		"{STORE}", fmt.Sprintf("%q", filepath.Join(t.TempDir(), "store")),
		"{ISSUER}", idp.Issuer,
		"{DIR}", fmt.Sprint(ports["dir"]),
		"{MAPPED}", fmt.Sprint(ports["mapped"]),
		"{DOWN}", fmt.Sprint(ports["down"]),
		"{DEAD}", fmt.Sprint(gatewaytest.FreePort(t)),
		"{BACKEND}", backend.Addr,
	).Replace(morePagesCaddyfile))

	// The directory pushes Ada (not "nobody") over SCIM.
	dirSite := sites["dir"]
	token := issueToken(t, gateway{admin: admin, site: dirSite}, "dir")
	created := call(t, http.MethodPost, dirSite+"/scim/v2/dir/Users", token, map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    "ada",
		"displayName": "Ada Lovelace",
		"active":      true,
		"emails":      []map[string]any{{"value": "ada@acme.test", "type": "work", "primary": true}},
	})
	expect(t, created, http.StatusCreated, "creating ada over SCIM")
	var ada scimUser
	created.json(t, &ada)

	browser := newPageBrowser(t, execPath, 45*time.Second)

	t.Run("not_provisioned", func(t *testing.T) {
		b := browser.on(t)
		b.nav(dirSite + "/")
		b.signIn("nobody")
		b.page(dirSite, "not_provisioned", "You do not have access",
			[]string{"no account for you is set up", "No Body", "nobody@acme.test", "403", "reference"},
			map[string]string{"back": "/", "switch-user": "/sso/logout"})
	})

	t.Run("account_inactive", func(t *testing.T) {
		b := browser.on(t)
		b.nav(dirSite + "/home")
		b.signIn("ada")
		b.settle("signed in", dirSite)
		if text, err := b.text("pre"); err != nil || !strings.Contains(text, `"/home"`) {
			t.Fatalf("ada did not reach the app: %q (%v)", text, err)
		}
		// The directory deactivates her; her next page load is refused.
		expect(t, call(t, http.MethodPatch, dirSite+"/scim/v2/dir/Users/"+ada.ID, token, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}},
		}), http.StatusOK, "deactivating ada")
		// The deactivation ended her session: the reload asks her to sign
		// in again, and the sign-in is refused.
		b.nav(dirSite + "/home")
		b.signIn("ada")
		b.page(dirSite, "account_inactive", "Your account is deactivated",
			[]string{"deactivated in your organisation's directory", "Ada Lovelace", "ada@acme.test", "403", "reference"},
			map[string]string{"back": "/", "switch-user": "/sso/logout"})
	})

	t.Run("confirm_sign_out", func(t *testing.T) {
		b := browser.on(t)
		// A page of another site (localhost is not 127.0.0.1) links to the
		// sign-out: the browser marks the request cross-site and the
		// gateway asks first.
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!DOCTYPE html><title>elsewhere</title><a id="out" href="%s/sso/logout">sign out</a>`, dirSite)
		}))
		t.Cleanup(other.Close)
		u, err := url.Parse(other.URL)
		if err != nil {
			t.Fatal(err)
		}
		b.nav("http://localhost:" + u.Port() + "/")
		b.click("#out")
		b.page(dirSite, "confirm_sign_out", "Sign out?", []string{"Do you want to sign out"},
			map[string]string{"back": "/"})
		if loc := b.location(); loc != dirSite+"/sso/logout" {
			t.Errorf("confirmation at %s, want %s/sso/logout", loc, dirSite)
		}
		// The button posts the sign-out from the gateway's own page.
		b.click(`form[action="/sso/logout"] button`)
		b.page(dirSite, "confirm_sign_out_done", "You are signed out", []string{"signed out of this application"},
			map[string]string{"sign-in": "/sso/login"})
	})

	mappedSite := sites["mapped"]
	t.Run("no_mapped_group", func(t *testing.T) {
		b := browser.on(t)
		b.nav(mappedSite + "/")
		b.signIn("grace")
		b.page(mappedSite, "no_mapped_group", "You have no access",
			[]string{"none of the groups", "Grace Hopper", "grace@acme.test", "403", "reference"},
			map[string]string{"switch-user": "/sso/login?rd=%2F"})
	})

	t.Run("idp_error", func(t *testing.T) {
		b := browser.on(t)
		// A real sign-in starts; the IdP answers the callback with an
		// error instead of a code (a person who declined consent).
		// The state is in the authorization request the gateway sends
		// the browser to (devidp's form does not show it).
		var mu sync.Mutex
		var authorize string
		err := chromedp.Listen(b.ctx, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(e.Request.URL, idp.Issuer+"/") {
				if u, err := url.Parse(e.Request.URL); err == nil && u.Query().Get("state") != "" {
					mu.Lock()
					authorize = e.Request.URL
					mu.Unlock()
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		b.nav(mappedSite + "/reports")
		if loc := b.location(); !strings.HasPrefix(loc, idp.Issuer) {
			t.Fatalf("sign-in went to %s, want the IdP", loc)
		}
		mu.Lock()
		login, err := url.Parse(authorize)
		mu.Unlock()
		state := login.Query().Get("state")
		if err != nil || state == "" {
			t.Fatalf("no state in the authorization request %q (%v)", authorize, err)
		}
		b.nav(mappedSite + "/sso/oidc/callback?error=access_denied&error_description=declined&state=" + url.QueryEscape(state))
		b.page(mappedSite, "idp_error", "Sign-in was not completed",
			[]string{"did not complete the sign-in", "400"},
			map[string]string{"sign-in": "/sso/login?rd=%2F", "back": "/"})
	})

	t.Run("too_many_attempts", func(t *testing.T) {
		b := browser.on(t)
		// Garbage callbacks from this address until the gateway says 429
		// (a burst of 10 refusals), then a person on the same address.
		stale := mappedSite + "/sso/oidc/callback?state=stale&code=stale"
		var a answer
		for range 30 {
			if a = call(t, http.MethodGet, stale, "", nil); a.status == http.StatusTooManyRequests {
				break
			}
		}
		expect(t, a, http.StatusTooManyRequests, "refused sign-ins")
		if a.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		b.nav(stale)
		b.page(mappedSite, "too_many_attempts", "Too many sign-in attempts",
			[]string{"Too many sign-in attempts", "Wait a minute", "429"},
			map[string]string{"back": "/"})
	})

	downSite := sites["down"]
	t.Run("idp_unreachable", func(t *testing.T) {
		b := browser.on(t)
		a := call(t, http.MethodGet, downSite+"/sso/login?rd=%2F", "", nil)
		expect(t, a, http.StatusServiceUnavailable, "sign-in at an unreachable IdP")
		if a.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		// A person opens the app: sent to sign in, which cannot start.
		b.nav(downSite + "/reports")
		b.page(downSite, "idp_unreachable", "Sign-in is unavailable",
			[]string{"cannot be reached", "503"},
			map[string]string{"sign-in": "/sso/login?rd=%2Freports", "back": "/"})
	})
}
