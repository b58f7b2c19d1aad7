package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

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

// commitQueue is the Updates waiting for the running group.
type commitQueue struct {
	mu      sync.Mutex
	waiting []*commitReq
	running bool // a leader is running a group; waiting[0] leads next
}

// commitReq is one Update waiting in the queue.
type commitReq struct {
	ctx    context.Context
	tenant string
	fn     func(storage.Tx) error
	done   chan commitResult // the outcome, once
	lead   chan struct{}     // told to run the next group, at most once
}

// commitResult is the outcome of one fn in a group: committed (err nil),
// an error for all the group (err), or alone: run the fn by itself.
type commitResult struct {
	err   error
	alone bool
}

// groupUpdate queues fn behind the running group, or runs it at once
// (alone) when there is none. The goroutine that runs a group is one of
// its callers; when it is done it hands the next group to the first
// caller waiting, so no caller runs others' groups after its own.
func (s *Store) groupUpdate(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	q := &s.queue
	r := &commitReq{ctx: ctx, tenant: tenant, fn: fn, done: make(chan commitResult, 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	if !q.running {
		q.running = true
		q.mu.Unlock()
		defer s.handOff()
		return s.updateAlone(ctx, tenant, fn)
	}
	q.waiting = append(q.waiting, r)
	q.mu.Unlock()

	wait := time.NewTimer(maxGroupWait)
	defer wait.Stop()
	select {
	case res := <-r.done:
		return s.outcome(r, res)
	case <-r.lead:
	case <-wait.C:
		q.mu.Lock()
		select {
		case <-r.lead: // handed the next group meanwhile
			q.mu.Unlock()
		default:
			if i := slices.Index(q.waiting, r); i >= 0 {
				q.waiting = slices.Delete(q.waiting, i, i+1)
				q.mu.Unlock()
				return s.updateAlone(ctx, tenant, fn)
			}
			q.mu.Unlock()
			return s.outcome(r, <-r.done) // in a group already
		}
	}
	// r leads: it is waiting[0], and nobody takes from the queue but the
	// leader.
	q.mu.Lock()
	n := min(len(q.waiting), maxGroup)
	group := make([]*commitReq, n)
	copy(group, q.waiting)
	q.waiting = append(q.waiting[:0:0], q.waiting[n:]...)
	q.mu.Unlock()
	s.runGroup(group)
	s.handOff()
	return s.outcome(r, <-r.done)
}

// handOff passes the queue to the first caller waiting, or marks it idle.
func (s *Store) handOff() {
	q := &s.queue
	q.mu.Lock()
	if len(q.waiting) > 0 {
		q.waiting[0].lead <- struct{}{}
	} else {
		q.running = false
	}
	q.mu.Unlock()
}

// outcome is what r's Update returns.
func (s *Store) outcome(r *commitReq, res commitResult) error {
	if res.alone {
		return s.updateAlone(r.ctx, r.tenant, r.fn)
	}
	return res.err
}

// runGroup commits the fns of group that succeed, together, and tells
// each caller its outcome. A group of one runs alone.
func (s *Store) runGroup(group []*commitReq) {
	if len(group) == 1 {
		group[0].done <- commitResult{alone: true}
		return
	}
	var timer *time.Timer
	for attempt := 1; len(group) > 0; attempt++ {
		members, failed, err := s.attemptGroup(group)
		switch {
		case failed >= 0:
			// That fn runs alone once the others committed; they run
			// again without it.
			r := group[failed]
			group = slices.Delete(slices.Clone(group), failed, failed+1)
			defer func() { r.done <- commitResult{alone: true} }()
			if len(group) == 1 {
				group[0].done <- commitResult{alone: true}
				return
			}
			continue
		case err == nil:
			for i, r := range group {
				if t := members[i]; t != nil {
					s.committed(r.tenant, t)
					s.grouped.Add(1)
					r.done <- commitResult{}
				}
			}
			return
		case !errors.Is(err, badger.ErrConflict):
			for _, r := range group {
				r.done <- commitResult{err: fmt.Errorf("badgerstore: commit: %w", err)}
			}
			return
		case attempt >= s.maxAttempts:
			for _, r := range group {
				r.done <- commitResult{err: storage.ErrConflict}
			}
			return
		}
		s.conflicts.Add(1)
		window := min(baseBackoff<<min(attempt-1, 10), maxBackoff)
		d := time.Duration(rand.Int64N(int64(window))) + time.Microsecond
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		<-timer.C
	}
}

// attemptGroup runs the fns of group one after the other in one
// transaction and commits it. members[i] is fn i's view of the committed
// transaction (nil: its caller's context ended before its turn, and it
// was told so). failed >= 0 is the index of a fn that failed: nothing was
// committed. err is the commit's.
func (s *Store) attemptGroup(group []*commitReq) (members []*tx, failed int, err error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	ts := make([]*tx, len(group))
	skipped := make([]bool, len(group))
	for i, r := range group {
		if r.ctx.Err() != nil {
			skipped[i] = true
			continue
		}
		t := &tx{txn: txn, k: keyer{tenantPrefix(r.tenant)}, writable: true, retention: s.retention(r.tenant)}
		ts[i] = t
		if !runsCleanly(r.fn, t) || t.tooBig {
			return nil, i, nil
		}
	}
	if err := txn.Commit(); err != nil {
		return nil, -1, err
	}
	for i, r := range group {
		if skipped[i] {
			r.done <- commitResult{err: r.ctx.Err()}
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
