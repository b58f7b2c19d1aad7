package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

var updateAdaptGolden = flag.Bool("update-adapt", false, "rewrite testdata/layout_*.json from the Caddyfiles' adaptation")

// layouts are the ways of writing one site that must behave the same: the
// handle blocks of the README, the flat list with matchers (in an order of
// its own), and the flat list without matchers. Each is
// testdata/layout_<name>.caddyfile.
var layouts = []string{"handle", "flat", "bare", "mixed"}

func readLayout(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "layout_"+name+".caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestLayoutAdaptation compares each layout's Caddyfile → JSON adaptation
// with its golden file (go test -run TestLayoutAdaptation -update-adapt
// rewrites them). The JSON shows where Caddy put each handler: a change in
// directive order shows up here as a diff to review.
func TestLayoutAdaptation(t *testing.T) {
	for _, name := range layouts {
		t.Run(name, func(t *testing.T) {
			raw, err := gatewaytest.AdaptErr(readLayout(t, name))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, raw, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got.WriteString("\n")
			golden := filepath.Join("testdata", "layout_"+name+".json")
			if *updateAdaptGolden {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-adapt to write it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s adapts to\n%s\nwant (%s)\n%s", name, got.Bytes(), golden, want)
			}
		})
	}
}

// TestLayoutsBehaveAlike runs every layout through a real Caddy with a real
// OIDC provider and backend, makes the same requests of each, and expects
// the same answers: SCIM works and is never asked to sign in, sign-in
// works and is never guarded by identity, every other page (another
// tenant's SCIM path included) needs a signed-in viewer.
func TestLayoutsBehaveAlike(t *testing.T) {
	transcripts := make(map[string][]string)
	for _, name := range layouts {
		t.Run(name, func(t *testing.T) {
			transcripts[name] = runLayout(t, readLayout(t, name))
		})
	}
	want := transcripts[layouts[0]]
	for _, name := range layouts[1:] {
		if got := transcripts[name]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("layout %s answers\n%s\nlayout %s answers\n%s", name, strings.Join(got, "\n"), layouts[0], strings.Join(want, "\n"))
		}
	}
}

// runLayout runs one layout and returns what it answered, one line a step,
// each step already checked.
func runLayout(t *testing.T, caddyfile string) []string {
	t.Helper()
	port := gatewaytest.FreePort(t)
	g := gateway{
		admin: fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)),
		site:  fmt.Sprintf("http://127.0.0.1:%d", port),
	}
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@acme.test", Email: "alice@acme.test", EmailVerified: true, Name: "Alice"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	idp.AddClient("portcullis-acme", "layout-secret", []string{g.site + "/sso/oidc/callback"}, nil)
	t.Setenv("LAYOUT_OIDC_SECRET", "layout-secret")
	backend := gatewaytest.StartBackend(t, nil)

	cf := gatewaytest.ReplaceOnce(t, caddyfile, "{\n\tportcullis {",
		"{\n\tadmin "+g.admin+"\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n\tportcullis {")
	cf = gatewaytest.ReplaceOnce(t, cf, "storage badger ./portcullis-data", fmt.Sprintf("storage badger %q", filepath.Join(t.TempDir(), "store")))
	cf = gatewaytest.ReplaceOnce(t, cf, "issuer https://idp.example", "issuer "+idp.Issuer)
	cf = gatewaytest.ReplaceOnce(t, cf, "\n:8080 {", fmt.Sprintf("\n:%d {", port))
	cf = gatewaytest.ReplaceOnce(t, cf, "127.0.0.1:9001", backend.Addr)
	gatewaytest.Load(t, cf)

	var transcript []string
	note := func(format string, args ...any) { transcript = append(transcript, fmt.Sprintf(format, args...)) }

	// SCIM: the IdP's pushes are answered by the scim handler, with a SCIM
	// error and never a sign-in redirect when the token is missing.
	token := issueToken(t, g, "acme")
	a := request(t, nil, "GET", g.scimBase("acme")+"/Users", true, nil)
	expect(t, a, http.StatusUnauthorized, "SCIM without a token")
	if ct := a.header.Get("Content-Type"); !strings.Contains(ct, "scim+json") {
		t.Errorf("SCIM without a token: Content-Type %q, body %s", ct, a.body)
	}
	note("GET /scim/v2/acme/Users without a token: %d %s", a.status, a.header.Get("Content-Type"))
	a = call(t, http.MethodPost, g.scimBase("acme")+"/Users", token, scimUserBody("alice@acme.test", "Alice", true))
	expect(t, a, http.StatusCreated, "SCIM POST /Users")
	var alice scimUser
	a.json(t, &alice)
	a = call(t, http.MethodGet, g.scimBase("acme")+"/Users/"+alice.ID, token, nil)
	expect(t, a, http.StatusOK, "SCIM GET /Users/<id>")
	var got scimUser
	a.json(t, &got)
	if got.UserName != "alice@acme.test" || got.Meta.Location != g.scimBase("acme")+"/Users/"+alice.ID {
		t.Errorf("SCIM GET: userName %q, location %q", got.UserName, got.Meta.Location)
	}
	note("SCIM POST then GET /Users/<id>: %d %s", a.status, got.UserName)

	// The protected app: a browser is sent to sign in, an API client gets 401.
	a = request(t, nil, "GET", g.site+"/app/page", true, nil)
	expect(t, a, http.StatusFound, "the app, signed out, browser")
	if loc := a.header.Get("Location"); loc != "/sso/login?rd=%2Fapp%2Fpage" {
		t.Errorf("the app, signed out: sent to %q", loc)
	}
	note("GET /app/page signed out (browser): %d %s", a.status, a.header.Get("Location"))
	a = request(t, nil, "GET", g.site+"/app/page", false, nil)
	expect(t, a, http.StatusUnauthorized, "the app, signed out, API client")
	note("GET /app/page signed out (API): %d", a.status)

	// Another tenant's SCIM path is no SCIM endpoint here: it is the app's,
	// and protected like the rest.
	a = request(t, nil, "GET", g.scimBase("globex")+"/Users", false, nil)
	expect(t, a, http.StatusUnauthorized, "another tenant's SCIM path")
	note("GET /scim/v2/globex/Users signed out (API): %d", a.status)

	// The sign-in endpoints are never guarded: /sso/login goes to the IdP,
	// an unknown sso path is the sso handler's answer, not a sign-in loop.
	a = request(t, nil, "GET", g.site+"/sso/login?rd=%2Fapp%2Fpage", true, nil)
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status/100 != 3 || loc == nil || !strings.HasPrefix(loc.String(), idp.Issuer) {
		t.Errorf("/sso/login signed out: %d to %q, want a redirect to the IdP %s", a.status, a.header.Get("Location"), idp.Issuer)
	}
	note("GET /sso/login signed out: %d to the IdP", a.status)
	a = request(t, nil, "GET", g.site+"/sso/nothing-here", true, nil)
	if strings.HasPrefix(a.header.Get("Location"), "/sso/login") || a.status == http.StatusOK {
		t.Errorf("/sso/nothing-here: %d %q: identity or the backend answered", a.status, a.header.Get("Location"))
	}
	note("GET /sso/nothing-here: %d", a.status)

	// Sign-in through devidp lands on the page asked for, served by the
	// backend with alice's identity.
	idp.AutoLogin("alice")
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.site + "/app/page")
	if p.Status != http.StatusOK || p.URL.Path != "/app/page" {
		t.Fatalf("sign-in: landed on %s (%d)\n%s", p.URL, p.Status, p.Body)
	}
	echo := gatewaytest.ParseEcho(t, p.Body)
	if u := echo.Header.Get("X-Remote-User"); u != "alice@acme.test" || echo.URI != "/app/page" {
		t.Errorf("sign-in: the backend got %s as %q", echo.URI, u)
	}
	note("sign-in then GET /app/page: %d, the backend sees %s as %s", p.Status, echo.URI, echo.Header.Get("X-Remote-User"))

	// Signed in, SCIM is still the scim handler's: a session is no token.
	a = request(t, b, "GET", g.scimBase("acme")+"/Users", false, nil)
	expect(t, a, http.StatusUnauthorized, "SCIM with a session and no token")
	note("GET /scim/v2/acme/Users signed in, no token: %d", a.status)
	return transcript
}
