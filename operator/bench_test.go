package operator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// seedScale fills the tenant with users and groups (each user in three
// groups) in batches, and maps a tenth of the groups at runtime.
func seedScale(b *testing.B, e *env, users, groups int) {
	b.Helper()
	gids := make([]string, groups)
	for i := range gids {
		gids[i] = fmt.Sprintf("g-%05d", i)
	}
	e.update(func(tx storage.Tx) error {
		for i, id := range gids {
			if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: fmt.Sprintf("Team %d", i), Source: storage.SourceSCIM}); err != nil {
				return err
			}
			if i%10 == 0 {
				if err := tx.PutMapping(storage.Mapping{Group: id, Role: "editor"}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	const batch = 500
	for start := 0; start < users; start += batch {
		e.update(func(tx storage.Tx) error {
			for i := start; i < min(start+batch, users); i++ {
				id := storage.NewID()
				u := &storage.User{ID: id, UserName: fmt.Sprintf("user%06d@acme.test", i), DisplayName: fmt.Sprintf("Person %06d", i),
					Emails: []string{fmt.Sprintf("user%06d@acme.test", i)}, Active: true, Source: storage.SourceSCIM}
				if err := tx.PutUser(u); err != nil {
					return err
				}
				for k := 0; k < 3; k++ {
					if _, err := tx.AddMember(gids[(i*7+k*131)%groups], storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
}

// BenchmarkListUsers100k: the users page with 100,000 users and 1,000
// groups: the first page, a page further on (cursor), a search by a
// name that matches one user, and the groups page.
func BenchmarkListUsers100k(b *testing.B) {
	e := newEnv(b)
	seedScale(b, e, 100_000, 1_000)
	ctx := context.Background()
	if err := e.svc.WarmSearchIndex(ctx); err != nil {
		b.Fatal(err)
	}
	_, mid, err := e.svc.ListUsers(ctx, operator.UserQuery{Limit: 500})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    operator.UserQuery
		want int
	}{
		{"FirstPage", operator.UserQuery{}, 50},
		{"NextPage", operator.UserQuery{Cursor: mid}, 50},
		{"SearchOneByName", operator.UserQuery{Filter: "Person 077777"}, 1},
		{"SearchByUserName", operator.UserQuery{Filter: "user012345@acme.test"}, 1},
		{"SearchManyByName", operator.UserQuery{Filter: "person 01"}, 50},
		{"SearchEmailPrefix", operator.UserQuery{Filter: "user09999"}, 10},
		{"SourceManual", operator.UserQuery{Source: storage.SourceManual}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				users, _, err := e.svc.ListUsers(ctx, bc.q)
				if err != nil || len(users) != bc.want {
					b.Fatalf("%d users, %v; want %d", len(users), err, bc.want)
				}
			}
		})
	}
	// 1,000 manual users written since the index was built, noted as the
	// operator and SCIM writes are: listings merge them until a rebuild.
	var written []*storage.User
	e.update(func(tx storage.Tx) error {
		for i := range 1000 {
			u := &storage.User{ID: storage.NewID(), UserName: fmt.Sprintf("new%04d@acme.test", i), Active: true, Source: storage.SourceManual}
			if err := tx.PutUser(u); err != nil {
				return err
			}
			written = append(written, u)
		}
		return nil
	})
	for _, u := range written {
		e.svc.NoteUser(u)
	}
	for _, bc := range []struct {
		name string
		q    operator.UserQuery
		want int
	}{
		{"AfterWrites/SourceManual", operator.UserQuery{Source: storage.SourceManual}, 50},
		{"AfterWrites/SearchNew", operator.UserQuery{Filter: "new099"}, 10},
		{"AfterWrites/SearchOneByName", operator.UserQuery{Filter: "Person 077777"}, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				users, _, err := e.svc.ListUsers(ctx, bc.q)
				if err != nil || len(users) != bc.want {
					b.Fatalf("%d users, %v; want %d", len(users), err, bc.want)
				}
			}
		})
	}
	b.Run("Groups", func(b *testing.B) {
		for b.Loop() {
			groups, err := e.svc.ListGroups(ctx)
			if err != nil || len(groups) != 1000 {
				b.Fatalf("%d groups, %v", len(groups), err)
			}
		}
	})
}
