package scimhandler_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TestUserWritten: every committed user write is reported once, as stored
// (Version set); a refused write and a group write are not.
func TestUserWritten(t *testing.T) {
	var mu sync.Mutex
	var got []storage.User
	e := newEnv(t, func(c *scimhandler.Config) {
		c.UserWritten = func(u *storage.User) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, *u)
		}
	})
	take := func() []storage.User {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	patch := func(op, path string, value any) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": op, "path": path, "value": value}}}
	}
	alice := e.createUser("alice")
	for _, tc := range []struct {
		name    string
		do      func()
		want    int
		wantVer int64
		wantNam string
	}{
		{"create", func() {}, 1, 1, "alice"},
		{"patch", func() {
			e.want(e.do("PATCH", "/Users/"+alice, patch("replace", "displayName", "Alice A")), http.StatusOK)
		}, 1, 2, "alice"},
		{"rename", func() {
			e.want(e.do("PATCH", "/Users/"+alice, patch("replace", "userName", "alice2")), http.StatusOK)
		}, 1, 3, "alice2"},
		{"refused duplicate", func() {
			e.want(e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "alice2"}), http.StatusConflict)
		}, 0, 0, ""},
		{"group", func() { e.createGroup("Eng", alice) }, 0, 0, ""},
	} {
		tc.do()
		writes := take()
		if len(writes) != tc.want {
			t.Fatalf("%s: %d users reported, want %d: %+v", tc.name, len(writes), tc.want, writes)
		}
		if tc.want == 1 && (writes[0].ID != alice || writes[0].Version != tc.wantVer || writes[0].UserName != tc.wantNam) {
			t.Errorf("%s: reported %s v%d %q, want %s v%d %q", tc.name, writes[0].ID, writes[0].Version, writes[0].UserName, alice, tc.wantVer, tc.wantNam)
		}
	}
}
