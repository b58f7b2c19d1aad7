package badgerstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// BenchmarkCountAndPositionAfterCreates: CountUsers and UserIDAt right
// after 3,000 users were created one transaction each (as SCIM creates
// them): every create wrote a new version of one bucket counter, and the
// versions still in the memtable are stepped over by the counter walk
// until a flush and compaction drop them.
func BenchmarkCountAndPositionAfterCreates(b *testing.B) {
	if testing.Short() {
		b.Skip("3,000 durable commits")
	}
	const users = 3000
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range users {
		err := s.Update(ctx, "bench", func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: storage.NewID(), UserName: fmt.Sprintf("u%d", i)})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("CountUsers", func(b *testing.B) {
		for b.Loop() {
			err := s.View(ctx, "bench", func(tx storage.ReadTx) error {
				n, err := tx.CountUsers()
				if err == nil && n != users {
					err = fmt.Errorf("CountUsers = %d", n)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UserIDAt", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 7919) % users
			err := s.View(ctx, "bench", func(tx storage.ReadTx) error {
				_, err := tx.UserIDAt(i)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
