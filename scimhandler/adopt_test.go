package scimhandler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TestPushAdoptsManualUser: after a disconnect the IdP's users are manual;
// the IdP, connected again, pushes them (a POST of the userName, or a PUT
// or PATCH of the id it found by a filter) and adopts each: same id and
// memberships, source scim, the pinned role dropped, one user.adopted
// event with the role before and after. Never a duplicate.
func TestPushAdoptsManualUser(t *testing.T) {
	patch := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "Alice Pushed"}}}
	for _, tc := range []struct {
		name string
		push func(e *testEnv, id string) response
		want int
	}{
		{"POST of the userName", func(e *testEnv, id string) response {
			return e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": "ALICE@acme.test", "displayName": "Alice Pushed"})
		}, http.StatusCreated},
		{"PUT of the id", func(e *testEnv, id string) response {
			return e.do("PUT", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": "alice@acme.test", "displayName": "Alice Pushed"})
		}, http.StatusOK},
		{"PATCH of the id", func(e *testEnv, id string) response {
			return e.do("PATCH", "/Users/"+id, patch)
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *scimhandler.Config) {
				c.RoleOf = func(tx storage.ReadTx, u *storage.User) (string, error) {
					if u.Source == storage.SourceManual {
						return u.Role, nil
					}
					return "viewer", nil
				}
			})
			id := e.createUser("alice@acme.test", "displayName", "Alice")
			gid := e.createGroup("engineering", id)
			// What a disconnect leaves: the user manual, role pinned.
			err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
				u, err := tx.GetUser(id)
				if err != nil {
					return err
				}
				u.Source, u.Role = storage.SourceManual, "editor"
				return tx.PutUser(u)
			})
			if err != nil {
				t.Fatal(err)
			}
			r := e.want(tc.push(e, id), tc.want)
			if got := str(r.obj(t)["id"]); got != id {
				t.Fatalf("pushed user id %q, want the manual user's %q", got, id)
			}
			u := e.user(id)
			if u.Source != storage.SourceSCIM || u.Role != "" || u.DisplayName != "Alice Pushed" {
				t.Fatalf("adopted user = source %q role %q name %q", u.Source, u.Role, u.DisplayName)
			}
			if m := e.members(gid); m[id] == "" {
				t.Fatalf("the adopted user lost their membership: %v", m)
			}
			n := 0
			e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
				n, _ = tx.CountUsers()
				return nil
			})
			if n != 1 {
				t.Fatalf("%d users after the push, want 1 (no duplicate)", n)
			}
			evs := e.events(storage.EventUserAdopted)
			if len(evs) != 1 || evs[0].ResourceID != id || !strings.Contains(evs[0].Before, "source=manual role=editor") ||
				!strings.Contains(evs[0].After, "source=scim role=viewer") {
				t.Fatalf("user.adopted events = %+v", evs)
			}
		})
	}
}

// TestPushDoesNotAdoptIdPUsers: a POST of a userName an IdP-managed user
// holds is still a uniqueness conflict.
func TestPushDoesNotAdoptIdPUsers(t *testing.T) {
	e := newEnv(t)
	e.createUser("bob")
	e.want(e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "bob"}), http.StatusConflict)
	if evs := e.events(storage.EventUserAdopted); len(evs) != 0 {
		t.Fatalf("adopted events: %+v", evs)
	}
}
