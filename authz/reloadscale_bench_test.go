package authz

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

var (
	reloadScaleUsers  = flag.Int("reload-scale-users", 100000, "users stored for BenchmarkReloadAtScale")
	reloadScaleGroups = flag.Int("reload-scale-groups", 1000, "groups stored for BenchmarkReloadAtScale")
)

// BenchmarkReloadAtScale is BenchmarkGate's reload (a write of another
// user moves the generation before every request, so each request reads
// session, user, groups and role from the store again) in a tenant of
// -reload-scale-users users in 1 to 4 of -reload-scale-groups groups each,
// with mappings by displayName and by externalId: what a reload costs
// should not grow with the directory. `go run ./bench -only scale` takes
// the same figure over HTTP at a million users.
//
//	go test ./authz -run '^$' -bench ReloadAtScale -reload-scale-users 1000000 -reload-scale-groups 10000
func BenchmarkReloadAtScale(b *testing.B) {
	if testing.Short() {
		b.Skip("loads a large store")
	}
	f := newFixture(b)
	users, groups := *reloadScaleUsers, max(*reloadScaleGroups, 3)
	rng := rand.New(rand.NewPCG(5, 6))
	gs := make([]*storage.Group, groups)
	for first := 0; first < groups; first += 1000 {
		f.update(func(tx storage.Tx) error {
			for i := first; i < min(groups, first+1000); i++ {
				gs[i] = &storage.Group{ID: storage.NewID(), DisplayName: fmt.Sprintf("group %d", i),
					ExternalID: fmt.Sprintf("ext-%d", i), Source: storage.SourceSCIM}
				if err := tx.PutGroup(gs[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for first := 0; first < users; first += 1000 {
		f.update(func(tx storage.Tx) error {
			for i := first; i < min(users, first+1000); i++ {
				u := &storage.User{ID: storage.NewID(), UserName: fmt.Sprintf("user%07d@example.com", i), Active: true, Source: storage.SourceSCIM}
				if err := tx.PutUser(u); err != nil {
					return err
				}
				for range 1 + rng.IntN(4) {
					g := gs[int(float64(groups)*rng.Float64()*rng.Float64())]
					if _, err := tx.AddMember(g.ID, storage.Member{ID: u.ID, Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	u := f.user("bench")
	f.join(u, gs[0], gs[groups/2], gs[groups-1])
	other := f.user("bystander")
	ids := f.identities(threeRoles(
		GroupMapping{Group: gs[groups/2].DisplayName, Role: "editor"},
		GroupMapping{Group: gs[1].ExternalID, Role: "admin"},
	))
	gate := f.gate(ids, GateConfig{Policy: Policy{Require: "editor"}})
	r := httptest.NewRequest(http.MethodGet, "/wiki/page", nil)
	r.AddCookie(&http.Cookie{Name: testCookie, Value: f.signIn(u)})
	cookieLines := r.Header["Cookie"]
	w := httptest.NewRecorder()
	authorize := func() {
		r.Header["Cookie"] = cookieLines
		if id, ok := gate.Authorize(w, r); !ok || id == nil || id.Role != "editor" {
			b.Fatalf("refused: %d %s", w.Code, w.Body)
		}
	}
	authorize()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		f.update(func(tx storage.Tx) error {
			other.DisplayName += "x"
			return tx.PutUser(other)
		})
		b.StartTimer()
		authorize()
	}
}
