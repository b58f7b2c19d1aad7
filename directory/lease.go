package directory

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Of several replicas sharing one store, one runs the schedule: the holder
// of the tenant's pull lease (storage.Leaser; PostgreSQL holds it as an
// advisory lock on a connection of its own). The others try to take it
// every LeaseRetry, so when the holder dies the schedule moves within
// about that long, plus the time the database takes to notice the dead
// connection.
//
// A sync asked for (Sync, Trigger: the admin API's and the CLI's "sync
// now") runs on the replica asked, lease or not: an operator behind a load
// balancer cannot choose the replica, and overlapping syncs are safe, since
// every write is planned again inside its own transaction (store.go), so
// a change the other sync already made is not made twice.

// superviseLease runs the schedule whenever this process holds the lease,
// until Stop.
func (s *Syncer) superviseLease() {
	defer close(s.loopDone)
	leaser, ok := s.cfg.Store.(storage.Leaser)
	if !ok {
		// A store only this process opens: the lease is always ours.
		s.setLeaseHeld(true)
		s.schedule(s.lifetime)
		s.setLeaseHeld(false)
		return
	}
	logger := s.cfg.Logger.With(zap.String("tenant", s.cfg.Tenant), zap.String("lease", s.cfg.LeaseName))
	retry := time.NewTimer(0) // the first try at once: a lone gateway syncs at start
	defer retry.Stop()
	for {
		select {
		case <-s.lifetime.Done():
			return
		case <-retry.C:
		}
		lease, held, err := leaser.TryLease(s.lifetime, s.cfg.LeaseName)
		switch {
		case err != nil:
			if s.lifetime.Err() == nil {
				logger.Warn("google directory sync: taking the pull lease failed; trying again", zap.Error(err),
					zap.Duration("retry", s.cfg.LeaseRetry))
			}
		case held:
			s.runUnderLease(lease, logger)
		}
		retry.Reset(s.cfg.LeaseRetry)
	}
}

// runUnderLease runs the schedule until the lease is lost or the Syncer
// stopped, then gives the lease up.
func (s *Syncer) runUnderLease(lease storage.Lease, logger *zap.Logger) {
	defer lease.Release()
	ctx, cancel := context.WithCancel(s.lifetime)
	defer cancel()
	go func() {
		select {
		case <-lease.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	logger.Info("google directory sync: this replica holds the pull lease and runs the schedule")
	s.setLeaseHeld(true)
	defer s.setLeaseHeld(false)
	s.schedule(ctx)
	if s.lifetime.Err() == nil {
		logger.Warn("google directory sync: the pull lease was lost (its database connection ended); another replica takes the schedule over")
	}
}

func (s *Syncer) setLeaseHeld(held bool) {
	s.mu.Lock()
	s.status.LeaseHeld = held
	s.mu.Unlock()
}
