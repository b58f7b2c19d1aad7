package storage

import (
	"context"
	"time"
)

// Leaser is implemented by a store that several processes share: it gives
// background work that must run once (a directory pull, retention sweeps)
// to one process at a time. The embedded Badger store is opened by one
// process only, so its leases are always held.
type Leaser interface {
	// TryLease tries to take the named lease without waiting. held is
	// false (and the Lease nil) when another process holds it. A held
	// lease stays with this process until Release, or until the
	// connection that holds it is lost (the process died, the network or
	// the database cut it): then Lost is closed, and another process's
	// TryLease succeeds.
	TryLease(ctx context.Context, name string) (lease Lease, held bool, err error)
}

// Lease is a held lease.
type Lease interface {
	// Lost is closed when the lease is no longer held: released, or its
	// connection lost. Work started under it should stop.
	Lost() <-chan struct{}
	// Release gives the lease up. It is idempotent.
	Release()
}

// RunLeased calls work every interval, until ctx ends, while this process
// holds the named lease of st (always, if st is no Leaser). A process
// that does not hold it tries to take it at every tick, so when the
// holder dies the work moves to another process within about one interval
// (plus the time the database takes to notice a dead connection). work
// gets a context that ends when the lease is lost; it should be
// idempotent, since a holder that lost its lease mid-run may finish a run
// while the next holder starts one. onError, if set, hears failures to
// take the lease.
func RunLeased(ctx context.Context, st Store, name string, interval time.Duration, work func(ctx context.Context), onError func(error)) {
	leaser, _ := st.(Leaser)
	var lease Lease
	defer func() {
		if lease != nil {
			lease.Release()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leaser == nil {
			work(ctx)
			continue
		}
		if lease != nil {
			select {
			case <-lease.Lost():
				lease.Release()
				lease = nil
			default:
			}
		}
		if lease == nil {
			l, held, err := leaser.TryLease(ctx, name)
			if err != nil {
				if onError != nil && ctx.Err() == nil {
					onError(err)
				}
				continue
			}
			if !held {
				continue
			}
			lease = l
		}
		runUnder(ctx, lease, work)
	}
}

// runUnder runs work with a context that ends when the lease is lost.
func runUnder(ctx context.Context, lease Lease, work func(ctx context.Context)) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-lease.Lost():
			cancel()
		case <-done:
		}
	}()
	work(wctx)
}
