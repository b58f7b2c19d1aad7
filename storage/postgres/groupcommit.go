package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/internal/groupcommit"
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

// update is one Update's change, as it waits in its tenant's queue (or
// runs).
type update struct {
	ctx context.Context
	fn  func(storage.Tx) error
}

// queue is the tenant's queue of Updates. An Update that finds it idle
// leads a group of itself and of whoever queued by the time it takes the
// group (which runs alone when that is only itself).
func (s *Store) queue(tenant string) *groupcommit.Queue[update] {
	if q, ok := s.queues.Load(tenant); ok {
		return q.(*groupcommit.Queue[update])
	}
	q, _ := s.queues.LoadOrStore(tenant, &groupcommit.Queue[update]{MaxGroup: maxGroup, MaxWait: maxGroupWait})
	return q.(*groupcommit.Queue[update])
}

// groupUpdate queues fn behind the tenant's running group, or runs it at
// once when there is none (see groupcommit.Queue for who runs what).
func (s *Store) groupUpdate(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.queue(tenant).Do(update{ctx: ctx, fn: fn},
		func(group []update, outcomes []groupcommit.Outcome) { s.runGroup(tenant, group, outcomes) },
		func(u update) error { return s.updateAlone(u.ctx, tenant, u.fn) })
}

// runGroup runs the fns of group and gives each its outcome; a panic of
// a fn is in its outcome, raised again in its caller's goroutine.
func (s *Store) runGroup(tenant string, group []update, outcomes []groupcommit.Outcome) {
	if len(group) == 1 {
		u := group[0]
		defer capturePanic(&outcomes[0])
		outcomes[0].Err = s.updateAlone(u.ctx, tenant, u.fn)
		return
	}
	ctx, cancel := groupContext(group)
	defer cancel()
	err := s.runGroupAttempts(ctx, tenant, group, outcomes)
	if err == nil {
		for _, res := range outcomes {
			if res.Err == nil && !res.Panicked {
				s.grouped.Add(1)
			}
		}
	}
	for i, u := range group {
		res := &outcomes[i]
		if err != nil && res.Err == nil && !res.Panicked {
			res.Err = err
			if ctxErr := u.ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				res.Err = fmt.Errorf("%w (%v)", ctxErr, err)
			}
		}
	}
}

// runGroupAttempts runs the group's transaction until it commits, retrying
// it as updateAlone retries one fn. results gets each fn's own outcome; the
// error is the group's (nil: committed).
func (s *Store) runGroupAttempts(ctx context.Context, tenant string, group []update, results []groupcommit.Outcome) error {
	retention := s.retention(tenant)
	backoff := groupcommit.Backoff{Base: baseBackoff, Max: maxBackoff}
	defer backoff.Stop()
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
		if err := backoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// attemptGroup runs every fn of the group once, each after a savepoint,
// in one transaction, and commits it. A fn that fails is rolled back to
// its savepoint with its outcome in results; an error returned is the
// transaction's (retryable: run the group again).
func (s *Store) attemptGroup(ctx context.Context, tenant string, retention storage.EventRetention, group []update, results []groupcommit.Outcome) (*tx, error) {
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer pt.Rollback(context.Background())
	all := &tx{ctx: ctx, tx: pt, tenant: tenant, channel: s.feed.channel, writable: true, retention: retention}
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i].Err = err
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
		if !res.Panicked && res.Err == nil {
			switch {
			case t.tooBig:
				res.Err = storage.ErrTooBig
			case t.failed != nil:
				res.Err = t.failed
			}
		}
		if res.Panicked || res.Err != nil {
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
// again in the caller's goroutine, see groupcommit.Outcome).
func runMember(fn func(storage.Tx) error, t *tx) (res groupcommit.Outcome) {
	defer capturePanic(&res)
	res.Err = fn(t)
	return res
}

func capturePanic(res *groupcommit.Outcome) {
	if p := recover(); p != nil {
		res.Panicked, res.PanicValue = true, p
	}
}

// groupContext is the context of a group's transaction: no one caller's
// cancellation may end it for the others (a caller that is gone by its
// fn's turn is skipped), and it ends at the latest of their deadlines
// (never, if one has none).
func groupContext(group []update) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, u := range group {
		d, ok := u.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(group[0].ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(group[0].ctx), latest)
}
