package caddymodule

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// pagesCaddyfile: tenant acme signs in at an OIDC provider (JIT, only
// acme.test addresses), /admin/* requires admin, the rest viewer; sign-out
// at the IdP comes back to the signed-out page. %[1]s store, %[2]s issuer,
// %[3]d port, %[4]s backend.
const pagesCaddyfile = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %[1]q
		tenant acme {
			oidc {
				issuer %[2]s
				client_id gw
				client_secret {env.PORTCULLIS_TEST_PAGES_SECRET}
				post_logout_redirect http://127.0.0.1:%[3]d/sso/signed-out
			}
			provisioning jit
			allowed_domains acme.test
			roles viewer editor admin
			map_group "Engineering" editor
			default_role viewer
		}
	}
}
:%[3]d {
	handle /sso/* {
		sso acme
	}
	handle /admin/* {
		identity acme {
			require admin
		}
		reverse_proxy %[4]s
	}
	handle {
		identity acme {
			require viewer
		}
		reverse_proxy %[4]s
	}
}
`

// TestChromiumPages reaches the gateway's pages in a real headless
// Chromium the way a person does, takes a screenshot of each into the
// test's temp dir, and checks the words and links.
func TestChromiumPages(t *testing.T) {
	execPath := chromiumPath(t)
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "ada", PreferredUsername: "ada", Email: "ada@acme.test", EmailVerified: true,
			Name: "Ada Lovelace", Groups: []string{"Engineering"}, Password: "pw"},
		{Subject: "eve", PreferredUsername: "eve", Email: "eve@elsewhere.test", EmailVerified: true,
			Name: "Eve Outsider", Password: "pw"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	port := gatewaytest.FreePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp.AddClient("gw", "pages-secret", []string{site + "/sso/oidc/callback"}, []string{site + "/sso/signed-out"})
	t.Setenv("PORTCULLIS_TEST_PAGES_SECRET", "pages-secret")
	backend := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, fmt.Sprintf(pagesCaddyfile, filepath.Join(t.TempDir(), "store"), idp.Issuer, port, backend.Addr))

	b := newPageBrowser(t, execPath, 60*time.Second)
	nav, signIn := b.nav, b.signIn
	page := func(name, h1 string, words []string, links map[string]string) {
		t.Helper()
		b.page(site, name, h1, words, links)
	}

	// A stale sign-in link (a bookmarked or reloaded callback).
	nav(site + "/sso/oidc/callback?state=stale&code=stale")
	page("sign_in_expired", "Sign-in expired", []string{"already used", "400", "reference"},
		map[string]string{"sign-in": "/sso/login?rd=%2F", "back": "/"})

	// An unknown path under the sign-in prefix.
	nav(site + "/sso/nope")
	page("not_found", "Page not found", []string{"no sign-in page"}, map[string]string{"back": "/"})

	// A path the application could read as another page.
	nav(site + "/files;x=1/report")
	page("bad_request", "Bad request", []string{"path parameter", "reference"}, map[string]string{"back": "/"})

	// Ada signs in and opens an admin page: access denied, naming her,
	// the role, and the audit event.
	nav(site + "/admin/settings")
	signIn("ada")
	page("access_denied", "Access denied", []string{"Ada Lovelace", "ada@acme.test", "admin", "editor", "reference"},
		map[string]string{"back": "/", "switch-user": "/sso/logout"})
	if ref, err := b.text("#reference"); err != nil || len(ref) != 32 {
		t.Errorf("access denied: reference %q (%v), want the audit event id", ref, err)
	}

	// "Sign in as someone else": the gateway and the IdP sign her out and
	// she lands on the signed-out page, not on the IdP's form.
	b.click("#switch-user")
	page("signed_out", "You are signed out", []string{"signed out of this application"},
		map[string]string{"sign-in": "/sso/login"})
	if loc := b.location(); loc != site+"/sso/signed-out" {
		t.Errorf("signed out at %q, want %s/sso/signed-out", loc, site)
	}

	// Eve, from another domain, signs in: refused, naming her.
	nav(site + "/")
	signIn("eve")
	page("domain_not_allowed", "Your account is not allowed here", []string{"eve@elsewhere.test", "allowed email domains"},
		map[string]string{"back": "/", "switch-user": "/sso/logout"})
}
