//go:build !linux

package badgerstore

// trimMappedFiles does nothing off Linux: madvise's advice and /proc are
// Linux's (see mappedpages_linux.go).
func (s *Store) trimMappedFiles(int64) {}
