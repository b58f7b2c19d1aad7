package badgerstore

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// TestDefaultMemtableTakes4000MemberChanges: what Options.MemTableSize
// documents for the default, with ids as long as real IdPs' (UUIDs): one
// transaction adds 4,000 members to a group with an audit event each, as
// a SCIM PATCH does. Each counter and anchor the adds touch is written
// once (pendingcounters.go, setAnchor); written at every add they took
// the same change past the default's bound.
func TestDefaultMemtableTakes4000MemberChanges(t *testing.T) {
	s, err := OpenWithOptions(t.TempDir(), zap.NewNop(), Options{MappedMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const members = 4000
	id := func(i int) string { return fmt.Sprintf("9a7c2b1e-5d3f-4e8a-b6c9-%012d", i) }
	const gid = "3f1c6e1e-7a4b-4c59-9f0e-2d8b5a6c7e10"
	for start := 0; start < members; start += 1000 {
		if err := s.Update(ctx, "acme", func(tx storage.Tx) error {
			for i := start; i < start+1000; i++ {
				if err := tx.PutUser(&storage.User{ID: id(i), UserName: id(i) + "@example.com", Active: true}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, "acme", func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: gid, DisplayName: "Engineering"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "acme", func(tx storage.Tx) error {
		for i := range members {
			if _, err := tx.AddMember(gid, storage.Member{ID: id(i), Type: storage.MemberUser}); err != nil {
				return err
			}
			if err := tx.AppendEvent(storage.Event{Type: storage.EventMemberAdded, Actor: "8c1d0f2a-1111-2222-3333-444455556666",
				ResourceType: "Group", ResourceID: gid, After: "member=" + id(i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%d member adds with their events in one transaction: %v", members, err)
	}
	if err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
		n, err := tx.CountMembers(gid)
		if err == nil && n != members {
			err = fmt.Errorf("CountMembers = %d, want %d", n, members)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
