package operator

import (
	"context"
	"testing"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// TestStaleSearchIndex: while the index is older than the store, a search
// never shows a user who no longer matches (renamed, deleted), and an
// exact userName created since is still found.
func TestStaleSearchIndex(t *testing.T) {
	bs, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	s, err := New(Config{Tenant: "acme", Store: bs, Roles: authz.Roles{Levels: []string{"viewer"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(id, name string) {
		if err := bs.Update(ctx, "acme", func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: id, UserName: name, Active: true, Source: storage.SourceSCIM})
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("1", "alice")
	put("2", "alfred")
	put("3", "bob")
	if err := s.WarmSearchIndex(ctx); err != nil {
		t.Fatal(err)
	}
	put("2", "fred") // renamed since the build
	if err := bs.Update(ctx, "acme", func(tx storage.Tx) error { return tx.DeleteUser("1") }); err != nil {
		t.Fatal(err)
	}
	put("4", "alison") // created since the build
	s.search.mu.Lock()
	s.search.lastStart = s.now() // hold off the background rebuild
	s.search.mu.Unlock()
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"al", nil},               // alice deleted, alfred renamed, alison not indexed yet
		{"alison", []string{"4"}}, // exact userName: the store's index
		{"bob", []string{"3"}},
	} {
		users, _, err := s.ListUsers(ctx, UserQuery{Filter: tc.filter})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("filter %q on a stale index = %v, want %v", tc.filter, got, tc.want)
		}
	}
	if err := s.WarmSearchIndex(ctx); err != nil {
		t.Fatal(err)
	}
	users, _, _ := s.ListUsers(ctx, UserQuery{Filter: "al"})
	if len(users) != 1 || users[0].ID != "4" {
		t.Fatalf("after the rebuild, filter al = %+v", users)
	}
}
