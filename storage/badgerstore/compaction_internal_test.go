package badgerstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestCompactionOnDemand: with Badger's compactors off, writes that fill
// level 0 past level0Compact tables get it compacted by the store's own
// compactor, every record stays readable, and a reopen finds them all.
func TestCompactionOnDemand(t *testing.T) {
	dir := t.TempDir()
	// The smallest memtable: level 0 fills after a few hundred users.
	opts := Options{MemTableSize: minMemTableSize}
	s, err := OpenWithOptions(dir, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 300, 200
	sawLevel0 := 0
	for b := 0; b < batches; b++ {
		err := s.Update(context.Background(), "acme", func(tx storage.Tx) error {
			for i := 0; i < perBatch; i++ {
				id := fmt.Sprintf("u-%03d-%04d", b, i)
				if err := tx.PutUser(&storage.User{ID: id, UserName: id + "@example.com", Active: true, Source: storage.SourceSCIM}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sawLevel0 = max(sawLevel0, s.db.Levels()[0].NumTables)
	}
	if sawLevel0 < level0Compact-1 {
		t.Fatalf("level 0 never held more than %d tables: the test writes too little to need a compaction", sawLevel0)
	}
	// The compactor checks at most once a compactCheckInterval.
	deadline := time.Now().Add(10 * compactCheckInterval)
	for s.db.Levels()[0].NumTables >= level0Compact {
		if time.Now().After(deadline) {
			t.Fatalf("level 0 still holds %d tables %s after the writes", s.db.Levels()[0].NumTables, 10*compactCheckInterval)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check := func(s *Store, when string) {
		t.Helper()
		err := s.View(context.Background(), "acme", func(tx storage.ReadTx) error {
			for _, id := range []string{"u-000-0000", "u-030-0100", fmt.Sprintf("u-%03d-%04d", batches-1, perBatch-1)} {
				u, err := tx.GetUser(id)
				if err != nil {
					return fmt.Errorf("user %s: %w", id, err)
				}
				if u.UserName != id+"@example.com" {
					return fmt.Errorf("user %s has userName %q", id, u.UserName)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
	check(s, "after compaction")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenWithOptions(dir, nil, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "after a reopen")
}

// TestOptionsWithDefaults: zero fields take the defaults, sizes out of
// range are refused.
func TestOptionsWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		want    Options
		wantErr bool
	}{
		{"zero", Options{}, DefaultOptions, false},
		{"memtable set", Options{MemTableSize: 64 << 20}, Options{MemTableSize: 64 << 20, BlockCacheSize: DefaultOptions.BlockCacheSize, MappedMemory: DefaultOptions.MappedMemory}, false},
		{"cache set", Options{BlockCacheSize: 128 << 20}, Options{MemTableSize: DefaultOptions.MemTableSize, BlockCacheSize: 128 << 20, MappedMemory: DefaultOptions.MappedMemory}, false},
		{"trimming off", Options{MappedMemory: -1}, Options{MemTableSize: DefaultOptions.MemTableSize, BlockCacheSize: DefaultOptions.BlockCacheSize, MappedMemory: -1}, false},
		{"memtable too small", Options{MemTableSize: 4096}, Options{}, true},
		{"memtable too large", Options{MemTableSize: 4 << 30}, Options{}, true},
		{"cache too small", Options{BlockCacheSize: 100}, Options{}, true},
		{"cache off", Options{BlockCacheSize: -5}, Options{MemTableSize: DefaultOptions.MemTableSize, BlockCacheSize: -1, MappedMemory: DefaultOptions.MappedMemory}, false},
		{"trimming auto", Options{MappedMemory: MappedMemoryAuto}, DefaultOptions, false},
		{"trimming negative is off", Options{MappedMemory: -7}, Options{MemTableSize: DefaultOptions.MemTableSize, BlockCacheSize: DefaultOptions.BlockCacheSize, MappedMemory: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.WithDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
