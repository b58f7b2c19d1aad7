package scimhandler_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// storedState is everything a refused request must leave as it was: the
// user record and the audit log's length.
func (e *testEnv) storedState(id string) string {
	e.t.Helper()
	b, err := json.Marshal(e.user(id))
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%s|%d events", b, len(e.events()))
}

// TestWrongJSONTypeIsInvalidValue: a value of the wrong JSON type for its
// attribute is 400 invalidValue naming the attribute and both types, on
// POST, PUT and PATCH; nothing is stored.
func TestWrongJSONTypeIsInvalidValue(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("alice", "emails", `[{"value":"alice@example.com","type":"work"}]`)
	tests := []struct {
		name   string
		attr   string
		value  string
		detail string
	}{
		{"string for multi-valued complex", "emails", `"a@b.c"`, "emails must be an array of objects, not a string"},
		{"number for multi-valued complex", "emails", `5`, "emails must be an array of objects, not a number"},
		{"strings in multi-valued complex", "phoneNumbers", `["555-0100"]`, "phoneNumbers must be an array of objects, not an array of strings"},
		{"boolean for multi-valued complex", "addresses", `true`, "addresses must be an array of objects, not a boolean"},
		{"object for string", "userName", `{"x":1}`, "userName must be a string, not an object"},
		{"array for string", "userName", `["alice"]`, "userName must be a string, not an array"},
		{"number for string", "displayName", `42`, "displayName must be a string, not a number"},
		{"boolean for string", "title", `false`, "title must be a string, not a boolean"},
		{"array for boolean", "active", `[true]`, "active must be true or false, not an array"},
		{"object for boolean", "active", `{"value":true}`, "active must be true or false, not an object"},
		{"word for boolean", "active", `"yes"`, `active must be true or false, not the string "yes"`},
		{"string for complex", "name", `"Alice Smith"`, "name must be an object, not a string"},
		{"number in a sub-attribute", "name", `{"givenName":7}`, "name.givenName must be a string, not a number"},
		{"object for an element's value", "emails", `[{"value":{"address":"a@b.c"}}]`, "emails.value must be a string, not an object"},
		{"string for an element's primary", "emails", `[{"value":"a@b.c","primary":"maybe"}]`, "emails.primary must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.value), &v); err != nil {
				t.Fatal(err)
			}
			before := e.storedState(id)
			post := map[string]any{"userName": "bob", tt.attr: v}
			put := map[string]any{"userName": "alice", tt.attr: v}
			if tt.attr == "userName" {
				delete(post, "userName")
				delete(put, "userName")
				post[tt.attr], put[tt.attr] = v, v
			}
			requests := []struct {
				method, path string
				body         any
			}{
				{"POST", "/Users", post},
				{"PUT", "/Users/" + id, put},
				{"PATCH", "/Users/" + id, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": tt.attr, "value": v}}}},
				{"PATCH", "/Users/" + id, map[string]any{"Operations": []any{map[string]any{"op": "add", "value": map[string]any{tt.attr: v}}}}},
			}
			for _, rq := range requests {
				r := e.do(rq.method, rq.path, rq.body)
				if r.status != http.StatusBadRequest {
					t.Errorf("%s %s: status %d, want 400: %s", rq.method, rq.path, r.status, r.body)
					continue
				}
				b := r.obj(t)
				if b["scimType"] != "invalidValue" || !strings.Contains(str(b["detail"]), tt.detail) {
					t.Errorf("%s %s: %s\nwant invalidValue with %q", rq.method, rq.path, r.body, tt.detail)
				}
			}
			if after := e.storedState(id); after != before {
				t.Errorf("store changed:\n%s\n%s", before, after)
			}
		})
	}
	// A filtered element takes an object too.
	before := e.storedState(id)
	for _, op := range []string{
		`{"op":"replace","path":"emails[type eq \"work\"]","value":"a@b.c"}`,
		`{"op":"add","path":"emails[type eq \"home\"]","value":["a@b.c"]}`,
	} {
		r := e.want(e.do("PATCH", "/Users/"+id, `{"Operations":[`+op+`]}`), http.StatusBadRequest)
		if b := r.obj(t); b["scimType"] != "invalidValue" || !strings.Contains(str(b["detail"]), "must be an object, not an") &&
			!strings.Contains(str(b["detail"]), "must be an object, not a") {
			t.Errorf("%s: %s", op, r.body)
		}
	}
	if after := e.storedState(id); after != before {
		t.Errorf("store changed:\n%s\n%s", before, after)
	}
	e.want(e.do("GET", "/Users?filter="+q(`userName eq "bob"`), nil), http.StatusOK)
	if n := len(e.events(storage.EventUserCreated)); n != 1 {
		t.Errorf("%d user.created events, want 1", n)
	}
}

// TestInteropLenienciesStay: what real IdPs send and the gateway accepts
// keeps working: Entra's "True"/"False" strings, capitalised keys such as
// "Primary", a bare id for a manager, a single object for a multi-valued
// attribute in PATCH.
func TestInteropLenienciesStay(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("alice", "active", `"False"`,
		"emails", `[{"Value":"alice@example.com","Type":"work","Primary":"True"}]`)
	u := e.want(e.do("GET", "/Users/"+id, nil), http.StatusOK).obj(t)
	if u["active"] != false || path(u, "emails", 0, "primary") != true || path(u, "emails", 0, "value") != "alice@example.com" {
		t.Fatalf("lenient create: %v", u)
	}
	ops := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"active","value":"True"},
		{"op":"add","path":"phoneNumbers","value":{"value":"555-0100","type":"work"}},
		{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-1"}]}`
	u = e.want(e.do("PATCH", "/Users/"+id, ops), http.StatusOK).obj(t)
	if u["active"] != true || path(u, "phoneNumbers", 0, "value") != "555-0100" ||
		path(u, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value") != "m-1" {
		t.Fatalf("lenient patch: %s", u)
	}
}

// TestDuplicateValuesCollapse: identical values of a multi-valued
// attribute are kept once on POST and PUT, as PATCH does.
func TestDuplicateValuesCollapse(t *testing.T) {
	e := newEnv(t)
	dupEmails := `[{"value":"a@example.com","type":"work","primary":true},{"value":"a@example.com","type":"work","primary":true},{"value":"b@example.com","type":"home"},{"value":"b@example.com","type":"home"}]`
	dupPhones := `[{"value":"555-0100","type":"work"},{"value":"555-0100","type":"work"},{"value":"555-0100","type":"mobile"}]`
	wantEmails := []string{"a@example.com", "b@example.com"}
	check := func(what string, u map[string]any) {
		t.Helper()
		emails, _ := u["emails"].([]any)
		phones, _ := u["phoneNumbers"].([]any)
		if len(emails) != 2 || path(emails, 0, "value") != "a@example.com" || path(emails, 0, "primary") != true ||
			path(emails, 1, "value") != "b@example.com" {
			t.Errorf("%s: emails %v, want %v once each", what, emails, wantEmails)
		}
		if len(phones) != 2 {
			t.Errorf("%s: phoneNumbers %v, want the work and mobile numbers once each", what, phones)
		}
	}
	id := e.createUser("alice", "emails", dupEmails, "phoneNumbers", dupPhones)
	check("POST", e.want(e.do("GET", "/Users/"+id, nil), http.StatusOK).obj(t))
	if got := e.user(id).Emails; len(got) != 2 {
		t.Errorf("stored emails %v", got)
	}

	put := `{"userName":"alice","emails":` + dupEmails + `,"phoneNumbers":` + dupPhones + `}`
	check("PUT", e.want(e.do("PUT", "/Users/"+id, put), http.StatusOK).obj(t))

	patch := `{"Operations":[{"op":"replace","path":"emails","value":` + dupEmails + `},{"op":"add","path":"phoneNumbers","value":` + dupPhones + `}]}`
	check("PATCH", e.want(e.do("PATCH", "/Users/"+id, patch), http.StatusOK).obj(t))

	// Groups: the same member twice is one membership.
	gid := e.createGroup("Eng", id, id)
	if m := e.members(gid); len(m) != 1 {
		t.Errorf("members %v", m)
	}
}

// TestGroupWrongJSONType: the same for Groups, members included.
func TestGroupWrongJSONType(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("alice")
	gid := e.createGroup("Eng", uid)
	tests := []struct {
		name   string
		attr   string
		value  string
		detail string
	}{
		{"number for displayName", "displayName", `5`, "displayName must be a string, not a number"},
		{"object for displayName", "displayName", `{"x":1}`, "displayName must be a string, not an object"},
		{"boolean member", "members", `[true]`, "each member must be an object whose value is the id of a User or Group, not a boolean"},
		{"number as a member's value", "members", `[{"value":7}]`, "members.value must be a string (the id of a User or Group), not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.value), &v); err != nil {
				t.Fatal(err)
			}
			before := fmt.Sprint(e.members(gid), len(e.events()))
			body := map[string]any{"displayName": "Ops", tt.attr: v}
			requests := []struct {
				method, path string
				body         any
			}{
				{"POST", "/Groups", body},
				{"PUT", "/Groups/" + gid, body},
				{"PATCH", "/Groups/" + gid, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": tt.attr, "value": v}}}},
			}
			for _, rq := range requests {
				r := e.do(rq.method, rq.path, rq.body)
				b := r.obj(t)
				if r.status != http.StatusBadRequest || b["scimType"] != "invalidValue" || !strings.Contains(str(b["detail"]), tt.detail) {
					t.Errorf("%s %s: %d %s\nwant 400 invalidValue with %q", rq.method, rq.path, r.status, r.body, tt.detail)
				}
			}
			if after := fmt.Sprint(e.members(gid), len(e.events())); after != before {
				t.Errorf("store changed: %s → %s", before, after)
			}
		})
	}
}
