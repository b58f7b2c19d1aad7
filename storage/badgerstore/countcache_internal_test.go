package badgerstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestCountCacheFollowsSnapshots: reads of one snapshot share the counters
// (the second read walks nothing), and a commit of any tenant gives the
// next read a new snapshot, which reads the new counts.
func TestCountCacheFollowsSnapshots(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	put := func(tenant string, i int) {
		t.Helper()
		id := storage.NewID()
		if err := s.Update(ctx, tenant, func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: id, UserName: fmt.Sprintf("u%d@example.com", i), Active: true, Source: storage.SourceSCIM})
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (n int, bc *bucketCounts) {
		t.Helper()
		if err := s.View(ctx, "acme", func(rt storage.ReadTx) error {
			var err error
			if n, err = rt.CountUsers(); err != nil {
				return err
			}
			bc, err = rt.(*tx).bucketCounts(countUsers)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n, bc
	}
	for i := range 3 {
		put("acme", i)
	}
	n1, bc1 := read()
	n2, bc2 := read()
	if n1 != 3 || n2 != 3 {
		t.Fatalf("counts %d, %d; want 3", n1, n2)
	}
	if bc1 != bc2 {
		t.Errorf("two reads of one snapshot walked the counters twice")
	}
	put("acme", 3)
	if n, bc := read(); n != 4 || bc == bc1 {
		t.Errorf("after a write: count %d (want 4), cached counters reused: %v", n, bc == bc1)
	}
	_, bc4 := read()
	put("globex", 0) // another tenant's commit moves the snapshot too
	if n, bc := read(); n != 4 || bc == bc4 {
		t.Errorf("after another tenant's write: count %d (want 4), cached counters reused: %v", n, bc == bc4)
	}
}
