package caddymodule

import (
	"context"
	"sync"

	"github.com/portcullis/portcullis/storage"
)

// TryLease implements storage.Leaser, so that background work given the
// handle (the Google pull) runs on one replica of those sharing a
// database: the open store's leases, or, for a store that has none (one
// only this process opens), a lease that is always held.
func (h *storeHandle) TryLease(ctx context.Context, name string) (storage.Lease, bool, error) {
	st, err := h.get()
	if err != nil {
		return nil, false, err
	}
	if l, ok := st.(storage.Leaser); ok {
		return l.TryLease(ctx, name)
	}
	return &processLease{lost: make(chan struct{})}, true, nil
}

var _ storage.Leaser = (*storeHandle)(nil)

// processLease is a lease of a store only this process opens: lost only
// when released.
type processLease struct {
	once sync.Once
	lost chan struct{}
}

func (l *processLease) Lost() <-chan struct{} { return l.lost }
func (l *processLease) Release()              { l.once.Do(func() { close(l.lost) }) }
