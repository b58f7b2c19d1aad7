package badgerstore_test

import (
	"context"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// BenchmarkScanUsersPage100k: one SCIM page of users (100 records read
// and decoded by ScanUsers) from a random cursor, in its own View, with
// 100,000 users stored. Decoding the records dominates a page at scale.
func BenchmarkScanUsersPage100k(b *testing.B) {
	const page = 100
	s := loadFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
			return tx.ScanUsers(storage.NewID(), func(u *storage.User) (bool, error) {
				n++
				return n < page, nil
			})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
