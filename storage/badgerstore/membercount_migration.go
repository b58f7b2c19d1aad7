package badgerstore

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// countAllMembers is the migration to schema version 3: it writes the
// member counter shards (see memberCountShards) of every group of every
// tenant from the membership keys. It runs before the store serves
// anything, so nothing writes meanwhile; it sets absolute values, so a
// rerun after a crash writes the same keys again.
func countAllMembers(db *badger.DB) error {
	counts := make(map[string]int64)
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{nsTenant}
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		for it.Valid() {
			key := it.Item().Key()
			prefixLen, ok := tenantPrefixLen(key)
			if !ok || len(key) == prefixLen {
				return fmt.Errorf("key %q has no tenant prefix", key)
			}
			prefix, kind := key[:prefixLen], key[prefixLen]
			switch {
			case kind < kindMember:
				// Skip to the tenant's memberships.
				it.Seek(append(append([]byte(nil), prefix...), kindMember))
				continue
			case kind > kindMember:
				// Skip to the next tenant: no tenant prefix extends
				// another, and every kind byte is below 0xff.
				it.Seek(append(append([]byte(nil), prefix...), 0xff))
				continue
			}
			rest := key[prefixLen+1:]
			compLen, ok := compLen(rest)
			if !ok {
				return fmt.Errorf("membership key %q is corrupt", key)
			}
			counter := make([]byte, 0, prefixLen+1+compLen+1)
			counter = append(counter, prefix...)
			counter = append(counter, kindMemberCount)
			counter = append(counter, rest[:compLen]...)
			counter = append(counter, memberShard(string(rest[compLen:])))
			counts[string(counter)]++
			it.Next()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeCounters(db, nil, counts)
}

// tenantPrefixLen is the length of the tenant prefix (see tenantPrefix)
// that key starts with.
func tenantPrefixLen(key []byte) (int, bool) {
	if len(key) < 2 || key[0] != nsTenant {
		return 0, false
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || uint64(len(key)-1-w) < n {
		return 0, false
	}
	return 1 + w + int(n), true
}

// compLen is the length of the component (see appendComp) b starts with.
func compLen(b []byte) (int, bool) {
	if len(b) < 2 || (b[0] != 'v' && b[0] != 'h') {
		return 0, false
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || uint64(len(b)-1-w) < n {
		return 0, false
	}
	return 1 + w + int(n), true
}
