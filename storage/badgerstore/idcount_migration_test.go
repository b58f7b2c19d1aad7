package badgerstore

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// TestMigrationCountsByIDBucket: a schema 3 store (fnv-sharded counters
// under kindCount, no kindIDCount) of two tenants is opened by this code,
// which replaces the old counters with id-bucket ones: the counts and the
// positions are right, and no old counter is left.
func TestMigrationCountsByIDBucket(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for tenant, n := range map[string]int{"acme": 300, "globex": 7} {
		err := s.Update(context.Background(), tenant, func(tx storage.Tx) error {
			for i := range n {
				id := storage.NewID()
				if i == 0 {
					id = "a" // shorter than a bucket
				}
				want[tenant] = append(want[tenant], id)
				if err := tx.PutUser(&storage.User{ID: id, UserName: fmt.Sprintf("u%d", i)}); err != nil {
					return err
				}
				if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: "g"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want[tenant])
	}
	// Turn it into what schema 3 wrote: the counts in 32 fnv shards.
	err = s.db.Update(func(txn *badger.Txn) error {
		for tenant, ids := range want {
			k := keyer{tenantPrefix(tenant)}
			raw := &tx{txn: txn, k: k}
			for _, kind := range []byte{countUsers, countGroups} {
				newKeys, err := raw.suffixes(k.counts(kind))
				if err != nil {
					return err
				}
				for _, suffix := range newKeys {
					if err := txn.Delete(append(k.counts(kind), suffix...)); err != nil {
						return err
					}
				}
				// All in two old shards: any split will do.
				old := append(k.kind(kindCount), kind)
				if err := txn.Set(append(old, 3), be64(int64(len(ids)-1))); err != nil {
					return err
				}
				if err := txn.Set(append(old, 17), be64(1)); err != nil {
					return err
				}
			}
		}
		return txn.Set(schemaKey, []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := readSchemaVersion(s.db); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after open = %d, %v; want %d", v, err, SchemaVersion)
	}
	for tenant, ids := range want {
		err := s.View(context.Background(), tenant, func(rt storage.ReadTx) error {
			for _, c := range []struct {
				name  string
				count func() (int, error)
				at    func(int) (string, error)
			}{{"users", rt.CountUsers, rt.UserIDAt}, {"groups", rt.CountGroups, rt.GroupIDAt}} {
				if n, err := c.count(); err != nil || n != len(ids) {
					t.Errorf("%s: %s counted %d, %v; want %d", tenant, c.name, n, err, len(ids))
				}
				for i, id := range ids {
					if got, err := c.at(i); err != nil || got != id {
						t.Fatalf("%s: %s at %d = %q, %v; want %q", tenant, c.name, i, got, err, id)
					}
				}
			}
			old, err := rt.(*tx).suffixes(rt.(*tx).k.kind(kindCount))
			if err != nil || len(old) != 0 {
				t.Errorf("%s: old counters left: %q, %v", tenant, old, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func be64(n int64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[7-i] = byte(n >> (8 * i))
	}
	return b
}
