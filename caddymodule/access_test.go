package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
)

// accessCaddyfile protects one backend with every kind of route policy, for
// two tenants: acme (roles from groups, a default role) and strict
// (require_mapped_group). %[1]s admin, %[2]s store, %[3]s issuer,
// %[4]d site port, %[5]s backend.
const accessCaddyfile = `{
	admin %[1]s
	persist_config off
	default_bind 127.0.0.1
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	portcullis {
		storage badger %[2]q
		tenant acme {
			oidc {
				issuer %[3]s
				client_id gw-acme
				client_secret {env.PORTCULLIS_TEST_ACME_SECRET}
			}
			roles viewer editor admin
			map_group "Engineering" editor
			map_group "adm-ext-1" admin
			default_role viewer
		}
		tenant strict {
			oidc {
				issuer %[3]s
				client_id gw-strict
				client_secret {env.PORTCULLIS_TEST_STRICT_SECRET}
			}
			session {
				cookie_name strict_session
			}
			roles member
			map_group "Members" member
			require_mapped_group
		}
	}
}
:%[4]d {
	handle /scim/v2/acme/* {
		scim acme
	}
	handle /scim/v2/strict/* {
		scim strict
	}
	handle /sso/* {
		sso acme
	}
	handle /strict-sso/* {
		sso strict /strict-sso
	}
	handle /.well-known/portcullis/acme/jwks.json {
		identity_jwks acme
	}
	handle /public/* {
		identity acme {
			public
		}
		reverse_proxy %[5]s
	}
	handle /edit/* {
		identity acme {
			require editor
		}
		reverse_proxy %[5]s
	}
	handle /admin/* {
		identity acme {
			require admin
		}
		reverse_proxy %[5]s
	}
	handle /eng/* {
		identity acme {
			allow_groups "Engineering"
		}
		reverse_proxy %[5]s
	}
	handle_path /signed/* {
		identity acme {
			assertion_audience my-app
		}
		reverse_proxy %[5]s {
			header_up X-Caddy-User {http.auth.user.id}
			header_up X-Caddy-Role {portcullis.user.role}
			header_up X-Caddy-Groups {portcullis.user.groups}
			header_up X-Caddy-Tenant {portcullis.tenant}
		}
	}
	handle /strict/* {
		identity strict {
			login_prefix /strict-sso
		}
		reverse_proxy %[5]s
	}
	handle {
		identity acme
		reverse_proxy %[5]s
	}
}
`

// accessGateway is accessCaddyfile running in this process.
type accessGateway struct {
	gateway
	caddyfile string
	oidc      *devidp.Provider
	tokens    map[string]string // SCIM token by tenant
}

func startAccessGateway(t *testing.T) *accessGateway {
	t.Helper()
	g := &accessGateway{tokens: make(map[string]string)}
	port := gatewaytest.FreePort(t)
	g.site = fmt.Sprintf("http://127.0.0.1:%d", port)
	g.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	var err error
	g.oidc, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@acme.test", Email: "alice@acme.test", EmailVerified: true, Name: "Alice"},
		{Subject: "carol", PreferredUsername: "carol@strict.test", Email: "carol@strict.test", EmailVerified: true, Name: "Carol"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.oidc.Close)
	for tenant, client := range map[string]struct{ id, prefix string }{
		"ACME":   {"gw-acme", "/sso"},
		"STRICT": {"gw-strict", "/strict-sso"},
	} {
		secret := "secret-of-" + client.id
		g.oidc.AddClient(client.id, secret, []string{g.site + client.prefix + "/oidc/callback"}, nil)
		t.Setenv("PORTCULLIS_TEST_"+tenant+"_SECRET", secret)
	}
	// Without external_url and an assertion block, the issuer is the
	// tenant's URN.
	backend := gatewaytest.StartBackend(t, func(r *http.Request) any {
		return checkAssertion(r, g.site+"/.well-known/portcullis/acme/jwks.json", "urn:portcullis:acme", "my-app")
	})
	g.caddyfile = fmt.Sprintf(accessCaddyfile, g.admin, filepath.Join(t.TempDir(), "store"), g.oidc.Issuer, port, backend.Addr)
	gatewaytest.Load(t, g.caddyfile)
	g.tokens["acme"] = issueToken(t, g.gateway, "acme")
	g.tokens["strict"] = issueToken(t, g.gateway, "strict")
	return g
}

// scim makes one SCIM call of tenant and checks its status (0: any 2xx,
// as PATCH may answer 200 or 204); it returns the id of what it created,
// if anything.
func (g *accessGateway) scim(t *testing.T, tenant, method, path string, body any, status int) string {
	t.Helper()
	a := call(t, method, g.scimBase(tenant)+path, g.tokens[tenant], body)
	if status == 0 && a.status/100 == 2 {
		status = a.status
	}
	expect(t, a, status, "SCIM "+method+" "+path)
	var res struct {
		ID string `json:"id"`
	}
	if len(a.body) > 0 {
		a.json(t, &res)
	}
	return res.ID
}

func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func addMember(id string) map[string]any {
	return patchOp(map[string]any{"op": "add", "path": "members", "value": []map[string]any{{"value": id}}})
}

func removeMember(id string) map[string]any {
	return patchOp(map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`})
}

func setActive(active bool) map[string]any {
	return patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": active}})
}

// signIn signs subject in through the tenant's sso handler and returns the
// browser holding the session.
func (g *accessGateway) signIn(t *testing.T, subject, path string) *gatewaytest.Browser {
	t.Helper()
	g.oidc.AutoLogin(subject)
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.site + path)
	if p.Status != http.StatusOK || p.URL.Path != path {
		t.Fatalf("sign-in of %s to %s: landed on %s (%d)\n%s", subject, path, p.URL, p.Status, p.Body)
	}
	return b
}

// request is one request of a test: browser (Accept: text/html) or API
// client, with the browser's cookies or none, and extra headers sent as
// given (names not canonicalised, values repeated).
func request(t *testing.T, b *gatewaytest.Browser, method, url string, html bool, headers map[string][]string) answer {
	t.Helper()
	a, err := tryRequest(b, method, url, html, headers)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tryRequest(b *gatewaytest.Browser, method, url string, html bool, headers map[string][]string) (answer, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return answer{}, err
	}
	if html {
		req.Header.Set("Accept", "text/html")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	client := &http.Client{
		Timeout:       httpClient.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if b != nil {
		client.Jar = b.Jar
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// echo is the backend's view of a request that got through.
func echoOf(t *testing.T, a answer, what string) gatewaytest.Echo {
	t.Helper()
	expect(t, a, http.StatusOK, what)
	return gatewaytest.ParseEcho(t, string(a.body))
}

// identityHeaderPattern matches every spelling of an identity header name.
var identityHeaderPattern = regexp.MustCompile(`(?i)^x[-_]remote[-_]`)

// identityHeaders returns the identity headers the backend received, by
// name as received.
func identityHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string)
	for k, v := range h {
		if identityHeaderPattern.MatchString(k) {
			out[k] = v
		}
	}
	return out
}

func (g *accessGateway) sessionsOf(t *testing.T, tenant, userID string) int {
	t.Helper()
	var n int
	err := runningApp().Store().View(context.Background(), tenant, func(tx storage.ReadTx) error {
		s, err := tx.SessionsOf(userID)
		n = len(s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAccess drives the protecting handler through a real Caddy with real
// SCIM calls and real sessions (issue 4): roles from groups, policies,
// changes on the next request, header stripping, the answers to the
// unauthenticated and the refused, placeholders and the signed assertion.
func TestAccess(t *testing.T) {
	g := startAccessGateway(t)
	aliceID := g.scim(t, "acme", "POST", "/Users", scimUserBody("alice@acme.test", "Alice", true), http.StatusCreated)
	engID := g.scim(t, "acme", "POST", "/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Engineering"}, http.StatusCreated)
	adminsID := g.scim(t, "acme", "POST", "/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Admins", "externalId": "adm-ext-1"}, http.StatusCreated)

	forged := map[string][]string{
		"X-Remote-User":   {"mallory"},
		"x-remote-role":   {"admin", "admin"},
		"X_Remote_Groups": {"Admins"},
		"X-REMOTE-EMAIL":  {"mallory@evil.test"},
		"X-Remote-Extra":  {"anything"},
	}

	t.Run("without a session", func(t *testing.T) {
		a := request(t, nil, "GET", g.site+"/edit/x?y=1", false, nil)
		expect(t, a, http.StatusUnauthorized, "API client")
		var body struct {
			Error    string `json:"error"`
			LoginURL string `json:"login_url"`
		}
		a.json(t, &body)
		if a.header.Get("Content-Type") != "application/json" || body.Error != "unauthenticated" || body.LoginURL != "/sso/login?rd=%2Fedit%2Fx%3Fy%3D1" {
			t.Errorf("401: %s %s", a.header.Get("Content-Type"), a.body)
		}
		tests := []struct{ path, login string }{
			{"/edit/x?y=1", "/sso/login?rd=%2Fedit%2Fx%3Fy%3D1"},
			// handle_path strips /signed; sign-in still comes back to it.
			{"/signed/deep?q=1", "/sso/login?rd=%2Fsigned%2Fdeep%3Fq%3D1"},
			{"/strict/page", "/strict-sso/login?rd=%2Fstrict%2Fpage"},
		}
		for _, tt := range tests {
			a := request(t, nil, "GET", g.site+tt.path, true, nil)
			if a.status != http.StatusFound || a.header.Get("Location") != tt.login {
				t.Errorf("browser at %s: %d Location %q, want %q", tt.path, a.status, a.header.Get("Location"), tt.login)
			}
		}
		e := echoOf(t, request(t, nil, "GET", g.site+"/public/page", false, forged), "public route")
		if h := identityHeaders(e.Header); len(h) != 0 {
			t.Errorf("public route without a session passed on %v", h)
		}
	})

	b := g.signIn(t, "alice", "/home")

	t.Run("role from groups, on the next request", func(t *testing.T) {
		steps := []struct {
			name   string
			change func()
			role   string
			groups string
			// status of /edit, /admin, /eng
			edit, admin, eng int
		}{
			{"no group: default role", nil, "viewer", "", 403, 403, 403},
			{"added to Engineering", func() { g.scim(t, "acme", "PATCH", "/Groups/"+engID, addMember(aliceID), 0) }, "editor", "Engineering", 200, 403, 200},
			{"added to the admins (mapped by externalId): highest wins", func() { g.scim(t, "acme", "PATCH", "/Groups/"+adminsID, addMember(aliceID), 0) }, "admin", "Admins, Engineering", 200, 200, 200},
			{"admins renamed: the mapping by externalId holds", func() {
				g.scim(t, "acme", "PATCH", "/Groups/"+adminsID, patchOp(map[string]any{"op": "replace", "path": "displayName", "value": "Administrators"}), 0)
			}, "admin", "Administrators, Engineering", 200, 200, 200},
			{"removed from the admins", func() { g.scim(t, "acme", "PATCH", "/Groups/"+adminsID, removeMember(aliceID), 0) }, "editor", "Engineering", 200, 403, 200},
		}
		for _, s := range steps {
			if s.change != nil {
				s.change()
			}
			e := echoOf(t, request(t, b, "GET", g.site+"/home", false, nil), s.name)
			got := map[string]string{"role": e.Header.Get("X-Remote-Role"), "groups": e.Header.Get("X-Remote-Groups")}
			if got["role"] != s.role || got["groups"] != s.groups {
				t.Errorf("%s: role %q groups %q, want %q %q", s.name, got["role"], got["groups"], s.role, s.groups)
			}
			for path, want := range map[string]int{"/edit/x": s.edit, "/admin/x": s.admin, "/eng/x": s.eng} {
				if a := request(t, b, "GET", g.site+path, false, nil); a.status != want {
					t.Errorf("%s: %s answered %d, want %d: %s", s.name, path, a.status, want, a.body)
				}
			}
		}
	})

	t.Run("403 names the missing level", func(t *testing.T) {
		a := request(t, b, "GET", g.site+"/admin/x", false, nil)
		expect(t, a, http.StatusForbidden, "API client")
		var body struct {
			Error        string `json:"error"`
			RequiredRole string `json:"required_role"`
			Role         string `json:"role"`
		}
		a.json(t, &body)
		if body.Error != "forbidden" || body.RequiredRole != "admin" || body.Role != "editor" {
			t.Errorf("403 body %s", a.body)
		}
		a = request(t, b, "GET", g.site+"/admin/x", true, nil)
		expect(t, a, http.StatusForbidden, "browser")
		if !strings.Contains(string(a.body), "<strong>admin</strong> role") || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Errorf("403 page:\n%s", a.body)
		}
	})

	t.Run("forged identity headers are stripped", func(t *testing.T) {
		want := map[string][]string{
			"X-Remote-User":   {"alice@acme.test"},
			"X-Remote-Email":  {"alice@acme.test"},
			"X-Remote-Name":   {"Alice"},
			"X-Remote-Groups": {"Engineering"},
			"X-Remote-Role":   {"editor"},
		}
		for _, path := range []string{"/home", "/public/page", "/eng/x"} {
			e := echoOf(t, request(t, b, "GET", g.site+path, false, forged), path)
			got, _ := json.Marshal(identityHeaders(e.Header))
			exp, _ := json.Marshal(want)
			if string(got) != string(exp) {
				t.Errorf("%s: backend got identity headers %s, want %s", path, got, exp)
			}
		}
	})

	t.Run("placeholders and the signed assertion", func(t *testing.T) {
		e := echoOf(t, request(t, b, "GET", g.site+"/signed/x", false, forged), "signed route")
		wantHeaders(t, e.Header, map[string]string{
			"X-Caddy-User":   "alice@acme.test",
			"X-Caddy-Role":   "editor",
			"X-Caddy-Groups": "Engineering",
			"X-Caddy-Tenant": "acme",
		})
		if e.URI != "/x" {
			t.Errorf("backend saw %s", e.URI)
		}
		var check assertionCheck
		if err := json.Unmarshal(e.Extra, &check); err != nil || check.Error != "" {
			t.Fatalf("assertion not verified: %v %s", err, e.Extra)
		}
		if c := check.Claims; c["sub"] != aliceID || c["role"] != "editor" || c["aud"] != "my-app" {
			t.Errorf("claims %v", c)
		}
		// Other routes send no assertion.
		if e := echoOf(t, request(t, b, "GET", g.site+"/home", false, nil), "home"); e.Header.Get("X-Remote-Assertion") != "" {
			t.Error("assertion on a route without an audience")
		}
	})

	t.Run("a reload keeps sessions and ends the old config's services", func(t *testing.T) {
		before := runningApp()
		oldSignIn := before.runtimes["acme"].signIn
		if status := reload(t, g.gateway, g.caddyfile); status != http.StatusOK {
			t.Fatalf("reload: %d", status)
		}
		after := runningApp()
		if after == before || before.runtimes != nil || before.storeKey != "" {
			t.Fatalf("the old app was not cleaned up (runtimes %v)", before.runtimes)
		}
		if after.runtimes["acme"].signIn == oldSignIn {
			t.Fatal("the new config shares the old sign-in service")
		}
		// The old config's server closes the connections it holds, even one
		// it accepted just before it stopped; a browser tries again on a
		// new one, and so does this test, a few times.
		var a answer
		var err error
		for range 5 {
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			if a, err = tryRequest(b, "GET", g.site+"/home", false, nil); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after reload: %v", err)
		}
		e := echoOf(t, a, "after reload")
		wantHeaders(t, e.Header, map[string]string{"X-Remote-User": "alice@acme.test", "X-Remote-Role": "editor"})
	})

	t.Run("SCIM counts failed tokens under Caddy's client IP", func(t *testing.T) {
		// The site trusts 127.0.0.1 as a proxy, so Caddy's client IP is the
		// one X-Forwarded-For names, and the audit event says so.
		a := request(t, nil, "GET", g.scimBase("acme")+"/Users", false, map[string][]string{
			"Authorization":   {"Bearer not-a-token"},
			"X-Forwarded-For": {"203.0.113.7"},
		})
		expect(t, a, http.StatusUnauthorized, "bad token")
		a = call(t, http.MethodGet, "http://"+g.admin+"/portcullis/tenants/acme/events?type="+storage.EventTokenRejected, "", nil)
		expect(t, a, http.StatusOK, "events")
		if !strings.Contains(string(a.body), "client 203.0.113.7") {
			t.Errorf("token.rejected events do not name the client 203.0.113.7: %s", a.body)
		}
	})

	t.Run("deactivated: refused on the next request, sessions ended", func(t *testing.T) {
		if n := g.sessionsOf(t, "acme", aliceID); n != 1 {
			t.Fatalf("alice has %d sessions before", n)
		}
		g.scim(t, "acme", "PATCH", "/Users/"+aliceID, setActive(false), 0)
		// SCIM ends the sessions in the transaction that deactivates, so
		// the next request has none.
		expect(t, request(t, b, "GET", g.site+"/home", false, nil), http.StatusUnauthorized, "next request")
		if n := g.sessionsOf(t, "acme", aliceID); n != 0 {
			t.Fatalf("alice has %d sessions after deactivation", n)
		}
		// Reactivated, she signs in again: the old session stays ended.
		g.scim(t, "acme", "PATCH", "/Users/"+aliceID, setActive(true), 0)
		expect(t, request(t, b, "GET", g.site+"/home", false, nil), http.StatusUnauthorized, "old session after reactivation")
		b = g.signIn(t, "alice", "/home")
	})

	t.Run("deleted: refused on the next request", func(t *testing.T) {
		expect(t, request(t, b, "GET", g.site+"/home", false, nil), http.StatusOK, "before delete")
		g.scim(t, "acme", "DELETE", "/Users/"+aliceID, nil, http.StatusNoContent)
		expect(t, request(t, b, "GET", g.site+"/home", false, nil), http.StatusUnauthorized, "after delete")
		if a := request(t, b, "GET", g.site+"/home", true, nil); a.status != http.StatusFound {
			t.Errorf("browser after delete: %d", a.status)
		}
	})

	t.Run("removed from every mapped group with require_mapped_group", func(t *testing.T) {
		carolID := g.scim(t, "strict", "POST", "/Users", scimUserBody("carol@strict.test", "Carol", true), http.StatusCreated)
		membersID := g.scim(t, "strict", "POST", "/Groups", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Members",
			"members": []map[string]any{{"value": carolID}}}, http.StatusCreated)
		cb := g.signIn(t, "carol", "/strict/page")
		e := echoOf(t, request(t, cb, "GET", g.site+"/strict/page", false, nil), "member")
		wantHeaders(t, e.Header, map[string]string{"X-Remote-User": "carol@strict.test", "X-Remote-Role": "member"})
		// The acme session cookie of another tenant means nothing here.
		if a := request(t, b, "GET", g.site+"/strict/page", false, nil); a.status != http.StatusUnauthorized {
			t.Errorf("acme session on the strict tenant: %d", a.status)
		}

		g.scim(t, "strict", "PATCH", "/Groups/"+membersID, removeMember(carolID), 0)
		a := request(t, cb, "GET", g.site+"/strict/page", false, nil)
		expect(t, a, http.StatusForbidden, "after removal from every mapped group")
		if !strings.Contains(string(a.body), "no_mapped_group") {
			t.Errorf("403 body %s", a.body)
		}
		if n := g.sessionsOf(t, "strict", carolID); n != 0 {
			t.Errorf("carol has %d sessions", n)
		}
	})
}
