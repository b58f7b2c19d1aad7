package caddymodule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// storeHandle is the store as the app's services hold it from Provision
// on. Provision must not open the store: `caddy validate` provisions the
// config in a process of its own while the gateway runs and holds the
// store's lock. So the handle opens the store (through openStores, which
// shares one open store across config reloads) when the app starts, or
// earlier at the first use by a request (Caddy starts its apps in no set
// order, so the HTTP app may serve a moment before this one starts), and
// gives the use back in the app's Cleanup. A validation provisions and
// cleans up without ever using it, so it never opens the store.
type storeHandle struct {
	opener StoreOpener
	logger *zap.Logger

	open atomic.Pointer[storage.Store] // fast path once open

	mu       sync.Mutex
	key      string // set while the handle holds a use of the store
	released bool
}

// errStoreReleased is what a handle answers after its config was unloaded
// (a request still finishing on a replaced config).
var errStoreReleased = errors.New("portcullis: this configuration was unloaded; its store is no longer open")

func newStoreHandle(opener StoreOpener, logger *zap.Logger) *storeHandle {
	return &storeHandle{opener: opener, logger: logger}
}

// get returns the open store, opening it on first use.
func (h *storeHandle) get() (storage.Store, error) {
	if st := h.open.Load(); st != nil {
		return *st, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil, errStoreReleased
	}
	if st := h.open.Load(); st != nil {
		return *st, nil
	}
	st, key, err := acquireStore(h.opener, h.logger)
	if err != nil {
		return nil, err
	}
	h.key = key
	h.open.Store(&st)
	return st, nil
}

// current is the open store, or nil if the handle has not opened it.
func (h *storeHandle) current() storage.Store {
	if st := h.open.Load(); st != nil {
		return *st
	}
	return nil
}

// release gives back the handle's use of the store (the last use closes
// it) and refuses any later use.
func (h *storeHandle) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	if h.key == "" {
		return nil
	}
	key := h.key
	h.key = ""
	h.open.Store(nil)
	return releaseStore(key, h.logger)
}

// View implements storage.Store.
func (h *storeHandle) View(ctx context.Context, tenant string, fn func(storage.ReadTx) error) error {
	st, err := h.get()
	if err != nil {
		return err
	}
	return st.View(ctx, tenant, fn)
}

// Update implements storage.Store.
func (h *storeHandle) Update(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	st, err := h.get()
	if err != nil {
		return err
	}
	return st.Update(ctx, tenant, fn)
}

// Generation implements storage.Store. A store that cannot be opened has
// no generation; the View or Update that follows reports the error.
func (h *storeHandle) Generation(tenant string) uint64 {
	st, err := h.get()
	if err != nil {
		return 0
	}
	return st.Generation(tenant)
}

// SetEventRetention implements storage.Store.
func (h *storeHandle) SetEventRetention(tenant string, r storage.EventRetention) error {
	st, err := h.get()
	if err != nil {
		return err
	}
	return st.SetEventRetention(tenant, r)
}

// Close implements storage.Store. It does nothing: the store is shared,
// and the app gives its use back in Cleanup (release).
func (h *storeHandle) Close() error { return nil }

var _ storage.Store = (*storeHandle)(nil)
