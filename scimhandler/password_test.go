package scimhandler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// pwUser is the user every password case starts from.
const pwUser = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
	"userName":"pw.user@example.com","displayName":"Pat Word","title":"Clerk",
	"emails":[{"value":"pw@example.com","type":"work","primary":true}],"active":true`

const pwSecret = "s3cr3t-Pa55"

// TestPasswordIsDiscarded: a SCIM password is accepted in every form a
// client sends it and never kept; sending one is no change of the user.
func TestPasswordIsDiscarded(t *testing.T) {
	for _, c := range []struct {
		name       string
		method     string // on the created user; "" when the case is the POST itself
		body       string
		status     int
		changed    bool   // the user's version moves on, with one user.updated event
		wantTitle  string // the title after the request
		legacyHash bool   // the user starts with a hash an earlier gateway version stored
	}{
		{name: "POST with password", status: http.StatusCreated, wantTitle: "Clerk"},
		{name: "PUT identical user with password", method: "PUT",
			body: pwUser + `,"password":"` + pwSecret + `"}`, status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PUT identical user with empty password", method: "PUT",
			body: pwUser + `,"password":""}`, status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PUT identical user with password under the core schema URN", method: "PUT",
			body:   pwUser + `,"urn:ietf:params:scim:schemas:core:2.0:User":{"password":"` + pwSecret + `"}}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH value map with password under the core schema URN", method: "PATCH",
			body:   `{"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:core:2.0:User:password":"` + pwSecret + `"}}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PUT changed user with password", method: "PUT",
			body:   strings.Replace(pwUser, "Clerk", "Chief", 1) + `,"password":"` + pwSecret + `"}`,
			status: http.StatusOK, changed: true, wantTitle: "Chief"},
		{name: "PATCH replace password", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","path":"password","value":"` + pwSecret + `"}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH add password", method: "PATCH",
			body:   `{"Operations":[{"op":"add","path":"password","value":"` + pwSecret + `"}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH replace password by schema URN path", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","value":"` + pwSecret + `"}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH remove password", method: "PATCH",
			body:   `{"Operations":[{"op":"remove","path":"password"}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH replace value map with only password", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","value":{"password":"` + pwSecret + `"}}]}`,
			status: http.StatusOK, wantTitle: "Clerk"},
		{name: "PATCH replace value map with password and title", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","value":{"Password":"` + pwSecret + `","title":"Chief"}}]}`,
			status: http.StatusOK, changed: true, wantTitle: "Chief"},
		{name: "PATCH password of a user with a legacy hash keeps it unwritten", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","path":"password","value":"` + pwSecret + `"}]}`,
			status: http.StatusOK, wantTitle: "Clerk", legacyHash: true},
		{name: "a real change of a user with a legacy hash erases it", method: "PATCH",
			body:   `{"Operations":[{"op":"replace","path":"title","value":"Chief"}]}`,
			status: http.StatusOK, changed: true, wantTitle: "Chief", legacyHash: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			post := pwUser + "}"
			if c.method == "" {
				post = pwUser + `,"password":"` + pwSecret + `"}`
			}
			created := e.want(e.do("POST", "/Users", post), http.StatusCreated)
			id := str(created.obj(t)["id"])
			if c.legacyHash {
				err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
					u, err := tx.GetUser(id)
					if err != nil {
						return err
					}
					u.PasswordHash = "$2a$10$legacy-hash-from-an-earlier-version"
					return tx.PutUser(u)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			before := e.user(id)
			r := created
			if c.method != "" {
				r = e.want(e.do(c.method, "/Users/"+id, c.body), c.status)
			}
			after := e.user(id)
			doc := r.obj(t)
			if strings.Contains(string(r.body), pwSecret) || strings.Contains(string(r.body), `"password"`) {
				t.Errorf("password returned: %s", r.body)
			}
			if str(doc["title"]) != c.wantTitle || str(doc["id"]) != id {
				t.Errorf("answer %s, want title %q", r.body, c.wantTitle)
			}
			if strings.Contains(string(after.Attributes), pwSecret) || strings.Contains(strings.ToLower(string(after.Attributes)), "password") {
				t.Errorf("stored attributes hold the password: %s", after.Attributes)
			}
			updates := e.events(storage.EventUserUpdated)
			for _, ev := range e.events() {
				if strings.Contains(ev.Before+ev.After+ev.Reason, pwSecret) {
					t.Errorf("event leaks the password: %+v", ev)
				}
			}
			wantVersion := before.Version
			if c.changed {
				wantVersion++
			}
			if after.Version != wantVersion || r.header.Get("ETag") != etagOf(wantVersion) {
				t.Errorf("version %d, ETag %s; want %d", after.Version, r.header.Get("ETag"), wantVersion)
			}
			switch {
			case c.method == "":
				if len(updates) != 0 || len(e.events(storage.EventUserCreated)) != 1 {
					t.Errorf("events after POST: %+v", e.events())
				}
			case !c.changed:
				if len(updates) != 0 {
					t.Errorf("a password alone recorded %+v", updates)
				}
				if after.PasswordHash != before.PasswordHash || !after.Modified.Equal(before.Modified) {
					t.Error("a password alone wrote the user")
				}
			default:
				if len(updates) != 1 {
					t.Fatalf("user.updated events %+v, want one", updates)
				}
				if c.legacyHash && !strings.Contains(updates[0].After, "password=erased") {
					t.Errorf("erasing the legacy hash is not recorded: %+v", updates[0])
				}
				if !c.legacyHash && strings.Contains(updates[0].After, "password") {
					t.Errorf("a discarded password shows in the event: %+v", updates[0])
				}
			}
			if c.changed || !c.legacyHash {
				if after.PasswordHash != "" {
					t.Errorf("a password hash is stored: %q", after.PasswordHash)
				}
			}
		})
	}
}

// TestPasswordOfWrongType: a password that is not a string is refused
// like any mistyped attribute, and changes nothing.
func TestPasswordOfWrongType(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("typed@example.com")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/Users", `{"userName":"other@example.com","password":5}`},
		{"PUT", "/Users/" + id, `{"userName":"typed@example.com","password":["x"]}`},
		{"PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"password","value":true}]}`},
		{"PATCH", "/Users/" + id, `{"Operations":[{"op":"add","value":{"password":{"x":1}}}]}`},
	} {
		r := e.want(e.do(c.method, c.path, c.body), http.StatusBadRequest).obj(t)
		if r["scimType"] != "invalidValue" && r["scimType"] != "invalidSyntax" {
			t.Errorf("%s %s: %v", c.method, c.body, r)
		}
	}
	if v := e.user(id).Version; v != 1 {
		t.Errorf("refused requests moved the version to %d", v)
	}
}

func etagOf(version int64) string { return fmt.Sprintf(`W/"%d"`, version) }
