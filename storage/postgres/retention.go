package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// The audit log of a tenant is bounded two ways (storage.EventRetention):
//
//   - by age: Events never returns an event older than MaxAge (its id
//     encodes its time, so that is a lower bound on the scan), and the
//     maintenance loop deletes them hourly;
//   - by count: every transaction that appends events adds their number to
//     one of the tenant's event_counts rows (a random one of
//     eventCountShards, so concurrent appenders seldom touch the same row,
//     which under SERIALIZABLE would make one of them retry). After the
//     commit, Update sums the rows and, past MaxEvents, deletes the oldest
//     events and subtracts them in one serializable transaction, down to
//     MaxEvents less a little headroom so deletions come in batches. The
//     count is exact across replicas because it moves in the same
//     transactions as the events.
//
// Retention itself is per process (SetEventRetention, from the config):
// replicas share the events, and each applies the retention it was given.

// pruneBatch bounds the events one pruning transaction deletes.
const pruneBatch = 10_000

// maintenanceInterval: how often expired events, records and sessions are
// deleted from the tables (readers never see them past their expiry).
const maintenanceInterval = time.Hour

func (s *Store) retention(tenant string) storage.EventRetention {
	if r, ok := s.retentions.Load(tenant); ok {
		return r.(storage.EventRetention)
	}
	return storage.EventRetention{}.WithDefaults()
}

// SetEventRetention implements storage.Store. A lowered cap deletes the
// oldest events before it returns; the tenant's old events are then pruned
// hourly with its MaxAge.
func (s *Store) SetEventRetention(tenant string, r storage.EventRetention) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.retentions.Store(tenant, r.WithDefaults())
	return s.holdCap(context.Background(), tenant)
}

// holdCap deletes the tenant's oldest events while there are more than
// MaxEvents, a batch per transaction.
func (s *Store) holdCap(ctx context.Context, tenant string) error {
	limit := s.retention(tenant).MaxEvents
	// One read outside any transaction first: on most appends the tenant
	// is under its cap, and this costs a round trip, not a transaction.
	var count int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM event_counts WHERE tenant = $1`, tenant).Scan(&count); err != nil {
		return err
	}
	if count <= int64(limit) {
		return nil
	}
	for {
		deleted, err := s.pruneOnce(ctx, tenant, func(count int64) int64 {
			if count <= int64(limit) {
				return 0
			}
			// Headroom of 1% (at most one batch): a tenant at its cap
			// prunes once per many appends, not on every one.
			return count - int64(limit-min(limit/100, pruneBatch))
		}, "")
		if err != nil || deleted < pruneBatch {
			return err
		}
	}
}

// pruneOnce deletes, in one serializable transaction (retried like
// Update's), up to pruneBatch of the tenant's oldest events (with an id
// below before, if set): as many as want says given the tenant's count.
func (s *Store) pruneOnce(ctx context.Context, tenant string, want func(count int64) int64, before string) (int, error) {
	deleted := 0
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(ptx pgx.Tx) error {
			var count int64
			if err := ptx.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM event_counts WHERE tenant = $1`, tenant).Scan(&count); err != nil {
				return err
			}
			n := min(want(count), pruneBatch)
			if n <= 0 {
				deleted = 0
				return nil
			}
			var got int64
			err := ptx.QueryRow(ctx, `WITH d AS (
					DELETE FROM events WHERE tenant = $1 AND id IN (
						SELECT id FROM events WHERE tenant = $1 AND ($3 = '' OR id < $3) ORDER BY id LIMIT $2)
					RETURNING 1),
				c AS (SELECT count(*) AS n FROM d),
				u AS (INSERT INTO event_counts AS ec (tenant, shard, n) SELECT $1, 0, -c.n FROM c
					ON CONFLICT (tenant, shard) DO UPDATE SET n = ec.n + excluded.n)
				SELECT n FROM c`, tenant, n, before).Scan(&got)
			deleted = int(got)
			return err
		})
		if err == nil {
			return deleted, nil
		}
		if !retryable(err) || attempt >= defaultMaxAttempts {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// runMaintenance deletes, hourly, what readers already no longer see:
// events past their tenant's MaxAge (tenants this process has a retention
// for, or the default age for the others), expired records and sessions
// past their grace. One replica at a time runs it, under the
// "maintenance" lease (lease.go); when that replica dies another takes
// over at its next tick. The deletes are idempotent, so an overlap at the
// hand-over is harmless.
func (s *Store) runMaintenance() {
	defer s.wg.Done()
	storage.RunLeased(s.ctx, s, maintenanceLease, maintenanceInterval, func(ctx context.Context) {
		if err := s.maintain(ctx, time.Now()); err != nil && !errors.Is(err, context.Canceled) {
			s.logger.Warn("deleting expired data failed", zap.Error(err))
		}
	}, func(err error) {
		s.logger.Warn("taking the maintenance lease failed", zap.Error(err))
	})
}

// maintenanceLease names the lease of the maintenance loop.
const maintenanceLease = "postgres.maintenance"

func (s *Store) maintain(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM records WHERE expires_at < $1`, now); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, now.Add(-sessionGrace)); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT tenant FROM event_counts`)
	if err != nil {
		return err
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, tenant := range tenants {
		floor := eventIDFloor(now.Add(-s.retention(tenant).MaxAge))
		for {
			n, err := s.pruneOnce(ctx, tenant, func(int64) int64 { return pruneBatch }, floor)
			if err != nil {
				return err
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return nil
}
