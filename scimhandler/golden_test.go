package scimhandler_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.response.json from the handler's answers")

// goldenStep is one request of a client's provisioning run. Its body, if
// any, is testdata/<client>/<name>.request.json.
type goldenStep struct {
	name    string
	method  string
	path    string // relative to the base URL; may hold {{placeholders}}
	status  []int  // accepted answers
	capture string // bind the answer's id to this placeholder
	golden  bool   // compare with <name>.response.json
	check   func(t *testing.T, g *goldenRun, r response)
}

type goldenRun struct {
	e      *testEnv
	client string
	ids    map[string]string // placeholder → id
}

func (g *goldenRun) fill(s string) string {
	for name, id := range g.ids {
		s = strings.ReplaceAll(s, "{{"+name+"}}", id)
		s = strings.ReplaceAll(s, q("{{"+name+"}}"), id) // inside escaped query values
	}
	return s
}

func runGolden(t *testing.T, client string, steps []goldenStep) {
	e := newEnv(t)
	g := &goldenRun{e: e, client: client, ids: map[string]string{}}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			var body any
			file := filepath.Join("testdata", client, s.name+".request.json")
			if raw, err := os.ReadFile(file); err == nil {
				if !json.Valid(raw) {
					t.Fatalf("%s is not valid JSON", file)
				}
				body = g.fill(string(raw))
			}
			r := e.do(s.method, g.fill(s.path), body)
			accepted := false
			for _, st := range s.status {
				accepted = accepted || r.status == st
			}
			if !accepted {
				t.Fatalf("%s %s: status %d, want %v: %s", s.method, s.path, r.status, s.status, r.body)
			}
			if s.capture != "" {
				g.ids[s.capture] = str(r.obj(t)["id"])
			}
			if s.golden {
				g.compareGolden(t, s.name, r)
			}
			if s.check != nil {
				s.check(t, g, r)
			}
		})
		if !ok {
			return // later steps depend on this one
		}
	}
}

// normalise replaces the volatile values of an answer with placeholders.
func (g *goldenRun) normalise(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			out[k] = g.normalise(e, k)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = g.normalise(e, "")
		}
		return out
	case string:
		if key == "created" || key == "lastModified" {
			return "{{time}}"
		}
		t = strings.ReplaceAll(t, g.e.base, "{{base}}")
		names := make([]string, 0, len(g.ids))
		for n := range g.ids {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t = strings.ReplaceAll(t, g.ids[n], "{{"+n+"}}")
		}
		return t
	}
	return v
}

func (g *goldenRun) compareGolden(t *testing.T, name string, r response) {
	t.Helper()
	got, err := json.MarshalIndent(g.normalise(r.obj(t), ""), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	file := filepath.Join("testdata", g.client, name+".response.json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var wantV any
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	wantNorm, _ := json.MarshalIndent(wantV, "", "  ")
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(wantNorm)) {
		t.Errorf("answer differs from %s:\ngot:\n%s\nwant:\n%s", file, got, wantNorm)
	}
}

func expect(t *testing.T, doc any, want map[string]any) {
	t.Helper()
	for p, w := range want {
		var v = doc
		for _, step := range strings.Split(p, "/") {
			var idx int
			if _, err := fmt.Sscanf(step, "%d", &idx); err == nil && fmt.Sprint(idx) == step {
				v = path(v, idx)
			} else {
				v = path(v, step)
			}
		}
		if n, ok := v.(json.Number); ok {
			v = num(n)
		}
		if fmt.Sprint(v) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", p, v, w)
		}
	}
}

var (
	ok200      = []int{http.StatusOK}
	ok201      = []int{http.StatusCreated}
	ok204      = []int{http.StatusNoContent}
	ok200or204 = []int{http.StatusOK, http.StatusNoContent}
)

func TestGoldenEntra(t *testing.T) {
	runGolden(t, "entra", []goldenStep{
		// Test Connection: a query for a random user answers an empty list.
		{name: "00-test-connection", method: "GET", path: "/Users?filter=" + q(`userName eq "non-existent user"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"totalResults": 0, "startIndex": 1, "itemsPerPage": 0})
				if !strings.Contains(string(r.body), `"Resources":[]`) {
					t.Errorf("Resources must be an empty list: %s", r.body)
				}
			}},
		{name: "01-create-user", method: "POST", path: "/Users", status: ok201, capture: "user", golden: true},
		{name: "02-get-user-by-query", method: "GET", path: "/Users?filter=" + q(`userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"totalResults": 1, "Resources/0/id": g.ids["user"],
					"Resources/0/externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"})
			}},
		{name: "02-get-user-by-work-email", method: "GET", path: "/Users?filter=" + q(`emails[type eq "work"].value eq "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"totalResults": 1, "Resources/0/id": g.ids["user"]})
			}},
		{name: "02-get-user-by-externalId", method: "GET", path: "/Users?filter=" + q(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"totalResults": 1})
			}},
		{name: "03-create-second-user", method: "POST", path: "/Users", status: ok201, capture: "user2",
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{
					"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department": "Human Resources US",
					"addresses/0/country": "ML", "schemas/1": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"})
			}},
		{name: "04-update-user-multi-valued", method: "PATCH", path: "/Users/{{user}}", status: ok200or204, golden: true},
		{name: "05-update-user-single-valued", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"userName": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"})
			}},
		{name: "06-add-single-value-string", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"nickName": "Babs"}) }},
		{name: "07-replace-attributes-with-paths", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"displayName": "Pvlo", "emails/0/value": "TestBcwqnm@test.microsoft.com",
					"emails/0/type": "work", "name/givenName": "Gtfd", "name/familyName": "Pkqf", "externalId": "Eqpj",
					"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber": "Eqpj"})
			}},
		{name: "08-replace-attributes-without-path", method: "PATCH", path: "/Users/{{user}}", status: ok200or204, golden: true},
		{name: "08-query-by-enterprise-department", method: "GET", path: "/Users?filter=" + q(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"totalResults": 1, "Resources/0/id": g.ids["user"]})
			}},
		{name: "09-disable-user-string-false", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"active": false})
				if g.e.user(g.ids["user"]).Active {
					t.Error("stored user still active")
				}
			}},
		{name: "10-enable-user-boolean", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"active": true}) }},
		{name: "11-disable-user", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"active": false}) }},
		// Soft-deleted users are still returned.
		{name: "11-get-disabled-user", method: "GET", path: "/Users/{{user}}", status: ok200},
		{name: "12-create-group", method: "POST", path: "/Groups", status: ok201, capture: "group", golden: true},
		{name: "13-get-group-without-members", method: "GET", path: "/Groups/{{group}}?excludedAttributes=members", status: ok200, golden: true},
		{name: "14-get-group-by-display-name", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + q(`displayName eq "displayName"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				doc := r.obj(t)
				expect(t, doc, map[string]any{"totalResults": 1, "Resources/0/id": g.ids["group"], "Resources/0/members": nil})
			}},
		{name: "14-get-group-by-display-name-none", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + q(`displayName eq "nope"`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"totalResults": 0}) }},
		{name: "15-update-group-display-name", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204},
		{name: "16-add-members", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if m := g.e.members(g.ids["group"]); len(m) != 2 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "16-check-membership", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + q(`id eq "{{group}}" and members[value eq "{{user}}"]`), status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"totalResults": 1}) }},
		{name: "17-remove-members-by-value", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				m := g.e.members(g.ids["group"])
				if len(m) != 1 || m[g.ids["user2"]] == "" {
					t.Errorf("only the listed member must go: %v", m)
				}
			}},
		{name: "18-remove-member-by-filter", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if m := g.e.members(g.ids["group"]); len(m) != 0 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "19-delete-user", method: "DELETE", path: "/Users/{{user}}", status: ok204},
		{name: "19-get-deleted-user", method: "GET", path: "/Users/{{user}}", status: []int{http.StatusNotFound},
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"status": "404"}) }},
		{name: "20-delete-group", method: "DELETE", path: "/Groups/{{group}}", status: ok204},
	})
}

func TestGoldenOkta(t *testing.T) {
	var putETag string
	runGolden(t, "okta", []goldenStep{
		{name: "01-check-user-exists", method: "GET", path: "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", status: ok200, golden: true},
		{name: "02-create-user", method: "POST", path: "/Users", status: ok201, capture: "user", golden: true,
			check: func(t *testing.T, g *goldenRun, r response) {
				// Okta sends a password on create; it is accepted and discarded.
				if g.e.user(g.ids["user"]).PasswordHash != "" {
					t.Error("a password hash was stored")
				}
			}},
		{name: "03-create-user-again", method: "POST", path: "/Users", status: []int{http.StatusConflict},
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"status": "409", "scimType": "uniqueness"})
			}},
		{name: "04-create-second-user", method: "POST", path: "/Users", status: ok201, capture: "user2"},
		{name: "05-get-user", method: "GET", path: "/Users/{{user}}", status: ok200},
		{name: "05-put-user", method: "PUT", path: "/Users/{{user}}", status: ok200, golden: true,
			check: func(t *testing.T, g *goldenRun, r response) { putETag = r.header.Get("ETag") }},
		// Okta's password sync PUTs the same user with its password: nothing
		// the gateway keeps changed, so nothing is written.
		{name: "05-put-user-with-password", method: "PUT", path: "/Users/{{user}}", status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				if got := r.header.Get("ETag"); got != putETag {
					t.Errorf("ETag %s, want %s as before", got, putETag)
				}
				if ev := g.e.events(storage.EventUserUpdated); len(ev) != 1 {
					t.Errorf("user.updated events %d, want only 05-put-user's", len(ev))
				}
				if strings.Contains(string(r.body), "password") || g.e.user(g.ids["user"]).PasswordHash != "" {
					t.Errorf("password kept or returned: %s", r.body)
				}
			}},
		{name: "06-deactivate-user", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"active": false, "name/middleName": "Excited"})
				if ev := g.e.events(storage.EventUserDeactivated); len(ev) != 1 {
					t.Errorf("deactivation events %v", ev)
				}
			}},
		{name: "07-reactivate-user", method: "PATCH", path: "/Users/{{user}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"active": true}) }},
		{name: "08-deactivate-user-by-put", method: "PUT", path: "/Users/{{user}}", status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				expect(t, r.obj(t), map[string]any{"active": false})
				if ev := g.e.events(storage.EventUserDeactivated); len(ev) != 2 {
					t.Errorf("deactivation events %d", len(ev))
				}
			}},
		{name: "09-create-group", method: "POST", path: "/Groups", status: ok201, capture: "group", golden: true},
		{name: "10-rename-group", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				doc := g.e.want(g.e.do("GET", "/Groups/"+g.ids["group"], nil), http.StatusOK).obj(t)
				expect(t, doc, map[string]any{"displayName": "Test SCIMv20", "id": g.ids["group"]})
			}},
		{name: "11-add-member", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204},
		{name: "12-membership-remove-and-add", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				m := g.e.members(g.ids["group"])
				if len(m) != 1 || m[g.ids["user"]] == "" {
					t.Errorf("members %v, want only user", m)
				}
			}},
		{name: "12-get-group", method: "GET", path: "/Groups/{{group}}", status: ok200, golden: true},
		{name: "13-replace-members", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if m := g.e.members(g.ids["group"]); len(m) != 2 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "14-replace-members-empty", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if m := g.e.members(g.ids["group"]); len(m) != 0 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "15-import-users-page-1", method: "GET", path: "/Users?startIndex=1&count=100", status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) {
				// Okta needs integers, not strings.
				for _, k := range []string{`"totalResults":2`, `"startIndex":1`, `"itemsPerPage":2`} {
					if !strings.Contains(string(r.body), k) {
						t.Errorf("missing %s in %.300s", k, r.body)
					}
				}
			}},
		{name: "15-import-groups-page-1", method: "GET", path: "/Groups?startIndex=1&count=100", status: ok200,
			check: func(t *testing.T, g *goldenRun, r response) { expect(t, r.obj(t), map[string]any{"totalResults": 1}) }},
		{name: "16-delete-group", method: "DELETE", path: "/Groups/{{group}}", status: ok204},
	})
}

// TestGoldenOktaPaging: Okta imports in pages of count=100 and expects the
// same order whatever the page size.
func TestGoldenOktaPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 230 {
		e.createUser(fmt.Sprintf("okta.user%03d@example.com", i))
	}
	var all []string
	for start := 1; ; start += 100 {
		doc := e.want(e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), nil), http.StatusOK).obj(t)
		ids := listIDs(t, doc)
		if num(doc["totalResults"]) != 230 || num(doc["startIndex"]) != start || num(doc["itemsPerPage"]) != len(ids) {
			t.Fatalf("page at %d: %v %v %v", start, doc["totalResults"], doc["startIndex"], doc["itemsPerPage"])
		}
		all = append(all, ids...)
		if len(ids) < 100 {
			break
		}
	}
	seen := map[string]bool{}
	for _, id := range all {
		seen[id] = true
	}
	if len(all) != 230 || len(seen) != 230 {
		t.Errorf("pages gave %d ids, %d distinct", len(all), len(seen))
	}
	// Another page size gives the same order.
	var again []string
	for start := 1; start <= 230; start += 37 {
		again = append(again, listIDs(t, e.want(e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=37", start), nil), http.StatusOK).obj(t))...)
	}
	if strings.Join(all, ",") != strings.Join(again, ",") {
		t.Error("order depends on the page size")
	}
}

func TestGoldenJumpCloud(t *testing.T) {
	var etag string
	runGolden(t, "jumpcloud", []goldenStep{
		{name: "01-create-test-user", method: "POST", path: "/Users", status: ok201, capture: "user"},
		{name: "02-create-test-group", method: "POST", path: "/Groups", status: ok201, capture: "group"},
		{name: "03-add-member", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				etag = r.header.Get("ETag")
				if m := g.e.members(g.ids["group"]); len(m) != 1 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "04-add-member-again", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if r.header.Get("ETag") != etag {
					t.Errorf("re-adding a member changed the group: %s -> %s", etag, r.header.Get("ETag"))
				}
				if ev := g.e.events(storage.EventMemberAdded); len(ev) != 1 {
					t.Errorf("member_added events %d, want 1", len(ev))
				}
				if m := g.e.members(g.ids["group"]); len(m) != 1 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "05-remove-member", method: "PATCH", path: "/Groups/{{group}}", status: ok200or204,
			check: func(t *testing.T, g *goldenRun, r response) {
				if m := g.e.members(g.ids["group"]); len(m) != 0 {
					t.Errorf("members %v", m)
				}
			}},
		{name: "06-delete-test-user", method: "DELETE", path: "/Users/{{user}}", status: ok204},
		{name: "07-delete-test-group", method: "DELETE", path: "/Groups/{{group}}", status: ok204},
	})
}
