package badgerstore

import (
	"context"
	"sync"

	"github.com/portcullis/portcullis/storage"
)

var _ storage.Leaser = (*Store)(nil)

// TryLease implements storage.Leaser: one process opens a Badger store
// (it locks its directory), so every lease is held by it, and lost only
// when released.
func (s *Store) TryLease(ctx context.Context, name string) (storage.Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return &localLease{lost: make(chan struct{})}, true, nil
}

type localLease struct {
	once sync.Once
	lost chan struct{}
}

func (l *localLease) Lost() <-chan struct{} { return l.lost }
func (l *localLease) Release()              { l.once.Do(func() { close(l.lost) }) }
