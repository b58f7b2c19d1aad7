package caddymodule

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// handleErrorsCaddyfile is one tenant on two sites: {STYLED} styles every
// error with handle_errors and the Portcullis placeholders, {ONLY404}
// handles 404s only. {STORE} store, {ISSUER} devidp, {BACKEND} the app.
const handleErrorsCaddyfile = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger {STORE}
		tenant acme {
			oidc {
				issuer {ISSUER}
				client_id gw
				client_secret {env.PORTCULLIS_TEST_HANDLE_ERRORS_SECRET}
			}
			provisioning jit
			roles viewer admin
			default_role viewer
		}
	}
}
(routes) {
	handle /sso/* {
		sso acme
	}
	handle /admin/* {
		identity acme {
			require admin
		}
		reverse_proxy {BACKEND}
	}
	handle {
		identity acme {
			require viewer
		}
		reverse_proxy {BACKEND}
	}
}
:{STYLED} {
	handle_errors {
		respond "custom {http.error.status_code} {portcullis.error.code} {portcullis.error.required_role} {portcullis.user.name} ref={portcullis.error.event_id}"
	}
	import routes
}
:{ONLY404} {
	handle_errors 404 {
		respond "not here: {portcullis.error.code}"
	}
	import routes
}
`

// TestHandleErrors: the refusals of identity and sso go through a real
// Caddy's handle_errors, with the placeholders filled in; a site whose
// handle_errors does not take the status still gets the gateway's page,
// and the sign-in redirect stays a redirect.
func TestHandleErrors(t *testing.T) {
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "vic", PreferredUsername: "vic", Email: "vic@acme.test", EmailVerified: true, Name: "Vic Viewer"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	styledPort, onlyPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	styled := fmt.Sprintf("http://127.0.0.1:%d", styledPort)
	only404 := fmt.Sprintf("http://127.0.0.1:%d", onlyPort)
	idp.AddClient("gw", "handle-errors-secret", []string{styled + "/sso/oidc/callback"}, nil)
	t.Setenv("PORTCULLIS_TEST_HANDLE_ERRORS_SECRET", "handle-errors-secret")
	backend := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, strings.NewReplacer(
		"{STORE}", fmt.Sprintf("%q", filepath.Join(t.TempDir(), "store")),
		"{ISSUER}", idp.Issuer,
		"{STYLED}", fmt.Sprint(styledPort),
		"{ONLY404}", fmt.Sprint(onlyPort),
		"{BACKEND}", backend.Addr,
	).Replace(handleErrorsCaddyfile))

	// Vic signs in (the devidp signs him in without a form); cookies do
	// not tell ports apart, so his session works on both sites.
	idp.AutoLogin("vic")
	b := gatewaytest.NewBrowser(t)
	if p := b.Get(styled + "/home"); p.Status != http.StatusOK {
		t.Fatalf("signing in: %d\n%s", p.Status, p.Body)
	}
	b.StopRedirects()
	anon := gatewaytest.NewBrowser(t)
	anon.StopRedirects()

	ref := `[0-9a-f]{32}`
	tests := []struct {
		name     string
		browser  *gatewaytest.Browser
		url      string
		status   int
		body     string // a regexp the whole body must match; placeholders with nothing to say are empty
		location string // the Location header's prefix
	}{
		{"signed-in viewer on a require admin route", b, styled + "/admin/settings", http.StatusForbidden,
			`custom 403 forbidden admin vic ref=` + ref, ""},
		{"a path the app could read as another", b, styled + "/files;x=1/report", http.StatusBadRequest,
			`custom 400 bad_path   ref=` + ref, ""},
		{"sso: a stale callback", anon, styled + "/sso/oidc/callback?state=stale&code=stale", http.StatusBadRequest,
			`custom 400 sign_in_failed   ref=` + ref, ""},
		{"sso: an unknown path", anon, styled + "/sso/nope", http.StatusNotFound,
			`custom 404 not_found   ref=`, ""},
		{"anonymous: the sign-in redirect stays a redirect", anon, styled + "/admin/settings", http.StatusFound,
			`(?s).*Found.*`, "/sso/login?rd=%2Fadmin%2Fsettings"},
		{"handle_errors 404 only: a 403 gets the gateway's page", b, only404 + "/admin/settings", http.StatusForbidden,
			`(?s)<!DOCTYPE html>.*Access denied.*Vic Viewer.*`, ""},
		{"handle_errors 404 only: a 404 goes to it", anon, only404 + "/sso/nope", http.StatusNotFound,
			`not here: not_found`, ""},
		{"handle_errors 404 only: the sign-in redirect", anon, only404 + "/", http.StatusFound,
			`(?s).*Found.*`, "/sso/login?rd=%2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.browser.Get(tt.url)
			if p.Status != tt.status {
				t.Fatalf("status %d, want %d\n%s", p.Status, tt.status, p.Body)
			}
			if !regexp.MustCompile(`\A` + tt.body + `\z`).MatchString(p.Body) {
				t.Errorf("body %q, want %s", p.Body, tt.body)
			}
			if loc := p.Header.Get("Location"); !strings.HasPrefix(loc, tt.location) || (tt.location == "") != (loc == "") {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
		})
	}
}
