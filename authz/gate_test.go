package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

var identityHeaderNames = []string{"X-Remote-User", "X-Remote-Email", "X-Remote-Name", "X-Remote-Groups", "X-Remote-Role", "X-Remote-Assertion"}

// TestHeaderStripping sends forged identity headers under every spelling a
// client can use, on protected and public routes, with and without a
// session, and checks the upstream sees only what the gate set.
func TestHeaderStripping(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	alice := f.user("alice")
	cookie := f.signIn(alice)
	up := &upstream{}
	protected := serve(t, f.gate(ids, GateConfig{}), up)
	public := serve(t, f.gate(ids, GateConfig{Policy: Policy{Public: true}}), up)

	forgeries := []struct {
		name string
		opts []reqOpt
	}{
		{"canonical", []reqOpt{rawHeader("X-Remote-User", "mallory"), rawHeader("X-Remote-Role", "admin")}},
		{"lower case", []reqOpt{rawHeader("x-remote-user", "mallory"), rawHeader("x-remote-role", "admin")}},
		{"upper case", []reqOpt{rawHeader("X-REMOTE-USER", "mallory"), rawHeader("X-REMOTE-GROUPS", "admins")}},
		{"mixed case", []reqOpt{rawHeader("x-ReMoTe-EmAiL", "m@evil.test"), rawHeader("X-remote-Name", "Mallory")}},
		{"underscores", []reqOpt{rawHeader("X_Remote_User", "mallory"), rawHeader("x_remote_role", "admin")}},
		{"mixed dash underscore", []reqOpt{rawHeader("X-Remote_User", "mallory")}},
		{"duplicates", []reqOpt{rawHeader("X-Remote-User", "mallory"), rawHeader("X-Remote-User", "eve"), rawHeader("x-remote-user", "trent")}},
		{"assertion", []reqOpt{rawHeader("X-Remote-Assertion", "eyJhbGciOiJub25lIn0.e30.")}},
		{"any header with the prefix", []reqOpt{rawHeader("X-Remote-Is-Admin", "true"), rawHeader("x-remote-tenant", "other")}},
		{"all at once", []reqOpt{rawHeader("X-Remote-User", "a"), rawHeader("x-remote-user", "b"), rawHeader("X_REMOTE_USER", "c"),
			rawHeader("X-Remote-Email", "d"), rawHeader("X-Remote-Name", "e"), rawHeader("X-Remote-Groups", "f"),
			rawHeader("X-Remote-Role", "g"), rawHeader("X-Remote-Assertion", "h")}},
	}
	routes := []struct {
		name    string
		srv     *httptest.Server
		session bool
		want    map[string]string // canonical header -> value; others must be absent
	}{
		{"protected with session", protected, true, map[string]string{
			"X-Remote-User": "alice", "X-Remote-Email": "alice@example.com", "X-Remote-Name": "User alice", "X-Remote-Role": "viewer"}},
		{"public with session", public, true, map[string]string{
			"X-Remote-User": "alice", "X-Remote-Email": "alice@example.com", "X-Remote-Name": "User alice", "X-Remote-Role": "viewer"}},
		{"public without session", public, false, map[string]string{}},
	}
	for _, rt := range routes {
		for _, fg := range forgeries {
			t.Run(rt.name+"/"+fg.name, func(t *testing.T) {
				opts := append([]reqOpt{asAPI}, fg.opts...)
				if rt.session {
					opts = append(opts, withCookie(cookie))
				}
				_, before := up.received()
				res := get(t, rt.srv, "/page", opts...)
				got, after := up.received()
				if res.status != http.StatusOK || after != before+1 {
					t.Fatalf("status %d, upstream hits %d -> %d; want 200 reaching the upstream", res.status, before, after)
				}
				for name, vals := range got {
					if !strings.HasPrefix(normaliseHeaderName(name), "x-remote-") {
						continue
					}
					want, ok := rt.want[name]
					if !ok {
						t.Errorf("upstream received %s: %q; want it stripped", name, vals)
						continue
					}
					if len(vals) != 1 || vals[0] != want {
						t.Errorf("upstream received %s: %q; want exactly [%q]", name, vals, want)
					}
				}
				for name, want := range rt.want {
					if got.Get(name) != want {
						t.Errorf("upstream %s = %q, want %q", name, got.Get(name), want)
					}
				}
			})
		}
	}
}

// TestStripNonCanonicalKeys runs the gate on a header map holding the same
// header under several keys, as a handler before it may leave it.
func TestStripNonCanonicalKeys(t *testing.T) {
	f := newFixture(t)
	g := f.gate(f.identities(threeRoles()), GateConfig{Policy: Policy{Public: true},
		Headers: HeaderNames{Prefix: "X-Auth-", User: "Remote-User"}})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header = http.Header{
		"X-Auth-User":  {"a"},
		"x-auth-user":  {"b", "c"},
		"X-AUTH-ROLE":  {"admin"},
		"x_auth_email": {"e"},
		"Remote-User":  {"mallory"},
		"remote-user":  {"mallory"},
		"REMOTE_USER":  {"mallory"},
		"X-Remote-Me":  {"kept: not our prefix here"},
		"Accept":       {"*/*"},
	}
	w := httptest.NewRecorder()
	if _, ok := g.Authorize(w, r); !ok {
		t.Fatalf("public route refused: %d", w.Code)
	}
	for name := range r.Header {
		switch name {
		case "X-Remote-Me", "Accept":
		default:
			t.Errorf("header %q survived", name)
		}
	}
}

func TestHeaderNamesConfig(t *testing.T) {
	tests := []struct {
		name    string
		h       HeaderNames
		want    HeaderNames
		wantErr string
	}{
		{name: "defaults", want: HeaderNames{User: "X-Remote-User", Email: "X-Remote-Email", Name: "X-Remote-Name",
			Groups: "X-Remote-Groups", Role: "X-Remote-Role", Assertion: "X-Remote-Assertion"}},
		{name: "prefix", h: HeaderNames{Prefix: "x-auth-"}, want: HeaderNames{User: "X-Auth-User", Email: "X-Auth-Email",
			Name: "X-Auth-Name", Groups: "X-Auth-Groups", Role: "X-Auth-Role", Assertion: "X-Auth-Assertion"}},
		{name: "override", h: HeaderNames{User: "Remote-User"}, want: HeaderNames{User: "Remote-User", Email: "X-Remote-Email",
			Name: "X-Remote-Name", Groups: "X-Remote-Groups", Role: "X-Remote-Role", Assertion: "X-Remote-Assertion"}},
		{name: "prefix too broad", h: HeaderNames{Prefix: "X-"}, wantErr: "too broad"},
		{name: "prefix forwarded", h: HeaderNames{Prefix: "X-Forwarded-"}, wantErr: "too broad"},
		{name: "invalid name", h: HeaderNames{User: "Remote User"}, wantErr: "not a valid header name"},
		{name: "same name twice", h: HeaderNames{User: "X-Who", Name: "x_who"}, wantErr: "two identity values"},
	}
	f := newFixture(t)
	ids := f.identities(threeRoles())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGate(GateConfig{Identities: ids, Headers: tc.h})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewGate error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := g.HeaderNames(); got != tc.want {
				t.Fatalf("header names %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{}), up)
	noLogin := serve(t, f.gate(ids, GateConfig{LoginURL: func(string) string { return "" }}), up)

	tests := []struct {
		name       string
		srv        *httptest.Server
		path       string
		opts       []reqOpt
		wantStatus int
		wantReturn string // return path in the login redirect
	}{
		{"browser redirected with path and query", srv, "/reports/q1?year=2024&x=%2F", []reqOpt{asBrowser}, http.StatusFound, "/reports/q1?year=2024&x=%2F"},
		{"browser with unknown cookie", srv, "/a", []reqOpt{asBrowser, withCookie("deadbeef")}, http.StatusFound, "/a"},
		{"scheme-relative path is not a return path", srv, "//evil.example/x", []reqOpt{asBrowser}, http.StatusFound, "/"},
		{"backslash path is refused before any redirect", srv, "/\\evil.example/x", []reqOpt{asBrowser}, http.StatusBadRequest, ""},
		{"encoded slashes are not a return path", srv, "/%2F%2Fevil.example/x", []reqOpt{asBrowser}, http.StatusFound, "/"},
		{"encoded tab is refused before any redirect", srv, "/%09/evil.example/x", []reqOpt{asBrowser}, http.StatusBadRequest, ""},
		{"encoded slash inside a path is kept", srv, "/files/a%2Fb", []reqOpt{asBrowser}, http.StatusFound, "/files/a%2Fb"},
		{"api client gets 401", srv, "/api/items", []reqOpt{asAPI}, http.StatusUnauthorized, ""},
		{"no accept header gets 401", srv, "/api/items", nil, http.StatusUnauthorized, ""},
		{"browser without login url gets a 401 page", noLogin, "/a", []reqOpt{asBrowser}, http.StatusUnauthorized, "page"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, before := up.received()
			res := get(t, tc.srv, tc.path, tc.opts...)
			if _, after := up.received(); after != before {
				t.Fatal("an unauthenticated request reached the upstream")
			}
			if res.status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", res.status, tc.wantStatus, res.body)
			}
			if cc := res.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			switch tc.wantStatus {
			case http.StatusFound:
				loc, err := url.Parse(res.header.Get("Location"))
				if err != nil || loc.Path != "/portcullis/login" {
					t.Fatalf("Location %q, want the login URL", res.header.Get("Location"))
				}
				if got := loc.Query().Get("return"); got != tc.wantReturn {
					t.Fatalf("return path %q, want %q", got, tc.wantReturn)
				}
			case http.StatusUnauthorized:
				if tc.wantReturn == "page" {
					if !strings.Contains(res.body, "<h1>Sign in first</h1>") || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
						t.Fatalf("body %q, want the sign-in-required page", res.body)
					}
					return
				}
				var body struct{ Error string }
				if err := json.Unmarshal([]byte(res.body), &body); err != nil || body.Error != "unauthenticated" {
					t.Fatalf("body %q, want JSON with error unauthenticated", res.body)
				}
				if ct := res.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
		})
	}
}

func TestForbiddenNamesTheLevel(t *testing.T) {
	f := newFixture(t)
	editors := f.group("Editors", "")
	staff := f.group("Staff", "okta-staff")
	ids := f.identities(threeRoles(GroupMapping{Group: "Editors", Role: "editor"}))
	viewer := f.user("vic")
	editor := f.user("eddie")
	f.join(editor, editors)
	vicCookie, eddieCookie := f.signIn(viewer), f.signIn(editor)
	up := &upstream{}
	adminOnly := serve(t, f.gate(ids, GateConfig{Policy: Policy{Require: "admin"}, Route: "admin"}), up)
	editorUp := serve(t, f.gate(ids, GateConfig{Policy: Policy{Require: "Editor"}}), up)
	staffOnly := serve(t, f.gate(ids, GateConfig{Policy: Policy{AllowGroups: []string{"okta-staff", "Contractors"}}}), up)

	tests := []struct {
		name       string
		srv        *httptest.Server
		cookie     string
		accept     reqOpt
		wantStatus int
		wantBody   []string
	}{
		{"viewer on admin page, browser", adminOnly, vicCookie, asBrowser, 403, []string{"<strong>admin</strong> role", "your role is <strong>viewer</strong>"}},
		{"viewer on admin page, api", adminOnly, vicCookie, asAPI, 403, []string{`"required_role":"admin"`, `"role":"viewer"`, `"error":"forbidden"`}},
		{"editor on admin page", adminOnly, eddieCookie, asBrowser, 403, []string{"<strong>admin</strong> role", "<strong>editor</strong>"}},
		{"viewer on editor page", editorUp, vicCookie, asAPI, 403, []string{`"required_role":"editor"`}},
		{"editor on editor page", editorUp, eddieCookie, asAPI, 200, []string{"upstream"}},
		{"not in allowed groups, browser", staffOnly, eddieCookie, asBrowser, 403, []string{"<strong>okta-staff</strong>, <strong>Contractors</strong>"}},
		{"not in allowed groups, api", staffOnly, vicCookie, asAPI, 403, []string{`"allowed_groups":["okta-staff","Contractors"]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.srv, "/page", tc.accept, withCookie(tc.cookie))
			if res.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.status, tc.wantStatus, res.body)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(res.body, want) {
					t.Errorf("body lacks %q:\n%s", want, res.body)
				}
			}
		})
	}

	// Joining the allowed group (by externalId) lets the user in at once.
	f.join(viewer, staff)
	if res := get(t, staffOnly, "/page", asAPI, withCookie(vicCookie)); res.status != http.StatusOK {
		t.Fatalf("after joining the allowed group: status %d", res.status)
	}

	// Denials are audited, once a minute per user and route.
	before := len(f.events(storage.EventAccessDenied))
	for range 3 {
		get(t, adminOnly, "/page", asAPI, withCookie(eddieCookie))
	}
	if got := len(f.events(storage.EventAccessDenied)); got != before {
		t.Fatalf("repeated denials wrote %d more events within a minute, want 0", got-before)
	}
	f.clock.Advance(61 * time.Second)
	get(t, adminOnly, "/page", asAPI, withCookie(eddieCookie))
	evs := f.events(storage.EventAccessDenied)
	if len(evs) != before+1 || evs[0].Actor != editor.ID || evs[0].ActorName != editor.UserName || editor.UserName == "" ||
		evs[0].ResourceID != "admin" || !strings.Contains(evs[0].Reason, "requires role admin") {
		t.Fatalf("denial events %+v", evs)
	}
}

// TestRoleResolution covers how groups map to levels.
func TestRoleResolution(t *testing.T) {
	tests := []struct {
		name     string
		roles    func(g map[string]*storage.Group) Roles
		member   []string // groups (by fixture key) the user is in
		wantRole string
		wantCode int // 0: 200
	}{
		{
			name:     "highest of several mapped groups",
			roles:    func(map[string]*storage.Group) Roles { return mapAll() },
			member:   []string{"viewers", "admins", "editors"},
			wantRole: "admin",
		},
		{
			name:     "unmapped groups give the lowest level",
			roles:    func(map[string]*storage.Group) Roles { return mapAll() },
			member:   []string{"other"},
			wantRole: "viewer",
		},
		{
			name: "explicit default role",
			roles: func(map[string]*storage.Group) Roles {
				r := mapAll()
				r.Default = "editor"
				return r
			},
			member:   nil,
			wantRole: "editor",
		},
		{
			name: "a mapped group below the default still wins over the default",
			roles: func(map[string]*storage.Group) Roles {
				r := mapAll()
				r.Default = "editor"
				return r
			},
			member:   []string{"viewers"},
			wantRole: "viewer",
		},
		{
			name: "display name matches ignoring case",
			roles: func(map[string]*storage.Group) Roles {
				return threeRoles(GroupMapping{Group: "eDiToRs", Role: "editor"})
			},
			member:   []string{"editors"},
			wantRole: "editor",
		},
		{
			name: "mapping by id",
			roles: func(g map[string]*storage.Group) Roles {
				return threeRoles(GroupMapping{Group: strings.ToUpper(g["admins"].ID), Role: "admin"})
			},
			member:   []string{"admins"},
			wantRole: "admin",
		},
		{
			name: "externalId binds before another group's display name",
			roles: func(map[string]*storage.Group) Roles {
				// "ext-admins" is the admins' externalId and also the
				// display name of group "impostor".
				return threeRoles(GroupMapping{Group: "ext-admins", Role: "admin"})
			},
			member:   []string{"impostor"},
			wantRole: "viewer",
		},
		{
			name: "same group mapped twice takes the higher role",
			roles: func(map[string]*storage.Group) Roles {
				return threeRoles(GroupMapping{Group: "Editors", Role: "editor"}, GroupMapping{Group: "ext-editors", Role: "admin"})
			},
			member:   []string{"editors"},
			wantRole: "admin",
		},
		{
			name: "no roles declared: authenticated only",
			roles: func(map[string]*storage.Group) Roles {
				return Roles{}
			},
			member:   []string{"admins"},
			wantRole: "",
		},
		{
			name: "require_mapped_group with a mapped group",
			roles: func(map[string]*storage.Group) Roles {
				r := mapAll()
				r.RequireMappedGroup = true
				return r
			},
			member:   []string{"editors", "other"},
			wantRole: "editor",
		},
		{
			name: "require_mapped_group without one",
			roles: func(map[string]*storage.Group) Roles {
				r := mapAll()
				r.RequireMappedGroup = true
				return r
			},
			member:   []string{"other"},
			wantCode: http.StatusForbidden,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			groups := map[string]*storage.Group{
				"viewers":  f.group("Viewers", "ext-viewers"),
				"editors":  f.group("Editors", "ext-editors"),
				"admins":   f.group("Admins", "ext-admins"),
				"other":    f.group("Other", ""),
				"impostor": f.group("ext-admins", ""),
			}
			u := f.user("uma")
			for _, k := range tc.member {
				f.join(u, groups[k])
			}
			up := &upstream{}
			srv := serve(t, f.gate(f.identities(tc.roles(groups)), GateConfig{}), up)
			res := get(t, srv, "/", asAPI, withCookie(f.signIn(u)))
			want := tc.wantCode
			if want == 0 {
				want = http.StatusOK
			}
			if res.status != want {
				t.Fatalf("status %d, want %d: %s", res.status, want, res.body)
			}
			if want != http.StatusOK {
				return
			}
			h, _ := up.received()
			if got := h.Get("X-Remote-Role"); got != tc.wantRole {
				t.Fatalf("role %q, want %q", got, tc.wantRole)
			}
			if _, present := h["X-Remote-Role"]; tc.wantRole == "" && present {
				t.Fatal("role header sent for a tenant without roles")
			}
			if res.header.Get("Test-Identity-Role") != tc.wantRole {
				t.Fatalf("identity on the context has role %q", res.header.Get("Test-Identity-Role"))
			}
		})
	}
}

func mapAll() Roles {
	return threeRoles(
		GroupMapping{Group: "viewers", Role: "viewer"},
		GroupMapping{Group: "ext-editors", Role: "editor"},
		GroupMapping{Group: "Admins", Role: "admin"},
	)
}

func TestRequireMappedGroupEndsAccess(t *testing.T) {
	f := newFixture(t)
	editors := f.group("Editors", "00gEDIT")
	r := threeRoles(GroupMapping{Group: "00gEDIT", Role: "editor"})
	r.RequireMappedGroup = true
	ids := f.identities(r)
	u := f.user("ursula")
	f.join(u, editors)
	cookie := f.signIn(u)
	f.signIn(u) // a second browser
	srv := serve(t, f.gate(ids, GateConfig{}), &upstream{})

	if res := get(t, srv, "/", asAPI, withCookie(cookie)); res.status != http.StatusOK {
		t.Fatalf("mapped user: status %d", res.status)
	}
	// The IdP removes her from the only mapped group.
	f.leave(u, editors)
	res := get(t, srv, "/", asBrowser, withCookie(cookie))
	if res.status != http.StatusForbidden || !strings.Contains(res.body, "none of the groups") {
		t.Fatalf("after removal: status %d body %s", res.status, res.body)
	}
	if n := f.sessionCount(u); n != 0 {
		t.Fatalf("%d sessions left, want every session ended", n)
	}
	evs := f.events(storage.EventAccessDenied)
	if len(evs) != 1 || evs[0].ResourceID != u.ID || evs[0].ResourceName != u.UserName || !strings.Contains(evs[0].Reason, "2 session(s) ended") {
		t.Fatalf("audit events %+v", evs)
	}
	var stored *storage.User
	f.view(func(tx storage.ReadTx) error {
		var err error
		stored, err = tx.GetUser(u.ID)
		return err
	})
	if !stored.Active {
		t.Fatal("the gate deactivated the user; the IdP owns that flag")
	}
	// The next request has no session: sign in again.
	if res := get(t, srv, "/", asBrowser, withCookie(cookie)); res.status != http.StatusFound {
		t.Fatalf("next request: status %d, want a redirect to sign-in", res.status)
	}
	// Added back and signed in again, she gets in.
	f.join(u, editors)
	if res := get(t, srv, "/", asAPI, withCookie(f.signIn(u))); res.status != http.StatusOK {
		t.Fatalf("after re-adding: status %d", res.status)
	}
}

func TestMappingSurvivesRename(t *testing.T) {
	f := newFixture(t)
	g := f.group("Editors", "okta-00g1")
	byExternal := f.identities(threeRoles(GroupMapping{Group: "okta-00g1", Role: "editor"}))
	byName := f.identities(threeRoles(GroupMapping{Group: "Editors", Role: "editor"}))
	u := f.user("rita")
	f.join(u, g)
	cookie := f.signIn(u)
	up := &upstream{}
	srvExternal := serve(t, f.gate(byExternal, GateConfig{}), up)
	srvName := serve(t, f.gate(byName, GateConfig{}), up)

	roleVia := func(srv *httptest.Server) string {
		t.Helper()
		if res := get(t, srv, "/", asAPI, withCookie(cookie)); res.status != http.StatusOK {
			t.Fatalf("status %d", res.status)
		}
		h, _ := up.received()
		return h.Get("X-Remote-Role")
	}
	if a, b := roleVia(srvExternal), roleVia(srvName); a != "editor" || b != "editor" {
		t.Fatalf("before rename: %q %q", a, b)
	}
	g.DisplayName = "Content Editors"
	f.update(func(tx storage.Tx) error { return tx.PutGroup(g) })
	if got := roleVia(srvExternal); got != "editor" {
		t.Fatalf("mapping by externalId after rename: role %q, want editor", got)
	}
	if got := roleVia(srvName); got != "viewer" {
		t.Fatalf("mapping by the old display name after rename: role %q, want viewer", got)
	}
	h, _ := up.received()
	if got := h.Get("X-Remote-Groups"); got != "Content Editors" {
		t.Fatalf("groups header %q after rename", got)
	}
}

// TestChangesTakeEffectOnNextRequest writes through the store between
// requests of one session, as the SCIM handler would, and checks the very
// next request sees each change, though the cache served the ones before.
func TestChangesTakeEffectOnNextRequest(t *testing.T) {
	f := newFixture(t)
	editors := f.group("Editors", "")
	admins := f.group("Admins, Global", "")
	ids := f.identities(threeRoles(GroupMapping{Group: "Editors", Role: "editor"}, GroupMapping{Group: "Admins, Global", Role: "admin"}))
	u := f.user("carl")
	other := f.user("olga")
	cookie := f.signIn(u)
	otherCookie := f.signIn(other)
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{}), up)

	expect := func(step string, wantStatus int, wantRole, wantGroups string) {
		t.Helper()
		res := get(t, srv, "/", asAPI, withCookie(cookie))
		if res.status != wantStatus {
			t.Fatalf("%s: status %d, want %d: %s", step, res.status, wantStatus, res.body)
		}
		if wantStatus != http.StatusOK {
			return
		}
		h, _ := up.received()
		if h.Get("X-Remote-Role") != wantRole || h.Get("X-Remote-Groups") != wantGroups {
			t.Fatalf("%s: role %q groups %q, want %q %q", step, h.Get("X-Remote-Role"), h.Get("X-Remote-Groups"), wantRole, wantGroups)
		}
	}

	expect("start", 200, "viewer", "")
	lookups := f.sessions.lookups.Load()
	expect("cached", 200, "viewer", "")
	if f.sessions.lookups.Load() != lookups {
		t.Fatal("a request with a current cache entry went to the session store")
	}
	f.join(u, editors)
	expect("added to editors", 200, "editor", "Editors")
	f.join(u, admins)
	expect("added to admins", 200, "admin", `"Admins, Global", Editors`)
	f.leave(u, admins)
	expect("removed from admins", 200, "editor", "Editors")
	f.update(func(tx storage.Tx) error { return tx.DeleteGroup(editors.ID) })
	expect("editors group deleted", 200, "viewer", "")

	// Deactivation as the SCIM layer does it: active false and sessions ended.
	if res := get(t, srv, "/", asAPI, withCookie(otherCookie)); res.status != 200 {
		t.Fatalf("other user: %d", res.status)
	}
	other.Active = false
	f.update(func(tx storage.Tx) error {
		if err := tx.PutUser(other); err != nil {
			return err
		}
		_, err := tx.DeleteSessionsOf(other.ID)
		return err
	})
	if res := get(t, srv, "/", asAPI, withCookie(otherCookie)); res.status != http.StatusUnauthorized {
		t.Fatalf("deactivated user: status %d, want 401", res.status)
	}

	// Deactivation without ending sessions: the gate ends them itself.
	u.Active = false
	f.update(func(tx storage.Tx) error { return tx.PutUser(u) })
	res := get(t, srv, "/", asBrowser, withCookie(cookie))
	if res.status != http.StatusForbidden || !strings.Contains(res.body, "deactivated") {
		t.Fatalf("inactive user with a session: status %d body %s", res.status, res.body)
	}
	if n := f.sessionCount(u); n != 0 {
		t.Fatalf("inactive user still has %d sessions", n)
	}
	evs := f.events(storage.EventAccessDenied)
	if len(evs) != 1 || evs[0].ResourceID != u.ID || !strings.Contains(evs[0].Reason, "inactive") {
		t.Fatalf("audit events %+v", evs)
	}
	expect("after deactivation", http.StatusUnauthorized, "", "")
}

func TestDeletedUserRefused(t *testing.T) {
	f := newFixture(t)
	u := f.user("dora")
	cookie := f.signIn(u)
	srv := serve(t, f.gate(f.identities(threeRoles()), GateConfig{}), &upstream{})
	if res := get(t, srv, "/", asAPI, withCookie(cookie)); res.status != 200 {
		t.Fatalf("before delete: %d", res.status)
	}
	f.update(func(tx storage.Tx) error { return tx.DeleteUser(u.ID) })
	if res := get(t, srv, "/", asAPI, withCookie(cookie)); res.status != http.StatusUnauthorized {
		t.Fatalf("deleted user: status %d, want 401", res.status)
	}
	if res := get(t, srv, "/x", asBrowser, withCookie(cookie)); res.status != http.StatusFound {
		t.Fatalf("deleted user in a browser: status %d, want a redirect to sign-in", res.status)
	}
}

func TestSessionExpiryOnCacheHit(t *testing.T) {
	f := newFixture(t)
	f.sessions.idle = 30 * time.Minute
	u := f.user("eve")
	cookie := f.signIn(u)
	ids := f.identities(threeRoles())
	srv := serve(t, f.gate(ids, GateConfig{}), &upstream{})

	steps := []struct {
		advance    time.Duration
		wantStatus int
	}{
		{0, 200},
		{20 * time.Minute, 200}, // goes through Lookup (LastSeen is old), which refreshes it
		{20 * time.Minute, 200}, // idle 20 min since the refresh: still fine
		{31 * time.Minute, 401}, // idle longer than 30 minutes
	}
	for i, s := range steps {
		f.clock.Advance(s.advance)
		if res := get(t, srv, "/", asAPI, withCookie(cookie)); res.status != s.wantStatus {
			t.Fatalf("step %d: status %d, want %d", i, res.status, s.wantStatus)
		}
	}

	// Absolute expiry, checked on a cache hit without a store write between.
	u2 := f.user("fay")
	c2 := f.signIn(u2)
	f.sessions.idle = 0
	if res := get(t, srv, "/", asAPI, withCookie(c2)); res.status != 200 {
		t.Fatalf("fresh session: %d", res.status)
	}
	f.clock.Advance(12*time.Hour + time.Second)
	lookups := f.sessions.lookups.Load()
	if res := get(t, srv, "/", asAPI, withCookie(c2)); res.status != http.StatusUnauthorized {
		t.Fatalf("expired session: status %d, want 401", res.status)
	}
	if f.sessions.lookups.Load() != lookups {
		t.Fatal("the expired session was decided by the store, not by the cache entry")
	}
}

func TestPublicRoute(t *testing.T) {
	f := newFixture(t)
	g := f.group("Editors", "")
	ids := f.identities(threeRoles(GroupMapping{Group: "Editors", Role: "editor"}))
	u := f.user("pat")
	f.join(u, g)
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{Policy: Policy{Public: true}}), up)

	for _, accept := range []reqOpt{asBrowser, asAPI} {
		if res := get(t, srv, "/", accept); res.status != 200 {
			t.Fatalf("anonymous on public route: %d", res.status)
		}
		if h, _ := up.received(); h.Get("X-Remote-User") != "" {
			t.Fatal("anonymous request got identity headers")
		}
	}
	if res := get(t, srv, "/", asAPI, withCookie(f.signIn(u))); res.status != 200 {
		t.Fatalf("signed in on public route: %d", res.status)
	}
	if h, _ := up.received(); h.Get("X-Remote-User") != "pat" || h.Get("X-Remote-Role") != "editor" {
		t.Fatalf("public route with a session: headers %v", h)
	}
}

func TestPolicyConfig(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	tests := []struct {
		name    string
		cfg     GateConfig
		wantErr string
	}{
		{"unknown role", GateConfig{Policy: Policy{Require: "owner"}}, "not one of the roles"},
		{"public and require", GateConfig{Policy: Policy{Public: true, Require: "viewer"}}, "public route"},
		{"empty group", GateConfig{Policy: Policy{AllowGroups: []string{" "}}}, "empty group"},
		{"audience without signer", GateConfig{AssertionAudience: "app"}, "signer and an audience"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Identities = ids
			if _, err := NewGate(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewGate: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRolesValidate(t *testing.T) {
	tests := []struct {
		name    string
		roles   Roles
		wantErr string
	}{
		{"ok", threeRoles(GroupMapping{"g", "admin"}), ""},
		{"no roles at all", Roles{}, ""},
		{"duplicate", Roles{Levels: []string{"a", "A"}}, "listed twice"},
		{"bad name", Roles{Levels: []string{"super user"}}, "printable ASCII"},
		{"unknown default", Roles{Levels: []string{"a"}, Default: "b"}, "default role"},
		{"mapping to unknown role", threeRoles(GroupMapping{"g", "owner"}), "not one of the roles"},
		{"empty group", threeRoles(GroupMapping{"", "admin"}), "empty group"},
		{"require mapped without mappings", Roles{Levels: []string{"a"}, RequireMappedGroup: true}, "refuse everyone"},
		{"mappings without roles", Roles{Mappings: []GroupMapping{{"g", "a"}}}, "needs roles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.roles.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnresolvedGroups(t *testing.T) {
	f := newFixture(t)
	f.group("Editors", "ext-ed")
	ids := f.identities(threeRoles(GroupMapping{"ext-ed", "editor"}, GroupMapping{"Editrs", "admin"}))
	f.gate(ids, GateConfig{Policy: Policy{AllowGroups: []string{"editors", "Ghosts"}}})
	got, err := ids.UnresolvedGroups(context.Background())
	if err != nil || strings.Join(got, ",") != "Editrs,Ghosts" {
		t.Fatalf("UnresolvedGroups = %q, %v; want Editrs, Ghosts", got, err)
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t)
	ids, err := NewIdentities(IdentitiesConfig{Tenant: testTenant, Store: f.store, Sessions: f.sessions,
		Roles: threeRoles(), Now: f.clock.Now, CacheSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, f.gate(ids, GateConfig{}), &upstream{})
	var cookies []string
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5"} {
		cookies = append(cookies, f.signIn(f.user(name)))
	}
	for _, c := range cookies {
		if res := get(t, srv, "/", asAPI, withCookie(c)); res.status != 200 {
			t.Fatalf("status %d", res.status)
		}
	}
	if n := ids.CacheLen(); n != 3 {
		t.Fatalf("cache holds %d sessions, want the bound 3", n)
	}
}

func TestDisplayNameFallback(t *testing.T) {
	tests := []struct {
		user storage.User
		want string
	}{
		{storage.User{DisplayName: "Ann Lee"}, "Ann Lee"},
		{storage.User{Attributes: []byte(`{"name":{"formatted":"Dr Ann Lee","givenName":"Ann"}}`)}, "Dr Ann Lee"},
		{storage.User{Attributes: []byte(`{"name":{"givenName":"Ann","familyName":"Lee"}}`)}, "Ann Lee"},
		{storage.User{Attributes: []byte(`not json`)}, ""},
	}
	for _, tc := range tests {
		if got := displayName(&tc.user); got != tc.want {
			t.Errorf("displayName(%s) = %q, want %q", tc.user.Attributes, got, tc.want)
		}
	}
	if got := headerSafe(" evil\r\nX-Remote-Role: admin "); got != "evil\uFFFD\uFFFDX-Remote-Role: admin" {
		t.Errorf("headerSafe = %q", got)
	}
}

// TestConcurrentRequestsAndWrites runs requests from several goroutines
// while the store changes the user's groups, then checks the first request
// after the last write sees its result. Run with -race.
func TestConcurrentRequestsAndWrites(t *testing.T) {
	f := newFixture(t)
	admins := f.group("Admins", "")
	ids := f.identities(threeRoles(GroupMapping{"Admins", "admin"}))
	signer := newSigner(t, f.store)
	g := f.gate(ids, GateConfig{Assertions: signer, AssertionAudience: testAudience})
	u := f.user("zed")
	cookie := f.signIn(u)
	req := func() (*Identity, bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: testCookie, Value: cookie})
		r.Header.Set("X-Remote-Role", "admin")
		return g.Authorize(httptest.NewRecorder(), r)
	}
	done := make(chan struct{})
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			for i := 0; i < 200; i++ {
				select {
				case <-done:
					errs <- ""
					return
				default:
				}
				if id, ok := req(); !ok || (id.Role != "viewer" && id.Role != "admin") {
					errs <- "refused or unknown role"
					return
				}
			}
			errs <- ""
		}()
	}
	for i := range 20 {
		if i%2 == 0 {
			f.join(u, admins)
		} else {
			f.leave(u, admins)
		}
	}
	close(done)
	for range 4 {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	if id, ok := req(); !ok || id.Role != "viewer" {
		t.Fatalf("after the last write (removed from admins): %+v %v", id, ok)
	}
}
