package scimhandler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestTransactionTooBigIs413: a change that needs more writes than the
// store takes in one transaction (here deleting a group of 28,000 members,
// two membership records each; Badger takes ~52,000 writes) is answered
// 413 with a SCIM error body, not 500, and nothing of it is written.
// Removing the members in batches, as the error says, then lets the group
// be deleted.
func TestTransactionTooBigIs413(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a group of 28,000 members")
	}
	e := newEnv(t)
	const members, batch = 28000, 7000
	ids := make([]string, members)
	// Users and memberships are written straight into the store: through
	// SCIM they would take 28,000 synchronous commits.
	for start := 0; start < members; start += batch {
		err := e.badger.Update(context.Background(), tenant, func(tx storage.Tx) error {
			now := time.Now().UTC()
			for i := start; i < start+batch; i++ {
				ids[i] = storage.NewID()
				name := fmt.Sprintf("user%05d", i)
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
	before := len(e.members(gid))
	if before != members {
		t.Fatalf("group has %d members, want %d", before, members)
	}

	r := e.want(e.do("DELETE", "/Groups/"+gid, nil), http.StatusRequestEntityTooLarge)
	if r.header.Get("Content-Type") != "application/scim+json" {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
	b := r.obj(t)
	if b["status"] != "413" || b["scimType"] != nil || !strings.Contains(str(b["detail"]), "smaller requests") {
		t.Errorf("error body %s", r.body)
	}
	if n := len(e.members(gid)); n != members {
		t.Errorf("after the refused delete the group has %d members, want %d", n, members)
	}
	e.want(e.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil), http.StatusOK)
	if evs := e.events(storage.EventGroupDeleted); len(evs) != 0 {
		t.Errorf("a group.deleted event was recorded for the refused delete: %+v", evs[0])
	}

	// The way out the detail names: members removed in requests of at most
	// 10,000 changes (the handler's bound per request), then the delete.
	for start := 0; start < members; start += 10000 {
		vals := []map[string]string{}
		for _, id := range ids[start:min(start+10000, members)] {
			vals = append(vals, map[string]string{"value": id})
		}
		r := e.do("PATCH", "/Groups/"+gid, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "remove", "path": "members", "value": vals}},
		})
		if r.status != http.StatusOK && r.status != http.StatusNoContent {
			t.Fatalf("removing members %d..: %d %s", start, r.status, r.body)
		}
	}
	e.want(e.do("DELETE", "/Groups/"+gid, nil), http.StatusNoContent)
}
