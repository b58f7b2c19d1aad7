package scimhandler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

func TestUserLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.want(e.do("POST", "/Users", `{
		"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName":"Bjensen@Example.com","externalId":"ext-1","password":"t1meMa$heen",
		"name":{"givenName":"Barbara","familyName":"Jensen"},
		"emails":[{"value":"home@example.com","type":"home"},{"value":"bjensen@example.com","type":"work","primary":true}],
		"groups":[{"value":"not-a-group"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Tours"}}`), http.StatusCreated)
	if ct := r.header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := r.obj(t)
	id := str(doc["id"])
	if loc := r.header.Get("Location"); loc != e.base+"/Users/"+id {
		t.Errorf("Location %q, want %q", loc, e.base+"/Users/"+id)
	}
	if got := str(path(doc, "meta", "location")); got != e.base+"/Users/"+id {
		t.Errorf("meta.location %q", got)
	}
	if r.header.Get("ETag") != `W/"1"` || str(path(doc, "meta", "version")) != `W/"1"` {
		t.Errorf("ETag %q, meta.version %v", r.header.Get("ETag"), path(doc, "meta", "version"))
	}
	if strings.Contains(string(r.body), "password") || strings.Contains(string(r.body), "t1meMa") {
		t.Errorf("password returned: %s", r.body)
	}
	if doc["groups"] != nil {
		t.Errorf("groups are read-only, input must be ignored: %v", doc["groups"])
	}
	if doc["active"] != true {
		t.Errorf("active defaults to true: %v", doc["active"])
	}
	if got := path(doc, "schemas", 1); got != "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" {
		t.Errorf("schemas %v", doc["schemas"])
	}

	// What the store holds: typed fields, primary email first, no password.
	u := e.user(id)
	if u.UserName != "Bjensen@Example.com" || u.ExternalID != "ext-1" || !u.Active || u.Source != storage.SourceSCIM {
		t.Errorf("stored user %+v", u)
	}
	if len(u.Emails) != 2 || u.Emails[0] != "bjensen@example.com" {
		t.Errorf("emails %v, want primary first", u.Emails)
	}
	if u.PasswordHash != "" {
		t.Errorf("a discarded password left a hash: %q", u.PasswordHash)
	}
	if strings.Contains(string(u.Attributes), "t1meMa") || strings.Contains(string(u.Attributes), "password") {
		t.Errorf("attributes hold the password: %s", u.Attributes)
	}

	// userName is unique case-insensitively.
	dup := e.want(e.do("POST", "/Users", `{"userName":"BJENSEN@example.COM"}`), http.StatusConflict).obj(t)
	if dup["scimType"] != "uniqueness" || dup["status"] != "409" {
		t.Errorf("409 body %v", dup)
	}

	// GET, conditional GET.
	g := e.want(e.do("GET", "/Users/"+id, nil), http.StatusOK)
	if str(g.obj(t)["userName"]) != "Bjensen@Example.com" {
		t.Errorf("GET %s", g.body)
	}
	nm := e.want(e.do("GET", "/Users/"+id, nil, "If-None-Match", `W/"1"`), http.StatusNotModified)
	if len(nm.body) != 0 || nm.header.Get("ETag") != `W/"1"` {
		t.Errorf("304 with body %q etag %q", nm.body, nm.header.Get("ETag"))
	}
	e.want(e.do("GET", "/Users/"+id, nil, "If-None-Match", `W/"7"`), http.StatusOK)

	// PUT with a stale If-Match fails and changes nothing.
	e.want(e.do("PUT", "/Users/"+id, `{"userName":"other"}`, "If-Match", `W/"7"`), http.StatusPreconditionFailed)
	if e.user(id).Version != 1 {
		t.Fatal("a failed precondition changed the user")
	}
	// PUT replaces: attributes not sent are gone, active kept.
	p := e.want(e.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"id":"ignored","userName":"bjensen","displayName":"Babs","meta":{"resourceType":"User"}}`, "If-Match", `W/"1"`), http.StatusOK)
	pd := p.obj(t)
	if p.header.Get("ETag") != `W/"2"` || pd["name"] != nil || pd["displayName"] != "Babs" || pd["id"] != id || pd["active"] != true {
		t.Errorf("PUT answer %s (ETag %s)", p.body, p.header.Get("ETag"))
	}

	// PATCH.
	pa := e.want(e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"add","path":"title","value":"Guide"},{"op":"replace","path":"password","value":"n3wPass"}]}`), http.StatusOK)
	if str(pa.obj(t)["title"]) != "Guide" || pa.header.Get("ETag") != `W/"3"` {
		t.Errorf("PATCH answer %s", pa.body)
	}
	if e.user(id).PasswordHash != "" {
		t.Error("PATCH of password stored a hash")
	}
	// A PATCH that changes nothing writes nothing.
	e.want(e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"Guide"}]}`), http.StatusOK)
	if v := e.user(id).Version; v != 3 {
		t.Errorf("no-op PATCH bumped the version to %d", v)
	}

	// DELETE.
	e.want(e.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"2"`), http.StatusPreconditionFailed)
	e.want(e.do("DELETE", "/Users/"+id, nil), http.StatusNoContent)
	e.want(e.do("GET", "/Users/"+id, nil), http.StatusNotFound)
	e.want(e.do("DELETE", "/Users/"+id, nil), http.StatusNotFound)

	// Every change left an audit event with the token's id as actor.
	var tokenID string
	_ = e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		tok, err := tx.GetSCIMToken()
		tokenID = tok.ID
		return err
	})
	evs := e.events(storage.EventUserCreated, storage.EventUserUpdated, storage.EventUserDeleted)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.Actor != tokenID || ev.ResourceID != id || ev.ResourceType != "User" {
			t.Errorf("event %+v: want actor %s, resource %s", ev, tokenID, id)
		}
		if strings.Contains(ev.Before+ev.After+ev.Reason, "n3wPass") || strings.Contains(ev.Before+ev.After, "t1meMa") {
			t.Errorf("event leaks a password: %+v", ev)
		}
	}
	if got := strings.Join(types, ","); got != "user.deleted,user.updated,user.updated,user.created" {
		t.Errorf("events %s", got)
	}
}

func TestDeactivationEndsSessions(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		deactive func(id, userName string) response
	}{
		{"Entra PATCH path active string False", func(id, _ string) response {
			return e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		}},
		{"Okta PATCH no path", func(id, _ string) response {
			return e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		}},
		{"Okta PUT active false", func(id, userName string) response {
			return e.do("PUT", "/Users/"+id, map[string]any{"userName": userName, "active": false})
		}},
		{"DELETE", func(id, _ string) response { return e.do("DELETE", "/Users/"+id, nil) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userName := "u-" + string(rune('a'+i))
			id := e.createUser(userName)
			// Give the user two sessions and someone else one.
			other := e.createUser("other-" + string(rune('a'+i)))
			err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
				for _, uid := range []string{id, id, other} {
					_, h := storage.NewSecret()
					if err := tx.PutSession(&storage.Session{IDHash: h, UserID: uid, Created: time.Now(),
						LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Protocol: "oidc"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			r := tt.deactive(id, userName)
			if r.status != http.StatusOK && r.status != http.StatusNoContent {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			_ = e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
				mine, _ := tx.SessionsOf(id)
				theirs, _ := tx.SessionsOf(other)
				if len(mine) != 0 || len(theirs) != 1 {
					t.Errorf("sessions left: user %d (want 0), other %d (want 1)", len(mine), len(theirs))
				}
				return nil
			})
			if r.status == http.StatusOK {
				if e.user(id).Active {
					t.Error("user still active")
				}
				ev := e.events(storage.EventUserDeactivated)
				if len(ev) == 0 || ev[0].ResourceID != id || ev[0].Before != "active=true" || ev[0].After != "active=false" ||
					ev[0].Reason != "2 sessions ended" {
					t.Errorf("deactivation event %+v", ev)
				}
			}
		})
	}
	// Reactivation is its own event.
	id := e.createUser("sleeper", "active", "false")
	e.want(e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"active","value":true}]}`), http.StatusOK)
	if ev := e.events(storage.EventUserReactivated); len(ev) != 1 || ev[0].ResourceID != id {
		t.Errorf("reactivation events %+v", ev)
	}
	// A PUT that leaves "active" out keeps the user deactivated.
	e.want(e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusOK)
	e.want(e.do("PUT", "/Users/"+id, `{"userName":"sleeper","title":"x"}`), http.StatusOK)
	if e.user(id).Active {
		t.Error("a PUT without active reactivated the user")
	}
}

func TestUserGroupsAttribute(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice")
	admins := e.createGroup("Admins", alice)
	staff := e.createGroup("Staff", admins, alice)
	doc := e.want(e.do("GET", "/Users/"+alice, nil), http.StatusOK).obj(t)
	groups, _ := doc["groups"].([]any)
	if len(groups) != 2 {
		t.Fatalf("groups %v", doc["groups"])
	}
	byID := map[string]map[string]any{}
	for _, g := range groups {
		m := g.(map[string]any)
		byID[str(m["value"])] = m
	}
	if byID[admins]["display"] != "Admins" || byID[admins]["$ref"] != e.base+"/Groups/"+admins || byID[admins]["type"] != "direct" {
		t.Errorf("group entry %v", byID[admins])
	}
	if byID[staff] == nil {
		t.Errorf("missing Staff in %v", groups)
	}
	// groups cannot be written.
	r := e.want(e.do("PATCH", "/Users/"+alice, `{"Operations":[{"op":"add","path":"groups","value":[{"value":"`+staff+`"}]}]}`), http.StatusBadRequest)
	if r.obj(t)["scimType"] != "mutability" {
		t.Errorf("%s", r.body)
	}
	// Deleting the user removes its memberships and bumps the groups.
	before := e.want(e.do("GET", "/Groups/"+admins, nil), http.StatusOK).header.Get("ETag")
	e.want(e.do("DELETE", "/Users/"+alice, nil), http.StatusNoContent)
	if m := e.members(admins); len(m) != 0 {
		t.Errorf("admins members after delete: %v", m)
	}
	if m := e.members(staff); len(m) != 1 {
		t.Errorf("staff members after delete: %v", m)
	}
	after := e.want(e.do("GET", "/Groups/"+admins, nil), http.StatusOK).header.Get("ETag")
	if before == after {
		t.Errorf("group ETag unchanged (%s) after losing a member", after)
	}
}

// TestUsersFromOtherSources: a user created at sign-in (typed fields only,
// or attributes in another shape) is served, filtered and patched.
func TestUsersFromOtherSources(t *testing.T) {
	e := newEnv(t)
	err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
		now := time.Now()
		if err := tx.PutUser(&storage.User{ID: "jit-1", UserName: "jit@example.com", DisplayName: "Jit User",
			Emails: []string{"jit@example.com", "alt@example.com"}, Active: true, Source: storage.SourceJIT, Created: now}); err != nil {
			return err
		}
		return tx.PutUser(&storage.User{ID: "odd-1", UserName: "odd", Active: true, Source: storage.SourceDirectory,
			Attributes: []byte(`["not","an","object"]`), Created: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := e.want(e.do("GET", "/Users/jit-1", nil), http.StatusOK).obj(t)
	expectFields(t, doc, map[string]any{"userName": "jit@example.com", "displayName": "Jit User", "active": true})
	if path(doc, "emails", 0, "value") != "jit@example.com" || path(doc, "emails", 0, "primary") != true {
		t.Errorf("emails %v", doc["emails"])
	}
	list := e.want(e.do("GET", "/Users?filter="+q(`emails eq "ALT@example.com"`), nil), http.StatusOK).obj(t)
	if num(list["totalResults"]) != 1 {
		t.Errorf("filter by email: %v", list)
	}
	e.want(e.do("GET", "/Users/odd-1", nil), http.StatusOK)
	e.want(e.do("GET", "/Users?sortBy=title", nil), http.StatusOK)
	e.want(e.do("PATCH", "/Users/jit-1", `{"Operations":[{"op":"replace","path":"active","value":false}]}`), http.StatusOK)
	if u := e.user("jit-1"); u.Active || u.Source != storage.SourceJIT || len(u.Emails) != 2 {
		t.Errorf("after PATCH %+v", u)
	}
}

func expectFields(t *testing.T, doc map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
}
