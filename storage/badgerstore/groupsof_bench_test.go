package badgerstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// BenchmarkGroupsOf is the membership read of an identity load (a user in
// 20 groups), with no deleted group awaiting its sweep and with 10: reads
// filter tombstoned groups through one prefix scan per transaction.
func BenchmarkGroupsOf(b *testing.B) {
	for _, pending := range []int{0, 10} {
		b.Run(fmt.Sprintf("tombstones=%d", pending), func(b *testing.B) {
			s, err := badgerstore.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			err = s.Update(ctx, benchTenant, func(tx storage.Tx) error {
				for i := range 20 + pending {
					gid := fmt.Sprintf("g%02d", i)
					if err := tx.PutGroup(&storage.Group{ID: gid, DisplayName: gid}); err != nil {
						return err
					}
					if _, err := tx.AddMember(gid, storage.Member{ID: "u1", Type: storage.MemberUser}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			// Deleted groups keep their tombstones while the sweeper is
			// busy with a large one; deleting many at once approximates
			// that (the sweep of small groups is quick, so some may go).
			err = s.Update(ctx, benchTenant, func(tx storage.Tx) error {
				for i := 20; i < 20+pending; i++ {
					if err := tx.DeleteGroup(fmt.Sprintf("g%02d", i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
					gs, err := tx.GroupsOf("u1")
					if err == nil && len(gs) != 20 {
						err = fmt.Errorf("GroupsOf = %d groups, want 20", len(gs))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
