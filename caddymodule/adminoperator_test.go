package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/operator"
)

// operatorCaddyfile is a gateway with one tenant that signs in with OIDC
// and takes SCIM pushes (opco: roles, a config-pinned "IT Admins"
// mapping, an editors' route and a viewers' catch-all) and one that only
// takes SCIM pushes (opcosync, for the CLI's disconnect).
const operatorCaddyfile = `{
	admin {ADMIN}
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger {STORE}
		tenant opco {
			oidc {
				issuer {ISSUER}
				client_id portcullis-opco
				client_secret {SECRET}
			}
			session {
				cookie_name opco_session
			}
			roles viewer editor admin
			map_group "IT Admins" admin
			default_role viewer
		}
		tenant opcosync
	}
}

:{PORT} {
	handle /scim/v2/opco/* {
		scim opco
	}
	handle /scim/v2/opcosync/* {
		scim opcosync
	}
	handle /sso/* {
		sso opco
	}
	handle /edit/* {
		identity opco {
			require editor
		}
		reverse_proxy {BACKEND}
	}
	handle {
		identity opco {
			require viewer
		}
		reverse_proxy {BACKEND}
	}
}
`

// operatorGateway is the running operatorCaddyfile.
type operatorGateway struct {
	gateway
	idp   *devidp.Provider
	token string // opco's SCIM token
}

func startOperatorGateway(t *testing.T) *operatorGateway {
	t.Helper()
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@opco.example", Email: "alice@opco.example", EmailVerified: true, Name: "Alice Liddell"},
		{Subject: "bob", PreferredUsername: "bob@opco.example", Email: "bob@opco.example", EmailVerified: true, Name: "Bob Builder"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	port := gatewaytest.FreePort(t)
	g := &operatorGateway{idp: idp, gateway: gateway{admin: fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)), site: fmt.Sprintf("http://127.0.0.1:%d", port)}}
	secret := fmt.Sprintf("secret-%d", time.Now().UnixNano())
	idp.AddClient("portcullis-opco", secret, []string{g.site + "/sso/oidc/callback"}, []string{g.site + "/"})
	backend := gatewaytest.StartBackend(t, nil)
	cf := strings.NewReplacer("{ADMIN}", g.admin, "{STORE}", strconv.Quote(filepath.Join(t.TempDir(), "store")),
		"{ISSUER}", idp.Issuer, "{SECRET}", secret, "{PORT}", strconv.Itoa(port), "{BACKEND}", backend.Addr).Replace(operatorCaddyfile)
	gatewaytest.Load(t, cf)
	g.token = issueToken(t, g.gateway, "opco")
	return g
}

// api is the URL of a tenant's admin route.
func (g *operatorGateway) api(path string) string {
	return "http://" + g.admin + "/portcullis/tenants/" + path
}

// scimCreate pushes a SCIM resource to opco and returns its id.
func (g *operatorGateway) scimCreate(t *testing.T, kind string, body map[string]any) string {
	t.Helper()
	a := call(t, http.MethodPost, g.scimBase("opco")+"/"+kind, g.token, body)
	expect(t, a, http.StatusCreated, "SCIM POST /"+kind)
	var res struct{ ID string }
	a.json(t, &res)
	return res.ID
}

// signIn signs a devidp user in and returns their browser, which no
// longer follows redirects (so that a refused session shows as the 302 to
// sign-in).
func (g *operatorGateway) signIn(t *testing.T, subject string) *gatewaytest.Browser {
	t.Helper()
	g.idp.AutoLogin(subject)
	b := gatewaytest.NewBrowser(t)
	if p := b.Get(g.site + "/page"); p.Status != http.StatusOK {
		t.Fatalf("%s signing in: %d %s", subject, p.Status, p.Body)
	}
	b.StopRedirects()
	return b
}

// roleOf is the role header the backend received for the browser's request
// to path, or the status when the gateway answered itself.
func roleOf(t *testing.T, b *gatewaytest.Browser, u string) (int, string) {
	t.Helper()
	p := b.Get(u)
	if p.Status != http.StatusOK {
		return p.Status, ""
	}
	return p.Status, gatewaytest.ParseEcho(t, p.Body).Header.Get("X-Remote-Role")
}

// apiError is an admin API error body.
type apiErrorBody struct {
	Error string `json:"error"`
}

// expectError checks an error answer's status and message.
func expectError(t *testing.T, a answer, status int, contains, what string) {
	t.Helper()
	expect(t, a, status, what)
	var e apiErrorBody
	a.json(t, &e)
	if !strings.Contains(e.Error, contains) {
		t.Fatalf("%s: error %q, want it to contain %q", what, e.Error, contains)
	}
}

// rawCall sends body as is, with the content type.
func rawCall(t *testing.T, method, u, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestOperatorAPI walks the operator's admin API through a real gateway:
// users, groups, mappings taking effect on the next request, the locks on
// IdP-managed users, manual users, sessions, token health and disconnect.
func TestOperatorAPI(t *testing.T) {
	g := startOperatorGateway(t)

	aliceID := g.scimCreate(t, "Users", scimUserBody("alice@opco.example", "Alice Liddell", true))
	bobID := g.scimCreate(t, "Users", scimUserBody("bob@opco.example", "Bob Builder", true))
	engID := g.scimCreate(t, "Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]any{{"value": aliceID}},
	})
	g.scimCreate(t, "Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "IT Admins",
		"members":     []map[string]any{{"value": bobID}},
	})

	t.Run("users: list, filter, page, show", func(t *testing.T) {
		var page usersPage
		a := call(t, http.MethodGet, g.api("opco/users"), "", nil)
		expect(t, a, http.StatusOK, "users")
		a.json(t, &page)
		byName := map[string]operator.User{}
		for _, u := range page.Users {
			byName[u.UserName] = u
		}
		alice, bob := byName["alice@opco.example"], byName["bob@opco.example"]
		if len(page.Users) != 2 || page.Next != "" || alice.ID != aliceID || alice.Source != "scim" || !alice.Active ||
			alice.Role != "viewer" || len(alice.Groups) != 1 || alice.Groups[0].DisplayName != "Engineering" || bob.Role != "admin" {
			t.Fatalf("users: %s", a.body)
		}

		a = call(t, http.MethodGet, g.api("opco/users?filter=ALI"), "", nil)
		expect(t, a, http.StatusOK, "filtered users")
		page = usersPage{}
		a.json(t, &page)
		if len(page.Users) != 1 || page.Users[0].ID != aliceID {
			t.Fatalf("filter=ALI: %s", a.body)
		}
		a = call(t, http.MethodGet, g.api("opco/users?source=manual"), "", nil)
		expect(t, a, http.StatusOK, "manual users")
		page = usersPage{}
		a.json(t, &page)
		if len(page.Users) != 0 {
			t.Fatalf("source=manual: %s", a.body)
		}

		seen := map[string]bool{}
		cursor := ""
		for i := 0; i < 3; i++ {
			a = call(t, http.MethodGet, g.api("opco/users?limit=1&cursor="+url.QueryEscape(cursor)), "", nil)
			expect(t, a, http.StatusOK, "page")
			page = usersPage{}
			a.json(t, &page)
			if len(page.Users) != 1 {
				t.Fatalf("page %d: %s", i, a.body)
			}
			seen[page.Users[0].ID] = true
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		if !seen[aliceID] || !seen[bobID] || cursor != "" {
			t.Fatalf("paging saw %v, last cursor %q", seen, cursor)
		}

		var d operator.UserDetail
		a = call(t, http.MethodGet, g.api("opco/users/"+bobID), "", nil)
		expect(t, a, http.StatusOK, "bob")
		a.json(t, &d)
		if d.Role != "admin" || d.RoleReason.From != "group" || d.RoleReason.MappingFrom != "config" ||
			d.RoleReason.Group == nil || d.RoleReason.Group.DisplayName != "IT Admins" || d.RoleReason.Text == "" {
			t.Fatalf("bob's role reason: %s", a.body)
		}
		wantRoutes(t, d, map[string]bool{"require editor": true, "require viewer": true})
		a = call(t, http.MethodGet, g.api("opco/users/"+aliceID), "", nil)
		expect(t, a, http.StatusOK, "alice")
		a.json(t, &d)
		wantRoutes(t, d, map[string]bool{"require editor": false, "require viewer": true})
	})

	alice := g.signIn(t, "alice")

	t.Run("a mapping set through PUT takes effect on the next request", func(t *testing.T) {
		if status, role := roleOf(t, alice, g.site+"/page"); status != http.StatusOK || role != "viewer" {
			t.Fatalf("before: %d %q", status, role)
		}
		if status, _ := roleOf(t, alice, g.site+"/edit/page"); status != http.StatusForbidden {
			t.Fatalf("editors' route before the mapping: %d", status)
		}

		a := call(t, http.MethodPut, g.api("opco/mappings/Engineering"), "", map[string]string{"role": "editor"})
		expect(t, a, http.StatusOK, "PUT mapping")
		var m operator.Mapping
		a.json(t, &m)
		if m.Group != "Engineering" || m.Role != "editor" {
			t.Fatalf("PUT answer: %s", a.body)
		}
		if status, role := roleOf(t, alice, g.site+"/edit/page"); status != http.StatusOK || role != "editor" {
			t.Fatalf("after the mapping: %d %q", status, role)
		}

		var ms operator.Mappings
		a = call(t, http.MethodGet, g.api("opco/mappings"), "", nil)
		expect(t, a, http.StatusOK, "mappings")
		a.json(t, &ms)
		if strings.Join(ms.Roles, ",") != "viewer,editor,admin" || ms.Default != "viewer" ||
			len(ms.Config) != 1 || ms.Config[0] != (operator.Mapping{Group: "IT Admins", Role: "admin"}) ||
			len(ms.Stored) != 1 || ms.Stored[0].Role != "editor" || (ms.Stored[0].Group != "Engineering" && ms.Stored[0].Group != engID) {
			t.Fatalf("mappings: %s", a.body)
		}

		var gs groupsList
		a = call(t, http.MethodGet, g.api("opco/groups"), "", nil)
		expect(t, a, http.StatusOK, "groups")
		a.json(t, &gs)
		levels := map[string]string{}
		for _, gr := range gs.Groups {
			levels[gr.DisplayName] = fmt.Sprintf("%s/%s/%s/%d", gr.Level, gr.LevelFrom, gr.Source, gr.Members)
		}
		if levels["Engineering"] != "editor/stored/scim/1" || levels["IT Admins"] != "admin/config/scim/1" {
			t.Fatalf("groups: %s", a.body)
		}

		var d operator.UserDetail
		a = call(t, http.MethodGet, g.api("opco/users/"+aliceID), "", nil)
		expect(t, a, http.StatusOK, "alice")
		a.json(t, &d)
		if d.RoleReason.From != "group" || d.RoleReason.MappingFrom != "stored" || d.RoleReason.Group == nil || d.RoleReason.Group.ID != engID {
			t.Fatalf("alice's role reason: %s", a.body)
		}

		// The group named by its id, URL-escaped names, and back.
		expect(t, call(t, http.MethodDelete, g.api("opco/mappings/Engineering"), "", nil), http.StatusNoContent, "DELETE mapping")
		if status, role := roleOf(t, alice, g.site+"/page"); status != http.StatusOK || role != "viewer" {
			t.Fatalf("after DELETE: %d %q", status, role)
		}
		expectError(t, call(t, http.MethodDelete, g.api("opco/mappings/Engineering"), "", nil), http.StatusNotFound, "not found", "DELETE an unmapped group")

		events := call(t, http.MethodGet, g.api("opco/events?type=mapping.changed"), "", nil)
		expect(t, events, http.StatusOK, "mapping events")
		var ev eventsPage
		events.json(t, &ev)
		if len(ev.Events) != 2 || ev.Events[0].Actor != "admin" {
			t.Fatalf("mapping.changed events: %s", events.body)
		}
	})

	t.Run("a group declared ahead of its first sign-in can be mapped", func(t *testing.T) {
		a := call(t, http.MethodPost, g.api("opco/groups"), "", map[string]string{"displayName": "Sales EMEA"})
		expect(t, a, http.StatusCreated, "declare a group")
		var gr operator.Group
		a.json(t, &gr)
		if gr.ID == "" || gr.DisplayName != "Sales EMEA" || gr.Source != "manual" || gr.LevelFrom != "default" || gr.Level != "viewer" {
			t.Fatalf("declared group: %s", a.body)
		}
		expectError(t, call(t, http.MethodPost, g.api("opco/groups"), "", map[string]string{"displayName": "Sales EMEA"}), http.StatusConflict, "already exists", "declare it twice")
		expectError(t, call(t, http.MethodPost, g.api("opco/groups"), "", map[string]string{}), http.StatusBadRequest, "displayName", "declare no name")

		expect(t, call(t, http.MethodPut, g.api("opco/mappings/"+url.PathEscape("Sales EMEA")), "", map[string]string{"role": "editor"}), http.StatusOK, "map the declared group")
		var gs groupsList
		a = call(t, http.MethodGet, g.api("opco/groups"), "", nil)
		a.json(t, &gs)
		found := false
		for _, x := range gs.Groups {
			if x.ID == gr.ID {
				found = x.Level == "editor" && x.LevelFrom == "stored" && x.Members == 0
			}
		}
		if !found {
			t.Fatalf("the declared group is not mapped: %s", a.body)
		}
		expect(t, call(t, http.MethodDelete, g.api("opco/mappings/"+url.PathEscape("Sales EMEA")), "", nil), http.StatusNoContent, "unmap the declared group")

		var o operator.Overview
		a = call(t, http.MethodGet, g.api("opco/overview"), "", nil)
		expect(t, a, http.StatusOK, "overview")
		a.json(t, &o)
		if o.Tenant != "opco" || !o.Connected || o.Users != 2 || o.Groups != 3 || o.Token == nil || o.Token.Status != "active" {
			t.Fatalf("overview: %s", a.body)
		}
	})

	t.Run("config-pinned mappings and IdP-managed users are locked (409)", func(t *testing.T) {
		pinned := g.api("opco/mappings/" + url.PathEscape("IT Admins"))
		expectError(t, call(t, http.MethodPut, pinned, "", map[string]string{"role": "viewer"}), http.StatusConflict, "map_group", "PUT a pinned group")
		expectError(t, call(t, http.MethodDelete, pinned, "", nil), http.StatusConflict, "map_group", "DELETE a pinned group")

		managed := g.api("opco/users/" + aliceID)
		for _, tt := range []struct {
			method string
			body   any
		}{
			{http.MethodPatch, map[string]any{"role": "admin"}},
			{http.MethodPatch, map[string]any{"active": false}},
			{http.MethodDelete, nil},
		} {
			a := call(t, tt.method, managed, "", tt.body)
			expectError(t, a, http.StatusConflict, "SCIM", tt.method+" a SCIM user")
			var e apiErrorBody
			a.json(t, &e)
			if !strings.Contains(e.Error, "IdP") {
				t.Errorf("%s: the refusal %q does not say what to do instead (change it in the IdP)", tt.method, e.Error)
			}
		}
		var d operator.UserDetail
		a := call(t, http.MethodGet, managed, "", nil)
		a.json(t, &d)
		if !d.Active || d.Role != "viewer" {
			t.Fatalf("a refused change changed alice: %s", a.body)
		}
	})

	t.Run("manual users: create, change, deactivate, delete", func(t *testing.T) {
		a := call(t, http.MethodPost, g.api("opco/users"), "", operator.NewUser{UserName: "carol@opco.example", Email: "carol@opco.example", DisplayName: "Carol", Role: "editor"})
		expect(t, a, http.StatusCreated, "create carol")
		var carol operator.UserDetail
		a.json(t, &carol)
		if carol.ID == "" || carol.Source != "manual" || carol.Role != "editor" || carol.RoleReason.From != "manual" || !carol.Active {
			t.Fatalf("carol: %s", a.body)
		}
		if loc := a.header.Get("Location"); loc != "/portcullis/tenants/opco/users/"+url.PathEscape(carol.ID) {
			t.Errorf("Location %q", loc)
		}
		expectError(t, call(t, http.MethodPost, g.api("opco/users"), "", operator.NewUser{UserName: "carol@opco.example", Role: "viewer"}), http.StatusConflict, "", "duplicate userName")
		expectError(t, call(t, http.MethodPost, g.api("opco/users"), "", operator.NewUser{UserName: "dan@opco.example", Role: "boss"}), http.StatusBadRequest, "boss", "unknown role")
		expectError(t, call(t, http.MethodPost, g.api("opco/users"), "", map[string]any{"role": "viewer"}), http.StatusBadRequest, "userName", "no userName")

		u := g.api("opco/users/" + carol.ID)
		a = call(t, http.MethodPatch, u, "", map[string]any{"role": "admin"})
		expect(t, a, http.StatusOK, "set carol's role")
		carol = operator.UserDetail{}
		a.json(t, &carol)
		if carol.Role != "admin" {
			t.Fatalf("carol after set-role: %s", a.body)
		}
		expectError(t, call(t, http.MethodPatch, u, "", map[string]any{"role": "boss"}), http.StatusBadRequest, "boss", "set an unknown role")
		expectError(t, call(t, http.MethodPatch, u, "", map[string]any{}), http.StatusBadRequest, "nothing to change", "empty change")
		a = call(t, http.MethodPatch, u, "", map[string]any{"active": false})
		expect(t, a, http.StatusOK, "deactivate carol")
		carol = operator.UserDetail{}
		a.json(t, &carol)
		if carol.Active {
			t.Fatalf("carol still active: %s", a.body)
		}
		expect(t, call(t, http.MethodDelete, u, "", nil), http.StatusNoContent, "delete carol")
		expectError(t, call(t, http.MethodGet, u, "", nil), http.StatusNotFound, "not found", "deleted carol")
		expectError(t, call(t, http.MethodDelete, u, "", nil), http.StatusNotFound, "not found", "delete carol twice")
	})

	t.Run("sessions: list, end one user's, end the tenant's", func(t *testing.T) {
		var list sessionsList
		a := call(t, http.MethodGet, g.api("opco/users/"+aliceID+"/sessions"), "", nil)
		expect(t, a, http.StatusOK, "alice's sessions")
		a.json(t, &list)
		if len(list.Sessions) != 1 || list.Sessions[0].Protocol != "oidc" || list.Sessions[0].ID == "" || list.Sessions[0].Created.IsZero() {
			t.Fatalf("alice's sessions: %s", a.body)
		}

		// One session by its handle.
		expect(t, call(t, http.MethodDelete, g.api("opco/users/"+aliceID+"/sessions/"+url.PathEscape(list.Sessions[0].ID)), "", nil), http.StatusNoContent, "end one session")
		if status, _ := roleOf(t, alice, g.site+"/page"); status != http.StatusFound {
			t.Fatalf("request after the session ended: %d", status)
		}

		// All of a user's.
		alice = g.signIn(t, "alice")
		alice2 := g.signIn(t, "alice")
		var ended endedSessions
		a = call(t, http.MethodDelete, g.api("opco/users/"+aliceID+"/sessions"), "", nil)
		expect(t, a, http.StatusOK, "end alice's sessions")
		a.json(t, &ended)
		if ended.Ended != 2 {
			t.Fatalf("ended: %s", a.body)
		}
		for _, b := range []*gatewaytest.Browser{alice, alice2} {
			if status, _ := roleOf(t, b, g.site+"/page"); status != http.StatusFound {
				t.Fatalf("request after the user's sessions ended: %d", status)
			}
		}

		// The whole tenant's.
		alice = g.signIn(t, "alice")
		bob := g.signIn(t, "bob")
		a = call(t, http.MethodDelete, g.api("opco/sessions"), "", nil)
		expect(t, a, http.StatusOK, "end the tenant's sessions")
		ended = endedSessions{}
		a.json(t, &ended)
		if ended.Ended != 2 {
			t.Fatalf("ended: %s", a.body)
		}
		for _, b := range []*gatewaytest.Browser{alice, bob} {
			if status, _ := roleOf(t, b, g.site+"/page"); status != http.StatusFound {
				t.Fatalf("request after the tenant's sessions ended: %d", status)
			}
		}
		alice = g.signIn(t, "alice")
	})

	t.Run("token status", func(t *testing.T) {
		expectError(t, call(t, http.MethodGet, g.api("opcosync/scim-token"), "", nil), http.StatusNotFound, "no SCIM token", "no token ever made")

		// Okta's SCIM client, by its User-Agent.
		req, _ := http.NewRequest(http.MethodGet, g.scimBase("opco")+"/Users?count=1", nil)
		req.Header.Set("Authorization", "Bearer "+g.token)
		req.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		expect(t, call(t, http.MethodGet, g.scimBase("opco")+"/Users", "wrong-token", nil), http.StatusUnauthorized, "wrong token")

		var st operator.TokenStatus
		a := call(t, http.MethodGet, g.api("opco/scim-token"), "", nil)
		expect(t, a, http.StatusOK, "token status")
		a.json(t, &st)
		if st.Status != "active" || st.Created.IsZero() || st.LastUsed == nil || st.LastUsed.ClientAddr == "" ||
			!strings.Contains(st.LastUsed.UserAgent, "Okta") || st.LastUsed.Client != "Okta" || st.Requests24h < 1 || st.Failures24h < 1 {
			t.Fatalf("token status: %s", a.body)
		}
		if strings.Contains(string(a.body), g.token) {
			t.Fatal("the token status carries the token")
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tests := []struct {
			method, path, contentType, body string
			status                          int
			allow, errContains              string
		}{
			{"GET", "nosuch/users", "", "", http.StatusNotFound, "", `unknown tenant "nosuch"`},
			{"GET", "opco/users/no-such-user", "", "", http.StatusNotFound, "", "not found"},
			{"GET", "opco/users/no-such-user/sessions", "", "", http.StatusNotFound, "", "not found"},
			{"DELETE", "opco/users/no-such-user/sessions", "", "", http.StatusNotFound, "", "not found"},
			{"GET", "opco/users/x/other", "", "", http.StatusNotFound, "", "no such portcullis admin route"},
			{"GET", "opco/users/", "", "", http.StatusNotFound, "", "empty path segment"},
			{"GET", "opco/groups/x", "", "", http.StatusNotFound, "", "no such portcullis admin route"},
			{"GET", "opco/users?limit=0", "", "", http.StatusBadRequest, "", "limit"},
			{"GET", "opco/users?limit=501", "", "", http.StatusBadRequest, "", "limit"},
			{"GET", "opco/users?source=ldap", "", "", http.StatusBadRequest, "", "source"},
			{"GET", "opco/users?q=alice", "", "", http.StatusBadRequest, "", `unknown query parameter "q"`},
			{"GET", "opco/users?filter=a&filter=b", "", "", http.StatusBadRequest, "", "given 2 times"},
			{"GET", "opco/users?filter=" + strings.Repeat("x", 300), "", "", http.StatusBadRequest, "", "longer than"},
			{"GET", "opco/users/" + strings.Repeat("x", 300), "", "", http.StatusBadRequest, "", "longer than"},
			{"GET", "opco/groups?x=1", "", "", http.StatusBadRequest, "", "no query parameters"},
			{"PUT", "opco/users", "", "", http.StatusMethodNotAllowed, "GET, POST", "method not allowed"},
			{"POST", "opco/users/x", "", "", http.StatusMethodNotAllowed, "GET, PATCH, DELETE", "method not allowed"},
			{"POST", "opco/users/x/sessions", "", "", http.StatusMethodNotAllowed, "GET, DELETE", "method not allowed"},
			{"GET", "opco/sessions", "", "", http.StatusMethodNotAllowed, "DELETE", "method not allowed"},
			{"DELETE", "opco/groups", "", "", http.StatusMethodNotAllowed, "GET, POST", "method not allowed"},
			{"POST", "opco/mappings", "", "", http.StatusMethodNotAllowed, "GET", "method not allowed"},
			{"GET", "opco/mappings/Engineering", "", "", http.StatusMethodNotAllowed, "PUT, DELETE", "method not allowed"},
			{"GET", "opco/disconnect", "", "", http.StatusMethodNotAllowed, "POST", "method not allowed"},
			{"PUT", "opco/scim-token", "", "", http.StatusMethodNotAllowed, "GET, POST, DELETE", "method not allowed"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{"role":"boss"}`, http.StatusBadRequest, "", "boss"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{}`, http.StatusBadRequest, "", "role is required"},
			{"PUT", "opco/mappings/Engineering", "application/json", ``, http.StatusBadRequest, "", "empty"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{"role":`, http.StatusBadRequest, "", "request body"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{"role":"editor","x":1}`, http.StatusBadRequest, "", "unknown field"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{"role":"editor"}{}`, http.StatusBadRequest, "", "after the JSON"},
			{"PUT", "opco/mappings/Engineering", "text/plain", `{"role":"editor"}`, http.StatusUnsupportedMediaType, "", "application/json"},
			{"PUT", "opco/mappings/Engineering", "application/json", `{"role":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "", "larger than"},
			{"PATCH", "opco/users/" + aliceID, "application/json", `{"role":7}`, http.StatusBadRequest, "", "request body"},
			{"POST", "opco/users", "application/json", `[]`, http.StatusBadRequest, "", "request body"},
		}
		for _, tt := range tests {
			a := rawCall(t, tt.method, g.api(tt.path), tt.contentType, tt.body)
			var body apiErrorBody
			if a.status != tt.status {
				t.Errorf("%s %s: status %d, want %d (%.200s)", tt.method, tt.path, a.status, tt.status, a.body)
				continue
			}
			if err := json.Unmarshal(a.body, &body); err != nil || !strings.Contains(body.Error, tt.errContains) {
				t.Errorf("%s %s: error %q, want it to contain %q", tt.method, tt.path, a.body, tt.errContains)
			}
			if got := a.header.Get("Allow"); got != tt.allow {
				t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
			}
		}
		// Nothing a refused request sent was stored.
		var ms operator.Mappings
		a := call(t, http.MethodGet, g.api("opco/mappings"), "", nil)
		a.json(t, &ms)
		if len(ms.Stored) != 0 {
			t.Fatalf("a refused PUT stored a mapping: %s", a.body)
		}
	})

	t.Run("disconnect: SCIM gets 401, users become manual with their role, nobody is signed out", func(t *testing.T) {
		expect(t, call(t, http.MethodPut, g.api("opco/mappings/Engineering"), "", map[string]string{"role": "editor"}), http.StatusOK, "map Engineering")

		a := call(t, http.MethodPost, g.api("opco/disconnect"), "", nil)
		expect(t, a, http.StatusOK, "disconnect")
		var d disconnected
		a.json(t, &d)
		if d.Converted != 2 {
			t.Fatalf("disconnect: %s", a.body)
		}
		expect(t, call(t, http.MethodPost, g.scimBase("opco")+"/Users", g.token, newUser("zed")), http.StatusUnauthorized, "SCIM push after disconnect")
		expect(t, call(t, http.MethodGet, g.scimBase("opco")+"/Users", g.token, nil), http.StatusUnauthorized, "SCIM read after disconnect")

		if status, role := roleOf(t, alice, g.site+"/edit/page"); status != http.StatusOK || role != "editor" {
			t.Fatalf("alice after disconnect: %d %q", status, role)
		}
		var u operator.UserDetail
		a = call(t, http.MethodGet, g.api("opco/users/"+aliceID), "", nil)
		expect(t, a, http.StatusOK, "alice after disconnect")
		a.json(t, &u)
		if u.Source != "manual" || u.Role != "editor" || u.RoleReason.From != "manual" {
			t.Fatalf("alice after disconnect: %s", a.body)
		}
		// Now a manual user: the operator changes her.
		expect(t, call(t, http.MethodPatch, g.api("opco/users/"+aliceID), "", map[string]any{"role": "admin"}), http.StatusOK, "set the converted alice's role")
		if status, role := roleOf(t, alice, g.site+"/page"); status != http.StatusOK || role != "admin" {
			t.Fatalf("alice after set-role: %d %q", status, role)
		}

		// Reconnecting (a new token) and pushing alice again never makes a
		// second alice.
		g.token = issueToken(t, g.gateway, "opco")
		push := call(t, http.MethodPost, g.scimBase("opco")+"/Users", g.token, scimUserBody("alice@opco.example", "Alice Liddell", true))
		if push.status != http.StatusCreated && push.status != http.StatusConflict {
			t.Fatalf("push after reconnecting: %d %s", push.status, push.body)
		}
		var page usersPage
		a = call(t, http.MethodGet, g.api("opco/users?filter=alice"), "", nil)
		a.json(t, &page)
		if len(page.Users) != 1 || page.Users[0].ID != aliceID {
			t.Fatalf("alice after reconnecting: %s", a.body)
		}

		events := call(t, http.MethodGet, g.api("opco/events?type=idp.disconnected"), "", nil)
		expect(t, events, http.StatusOK, "disconnect events")
		var ev eventsPage
		events.json(t, &ev)
		if len(ev.Events) != 1 || ev.Events[0].Actor != "admin" {
			t.Fatalf("idp.disconnected events: %s", events.body)
		}
	})
}

// TestOperatorCLI runs the operator's CLI subcommands against a real
// gateway, the way an administrator types them.
func TestOperatorCLI(t *testing.T) {
	g := startOperatorGateway(t)
	aliceID := g.scimCreate(t, "Users", scimUserBody("alice@opco.example", "Alice Liddell", true))
	g.scimCreate(t, "Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]any{{"value": aliceID}},
	})
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		stdout, stderr, err := gatewaytest.RunCLI(t, append(append([]string{"portcullis"}, args...), "--address", g.admin)...)
		if err != nil {
			t.Fatalf("caddy portcullis %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
		}
		t.Logf("caddy portcullis %s\n%s", strings.Join(args, " "), stdout)
		return stdout
	}
	cliFails := func(t *testing.T, want string, args ...string) {
		t.Helper()
		stdout, stderr, err := gatewaytest.RunCLI(t, append(append([]string{"portcullis"}, args...), "--address", g.admin)...)
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("caddy portcullis %s: err %v, want a failure saying %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, want, stdout, stderr)
		}
	}
	wantLines := func(t *testing.T, out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}

	t.Run("users", func(t *testing.T) {
		out := cli(t, "users", "list", "opco")
		wantLines(t, out, "USERNAME", "alice@opco.example", "Alice Liddell", "scim", "viewer", "active", aliceID)

		var page usersPage
		if err := json.Unmarshal([]byte(cli(t, "users", "list", "opco", "--json", "--filter", "nobody")), &page); err != nil || len(page.Users) != 0 {
			t.Fatalf("users list --json --filter nobody: %v %+v", err, page)
		}

		wantLines(t, cli(t, "users", "show", "opco", aliceID), "alice@opco.example", "Source:", "scim", "Why:", "Engineering",
			"Routes:", "allowed require viewer", "refused require editor (require editor: role viewer is below editor)")

		cliFails(t, "HTTP 409", "users", "set-role", "opco", aliceID, "admin")
		cliFails(t, "SCIM", "users", "deactivate", "opco", aliceID)
		cliFails(t, "not found", "users", "show", "opco", "no-such-user")

		var carol operator.UserDetail
		out = cli(t, "users", "create", "opco", "--user-name", "carol@opco.example", "--email", "carol@opco.example", "--display-name", "Carol", "--role", "editor", "--json")
		if err := json.Unmarshal([]byte(out), &carol); err != nil || carol.Source != "manual" || carol.Role != "editor" {
			t.Fatalf("users create --json: %v %s", err, out)
		}
		wantLines(t, cli(t, "users", "set-role", "opco", carol.ID, "admin"), "Role:", "admin", "manual")
		wantLines(t, cli(t, "users", "deactivate", "opco", carol.ID), "inactive")
		wantLines(t, cli(t, "users", "activate", "opco", carol.ID), "Status:", "active")
		wantLines(t, cli(t, "users", "list", "opco", "--filter", "carol@opco.example", "--source", "manual"), "carol@opco.example")
		wantLines(t, cli(t, "users", "delete", "opco", carol.ID), "Deleted user "+carol.ID)
		cliFails(t, "--user-name is required", "users", "create", "opco")
	})

	t.Run("groups and mappings", func(t *testing.T) {
		wantLines(t, cli(t, "mappings", "list", "opco"), "viewer, editor, admin", "IT Admins", "config")
		wantLines(t, cli(t, "mappings", "set", "opco", "Engineering", "editor"), `Group "Engineering" now grants editor`)
		wantLines(t, cli(t, "groups", "list", "opco"), "Engineering", "editor", "stored")
		wantLines(t, cli(t, "mappings", "list", "opco"), "Engineering (", "editor", "stored")
		alice := g.signIn(t, "alice")
		if status, role := roleOf(t, alice, g.site+"/edit/page"); status != http.StatusOK || role != "editor" {
			t.Fatalf("alice after mappings set: %d %q", status, role)
		}
		cliFails(t, "map_group", "mappings", "set", "opco", "IT Admins", "viewer")
		cliFails(t, "map_group", "mappings", "unset", "opco", "IT Admins")
		wantLines(t, cli(t, "mappings", "unset", "opco", "Engineering"), "no longer mapped")
		var ms operator.Mappings
		if err := json.Unmarshal([]byte(cli(t, "mappings", "list", "opco", "--json")), &ms); err != nil || len(ms.Stored) != 0 || len(ms.Config) != 1 {
			t.Fatalf("mappings list --json: %v %+v", err, ms)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		alice := g.signIn(t, "alice")
		wantLines(t, cli(t, "sessions", "list", "opco", aliceID), "oidc")
		wantLines(t, cli(t, "sessions", "end", "opco", aliceID), "Ended 2 session(s) of user "+aliceID)
		if status, _ := roleOf(t, alice, g.site+"/page"); status != http.StatusFound {
			t.Fatalf("alice after sessions end: %d", status)
		}
		alice = g.signIn(t, "alice")
		wantLines(t, cli(t, "sessions", "end", "opco", "--all-tenant"), "Ended 1 session(s) of tenant opco")
		if status, _ := roleOf(t, alice, g.site+"/page"); status != http.StatusFound {
			t.Fatalf("alice after sessions end --all-tenant: %d", status)
		}
		cliFails(t, "not both", "sessions", "end", "opco", aliceID, "--all-tenant")
		cliFails(t, "name a user", "sessions", "end", "opco")
	})

	t.Run("token status and disconnect", func(t *testing.T) {
		wantLines(t, cli(t, "token", "status", "opco"), "Status:", "active", "Last used:", "Last 24 h:")
		cliFails(t, "no SCIM token", "token", "status", "opcosync")

		syncToken := issueToken(t, g.gateway, "opcosync")
		expect(t, call(t, http.MethodPost, g.scimBase("opcosync")+"/Users", syncToken, newUser("sam")), http.StatusCreated, "push to opcosync")
		cliFails(t, "--yes", "disconnect", "opcosync")
		expect(t, call(t, http.MethodGet, g.scimBase("opcosync")+"/Users", syncToken, nil), http.StatusOK, "SCIM after a disconnect without --yes")
		wantLines(t, cli(t, "disconnect", "opcosync", "--yes"), "1 user(s) are now manual")
		expect(t, call(t, http.MethodPost, g.scimBase("opcosync")+"/Users", syncToken, newUser("tim")), http.StatusUnauthorized, "SCIM push after disconnect")
		expect(t, call(t, http.MethodGet, g.scimBase("opco")+"/Users", g.token, nil), http.StatusOK, "the other tenant's SCIM after disconnect")
	})
}

// wantRoutes checks the routes of a user's role reason: every identity
// route of the config, and whether the user gets through it.
func wantRoutes(t *testing.T, d operator.UserDetail, want map[string]bool) {
	t.Helper()
	got := map[string]bool{}
	for _, ra := range d.RoleReason.Routes {
		got[ra.Route] = ra.Allowed
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s's routes %+v, want %v", d.UserName, d.RoleReason.Routes, want)
	}
}
