package badgerstore

import (
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Pinning Badger's mapped files while the trimmer advises on them
// (mappedpages_linux.go).
//
// MADV_DONTNEED takes a page out of the process and leaves it in the page
// cache, so the next read of it is a minor fault, not a read from disk.
// It is only safe on a range that stays a mapping of the same file for
// the whole call: on a range Badger unmapped meanwhile, where the Go
// runtime then mapped anonymous memory, it would zero that memory. What
// keeps a file mapped, in Badger v4:
//
//   - A table (.sst) is unmapped when its last reference goes
//     (Table.DecrRef, then Delete). An iterator takes a reference on every
//     table in the levels when it is made (Table.NewIterator,
//     NewConcatIterator) and gives them back on Close. Badger never moves a
//     table between levels, it rewrites it (levels.go), so a table that is
//     in the levels both before and after the iterator is made was in them
//     when it was made: pinned until the iterator closes.
//     TestPinnedTablesOutliveCompaction checks this against the Badger in
//     go.mod.
//   - A value-log file (.vlog) is unmapped by value-log GC (deferred while
//     an iterator is open, but decided without a lock against a new
//     iterator), by DropAll, by Close, and, for the file being written, by
//     its truncation when the log rotates (unmap, truncate, map again). The
//     store runs GC under gcMu and stops the trimmer before Close, and never
//     calls DropAll on an open store; with gcMu held, every value-log file
//     but the newest mapped one is pinned (the newest may be the one being
//     written: files are finished, in order, before the next is made).
//   - Memtable WALs (.mem), the DISCARD file and anything else: not pinned.
//
// A mapping the kernel shows as "(deleted)" is not trusted either.

// mappingPins keeps tables (and, with gcMu held, finished value-log files)
// mapped until release.
type mappingPins struct {
	txn    *badger.Txn
	it     *badger.Iterator
	tables map[uint64]bool
	// vlogs says that gcMu is held: no value-log file is deleted.
	vlogs bool
}

// pinMappings pins the store's tables; with gcHeld (the caller holds
// gcMu until release) its finished value-log files too.
func (s *Store) pinMappings(gcHeld bool) *mappingPins {
	before := make(map[uint64]bool)
	for _, t := range s.db.Tables() {
		before[t.ID] = true
	}
	// No prefix: the iterator references every table of every level.
	txn := s.db.NewTransaction(false)
	p := &mappingPins{txn: txn, it: txn.NewIterator(badger.IteratorOptions{}), tables: make(map[uint64]bool), vlogs: gcHeld}
	for _, t := range s.db.Tables() {
		if before[t.ID] {
			p.tables[t.ID] = true
		}
	}
	return p
}

// release gives the references back.
func (p *mappingPins) release() {
	p.it.Close()
	p.txn.Discard()
}

// holds says whether the store file named name (a base name) stays mapped
// until release, given the newest value-log file mapped (its id).
func (p *mappingPins) holds(name string, newestVlog uint32) bool {
	if id, ok := strings.CutSuffix(name, ".sst"); ok {
		n, err := strconv.ParseUint(id, 10, 64)
		return err == nil && p.tables[n]
	}
	if n, ok := vlogID(name); ok {
		return p.vlogs && n < newestVlog
	}
	return false
}

// vlogID is the id of a value-log file's base name (ok false for any
// other file).
func vlogID(name string) (uint32, bool) {
	id, ok := strings.CutSuffix(name, ".vlog")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return uint32(n), err == nil
}
