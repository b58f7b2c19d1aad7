package badgerstore

import (
	"encoding/binary"

	"github.com/dgraph-io/badger/v4"
)

// countByIDBucket is the migration to schema version 4: it replaces every
// tenant's fnv-sharded user and group counters (kindCount) with counters
// per id bucket (kindIDCount, see countBucketLen), counted from the
// records' keys. It runs before the store serves anything, so nothing
// writes meanwhile; it sets absolute values and deletes what it replaces,
// so a rerun after a crash ends the same.
func countByIDBucket(db *badger.DB) error {
	counts := make(map[string]int64)
	var stale [][]byte
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{nsTenant}
		it := txn.NewIterator(opts)
		defer it.Close()
		// One tenant at a time: its old counters, its users, its groups,
		// then a seek past its last key to the next tenant.
		for it.Rewind(); it.Valid(); {
			prefixLen, ok := tenantPrefixLen(it.Item().Key())
			if !ok {
				it.Next()
				continue
			}
			prefix := append([]byte(nil), it.Item().Key()[:prefixLen]...)
			k := keyer{prefix}
			walk := func(kind byte, fn func(rest []byte)) {
				p := k.kind(kind)
				for it.Seek(p); it.ValidForPrefix(p); it.Next() {
					fn(it.Item().Key()[len(p):])
				}
			}
			walk(kindCount, func(rest []byte) {
				stale = append(stale, append(k.kind(kindCount), rest...))
			})
			for _, c := range []struct{ count, record byte }{{countUsers, kindUser}, {countGroups, kindGroup}} {
				walk(c.record, func(id []byte) {
					counts[string(k.countShard(c.count, string(id)))]++
				})
			}
			it.Seek(append(prefix, 0xff))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCounters(db, stale, counts)
}

// writeCounters deletes the stale counter keys and sets counts (key ->
// value) in one write batch: a migration's counters, counted by a walk of
// the records.
func writeCounters(db *badger.DB, stale [][]byte, counts map[string]int64) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for _, key := range stale {
		if err := wb.Delete(key); err != nil {
			return err
		}
	}
	for key, n := range counts {
		if err := wb.Set([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return wb.Flush()
}
