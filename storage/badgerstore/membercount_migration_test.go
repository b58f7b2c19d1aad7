package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// rawMemberCounts sums the member counter keys of each group of tenant,
// keyed by comp(group id), bypassing every reader.
func rawMemberCounts(t *testing.T, db *badger.DB, tenant string) map[string]int64 {
	t.Helper()
	k := keyer{tenantPrefix(tenant)}
	prefix := k.kind(kindMemberCount)
	out := make(map[string]int64)
	err := db.View(func(txn *badger.Txn) error {
		raw := &tx{txn: txn, k: k}
		return raw.iterate(prefix, "", func(suffix []byte, item *badger.Item) (bool, error) {
			return true, item.Value(func(b []byte) error {
				if len(b) != 8 {
					return fmt.Errorf("counter %q is %d bytes", suffix, len(b))
				}
				out[string(suffix[:len(suffix)-1])] += int64(binary.BigEndian.Uint64(b))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawMembershipCounts counts the membership keys of each group of tenant,
// keyed like rawMemberCounts.
func rawMembershipCounts(t *testing.T, db *badger.DB, tenant string) map[string]int64 {
	t.Helper()
	k := keyer{tenantPrefix(tenant)}
	out := make(map[string]int64)
	err := db.View(func(txn *badger.Txn) error {
		raw := &tx{txn: txn, k: k}
		return raw.iterate(k.kind(kindMember), "", func(suffix []byte, _ *badger.Item) (bool, error) {
			n, ok := compLen(suffix)
			if !ok {
				return false, fmt.Errorf("membership key suffix %q is corrupt", suffix)
			}
			out[string(suffix[:n])]++
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCountersMatchKeys: the counters of every group of tenant equal its
// membership keys, and no counter is left for a group without any.
func checkCountersMatchKeys(t *testing.T, db *badger.DB, tenant, when string) {
	t.Helper()
	counters, keys := rawMemberCounts(t, db, tenant), rawMembershipCounts(t, db, tenant)
	if len(counters) != len(keys) {
		t.Fatalf("%s: counters for %d groups, membership keys of %d", when, len(counters), len(keys))
	}
	for g, n := range keys {
		if counters[g] != n {
			t.Fatalf("%s: group %.20q has %d membership keys, counters say %d", when, g, n, counters[g])
		}
	}
}

// TestMigrationCountsMembers: a schema 2 store (no member counters) with
// two tenants, a group id past the inline key length, a nested group and
// a deleted group whose sweep is unfinished is opened by this code, which
// counts every group's members; running the step again changes nothing.
func TestMigrationCountsMembers(t *testing.T) {
	dir := t.TempDir()
	s, err := open(dir, nil, Options{}, false) // no sweeper: the tombstone stays
	if err != nil {
		t.Fatal(err)
	}
	long := "g-" + strings.Repeat("y", 400)
	want := map[string]map[string]int{
		"acme":  {"big": 1200, "small": 3, long: 2, "doomed": 0, "empty": 0},
		"other": {"big": 7},
	}
	for tenant, groups := range want {
		err := s.Update(context.Background(), tenant, func(tx storage.Tx) error {
			for g, n := range groups {
				if err := tx.PutGroup(&storage.Group{ID: g, DisplayName: g[:2]}); err != nil {
					return err
				}
				for i := range n {
					if _, err := tx.AddMember(g, storage.Member{ID: fmt.Sprintf("u%05d", i), Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s.Update(context.Background(), "acme", func(tx storage.Tx) error {
		for _, g := range []string{"big", "small"} {
			if _, err := tx.AddMember(g, storage.Member{ID: "doomed", Type: storage.MemberGroup}); err != nil {
				return err
			}
		}
		if _, err := tx.AddMember("small", storage.Member{ID: "u-x", Type: storage.MemberUser}); err != nil {
			return err
		}
		for i := range 4 {
			if _, err := tx.AddMember("doomed", storage.Member{ID: fmt.Sprintf("u%05d", i), Type: storage.MemberUser}); err != nil {
				return err
			}
		}
		return tx.DeleteGroup("doomed")
	})
	if err != nil {
		t.Fatal(err)
	}
	want["acme"]["small"]++ // u-x; doomed is hidden, its keys not yet swept
	checkCountersMatchKeys(t, s.db, "acme", "as written")

	// Make it the schema 2 store a previous release left.
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, tenant := range []string{"acme", "other"} {
			raw := &tx{txn: txn, k: keyer{tenantPrefix(tenant)}}
			keys, err := raw.suffixes(raw.k.kind(kindMemberCount))
			if err != nil {
				return err
			}
			for _, suffix := range keys {
				if err := txn.Delete(append(raw.k.kind(kindMemberCount), suffix...)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSchemaVersion(s.db, 2); err != nil {
		t.Fatal(err)
	}
	if n := len(rawMemberCounts(t, s.db, "acme")); n != 0 {
		t.Fatalf("%d counters left in the schema 2 store", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = open(dir, nil, Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := schemaOf(t, s); v != SchemaVersion {
		t.Fatalf("schema version %d after the migration, want %d", v, SchemaVersion)
	}
	check := func(when string) {
		t.Helper()
		for tenant, groups := range want {
			checkCountersMatchKeys(t, s.db, tenant, when)
			err := s.View(context.Background(), tenant, func(tx storage.ReadTx) error {
				for g, n := range groups {
					if got, err := tx.CountMembers(g); err != nil || got != n {
						return fmt.Errorf("%s: %s: CountMembers(%.8s) = %d, %v; want %d", when, tenant, g, got, err, n)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	check("after the migration")
	if err := countAllMembers(s.db); err != nil {
		t.Fatal(err)
	}
	check("after running the migration again")
}
