//go:build linux

package badgerstore

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestTrimMappedFilesKeepsData: paging out the store's mapped files while
// it holds freshly committed (dirty) and older data loses nothing: every
// record reads back at once, and after a clean reopen. The pages do leave
// the process.
func TestTrimMappedFilesKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenWithOptions(dir, zap.NewNop(), Options{MappedMemory: -1})
	if err != nil {
		t.Fatal(err)
	}
	const users = 3000
	put := func(lo, hi int) { putPinTestUsers(t, s, lo, hi) }
	check := func(s *Store) { checkPinTestUsers(t, s, users) }
	for lo := 0; lo < users; lo += 500 {
		put(lo, lo+500)
	}
	ranges, err := mappedFileRanges(dir)
	if err != nil || len(ranges) == 0 {
		t.Fatalf("mappings of the store: %v, %v", ranges, err)
	}
	check(s) // touch every page
	ranges, _ = mappedFileRanges(dir)
	var resident int64
	for _, r := range ranges {
		resident += r.rss
	}
	if resident == 0 {
		t.Errorf("no resident pages counted in %d mappings of the store", len(ranges))
	}
	before, _ := residentFileBytes()
	s.trimMappedFiles(0)
	after, _ := residentFileBytes()
	t.Logf("RssFile %d KiB -> %d KiB", before>>10, after>>10)
	if after >= before {
		t.Errorf("RssFile %d -> %d: nothing paged out", before, after)
	}
	check(s)
	// More writes into the pages just paged out, trim again, then a
	// clean reopen reads them from disk.
	put(users, users+10)
	s.trimMappedFiles(0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// TestMappedFileRanges: only mappings of files directly in the store's
// directory are listed: not a sibling directory sharing its name's prefix,
// nor a directory below it (another store's).
func TestMappedFileRanges(t *testing.T) {
	parent := t.TempDir()
	s, err := Open(parent+"/db", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(parent+"/db2", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mine, err := mappedFileRanges(parent + "/db")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := mappedFileRanges(parent + "/db2")
	if err != nil {
		t.Fatal(err)
	}
	above, err := mappedFileRanges(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) == 0 || len(theirs) == 0 {
		t.Fatalf("%d mappings in db, %d in db2: the test sees none", len(mine), len(theirs))
	}
	for _, r := range mine {
		if strings.Contains(r.path, "/db2/") {
			t.Errorf("db lists %s", r.path)
		}
	}
	if len(above) != 0 {
		t.Errorf("their parent directory lists %d mappings of the stores below it", len(above))
	}
}
