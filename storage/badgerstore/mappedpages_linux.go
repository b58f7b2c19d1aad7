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

// Why MADV_PAGEOUT and not MADV_DONTNEED. Both take the pages out of the
// process, so VmRSS drops. DONTNEED on a MAP_SHARED file mapping is safe
// (later reads fault the file's up-to-date contents back; dirty pages stay
// dirty in the page cache), and it keeps the pages cached, so a re-fault
// costs a minor fault. But the trimmer acts on address ranges read from
// /proc/self/maps a moment before, and Badger unmaps files from its own
// goroutines at any time: a table whose last reader lets go, a memtable
// WAL after its flush, a value-log file after GC or on rotation (mremap).
// The kernel hands a freed range to the next mmap, and the Go runtime
// maps anonymous memory (heap metadata, arenas) with no address hint;
// DONTNEED on anonymous memory zero-fills it: a crash or silent
// corruption, however narrow the window. Badger exposes no handle to its
// mappings to pin them, and pausing every reader, writer and Badger's own
// flush goroutine around the call is not possible from outside.
//
// MADV_PAGEOUT never loses data, whatever is mapped at the address by
// then (madvise(2): "never lose the up-to-date contents unlike
// MADV_DONTNEED"): file pages are unmapped and, when clean, reclaimed;
// dirty ones stay in the page cache until written back; anonymous pages
// go to swap or, with no swap, stay. A range unmapped meanwhile gives
// ENOMEM, which is harmless. The price: clean pages leave the page cache
// too, so the next read of a trimmed page is a read from disk (a major
// fault) instead of a minor one. MADV_COLD (also safe) only moves pages
// to the inactive list and leaves VmRSS as it is until memory is short,
// which is what the budget is meant to avoid.

// pageoutUnsupported is set when the kernel (before 5.4) refuses
// MADV_PAGEOUT; the trimmer then stops trying.
var pageoutUnsupported atomic.Bool

// trimMappedFiles pages out the mappings of files in dir when their
// resident pages exceed budget: the value log and WAL first, the tables
// too when those alone are over it.
func trimMappedFiles(dir string, budget int64, logger *zap.Logger) {
	if pageoutUnsupported.Load() {
		return
	}
	// RssFile (one short read) bounds the store's pages from above; only
	// over the budget is it worth reading smaps, which costs a walk of
	// every mapping's page tables.
	if rss, err := residentFileBytes(); err != nil || rss <= budget {
		return
	}
	ranges, err := mappedFileRanges(dir)
	if err != nil {
		logger.Debug("reading the store's mappings failed", zap.Error(err))
		return
	}
	var logs, tables int64
	for _, r := range ranges {
		if r.table {
			tables += r.rss
		} else {
			logs += r.rss
		}
	}
	if logs+tables <= budget {
		return
	}
	// The value log and the memtable WAL first: records, one page or so
	// per read, the bulk of the store. The tables (.sst) hold the index
	// blocks and bloom filters every lookup reads, so they go only when
	// they alone are over the budget, and then only their data blocks.
	if !pageOut(ranges, false, logger) || tables <= budget {
		return
	}
	pageOut(ranges, true, logger)
}

// pageOut pages out the ranges that are tables (or that are not). False
// when the kernel does not support MADV_PAGEOUT.
func pageOut(ranges []addrRange, tables bool, logger *zap.Logger) bool {
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
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, end-r.start, unix.MADV_PAGEOUT)
		switch {
		case errno == 0, errno == unix.ENOMEM, errno == unix.EAGAIN:
			// ENOMEM: Badger unmapped it meanwhile.
		case errno == unix.EINVAL:
			pageoutUnsupported.Store(true)
			logger.Warn("the kernel does not support MADV_PAGEOUT: the store's mapped files stay resident")
			return false
		default:
			logger.Debug("paging out a store file failed", zap.Error(errno))
		}
	}
	return true
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
	path       string // the file (for a table's index)
	offset     uint64 // of the mapping in the file
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

// mappedFileRanges lists the mappings of files in dir, from
// /proc/self/smaps.
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
		path := bytes.TrimSuffix(line[i:], []byte(" (deleted)"))
		r := addrRange{start: uintptr(start), end: uintptr(end), table: bytes.HasSuffix(path, []byte(".sst"))}
		if r.table {
			// start-end perms offset ...: the third field.
			if f := bytes.Fields(line); len(f) > 2 {
				if off, err := strconv.ParseUint(string(f[2]), 16, 64); err == nil {
					r.offset = off
				} else {
					r.offset = 1 // unknown: page out all of it
				}
			}
			r.path = string(path)
		}
		ranges = append(ranges, r)
		mine = true
	}
	return ranges, sc.Err()
}
