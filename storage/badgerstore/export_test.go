package badgerstore

// Conflicts is how many transaction attempts of s conflicted (see
// Store.conflicts), for the benchmarks of package badgerstore_test.
func Conflicts(s *Store) uint64 { return s.conflicts.Load() }

// Grouped is how many fns of s committed in a group (groupcommit.go).
func Grouped(s *Store) uint64 { return s.grouped.Load() }

// TrimMappedPages pages out s's mapped files now, whatever the budget
// (mappedpages.go), for the memory benchmarks.
func TrimMappedPages(s *Store) { s.trimMappedFiles(0) }
