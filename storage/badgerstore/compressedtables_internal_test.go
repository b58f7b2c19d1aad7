package badgerstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// TestReadsTablesWrittenCompressed: a store whose tables an earlier
// version wrote with Snappy (and read through a block cache) opens with
// today's defaults, uncompressed tables and no block cache, and every
// record reads back, also after a compaction rewrote the tables. The
// control: the same records written today take more bytes of tables, so
// the old store's tables were compressed.
func TestReadsTablesWrittenCompressed(t *testing.T) {
	const users = 2000
	ctx := context.Background()
	old, today := t.TempDir(), t.TempDir()
	writeUsers(t, old, options.Snappy, users)
	writeUsers(t, today, defaultTableCompression, users)
	if o, n := tableBytes(t, old), tableBytes(t, today); o >= n {
		t.Fatalf("Snappy tables take %d bytes, uncompressed ones %d: nothing was compressed", o, n)
	}

	s, err := Open(old, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(when string) {
		t.Helper()
		err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
			for i := 0; i < users; i++ {
				u, err := tx.UserByUserName(fmt.Sprintf("user%05d@acme.test", i))
				if err != nil {
					return fmt.Errorf("user %d: %w", i, err)
				}
				if u.ID != fmt.Sprintf("u%05d", i) {
					return fmt.Errorf("user %d has id %s", i, u.ID)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	check("with the Snappy tables")
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	check("after a compaction")
}

// writeUsers writes n users into a new store in dir whose tables use
// compression (with a block cache, which Badger needs to read compressed
// tables), and closes it, which flushes them into a table.
func writeUsers(t *testing.T, dir string, compression options.CompressionType, n int) {
	t.Helper()
	tableCompression = compression
	defer func() { tableCompression = defaultTableCompression }()
	s, err := OpenWithOptions(dir, zap.NewNop(), Options{BlockCacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < n; lo += 500 {
		err := s.Update(context.Background(), "acme", func(tx storage.Tx) error {
			for i := lo; i < min(lo+500, n); i++ {
				now := time.Now()
				u := &storage.User{ID: fmt.Sprintf("u%05d", i), UserName: fmt.Sprintf("user%05d@acme.test", i),
					DisplayName: "A user whose record is long enough for the value log", Active: true,
					Source: storage.SourceSCIM, Created: now, Modified: now}
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// tableBytes is the size on disk of the tables of the store in dir.
func tableBytes(t *testing.T, dir string) int64 {
	t.Helper()
	s, err := Open(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int64
	for _, ti := range s.db.Tables() {
		n += int64(ti.OnDiskSize)
	}
	return n
}
