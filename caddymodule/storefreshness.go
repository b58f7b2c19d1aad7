package caddymodule

import (
	"time"

	"github.com/portcullis/portcullis/storage"
)

// staleWindow is implemented by a storage backend shared between
// processes: how long identities cached before its database became
// unreachable may still be served (authz.IdentitiesConfig.StaleIfError).
type staleWindow interface {
	staleIfError() time.Duration
}

// staleIfError is the window of the handle's backend (0: an in-process
// store, which is never stale).
func (h *storeHandle) staleIfError() time.Duration {
	if w, ok := h.opener.(staleWindow); ok {
		return w.staleIfError()
	}
	return 0
}

// staleIfErrorOf is the stale_if_error window of the store the app hands
// its services (0 for any other store).
func staleIfErrorOf(store storage.Store) time.Duration {
	if w, ok := store.(staleWindow); ok {
		return w.staleIfError()
	}
	return 0
}

// handleFreshness reports the change feed of the store behind a handle,
// once the handle opened it.
type handleFreshness struct{ h *storeHandle }

// ChangesBehind implements storage.ChangeFreshness.
func (f handleFreshness) ChangesBehind() time.Duration {
	if fr, ok := f.h.current().(storage.ChangeFreshness); ok {
		return fr.ChangesBehind()
	}
	return 0 // not open yet: the load that follows opens it or fails
}

// freshnessOf is the change feed of the store the app hands its services,
// for a backend shared between processes (nil for Badger, which is always
// current).
func freshnessOf(store storage.Store) storage.ChangeFreshness {
	h, ok := store.(*storeHandle)
	if !ok || h.staleIfError() == 0 {
		return nil
	}
	return handleFreshness{h}
}
