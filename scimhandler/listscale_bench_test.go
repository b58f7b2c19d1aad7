package scimhandler_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// listScaleUsers sizes BenchmarkListUsersAtScale; `go run ./bench -only
// scale` takes the same figures over HTTP through Caddy at a million.
var listScaleUsers = flag.Int("list-scale-users", 50000, "users stored for BenchmarkListUsersAtScale")

// BenchmarkListUsersAtScale measures GET /Users pages of 100 (the first,
// and deep ones at random startIndex, which no cursor of an earlier page
// serves) and userName eq lookups of random users with -list-scale-users users, each in 1 to 4 of 100 groups.
//
//	go test ./scimhandler -run '^$' -bench ListUsersAtScale -list-scale-users 200000
func BenchmarkListUsersAtScale(b *testing.B) {
	if testing.Short() {
		b.Skip("loads a large store")
	}
	users := *listScaleUsers
	e := newEnv(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	groups := make([]string, 100)
	err := e.badger.Update(ctx, tenant, func(tx storage.Tx) error {
		for i := range groups {
			groups[i] = storage.NewID()
			if err := tx.PutGroup(&storage.Group{ID: groups[i], DisplayName: fmt.Sprintf("group %d", i), Source: storage.SourceSCIM}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for first := 0; first < users; first += 1000 {
		err := e.badger.Update(ctx, tenant, func(tx storage.Tx) error {
			for i := first; i < min(users, first+1000); i++ {
				name := fmt.Sprintf("user%07d@example.com", i)
				attrs, _ := json.Marshal(map[string]any{
					"name":   map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
					"emails": []any{map[string]any{"value": name, "type": "work", "primary": true}},
				})
				id := storage.NewID()
				if err := tx.PutUser(&storage.User{ID: id, UserName: name, Emails: []string{name}, Active: true,
					Source: storage.SourceSCIM, Attributes: attrs}); err != nil {
					return err
				}
				for range 1 + i%4 {
					if _, err := tx.AddMember(groups[rng.IntN(len(groups))], storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	c := benchClient(e)
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchRequest(b, c, e, "GET", e.base+"/Users?count=100", "", http.StatusOK)
		}
	})
	b.Run("filter-eq", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			name := fmt.Sprintf("user%07d@example.com", rng.IntN(users))
			benchRequest(b, c, e, "GET", e.base+"/Users?filter="+q(`userName eq "`+name+`"`), "", http.StatusOK)
		}
	})
	b.Run("deep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			start := 1 + rng.IntN(users-100)
			benchRequest(b, c, e, "GET", fmt.Sprintf("%s/Users?count=100&startIndex=%d", e.base, start), "", http.StatusOK)
		}
	})
}
