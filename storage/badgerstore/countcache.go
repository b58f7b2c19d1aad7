package badgerstore

import (
	"encoding/binary"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// bucketCounts are one kind's id-bucket counters (see idBucket) as one
// snapshot sees them, in bucket order.
type bucketCounts struct {
	readTs  uint64
	buckets []string
	counts  []int64
}

// bucketCounts reads the counters of kind. A read-only transaction shares
// them with the other read-only transactions of its snapshot: Badger's
// read timestamp names the snapshot (it moves with every commit, of any
// tenant), and one snapshot always reads the same counters. So pages read
// while nothing is written skip the walk, which steps over ~256 keys and
// every older version of them still in the memtables (each create writes
// one): that walk was a sixth of a deep page at a million users.
func (t *tx) bucketCounts(kind byte) (*bucketCounts, error) {
	prefix := t.k.counts(kind)
	cacheable := t.countCache != nil && !t.writable
	if cacheable {
		if v, ok := t.countCache.Load(string(prefix)); ok {
			if bc := v.(*bucketCounts); bc.readTs == t.txn.ReadTs() {
				return bc, nil
			}
		}
	}
	// The iteration reads Badger's view: the transaction's own counter
	// changes must be in it.
	if err := t.flushCounters(); err != nil {
		return nil, err
	}
	bc := &bucketCounts{readTs: t.txn.ReadTs()}
	err := t.iterate(prefix, "", func(suffix []byte, item *badger.Item) (bool, error) {
		return true, item.Value(func(b []byte) error {
			if len(b) != 8 {
				return errors.New("badgerstore: counter is corrupt")
			}
			bc.buckets = append(bc.buckets, string(suffix))
			bc.counts = append(bc.counts, int64(binary.BigEndian.Uint64(b)))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if cacheable {
		t.countCache.Store(string(prefix), bc)
	}
	return bc, nil
}
