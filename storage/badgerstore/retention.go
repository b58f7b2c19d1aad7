package badgerstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// The audit log of a tenant is bounded two ways (storage.EventRetention):
//
//   - by age: Events never returns an event older than MaxAge (its id
//     encodes its time, so that is a lower bound on the scan), and
//     runGC's hourly pruneExpiredEvents deletes them from disk;
//   - by count: the store keeps a count of each tenant's events in
//     memory, and an Update that appended events and took the count past
//     MaxEvents deletes the oldest before it returns, down to MaxEvents
//     less a little headroom, so the deletions come in batches rather
//     than one per append.
//
// The count is learnt by one key-only scan the first time the process
// needs it: SetEventRetention (at provisioning), or else the tenant's first
// Update. Every Update waits for the count before its transaction starts,
// so each append commits either before the scan's snapshot or after the
// count is known, never both: the count is exact. Pruning runs under the
// same lock and subtracts what it deleted.

// pruneBatch bounds the events one pruning transaction deletes.
const pruneBatch = 10_000

// eventLog is the in-memory count of one tenant's events.
type eventLog struct {
	known atomic.Bool // count has been learnt; set under mu
	mu    sync.Mutex
	count int
}

func (s *Store) eventLog(tenant string) *eventLog {
	if l, ok := s.eventLogs.Load(tenant); ok {
		return l.(*eventLog)
	}
	l, _ := s.eventLogs.LoadOrStore(tenant, new(eventLog))
	return l.(*eventLog)
}

// retention is the tenant's retention, defaults filled in.
func (s *Store) retention(tenant string) storage.EventRetention {
	if r, ok := s.retentions.Load(tenant); ok {
		return r.(storage.EventRetention)
	}
	return storage.EventRetention{}.WithDefaults()
}

// SetEventRetention implements storage.Store. It applies the cap at once
// (a lowered cap deletes the oldest events before it returns), and from
// then on the tenant is among those the hourly pruning visits.
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
	l := s.eventLog(tenant)
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.holdCap(tenant, l)
}

// countEventsOnce learns the tenant's event count if the process does not
// know it yet. Update calls it before its transaction (see above).
func (s *Store) countEventsOnce(tenant string) {
	l := s.eventLog(tenant)
	if l.known.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := s.learnCount(tenant, l); err != nil {
		s.logger.Warn("counting audit events failed", zap.String("tenant", tenant), zap.Error(err))
	}
}

// learnCount counts the tenant's events unless known. l.mu is held.
func (s *Store) learnCount(tenant string, l *eventLog) error {
	if l.known.Load() {
		return nil
	}
	n, err := s.countEvents(tenantPrefix(tenant))
	if err != nil {
		return err
	}
	l.count = n
	l.known.Store(true)
	return nil
}

// eventsAppended follows a commit that appended n events.
func (s *Store) eventsAppended(tenant string, n int) {
	l := s.eventLog(tenant)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known.Load() {
		l.count += n
	}
	if err := s.holdCap(tenant, l); err != nil {
		// The commit stands; the next append or prune tries again.
		s.logger.Warn("holding the audit log to its cap failed", zap.String("tenant", tenant), zap.Error(err))
	}
}

// holdCap counts the tenant's events if the count is not known yet and
// deletes the oldest while there are more than MaxEvents. l.mu is held.
func (s *Store) holdCap(tenant string, l *eventLog) error {
	if err := s.learnCount(tenant, l); err != nil {
		return err
	}
	limit := s.retention(tenant).MaxEvents
	if l.count <= limit {
		return nil
	}
	// Headroom of 1% (at most one batch) so that a tenant at its cap
	// prunes once per many appends, not on every one.
	want := l.count - (limit - min(limit/100, pruneBatch))
	deleted, err := s.deleteEvents(tenantPrefix(tenant), want, "")
	l.count -= deleted
	if err == nil && deleted < want {
		// Fewer events than counted, which should not happen: learn
		// the count again next time.
		l.known.Store(false)
	}
	return err
}

// countEvents counts the tenant's events, keys only.
func (s *Store) countEvents(prefix []byte) (int, error) {
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		t := &tx{txn: txn, k: keyer{prefix}}
		var err error
		n, err = t.count(t.k.kind(kindEvent))
		return err
	})
	return n, err
}

// deleteEvents deletes up to n of the tenant's oldest events, only those
// with an id below before if before is not "", a batch per transaction,
// and says how many it deleted.
func (s *Store) deleteEvents(prefix []byte, n int, before string) (int, error) {
	deleted := 0
	for deleted < n {
		var batch int
		_, err := s.run(context.Background(), prefix, func(t *tx) error {
			var ids []string
			want := min(pruneBatch, n-deleted)
			err := t.iterate(t.k.kind(kindEvent), "", func(suffix []byte, _ *badger.Item) (bool, error) {
				if before != "" && string(suffix) >= before {
					return false, nil
				}
				ids = append(ids, string(suffix))
				return len(ids) < want, nil
			})
			if err != nil {
				return err
			}
			for _, id := range ids {
				if err := t.del(t.k.id(kindEvent, id)); err != nil {
					return err
				}
			}
			batch = len(ids)
			return nil
		})
		if err != nil {
			return deleted, err
		}
		deleted += batch
		if batch == 0 {
			break
		}
	}
	return deleted, nil
}

// pruneExpiredEvents deletes the events past MaxAge of every tenant this
// process has seen (SetEventRetention or an append). Others' old events
// stay on disk until then, but Events never returns them.
func (s *Store) pruneExpiredEvents() {
	s.eventLogs.Range(func(k, v any) bool {
		select {
		case <-s.stop:
			return false
		default:
		}
		tenant, l := k.(string), v.(*eventLog)
		if err := s.pruneExpired(tenant, l, time.Now()); err != nil {
			s.logger.Warn("pruning expired audit events failed", zap.String("tenant", tenant), zap.Error(err))
		}
		return true
	})
}

// pruneExpired deletes the tenant's events older than MaxAge at now.
func (s *Store) pruneExpired(tenant string, l *eventLog, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	floor := eventIDFloor(now.Add(-s.retention(tenant).MaxAge))
	deleted, err := s.deleteEvents(tenantPrefix(tenant), int(^uint(0)>>1), floor)
	if l.known.Load() {
		l.count = max(0, l.count-deleted)
	}
	return err
}
