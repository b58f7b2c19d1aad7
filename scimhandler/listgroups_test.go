package scimhandler_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestListUsersShowsCurrentGroupNames: a page of users names each user's
// groups; after a group is renamed (or deleted) the next page says so,
// whatever the handler kept of the page before.
func TestListUsersShowsCurrentGroupNames(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice")
	bob := e.createUser("bob")
	eng := e.createGroup("Engineering", alice, bob)
	staff := e.createGroup("Staff", alice)

	groupsOf := func() map[string][]string {
		t.Helper()
		var page struct {
			Resources []struct {
				ID     string `json:"id"`
				Groups []struct {
					Value   string `json:"value"`
					Display string `json:"display"`
				} `json:"groups"`
			} `json:"Resources"`
		}
		r := e.want(e.do(http.MethodGet, "/Users?count=10", nil), http.StatusOK)
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, u := range page.Resources {
			for _, g := range u.Groups {
				out[u.ID] = append(out[u.ID], g.Value+"="+g.Display)
			}
		}
		return out
	}
	check := func(when string, want map[string][]string) {
		t.Helper()
		got := groupsOf()
		for _, id := range []string{alice, bob} {
			if len(got[id]) != len(want[id]) {
				t.Fatalf("%s: groups of %s = %v, want %v", when, id, got[id], want[id])
			}
			for _, g := range want[id] {
				found := false
				for _, h := range got[id] {
					found = found || h == g
				}
				if !found {
					t.Fatalf("%s: groups of %s = %v, want %v", when, id, got[id], want[id])
				}
			}
		}
	}
	check("at first", map[string][]string{alice: {eng + "=Engineering", staff + "=Staff"}, bob: {eng + "=Engineering"}})
	check("again", map[string][]string{alice: {eng + "=Engineering", staff + "=Staff"}, bob: {eng + "=Engineering"}})
	e.want(e.do(http.MethodPatch, "/Groups/"+eng, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": "R&D"}},
	}), http.StatusNoContent)
	check("after the rename", map[string][]string{alice: {eng + "=R&D", staff + "=Staff"}, bob: {eng + "=R&D"}})
	e.want(e.do(http.MethodDelete, "/Groups/"+staff, nil), http.StatusNoContent)
	check("after the delete", map[string][]string{alice: {eng + "=R&D"}, bob: {eng + "=R&D"}})
}
