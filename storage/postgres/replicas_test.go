package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestTwoReplicasRace: the suite's concurrency checks with the updaters
// alternating between two stores on one database, as two gateways behind a
// load balancer would: 50 member adds (each also bumping the group) lose
// nothing, and of 50 creators of one userName (in any case) exactly one
// wins.
func TestTwoReplicasRace(t *testing.T) {
	db := newDatabase(t)
	stores := []*Store{openStore(t, db, Options{}), openStore(t, db, Options{})}
	ctx := context.Background()
	const n = 50
	err := stores[0].Update(ctx, "acme", func(tx storage.Tx) error {
		for i := range n {
			if err := tx.PutUser(&storage.User{ID: fmt.Sprintf("u%02d", i), UserName: fmt.Sprintf("user%02d", i)}); err != nil {
				return err
			}
		}
		return tx.PutGroup(&storage.Group{ID: "g", DisplayName: "everyone"})
	})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		write func(i int) func(tx storage.Tx) error
		check func(t *testing.T, errs []error)
	}{
		{
			name: "member adds",
			write: func(i int) func(tx storage.Tx) error {
				return func(tx storage.Tx) error {
					g, err := tx.GetGroup("g")
					if err != nil {
						return err
					}
					if _, err := tx.AddMember("g", storage.Member{ID: fmt.Sprintf("u%02d", i), Type: storage.MemberUser}); err != nil {
						return err
					}
					g.Modified = time.Now()
					return tx.PutGroup(g)
				}
			},
			check: func(t *testing.T, errs []error) {
				for i, err := range errs {
					if err != nil {
						t.Errorf("adder %d: %v", i, err)
					}
				}
				err := stores[1].View(ctx, "acme", func(tx storage.ReadTx) error {
					count, err := tx.CountMembers("g")
					if err != nil || count != n {
						return fmt.Errorf("CountMembers = %d, %v; want %d", count, err, n)
					}
					g, err := tx.GetGroup("g")
					if err != nil || g.Version != n+1 {
						return fmt.Errorf("group Version = %v, %v; want %d", g, err, n+1)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "creates of one userName",
			write: func(i int) func(tx storage.Tx) error {
				name := []string{"racer", "Racer", "RACER"}[i%3]
				return func(tx storage.Tx) error {
					return tx.PutUser(&storage.User{ID: fmt.Sprintf("id-%02d", i), UserName: name})
				}
			},
			check: func(t *testing.T, errs []error) {
				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, storage.ErrUniqueness):
						t.Errorf("creator %d: %v, want nil or ErrUniqueness", i, err)
					}
				}
				if won != 1 {
					t.Fatalf("%d creators won, want 1", won)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := time.Now()
			for i := range n {
				wg.Go(func() { errs[i] = stores[i%2].Update(ctx, "acme", c.write(i)) })
			}
			wg.Wait()
			t.Logf("%d concurrent updates over two stores took %v", n, time.Since(start))
			c.check(t, errs)
		})
	}
}
