package badgerstore

import (
	"encoding/binary"

	"github.com/portcullis/portcullis/storage"
)

// A transaction's counter changes are written once per counter, when its
// fn returns, not at each change. Badger bounds a transaction by its
// number of writes (and their size), from the memtable size, and counts
// every write, a key written again included: adding 5,000 members to a
// group rewrote its member-count shard 5,000 times, so the 5,000 changes
// a SCIM client may send in one request needed a memtable (and its arena,
// on the Go heap) twice as large as their keys do.
//
// The first read of a counter goes to Badger (so the transaction tracks
// it for conflicts); later reads and writes use the pending value. What
// reads counters other than through readCounter (the iteration over the
// id-bucket counters, countcache.go) flushes them first.

// pendingCounter is a counter's value as the transaction left it.
type pendingCounter struct {
	value int64
	// deleteAtZero: a member-count shard, deleted rather than written
	// as 0 (an emptied group leaves no counter behind).
	deleteAtZero bool
}

// setCounter records the counter key's new value.
func (t *tx) setCounter(key []byte, value int64, deleteAtZero bool) {
	if t.counters == nil {
		t.counters = make(map[string]pendingCounter)
	}
	t.counters[string(key)] = pendingCounter{value: value, deleteAtZero: deleteAtZero}
}

// flushCounters writes the pending counters.
func (t *tx) flushCounters() error {
	for k, c := range t.counters {
		var err error
		if c.deleteAtZero && c.value == 0 {
			err = t.del([]byte(k))
		} else {
			err = t.set([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(c.value)))
		}
		if err != nil {
			return err
		}
	}
	clear(t.counters)
	return nil
}

// settle ends a fn's part of the transaction: its pending counters
// written, then storage.ErrTooBig if Badger refused any write for the
// transaction's size (even one fn carried on after), so nothing of it
// commits.
func (t *tx) settle() error {
	err := t.flushCounters()
	if t.tooBig {
		return storage.ErrTooBig
	}
	return err
}
