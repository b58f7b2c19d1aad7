//go:build linux

package badgerstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// BenchmarkUserByUserNameTrimmed100k is BenchmarkUserByUserName100k with
// the store's mapped pages paged out (untimed) before every lookup (the
// worst case: each lookup faults its pages in from disk) or before every
// 1,000th (a trim a second at 1,000 lookups a second); all files, or the
// value log and WAL only (the trimmer's first step).
func BenchmarkUserByUserNameTrimmed100k(b *testing.B) {
	s := loadFixture(b)
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		every int
		trim  func(*badgerstore.Store)
	}{
		{"all-every-1", 1, badgerstore.TrimMappedPages},
		{"all-every-1000", 1000, badgerstore.TrimMappedPages},
		{"valuelog-every-1", 1, badgerstore.TrimValueLogPages},
		{"valuelog-every-1000", 1000, badgerstore.TrimValueLogPages},
	} {
		b.Run(tt.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if i%tt.every == 0 {
					b.StopTimer()
					tt.trim(s)
					b.StartTimer()
				}
				name := fmt.Sprintf("USER%06d@example.com", (i*7919)%fixtureUsers)
				i++
				if err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
					_, err := tx.UserByUserName(name)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
