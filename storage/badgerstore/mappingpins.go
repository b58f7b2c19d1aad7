package badgerstore

import (
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Pinning Badger's tables while the trimmer advises on them
// (mappedpages_linux.go).
//
// MADV_DONTNEED takes a page out of the process and leaves it in the page
// cache, so the next read of it is a minor fault, not a read from disk.
// It is only safe on a range that stays a mapping of the same file for
// the whole call: on a range Badger unmapped meanwhile, where the Go
// runtime then mapped anonymous memory, it would zero that memory.
//
// A table (.sst) is unmapped when its last reference goes (Table.DecrRef,
// then Delete; DB.Close aside, which waits for the trimmer). An iterator
// takes a reference on every table in the levels when it is made
// (Table.NewIterator, NewConcatIterator) and gives them back on Close.
// Badger never moves a table between levels, it rewrites it (levels.go),
// so a table that is in the levels both before and after the iterator is
// made was in them when it was made: pinned until the iterator closes.
// TestPinnedTablesOutliveCompaction checks this against the Badger in
// go.mod.
//
// Nothing else is pinned. A value-log file (.vlog) that GC rewrote while
// any iterator was open is deleted (unmapped) by whichever goroutine
// closes the last iterator, at a moment the store does not choose; the
// file being written is remapped when the log rotates; memtable WALs go
// after their flush. Those get MADV_PAGEOUT, which is safe on any range.
// A mapping the kernel shows as "(deleted)" is not trusted either, nor
// one outside the store's own directory (another store nested in it).

// mappingPins keeps the tables in the levels mapped until release.
type mappingPins struct {
	txn    *badger.Txn
	it     *badger.Iterator
	tables map[uint64]bool
}

// pinMappings pins the store's tables.
func (s *Store) pinMappings() *mappingPins {
	before := make(map[uint64]bool)
	for _, t := range s.db.Tables() {
		before[t.ID] = true
	}
	// No prefix: the iterator references every table of every level.
	txn := s.db.NewTransaction(false)
	p := &mappingPins{txn: txn, it: txn.NewIterator(badger.IteratorOptions{}), tables: make(map[uint64]bool)}
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

// holds says whether the store file named name (a base name in the
// store's directory) stays mapped until release.
func (p *mappingPins) holds(name string) bool {
	id, ok := strings.CutSuffix(name, ".sst")
	if !ok {
		return false
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return err == nil && p.tables[n]
}
