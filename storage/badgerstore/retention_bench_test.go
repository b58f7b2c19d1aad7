package badgerstore

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// BenchmarkCountEvents200k is the one-off scan that learns a tenant's event
// count (at SetEventRetention, or else the tenant's first Update in the
// process); a tenant at the default cap of 1,000,000 takes five times as
// long.
func BenchmarkCountEvents200k(b *testing.B) {
	const n, batch = 200_000, 10_000
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(-time.Hour)
	for start := 0; start < n; start += batch {
		err := s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error {
			for i := start; i < start+batch; i++ {
				if err := tx.AppendEvent(storage.Event{Time: base.Add(time.Duration(i) * time.Microsecond), Type: storage.EventSignIn}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	prefix := tenantPrefix(sweepTenant)
	for b.Loop() {
		got, err := s.countEvents(prefix)
		if err != nil || got != n {
			b.Fatalf("countEvents = %d, %v; want %d", got, err, n)
		}
	}
}
