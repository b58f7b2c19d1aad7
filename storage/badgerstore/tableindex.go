package badgerstore

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
)

// Where a table's index starts. A Badger table (.sst) is its data blocks,
// then its index (block offsets and the bloom filter, a flatbuffer), then
// the index's length (4 bytes), a checksum of the index and the checksum's
// length (4 bytes) (badger/v4 table.initIndex reads it so). Every lookup
// reads the index and bloom filter of the tables it passes; the data
// blocks only of the one holding the key. So the trimmer of mapped pages
// keeps index pages and pages out only the data blocks: after a trim a
// lookup reads one block from disk, not an index walk's worth.

// tableIndexStarts caches indexStart by path (tables never change once
// written; a path is not reused with other contents, Badger numbers
// tables from a counter).
var tableIndexStarts struct {
	sync.Mutex
	m map[string]int64
}

// maxCachedIndexStarts bounds the cache: past it, it starts over (a
// store has a few hundred tables; compactions retire old paths).
const maxCachedIndexStarts = 4096

// tableIndexStart returns the offset of the index in the table at path.
func tableIndexStart(path string) (int64, error) {
	tableIndexStarts.Lock()
	off, ok := tableIndexStarts.m[path]
	tableIndexStarts.Unlock()
	if ok {
		return off, nil
	}
	off, err := readTableIndexStart(path)
	if err != nil {
		return 0, err
	}
	tableIndexStarts.Lock()
	if tableIndexStarts.m == nil || len(tableIndexStarts.m) >= maxCachedIndexStarts {
		tableIndexStarts.m = make(map[string]int64)
	}
	tableIndexStarts.m[path] = off
	tableIndexStarts.Unlock()
	return off, nil
}

// readTableIndexStart reads the footer of the table at path.
func readTableIndexStart(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var b [4]byte
	pos := st.Size() - 4
	if pos < 0 {
		return 0, errors.New("badgerstore: table shorter than its footer")
	}
	if _, err := f.ReadAt(b[:], pos); err != nil {
		return 0, err
	}
	pos -= int64(binary.BigEndian.Uint32(b[:])) + 4 // the checksum, then the index length
	if pos < 0 {
		return 0, errors.New("badgerstore: table footer out of range")
	}
	if _, err := f.ReadAt(b[:], pos); err != nil {
		return 0, err
	}
	pos -= int64(binary.BigEndian.Uint32(b[:]))
	if pos < 0 {
		return 0, errors.New("badgerstore: table index out of range")
	}
	return pos, nil
}
