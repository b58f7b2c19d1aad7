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

// ChangesCurrentAsOf implements storage.ChangeFreshness for the store
// behind the handle: an in-process store, or one not open yet, is current.
func (h *storeHandle) ChangesCurrentAsOf() time.Time {
	if f, ok := h.current().(storage.ChangeFreshness); ok {
		return f.ChangesCurrentAsOf()
	}
	return time.Now()
}

var _ storage.ChangeFreshness = (*storeHandle)(nil)

// staleIfErrorOf is the stale_if_error window of the store the app hands
// its services (0 for any other store).
func staleIfErrorOf(store storage.Store) time.Duration {
	if w, ok := store.(staleWindow); ok {
		return w.staleIfError()
	}
	return 0
}
