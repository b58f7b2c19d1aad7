//go:build linux

package badgerstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/portcullis/portcullis/storage"
)

// putPinTestUsers writes users lo..hi-1 (each record ~0.6 KiB, so in the
// value log), 500 to a transaction.
func putPinTestUsers(t *testing.T, s *Store, lo, hi int) {
	t.Helper()
	for start := lo; start < hi; start += 500 {
		if err := s.Update(context.Background(), "acme", func(tx storage.Tx) error {
			for i := start; i < min(start+500, hi); i++ {
				attrs := fmt.Sprintf(`{"userName":"u%d","pad":%q}`, i, strings.Repeat("x", 400))
				if err := tx.PutUser(&storage.User{ID: fmt.Sprintf("id-%06d", i), UserName: fmt.Sprintf("u%d", i), Active: true, Source: storage.SourceSCIM, Attributes: []byte(attrs)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPinTestUsers reads users 0..n-1 back.
func checkPinTestUsers(t *testing.T, s *Store, n int) {
	t.Helper()
	if err := s.View(context.Background(), "acme", func(tx storage.ReadTx) error {
		for i := range n {
			u, err := tx.UserByUserName(fmt.Sprintf("u%d", i))
			if err != nil {
				return fmt.Errorf("user %d: %w", i, err)
			}
			if u.ID != fmt.Sprintf("id-%06d", i) || !strings.Contains(string(u.Attributes), strings.Repeat("x", 400)) {
				return fmt.Errorf("user %d read back as %+v", i, u)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// smallValueLogFiles makes the value-log files of stores opened during the
// test 1 MiB (Badger's least), so a few thousand users fill several.
func smallValueLogFiles(t *testing.T) {
	old := valueLogFileSize
	valueLogFileSize = 1 << 20
	t.Cleanup(func() { valueLogFileSize = old })
}

// openChurnStore opens a store made to churn: 1 MiB value-log files and
// memtables (flushes, compactions and GC after a few thousand users), and
// no trimmer of its own.
func openChurnStore(t *testing.T) *Store {
	t.Helper()
	smallValueLogFiles(t)
	s, err := OpenWithOptions(t.TempDir(), zap.NewNop(), Options{MappedMemory: -1, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reopen closes s and opens its directory again: the memtable is flushed
// into a table, and the value-log files are all finished but the newest.
func reopen(t *testing.T, s *Store, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenWithOptions(s.dir, zap.NewNop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mappedPaths is the set of files mapped into the process (as
// /proc/self/maps names them, " (deleted)" cut off).
func mappedPaths(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	paths := make(map[string]bool)
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "/"); i >= 0 {
			paths[strings.TrimSuffix(line[i:], " (deleted)")] = true
		}
	}
	return paths
}

// TestPinnedTablesOutliveCompaction checks what mappingpins.go relies on
// in the Badger of go.mod: a table pinned (in the levels before and after
// the pinning iterator was made) stays mapped through a compaction that
// replaces it, until the pins are released; and the control, that the
// compaction does unmap it then.
func TestPinnedTablesOutliveCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MappedMemory: -1, MemTableSize: 1 << 20}
	s, err := OpenWithOptions(dir, zap.NewNop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	putPinTestUsers(t, s, 0, 3000)
	s = reopen(t, s, opts) // the memtable flushed: tables
	defer func() { s.Close() }()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := make(map[string]bool)
	for _, ti := range s.db.Tables() {
		old[fmt.Sprintf("%06d.sst", ti.ID)] = true
	}
	if len(old) == 0 {
		t.Fatal("no tables to pin")
	}
	pins := s.pinMappings()
	defer func() {
		if pins != nil {
			pins.release()
		}
	}()
	for name := range old {
		if !pins.holds(name) {
			t.Errorf("%s is in the levels but not pinned", name)
		}
	}
	// Overwrite every key until the store's compactor (kicked by the
	// commits; Flatten must not run beside it) has replaced every old
	// table (bounded).
	anyOld := func() bool {
		for _, ti := range s.db.Tables() {
			if old[fmt.Sprintf("%06d.sst", ti.ID)] {
				return true
			}
		}
		return false
	}
	for i := 0; i < 40 && anyOld(); i++ {
		putPinTestUsers(t, s, 0, 3000)
		time.Sleep(50 * time.Millisecond)
	}
	if anyOld() {
		t.Fatal("compactions kept an old table: nothing was replaced")
	}
	mapped := mappedPaths(t)
	for name := range old {
		if !mapped[filepath.Join(realDir, name)] {
			t.Errorf("%s was unmapped while pinned", name)
		}
	}
	pins.release()
	pins = nil
	mapped = mappedPaths(t)
	for name := range old {
		if mapped[filepath.Join(realDir, name)] {
			t.Errorf("%s is still mapped after the pins were released: the test cannot see an unmap", name)
		}
	}
	checkPinTestUsers(t, s, 3000)
}

// cachedPages counts the pages of [start, end) in the page cache (mincore
// reports a file mapping's pages whether or not the process maps them).
func cachedPages(t *testing.T, start, end uintptr) int {
	t.Helper()
	page := uintptr(os.Getpagesize())
	vec := make([]byte, (end-start+page-1)/page)
	if len(vec) == 0 {
		return 0
	}
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, start, end-start, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestTrimKeepsPinnedPagesCached: the trim takes the pinned tables' data
// pages out of the process but leaves them in the page cache, so reading
// them again costs no disk read, and loses nothing. The control pages the
// same ranges out the other way (MADV_PAGEOUT) and sees them leave the
// page cache.
func TestTrimKeepsPinnedPagesCached(t *testing.T) {
	smallValueLogFiles(t)
	dir := t.TempDir()
	opts := Options{MappedMemory: -1}
	s, err := OpenWithOptions(dir, zap.NewNop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	const users = 4000 // ~2.5 MiB of records: three value-log files
	putPinTestUsers(t, s, 0, users)
	s = reopen(t, s, opts)
	defer func() { s.Close() }()
	checkPinTestUsers(t, s, users) // fault every record in

	// Which ranges the trim will pin, as it decides.
	pins := s.pinMappings()
	ranges, err := mappedFileRanges(dir)
	if err != nil {
		t.Fatal(err)
	}
	markPinned(ranges, pins)
	var pinned []addrRange
	var residentBefore int64
	for _, r := range ranges {
		if r.pinned {
			r.end = r.dataEnd()
			pinned = append(pinned, r)
			residentBefore += r.rss
		}
	}
	pins.release()
	if residentBefore < 256<<10 {
		t.Fatalf("only %d KiB of pinned mappings resident before the trim", residentBefore>>10)
	}

	s.trimMappedFiles(0)
	cached := 0
	for _, r := range pinned {
		cached += cachedPages(t, r.start, r.end)
	}
	after, err := mappedFileRanges(dir)
	if err != nil {
		t.Fatal(err)
	}
	var residentAfter int64
	for _, r := range after {
		for _, p := range pinned {
			if r.start == p.start {
				residentAfter += r.rss
			}
		}
	}
	page := int64(os.Getpagesize())
	t.Logf("pinned mappings: %d KiB resident before the trim, %d KiB after; %d KiB of them in the page cache after",
		residentBefore>>10, residentAfter>>10, int64(cached)*page>>10)
	if residentAfter > residentBefore/10 {
		t.Errorf("the trim left %d of %d KiB of pinned mappings resident", residentAfter>>10, residentBefore>>10)
	}
	if int64(cached)*page < residentBefore*9/10 {
		t.Errorf("only %d of %d KiB stayed in the page cache", int64(cached)*page>>10, residentBefore>>10)
	}
	checkPinTestUsers(t, s, users)

	// Control: the same ranges, faulted in again by the read above, paged
	// out leave the page cache, which mincore shows.
	for i := range pinned {
		pinned[i].pinned = false
	}
	pageOut(pinned, true, zap.NewNop())
	cachedAfterPageout := 0
	for _, r := range pinned {
		cachedAfterPageout += cachedPages(t, r.start, r.end)
	}
	t.Logf("control: %d KiB in the page cache after MADV_PAGEOUT", int64(cachedAfterPageout)*page>>10)
	if cachedAfterPageout > cached/2 {
		t.Errorf("control: MADV_PAGEOUT left %d of %d pages in the page cache: the test cannot tell the advice apart", cachedAfterPageout, cached)
	}
	checkPinTestUsers(t, s, users)
}

// TestTrimUnderCompactionAndGC: trims in a tight loop while writers fill
// tables and value-log files, the store's compactor replaces tables and
// value-log GC deletes files. A DONTNEED on a range that was no longer the file's
// mapping would zero memory someone else owns; the store must read back
// every record afterwards and after a reopen.
func TestTrimUnderCompactionAndGC(t *testing.T) {
	s := openChurnStore(t)
	const users = 6000
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s.trimMappedFiles(0)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			_ = s.db.RunValueLogGC(0.1)
		}
	})
	// Every user written twice: the first records become garbage for GC.
	for range 2 {
		for lo := 0; lo < users; lo += 500 {
			putPinTestUsers(t, s, lo, lo+500)
		}
		checkPinTestUsers(t, s, users)
	}
	close(done)
	wg.Wait()
	checkPinTestUsers(t, s, users)
	s = reopen(t, s, Options{})
	defer s.Close()
	checkPinTestUsers(t, s, users)
}

// stillMapped says whether [start,end) is still mapped (mincore fails with
// ENOMEM on a hole).
func stillMapped(start, end uintptr) bool {
	page := uintptr(os.Getpagesize())
	vec := make([]byte, (end-start+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, start, end-start, uintptr(unsafe.Pointer(&vec[0])))
	return errno == 0
}

// TestTrimAdvisesOnlyItsOwnStoresFiles: a store nested in another's
// directory (two storage blocks, /var/lib/portcullis and
// /var/lib/portcullis/b) is not the outer store's: its files are neither
// counted in the outer budget nor advised on by the outer trim, which
// pins none of them (its table ids mean nothing to the outer store).
// From the review of the first DONTNEED change, which pinned them.
func TestTrimAdvisesOnlyItsOwnStoresFiles(t *testing.T) {
	parent := t.TempDir()
	opts := Options{MappedMemory: -1}
	a, err := OpenWithOptions(parent, zap.NewNop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	b, err := OpenWithOptions(filepath.Join(parent, "b"), zap.NewNop(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	putPinTestUsers(t, a, 0, 1000)
	putPinTestUsers(t, b, 0, 1000)
	a = reopen(t, a, opts)
	b = reopen(t, b, opts)
	ranges, err := mappedFileRanges(a.dir)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := mappedFileRanges(b.dir)
	if err != nil || len(inner) == 0 {
		t.Fatalf("store b maps %d files: %v (the test cannot see them)", len(inner), err)
	}
	for _, r := range ranges {
		if strings.Contains(r.path, "/b/") {
			t.Errorf("store a's trim lists store b's %s", r.path)
		}
	}
	if len(ranges) == 0 {
		t.Error("store a's trim lists none of its own files")
	}
}

// TestPinsSurviveDeferredValueLogDeletes: value-log GC run while a
// reader's iterator is open defers the file deletions to whoever closes
// the last iterator; when that close races the trim's pinning, the
// deleting goroutine unmaps value-log files while the trim holds its
// pins. Every range the trim marks pinned must stay mapped through it
// (no value-log file is ever pinned). From the review of the first
// DONTNEED change, which pinned finished value-log files and lost them so.
func TestPinsSurviveDeferredValueLogDeletes(t *testing.T) {
	s := openChurnStore(t)
	dir := s.dir
	defer func() { s.Close() }()
	const users = 4000
	raced := 0
	for attempt := 0; attempt < 20 && raced == 0; attempt++ {
		for range 2 {
			putPinTestUsers(t, s, 0, users)
		}
		time.Sleep(100 * time.Millisecond) // the store's compactor: discard stats
		txn := s.db.NewTransaction(false)
		it := txn.NewIterator(badger.IteratorOptions{})
		rewritten := 0
		for range 50 {
			if s.db.RunValueLogGC(0.01) != nil {
				break
			}
			rewritten++
		}
		if rewritten == 0 {
			it.Close()
			txn.Discard()
			continue
		}
		// The reader closes (its Close deletes the deferred files) as
		// the trim pins.
		closed := make(chan struct{})
		go func() {
			it.Close()
			txn.Discard()
			close(closed)
		}()
		pins := s.pinMappings()
		ranges, err := mappedFileRanges(dir)
		if err != nil {
			t.Fatal(err)
		}
		markPinned(ranges, pins)
		<-closed
		raced++
		for _, r := range ranges {
			if r.pinned && strings.HasSuffix(r.path, ".vlog") {
				t.Errorf("value-log file %s pinned", filepath.Base(r.path))
			}
			if r.pinned && !stillMapped(r.start, r.end) {
				t.Errorf("pinned %s unmapped while the pins were held", filepath.Base(r.path))
			}
		}
		pins.release()
		t.Logf("attempt %d: %d value-log files rewritten by GC while a reader was open", attempt, rewritten)
	}
	if raced == 0 {
		t.Fatal("value-log GC never rewrote files while a reader was open: the test saw no deferred delete")
	}
	checkPinTestUsers(t, s, users)
}
