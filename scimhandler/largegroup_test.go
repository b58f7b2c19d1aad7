package scimhandler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestDeleteGroupOf100000Members: deleting a group of 100,000 members (four
// times what one Badger commit could remove) answers 204, the audit event
// is recorded, and at once no member is in the group any more: their next
// request sees no trace of it. Users and memberships are written straight
// into the store: through SCIM they would take 100,000 synchronous commits.
func TestDeleteGroupOf100000Members(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a group of 100,000 members")
	}
	e := newEnv(t)
	const members, batch = 100_000, 5_000
	ids := make([]string, members)
	for start := 0; start < members; start += batch {
		err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
			now := time.Now().UTC()
			for i := start; i < start+batch; i++ {
				ids[i] = storage.NewID()
				name := fmt.Sprintf("user%06d", i)
				attrs, _ := json.Marshal(map[string]any{"userName": name, "active": true})
				if err := tx.PutUser(&storage.User{ID: ids[i], UserName: name, Active: true,
					Source: storage.SourceSCIM, Attributes: attrs, Created: now, Modified: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	gid := e.createGroup("Everyone")
	other := e.createGroup("Admins", ids[0])
	for start := 0; start < members; start += batch {
		err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
			for _, id := range ids[start : start+batch] {
				if _, err := tx.AddMember(gid, storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.members(gid)); n != members {
		t.Fatalf("group has %d members, want %d", n, members)
	}

	e.want(e.do("DELETE", "/Groups/"+gid, nil), http.StatusNoContent)

	e.want(e.do("GET", "/Groups/"+gid, nil), http.StatusNotFound)
	if n := len(e.members(gid)); n != 0 {
		t.Errorf("right after the delete the group still lists %d members", n)
	}
	for _, id := range []string{ids[0], ids[members/2], ids[members-1]} {
		u := e.want(e.do("GET", "/Users/"+id, nil), http.StatusOK).obj(t)
		for _, g := range asList(u["groups"]) {
			if str(path(g, "value")) == gid {
				t.Errorf("user %s still lists the deleted group: %v", id, u["groups"])
			}
		}
	}
	// The member's other group is untouched.
	u := e.want(e.do("GET", "/Users/"+ids[0], nil), http.StatusOK).obj(t)
	if gs := asList(u["groups"]); len(gs) != 1 || str(path(gs[0], "value")) != other {
		t.Errorf("user 0's groups = %v, want only %s", u["groups"], other)
	}
	evs := e.events(storage.EventGroupDeleted)
	if len(evs) != 1 || evs[0].ResourceID != gid {
		t.Fatalf("group.deleted events = %+v, want one for %s", evs, gid)
	}
	// The list of groups no longer counts it.
	l := e.want(e.do("GET", "/Groups?count=0", nil), http.StatusOK).obj(t)
	if n := num(l["totalResults"]); n != 1 {
		t.Errorf("totalResults after the delete = %d, want 1", n)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
