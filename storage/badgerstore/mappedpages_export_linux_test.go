//go:build linux

package badgerstore

// TrimValueLogPages pages out s's value log and memtable WAL but not its
// tables: the trimmer's first step (mappedpages_linux.go).
func TrimValueLogPages(s *Store) {
	if ranges, err := mappedFileRanges(s.dir); err == nil {
		pageOut(ranges, false, s.logger)
	}
}
