package badgerstore

import (
	"time"

	"go.uber.org/zap"
)

// Compaction on demand. Badger's own compactors (NumCompactors >= 2) each
// poll every 50 ms whether a level needs compacting: 40 wake-ups a second
// that cost an idle gateway 5-8 ms of CPU a second, all of its idle CPU.
// A Store opens Badger with NumCompactors 0 (no compactors) and compacts
// itself, only when writes have made level 0 worth compacting:
//
//   - every commit kicks the compactor (a non-blocking send on a channel
//     of one; nothing when it is already kicked);
//   - the compactor checks level 0 at once and then at most once every
//     compactCheckInterval while commits go on, and once more a quiet
//     interval after the last (a memtable flush lands after the commit
//     that filled it), and then sleeps on the channel: no timer when idle;
//   - a check compacts when level 0 holds level0Compact tables and they
//     are worth a rewrite (an eighth of the levels below), or when it
//     holds level0Force tables whatever their size, well before
//     level0Stall, where Badger would stall writes.
//
// Badger offers one compaction call, Flatten, which moves level 0 down and
// then merges every level into the last. That rewrites the tree below
// level 0 on each compaction, where Badger's leveled compaction would
// rewrite only the level 0 tables and their overlap in the base level
// until that level fills. Gating on level 0's size against the rest keeps
// the rewrite amortised: the tree is rewritten once per eighth of its size
// written (write amplification ~8, like one step of leveled compaction's
// 10x). Reads gain: after a compaction the tree is one level (plus level
// 0's few tables, each behind a bloom filter).

const (
	compactCheckInterval = time.Second
	level0Compact        = 6  // > Badger's NumLevelZeroTables (5): Flatten then moves level 0 alone too
	level0Force          = 10 // compact whatever the sizes
	level0Stall          = 20 // Badger stalls memtable flushes (so writes) here
	compactRewriteRatio  = 8  // level 0 must hold 1/8 of the levels below
)

// kickCompactor tells the compactor a commit happened, without blocking.
func (s *Store) kickCompactor() {
	select {
	case s.writeKick <- struct{}{}:
	default:
	}
}

// runCompactor compacts level 0 when commits have filled it (see above),
// until Close.
func (s *Store) runCompactor() {
	defer close(s.compactDone)
	s.compactIfDue() // what an earlier process left
	var pause pauseTimer
	defer pause.stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.writeKick:
		}
		// Commits are flowing: check now and each interval while they go
		// on, and once more after a quiet one.
		for busy := true; busy; {
			s.compactIfDue()
			if !pause.wait(s.stop, compactCheckInterval) {
				return
			}
			select {
			case <-s.writeKick:
			default:
				busy = false
				s.compactIfDue()
			}
		}
	}
}

// compactIfDue compacts when level 0 is due (see above).
func (s *Store) compactIfDue() {
	levels := s.db.Levels()
	if len(levels) == 0 {
		return
	}
	l0 := levels[0]
	var below int64
	for _, l := range levels[1:] {
		below += l.Size
	}
	if l0.NumTables < level0Compact {
		return
	}
	if l0.NumTables < level0Force && l0.Size*compactRewriteRatio < below {
		return
	}
	start := time.Now()
	// One worker: compaction yields the machine's other core to requests.
	if err := s.db.Flatten(1); err != nil {
		// Writes go on; the next commit's check tries again.
		s.logger.Warn("compacting the store failed", zap.Error(err))
		return
	}
	s.logger.Debug("compacted the store", zap.Int("level0_tables", l0.NumTables),
		zap.Int64("level0_bytes", l0.Size), zap.Int64("below_bytes", below), zap.Duration("took", time.Since(start)))
}
