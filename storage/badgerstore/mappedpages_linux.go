//go:build linux

package badgerstore

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Which advice. Both MADV_DONTNEED and MADV_PAGEOUT take the pages out of
// the process, so VmRSS drops. DONTNEED on a MAP_SHARED file mapping keeps
// the pages in the page cache (a later read is a minor fault), but it is
// only safe on a range that stays that file's mapping for the whole call:
// Badger unmaps files from its own goroutines (a table whose last reader
// lets go, a memtable WAL after its flush, a value-log file after GC or on
// rotation), the kernel hands a freed range to the next mmap, and the Go
// runtime maps anonymous memory (heap metadata, arenas) with no address
// hint; DONTNEED there would zero-fill it. So DONTNEED goes only to the
// tables pinned for the call (mappingpins.go), their mappings read from
// /proc/self/smaps after pinning.
//
// Everything else (the value log, the WALs) gets MADV_PAGEOUT, which
// never loses data whatever is mapped at the address by then (madvise(2):
// "never lose the up-to-date contents unlike MADV_DONTNEED"): file pages
// are unmapped and, when clean, reclaimed; dirty ones stay in the page
// cache until written back; anonymous pages go to swap or, with no swap,
// stay. A range unmapped meanwhile gives ENOMEM, which is harmless. Its
// price: clean pages leave the page cache too, so the next read of one is
// a read from disk. MADV_COLD (also safe) only moves pages to the
// inactive list and leaves VmRSS as it is until memory is short, which is
// what the budget is meant to avoid.

// pageoutUnsupported is set when the kernel (before 5.4) refuses
// MADV_PAGEOUT; the trimmer then only advises on pinned mappings.
var pageoutUnsupported atomic.Bool

// trimMappedFiles takes the mappings of the store's files out of the
// process when their resident pages exceed budget: the value log and WAL
// first, the tables too when those alone are over it.
func (s *Store) trimMappedFiles(budget int64) {
	// RssFile (one short read) bounds the store's pages from above; only
	// over the budget is it worth reading smaps, which costs a walk of
	// every mapping's page tables.
	if rss, err := residentFileBytes(); err != nil || rss <= budget {
		return
	}
	// Pin before reading the mappings: the addresses advised on must be
	// read while the tables are pinned. Pinning (a read transaction and
	// an iterator) costs less than the smaps read, so it is not saved
	// for when the store's own mappings turn out over the budget.
	pins := s.pinMappings()
	defer pins.release()
	ranges, err := mappedFileRanges(s.dir)
	if err != nil {
		s.logger.Debug("reading the store's mappings failed", zap.Error(err))
		return
	}
	markPinned(ranges, pins)
	tables, total := residentBytes(ranges)
	if total <= budget {
		return
	}
	// The value log and the memtable WAL first: records, one page or so
	// per read, the bulk of the store. The tables (.sst) hold the index
	// blocks and bloom filters every lookup reads, so they go only when
	// they alone are over the budget, and then only their data blocks.
	pageOut(ranges, false, s.logger)
	if tables > budget {
		pageOut(ranges, true, s.logger)
	}
}

// residentBytes sums the resident bytes of ranges: the tables', and all.
func residentBytes(ranges []addrRange) (tables, total int64) {
	for _, r := range ranges {
		if r.table {
			tables += r.rss
		}
		total += r.rss
	}
	return tables, total
}

// markPinned marks the ranges that pins holds: live mappings of tables
// pinned (mappedFileRanges lists only the store's own directory).
func markPinned(ranges []addrRange, pins *mappingPins) {
	for i := range ranges {
		r := &ranges[i]
		r.pinned = !r.deleted && r.table && pins.holds(filepath.Base(r.path))
	}
}

// pageOut takes out of the process the ranges that are tables (or that
// are not): DONTNEED for pinned ones, PAGEOUT for the others.
func pageOut(ranges []addrRange, tables bool, logger *zap.Logger) {
	for _, r := range ranges {
		if r.table != tables {
			continue
		}
		end := r.end
		if r.table {
			end = r.dataEnd()
		}
		if end <= r.start {
			continue
		}
		if r.pinned {
			_, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, end-r.start, unix.MADV_DONTNEED)
			if errno == 0 {
				continue
			}
			logger.Debug("dropping the pages of a store file failed", zap.Error(errno))
		}
		if pageoutUnsupported.Load() {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, end-r.start, unix.MADV_PAGEOUT)
		switch {
		case errno == 0, errno == unix.ENOMEM, errno == unix.EAGAIN:
			// ENOMEM: Badger unmapped it meanwhile.
		case errno == unix.EINVAL:
			pageoutUnsupported.Store(true)
			logger.Warn("the kernel does not support MADV_PAGEOUT: the store's mapped files other than its tables stay resident")
		default:
			logger.Debug("paging out a store file failed", zap.Error(errno))
		}
	}
}

// residentFileBytes is RssFile of /proc/self/status: the process's
// resident pages of mapped files (its own code and the store's files).
func residentFileBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\nRssFile:"))
	if !ok {
		return 0, errors.New("no RssFile in /proc/self/status")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, err
	}
	return kb << 10, nil
}

// addrRange is a mapping of a store file: its resident bytes, and
// whether it is an SSTable.
type addrRange struct {
	start, end uintptr
	rss        int64
	table      bool
	path       string // the file
	offset     uint64 // of the mapping in the file
	// deleted: the kernel lists the file as deleted.
	deleted bool
	// pinned: stays this file's mapping while the trimmer advises on it
	// (mappingpins.go).
	pinned bool
}

// dataEnd is where a table mapping's data blocks end: the page its index
// starts in (tableindex.go), which the trimmer keeps. Where that is not
// known (the file unreadable, a mapping not from the file's start), the
// whole mapping is data.
func (r addrRange) dataEnd() uintptr {
	if r.offset != 0 {
		return r.end
	}
	idx, err := tableIndexStart(r.path)
	if err != nil || idx <= 0 {
		return r.end
	}
	page := uintptr(os.Getpagesize())
	return min(r.end, (r.start+uintptr(idx))&^(page-1))
}

// mappedFileRanges lists the mappings of files directly in dir (not in a
// directory below it: another store's), from /proc/self/smaps.
func mappedFileRanges(dir string) ([]addrRange, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// The kernel prints resolved paths.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	prefix := []byte(filepath.Clean(abs) + "/")
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ranges []addrRange
	mine := false // the current mapping is a store file
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("Rss:")); ok {
			if mine {
				kb, _ := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
				ranges[len(ranges)-1].rss = kb << 10
			}
			continue
		}
		// A mapping's header: start-end perms offset dev inode path. Its
		// fields ("Size:", ...) have no "-" before the first space.
		addrs, _, _ := bytes.Cut(line, []byte(" "))
		lo, hi, ok := bytes.Cut(addrs, []byte("-"))
		if !ok {
			continue
		}
		mine = false
		i := bytes.Index(line, prefix)
		if i < 0 {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		path, deleted := bytes.CutSuffix(line[i:], []byte(" (deleted)"))
		if bytes.IndexByte(path[len(prefix):], '/') >= 0 {
			continue // a file of a store nested in this one's directory
		}
		r := addrRange{start: uintptr(start), end: uintptr(end), table: bytes.HasSuffix(path, []byte(".sst")), path: string(path), deleted: deleted}
		if r.table {
			// start-end perms offset ...: the third field.
			if f := bytes.Fields(line); len(f) > 2 {
				if off, err := strconv.ParseUint(string(f[2]), 16, 64); err == nil {
					r.offset = off
				} else {
					r.offset = 1 // unknown: page out all of it
				}
			}
		}
		ranges = append(ranges, r)
		mine = true
	}
	return ranges, sc.Err()
}
