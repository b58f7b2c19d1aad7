package badgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// BenchmarkConcurrentJoins: 50 concurrent transactions each add a new
// member to one group (sign-ins joining "everyone"), with no other write
// in common: the cost of the conflicts on the group's member counters,
// which every add reads and writes. One op is the 50 joins.
func BenchmarkConcurrentJoins(b *testing.B) {
	const joiners = 50
	s, err := badgerstore.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	err = s.Update(ctx, benchTenant, func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: "everyone", DisplayName: "everyone"})
	})
	if err != nil {
		b.Fatal(err)
	}
	round := 0
	for b.Loop() {
		round++
		var wg sync.WaitGroup
		errs := make([]error, joiners)
		for i := range joiners {
			wg.Go(func() {
				errs[i] = s.Update(ctx, benchTenant, func(tx storage.Tx) error {
					_, err := tx.AddMember("everyone", storage.Member{ID: fmt.Sprintf("u%d-%d", round, i), Type: storage.MemberUser})
					return err
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	err = s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
		n, err := tx.CountMembers("everyone")
		if err == nil && n != round*joiners {
			err = fmt.Errorf("CountMembers = %d, want %d", n, round*joiners)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
