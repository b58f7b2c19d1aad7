package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/storage"
)

// Group commit. Every transaction that changes what caches rely on bumps
// its tenant's row in tenant_versions (the change feed's order), so under
// SERIALIZABLE two such transactions of one tenant that overlap cannot
// both commit: the second fails to serialise and runs again, from the
// start. 16 concurrent SCIM creates retried 1.7 to 2.3 times each and went
// no faster than one at a time.
//
// So the Updates of a tenant that arrive while one of its transactions is
// running wait, and then run together, each fn after a SAVEPOINT of its
// own, in one transaction: one version bump, one commit, one fsync for
// all of them. A fn that fails (its own error, a refused write, a panic)
// is rolled back to its savepoint and gets its error alone; the others
// commit. A serialization failure or a failed commit runs the whole group
// again, as Update runs a lone fn again (fn may run several times either
// way). Each caller's Update returns once the group committed: a nil
// error still means the change is durable. An Update that finds no
// transaction of its tenant running runs alone, exactly as before, so a
// single writer pays nothing for this.
//
// The cost: a write waits for the group ahead of it, so a sign-in's
// session write queues behind a large PATCH of the same tenant instead of
// running beside it (where, bumping nothing, it did not conflict), for at
// most maxGroupWait.

// maxGroup bounds how many fns share one transaction.
const maxGroup = 32

// maxGroupWait bounds how long an Update waits to be taken into a group
// before it runs alone, beside the running group (as every Update did
// before group commit; it may then conflict and retry). A group takes
// tens of milliseconds; this bounds the wait behind a long transaction (a PATCH of thousands of members), and turns
// what would be a deadlock, an fn that waits for another Update of its own
// tenant, into a delay (TestGroupCommitNestedUpdate).
const maxGroupWait = 250 * time.Millisecond

// commitQueue is one tenant's Updates waiting for the running group.
type commitQueue struct {
	mu      sync.Mutex
	waiting []*commitReq
	running bool // a leader is running a group; waiting[0] leads next
}

// commitReq is one Update waiting in a queue.
type commitReq struct {
	ctx  context.Context
	fn   func(storage.Tx) error
	done chan commitResult // the outcome, once
	lead chan struct{}     // told to run the next group, at most once
}

// commitResult is the outcome of one fn in a group.
type commitResult struct {
	err      error
	panicked bool
	panicVal any
}

func (r commitResult) unwrap() error {
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

func (s *Store) queue(tenant string) *commitQueue {
	if q, ok := s.queues.Load(tenant); ok {
		return q.(*commitQueue)
	}
	q, _ := s.queues.LoadOrStore(tenant, new(commitQueue))
	return q.(*commitQueue)
}

// groupUpdate queues fn behind the tenant's running group, or runs it at
// once (alone) when there is none. The goroutine that runs a group is one
// of its callers; when it is done it hands the next group to the first
// caller waiting, so no caller runs others' groups after its own.
func (s *Store) groupUpdate(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	q := s.queue(tenant)
	r := &commitReq{ctx: ctx, fn: fn, done: make(chan commitResult, 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	q.waiting = append(q.waiting, r)
	leading := !q.running
	q.running = true
	q.mu.Unlock()
	if !leading {
		wait := time.NewTimer(maxGroupWait)
		defer wait.Stop()
		select {
		case res := <-r.done:
			return res.unwrap()
		case <-r.lead:
		case <-wait.C:
			// Still not taken into a group: run alone, beside the
			// group, as before group commit (see maxGroupWait).
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
				return (<-r.done).unwrap() // in a group already
			}
		}
	}
	// r is waiting[0]: nobody takes from the queue but its leader.
	q.mu.Lock()
	n := min(len(q.waiting), maxGroup)
	group := make([]*commitReq, n)
	copy(group, q.waiting)
	q.waiting = append(q.waiting[:0:0], q.waiting[n:]...)
	q.mu.Unlock()

	s.runGroup(tenant, group)

	q.mu.Lock()
	if len(q.waiting) > 0 {
		q.waiting[0].lead <- struct{}{}
	} else {
		q.running = false
	}
	q.mu.Unlock()
	return (<-r.done).unwrap()
}

// runGroup runs the fns of group and tells each its outcome.
func (s *Store) runGroup(tenant string, group []*commitReq) {
	if len(group) == 1 {
		r := group[0]
		var res commitResult
		func() {
			defer capturePanic(&res)
			res.err = s.updateAlone(r.ctx, tenant, r.fn)
		}()
		r.done <- res
		return
	}
	ctx, cancel := groupContext(group)
	defer cancel()
	results := make([]commitResult, len(group))
	err := s.runGroupAttempts(ctx, tenant, group, results)
	if err == nil {
		for _, res := range results {
			if res.err == nil && !res.panicked {
				s.grouped.Add(1)
			}
		}
	}
	for i, r := range group {
		res := results[i]
		if err != nil && res.err == nil && !res.panicked {
			res.err = err
			if ctxErr := r.ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				res.err = fmt.Errorf("%w (%v)", ctxErr, err)
			}
		}
		r.done <- res
	}
}

// runGroupAttempts runs the group's transaction until it commits, retrying
// it as updateAlone retries one fn. results gets each fn's own outcome; the
// error is the group's (nil: committed).
func (s *Store) runGroupAttempts(ctx context.Context, tenant string, group []*commitReq, results []commitResult) error {
	retention := s.retention(tenant)
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		clear(results)
		t, err := s.attemptGroup(ctx, tenant, retention, group, results)
		if err == nil {
			s.committed(ctx, tenant, t)
			return nil
		}
		if !retryable(err) {
			return err
		}
		if attempt >= s.maxAttempts {
			return storage.ErrConflict
		}
		s.retries.Add(1)
		window := min(baseBackoff<<min(attempt-1, 10), maxBackoff)
		d := time.Duration(rand.Int64N(int64(window))) + time.Microsecond
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// attemptGroup runs every fn of the group once, each after a savepoint,
// in one transaction, and commits it. A fn that fails is rolled back to
// its savepoint with its outcome in results; an error returned is the
// transaction's (retryable: run the group again).
func (s *Store) attemptGroup(ctx context.Context, tenant string, retention storage.EventRetention, group []*commitReq, results []commitResult) (*tx, error) {
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer pt.Rollback(context.Background())
	all := &tx{ctx: ctx, tx: pt, tenant: tenant, channel: s.feed.channel, writable: true, retention: retention}
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if _, err := pt.Exec(ctx, "SAVEPOINT member"); err != nil {
			return nil, fmt.Errorf("postgres: savepoint: %w", err)
		}
		t := &tx{ctx: ctx, tx: pt, tenant: tenant, channel: s.feed.channel, writable: true, retention: retention}
		res := runMember(r.fn, t)
		if t.failed != nil && retryable(t.failed) {
			return nil, t.failed
		}
		if !res.panicked && res.err == nil {
			switch {
			case t.tooBig:
				res.err = storage.ErrTooBig
			case t.failed != nil:
				res.err = t.failed
			}
		}
		if res.panicked || res.err != nil {
			// ROLLBACK TO keeps the savepoint; the next SAVEPOINT of
			// the same name hides it, which PostgreSQL allows.
			if _, err := pt.Exec(ctx, "ROLLBACK TO SAVEPOINT member"); err != nil {
				return nil, fmt.Errorf("postgres: rollback to savepoint: %w", err)
			}
			results[i] = res
			continue
		}
		all.observed = all.observed || t.observed
		all.appended += t.appended
		all.pending.ids = append(all.pending.ids, t.pending.ids...)
		all.pending.types = append(all.pending.types, t.pending.types...)
		all.pending.docs = append(all.pending.docs, t.pending.docs...)
	}
	if err := all.finish(); err != nil {
		return nil, err
	}
	if err := pt.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	return all, nil
}

// runMember runs fn on t, a panic included in the outcome (it is raised
// again in the caller's goroutine, see commitResult.unwrap).
func runMember(fn func(storage.Tx) error, t *tx) (res commitResult) {
	defer capturePanic(&res)
	res.err = fn(t)
	return res
}

func capturePanic(res *commitResult) {
	if p := recover(); p != nil {
		res.panicked, res.panicVal = true, p
	}
}

// groupContext is the context of a group's transaction: no one caller's
// cancellation may end it for the others (a caller that is gone by its
// fn's turn is skipped), and it ends at the latest of their deadlines
// (never, if one has none).
func groupContext(group []*commitReq) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range group {
		d, ok := r.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(group[0].ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(group[0].ctx), latest)
}
