package badgerstore

import (
	"runtime"
	"time"
)

// Bounding the resident pages of Badger's mapped files.
//
// Badger v4 reads its value log (.vlog), tables (.sst) and memtable WAL
// (.mem) through MAP_SHARED mmaps and offers no pread mode. Every page a
// read or write touches (and, by fault-around, its neighbours) stays
// mapped into the process for as long as the file is open, so VmRSS grows
// with the store (~800 MiB at a million users) although those pages are
// page cache the kernel could reclaim: they still count in VmRSS, in the
// OOM killer's score and on every dashboard.
//
// The trimmer gives them back. Commits and reads kick it (a non-blocking
// send on a channel of one, like the compactor's); it then checks at once
// and at most once every trimInterval while the store is in use, and
// sleeps on the channel when it is idle: no timer without traffic. A check
// reads the process's RssFile (/proc/self/status: one small read); over
// the budget (Options.MappedMemory) it sums the resident pages of the
// mappings of files in the store's directory (/proc/self/smaps) and, over
// it too, asks the kernel to take them out of the process with madvise:
// MADV_DONTNEED, which keeps them in the page cache, for the tables,
// pinned meanwhile, MADV_PAGEOUT for the rest (mappedpages_linux.go says
// why).
const trimInterval = time.Second

// kickTrimmer tells the trimmer the store is in use, without blocking.
func (s *Store) kickTrimmer() {
	if s.trimKick == nil {
		return
	}
	select {
	case s.trimKick <- struct{}{}:
	default:
	}
}

// runTrimmer trims the mapped pages while the store is in use (see above),
// until Close. It runs on an OS thread of its own at the lowest priority
// (never unlocked: the thread ends with the goroutine), so the kernel's
// part of a trim (walking page tables for smaps, paging out) waits for the
// requests it shares the CPUs with instead of delaying them.
func (s *Store) runTrimmer(bound int64) {
	defer close(s.trimDone)
	runtime.LockOSThread()
	lowerThreadPriority()
	var pause pauseTimer
	defer pause.stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.trimKick:
		}
		s.trimMappedFiles(s.mappedBudget(bound))
		// At most one check per interval, whatever the traffic.
		if !pause.wait(s.stop, trimInterval) {
			return
		}
	}
}

// Bounds of MappedMemoryAuto's budget.
const (
	minAutoMapped = 48 << 20
	maxAutoMapped = 256 << 20
)

// mappedBudget is the budget of bound (Options.MappedMemory): itself, or
// for MappedMemoryAuto a quarter of the store's size on disk (Badger's
// own count of its tables and value log, updated every minute) between
// 48 and 256 MiB. A store's hot part grows with it, so a fixed bound is
// either too tight for a large store (every lookup a read from disk
// after each trim) or too loose for a small one: 100,000 users keep
// ~90 MiB of their files resident within a few thousand reads, 1,000,000
// users take the full 256 MiB.
func (s *Store) mappedBudget(bound int64) int64 {
	if bound != MappedMemoryAuto {
		return bound
	}
	lsm, vlog := s.db.Size()
	return autoMappedBudget(lsm + vlog)
}

// autoMappedBudget is MappedMemoryAuto's budget for a store of size bytes
// on disk.
func autoMappedBudget(size int64) int64 {
	return min(max(size/4, minAutoMapped), maxAutoMapped)
}
