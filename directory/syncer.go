package directory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Syncer pulls one tenant's users and groups from Google Workspace. It is
// safe for concurrent use. One full sync runs at a time: a Sync asked for
// while one runs joins it.
type Syncer struct {
	cfg    Config
	api    *client
	mapped refMatcher

	// work is held by a full sync or an activity poll, never both: a poll
	// due during a full sync is skipped (its cursor stays put, so the next
	// poll reads the same events).
	work sync.Mutex

	mu      sync.Mutex
	status  Status
	running *run

	retries atomic.Int64

	// activity poll state, guarded by work.
	cursor time.Time
	seen   map[string]time.Time

	lifetime context.Context
	cancel   context.CancelFunc
	wake     chan struct{}
	loopDone chan struct{}
	started  bool
}

// run is one full sync, which every caller asking during it waits for.
type run struct {
	done   chan struct{}
	status Status
	err    error
}

// New checks cfg and prepares the Google API clients. Nothing is fetched
// until Sync or Start.
func New(cfg Config) (*Syncer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	api, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Syncer{
		cfg: cfg, api: api, mapped: newRefMatcher(cfg.MappedGroups),
		// Activities from before the syncer existed are the first full
		// sync's business.
		cursor: time.Now().UTC(), seen: map[string]time.Time{},
		lifetime: ctx, cancel: cancel, wake: make(chan struct{}, 1),
	}, nil
}

// Sync runs a full sync, or joins the one running, and waits for its end
// (or ctx). Cancelling ctx stops the waiting, not the sync.
func (s *Syncer) Sync(ctx context.Context) (Status, error) {
	r := s.begin(s.lifetime)
	select {
	case <-r.done:
		return r.status, r.err
	case <-ctx.Done():
		return s.Status(), ctx.Err()
	}
}

// Trigger starts a full sync unless one is running, and returns at once
// with the status (Running true): the admin API's "sync now" (202).
func (s *Syncer) Trigger() Status {
	s.begin(s.lifetime)
	return s.Status()
}

// begin starts a full sync that runs until it ends or ctx does: the
// gateway's lifetime for one asked for, the lease for a scheduled one.
func (s *Syncer) begin(ctx context.Context) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		return s.running
	}
	r := &run{done: make(chan struct{})}
	s.running = r
	s.status.Running = true
	s.status.LastStart = time.Now().UTC()
	go s.runFull(ctx, r, s.status.LastStart)
	return r
}

func (s *Syncer) runFull(ctx context.Context, r *run, start time.Time) {
	s.work.Lock()
	calls0, retries0 := s.api.calls.Load(), s.retries.Load()
	t, err := s.fullSync(ctx)
	s.work.Unlock()
	end := time.Now().UTC()
	t.counts.APICalls = s.api.calls.Load() - calls0
	t.counts.Retries = s.retries.Load() - retries0
	s.notifyDeprovisioned(t.deprovisioned)

	logger := s.cfg.Logger.With(zap.String("tenant", s.cfg.Tenant))
	result, lastError := ResultOK, ""
	if err != nil {
		result, lastError = ResultFailed, err.Error()
		logger.Warn("google directory sync failed", zap.Error(err))
		s.recordFailure(err)
	} else {
		logger.Info("google directory sync done", zap.Duration("took", end.Sub(start)),
			zap.Any("counts", t.counts))
	}
	s.mu.Lock()
	s.status.Running = false
	s.status.LastEnd = end
	s.status.Duration = end.Sub(start)
	s.status.Result, s.status.LastError = result, lastError
	s.status.Counts = t.counts
	st := s.status
	s.running = nil
	s.mu.Unlock()
	r.status, r.err = st, err
	// The observer hears of the sync before its caller does, so that once
	// Sync returns, metrics and tests that count syncs already count it.
	if s.cfg.Observer != nil {
		s.cfg.Observer.SyncFinished(st)
	}
	close(r.done)
}

// recordFailure appends sync.failed. It is an audit event only: no user,
// group or session is touched, and Generation does not move.
func (s *Syncer) recordFailure(cause error) {
	if errors.Is(cause, context.Canceled) {
		return // stopped with the gateway
	}
	reason := cause.Error()
	if len(reason) > 500 {
		reason = reason[:499] + "…"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.cfg.Store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{Type: storage.EventSyncFailed, Actor: Actor, Reason: reason})
	})
	if err != nil {
		s.cfg.Logger.Error("recording a failed google sync", zap.String("tenant", s.cfg.Tenant), zap.Error(err))
	}
}

func (s *Syncer) notifyDeprovisioned(ids []string) {
	if s.cfg.Observer == nil || len(ids) == 0 {
		return
	}
	now := time.Now()
	for _, id := range ids {
		s.cfg.Observer.UserDeprovisioned(id, now)
	}
}

// Status is the state of the last (or running) sync.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Start runs the schedule in the background while this process holds the
// tenant's pull lease (Config.LeaseName; see lease.go): a full sync at
// once (Start does not wait for it), then every Interval, and an activity
// poll every ActivityPoll. Start does not wait for the lease either. A
// Syncer is started once: after Stop, Start does nothing.
func (s *Syncer) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	s.loopDone = make(chan struct{})
	go s.superviseLease()
}

// Stop ends the schedule and a running sync, gives the lease up, and
// waits for them.
func (s *Syncer) Stop() {
	s.cancel()
	s.mu.Lock()
	done, r := s.loopDone, s.running
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	if r != nil {
		<-r.done
	}
}

// schedule runs full syncs and activity polls until ctx ends (the lease
// is lost or the Syncer stopped); it runs again under the next lease. A
// scheduled sync runs under ctx, so losing the lease stops it too.
func (s *Syncer) schedule(ctx context.Context) {
	defer func() {
		s.mu.Lock()
		s.status.NextRun = time.Time{} // another replica's schedule, if any
		s.mu.Unlock()
	}()
	nextFull := time.Now()
	var nextPoll time.Time
	if s.cfg.ActivityPoll > 0 {
		nextPoll = nextFull.Add(s.cfg.ActivityPoll)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.mu.Lock()
		s.status.NextRun = nextFull.UTC()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(nextFull) {
			s.begin(ctx)
			nextFull = now.Add(s.cfg.Interval)
		}
		if !nextPoll.IsZero() && !now.Before(nextPoll) {
			if err := s.PollActivity(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.cfg.Logger.Warn("google activity poll failed", zap.String("tenant", s.cfg.Tenant), zap.Error(err))
			}
			nextPoll = time.Now().Add(s.cfg.ActivityPoll)
		}
		wait := time.Until(nextFull)
		if !nextPoll.IsZero() {
			wait = min(wait, time.Until(nextPoll))
		}
		timer.Reset(max(wait, 0))
	}
}
