package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/internal/groupcommit"
	"github.com/portcullis/portcullis/storage"
)

// Group commit. Badger batches concurrent commits into one write of its
// value log, but with synchronous writes it syncs its write-ahead log once
// per transaction (DB.writeToLSM, msync of the whole mapped file): 16
// concurrent SCIM creates made 1.5 msyncs each, the largest single cost of
// a create (SyncWAL was 13% of the CPU of BenchmarkPostUser at c=16).
//
// So Updates that arrive while a transaction is running wait, and then run
// together, one fn after the other, in one Badger transaction: one
// commit, one sync for all of them. Badger has no savepoints, so a fn that
// fails (its own error, a refused write, a panic) makes the group's
// transaction be thrown away: that fn then runs alone, in its caller's
// goroutine, after the others ran again (as a group) and committed, which
// is a serial order of the two. A conflict runs the whole group again,
// as run does for one fn (fn may run several times either way). Each
// caller's Update returns once its change committed: a nil error still
// means it is on disk. An Update that finds nothing running runs alone,
// exactly as before, so a single writer pays nothing for this.

// maxGroup bounds how many fns share one transaction.
const maxGroup = 16

// maxGroupWait bounds how long an Update waits to be taken into a group
// before it runs alone beside the running one. A group takes a few
// milliseconds; this bounds the wait behind a long transaction (a sign-in's
// session write behind a PATCH of thousands of members), and turns what
// would be a deadlock, an fn waiting for another Update, into a delay.
const maxGroupWait = 100 * time.Millisecond

// update is one Update's change, as it waits in the queue (or runs).
type update struct {
	ctx    context.Context
	tenant string
	fn     func(storage.Tx) error
}

// newCommitQueue is the Store's queue of Updates: one for all tenants (a
// group may mix them: it is one Badger transaction either way).
func newCommitQueue() *groupcommit.Queue[update] {
	return &groupcommit.Queue[update]{MaxGroup: maxGroup, MaxWait: maxGroupWait, AloneWhenIdle: true}
}

// groupUpdate queues fn behind the running group, or runs it at once
// (alone) when there is none (see groupcommit.Queue for who runs what).
func (s *Store) groupUpdate(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.queue.Do(update{ctx: ctx, tenant: tenant, fn: fn}, s.runGroup, s.runAlone)
}

// runAlone runs u in a transaction of its own.
func (s *Store) runAlone(u update) error {
	return s.updateAlone(u.ctx, u.tenant, u.fn)
}

// runGroup commits the fns of group that succeed, together, and gives
// each its outcome. A group of one runs alone.
func (s *Store) runGroup(group []update, outcomes []groupcommit.Outcome) {
	if len(group) == 1 {
		outcomes[0].Alone = true
		return
	}
	live := make([]int, len(group)) // indices of the fns still in the group
	for i := range live {
		live[i] = i
	}
	backoff := groupcommit.Backoff{Base: baseBackoff, Max: maxBackoff}
	defer backoff.Stop()
	for attempt := 1; ; attempt++ {
		members, failed, err := s.attemptGroup(group, live, outcomes)
		switch {
		case failed >= 0:
			// That fn runs alone once the others committed (its caller
			// hears of it after the group, as every member does); they
			// run again without it.
			outcomes[live[failed]].Alone = true
			live = slices.Delete(live, failed, failed+1)
			if len(live) == 1 {
				outcomes[live[0]].Alone = true
				return
			}
			continue
		case err == nil:
			for i, m := range live {
				if t := members[i]; t != nil {
					s.committed(group[m].tenant, t)
					s.grouped.Add(1)
				}
			}
			return
		case !errors.Is(err, badger.ErrConflict):
			for _, m := range live {
				outcomes[m].Err = fmt.Errorf("badgerstore: commit: %w", err)
			}
			return
		case attempt >= s.maxAttempts:
			for _, m := range live {
				outcomes[m].Err = storage.ErrConflict
			}
			return
		}
		s.conflicts.Add(1)
		backoff.Wait(context.Background(), attempt) // a group outlives any one caller's context
	}
}

// attemptGroup runs the fns of group at live one after the other in one
// transaction and commits it. members[i] is the view of the committed
// transaction of the fn at live[i] (nil: its caller's context ended
// before its turn, and its outcome says so). failed >= 0 is the position
// in live of a fn that failed: nothing was committed. err is the commit's.
func (s *Store) attemptGroup(group []update, live []int, outcomes []groupcommit.Outcome) (members []*tx, failed int, err error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	ts := make([]*tx, len(live))
	for i, m := range live {
		u := group[m]
		if u.ctx.Err() != nil {
			continue
		}
		t := &tx{txn: txn, k: keyer{tenantPrefix(u.tenant)}, writable: true, retention: s.retention(u.tenant)}
		ts[i] = t
		if !runsCleanly(u.fn, t) || t.settle() != nil {
			return nil, i, nil
		}
	}
	if err := txn.Commit(); err != nil {
		return nil, -1, err
	}
	for i, m := range live {
		if ts[i] == nil {
			outcomes[m].Err = group[m].ctx.Err()
		}
	}
	return ts, -1, nil
}

// runsCleanly runs fn on t and says whether it returned nil (a panic is
// a failure too: the fn panics again when it runs alone, in its caller's
// goroutine).
func runsCleanly(fn func(storage.Tx) error, t *tx) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return fn(t) == nil
}
