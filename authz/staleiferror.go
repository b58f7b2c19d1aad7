package authz

import (
	"errors"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// Serving cached identities while a shared store is unreachable.
//
// The cache trusts Generation to say when an entry is stale. With a store
// shared between replicas (storage.ChangeFreshness), Generation follows
// other replicas' writes only while the store's change feed is current;
// when the database is unreachable it stops moving, and a deactivation
// committed elsewhere just before would never reach this cache. So:
//
//   - a cached entry is trusted only while the feed was current within
//     StaleIfError; past that, every request reloads from the store, and
//     while the store stays unreachable it is refused (503, Retry-After);
//   - a reload that fails because the store is unavailable serves the
//     entry it would have replaced, if that entry is for the current
//     generation (nothing known changed since) and the feed is within
//     the window.
//
// A deployment with one process (Badger) has no feed and no window.

// RetryAfterUnavailable is the Retry-After, in seconds, of the 503 a
// request gets when the store is unreachable.
const RetryAfterUnavailable = 5

// feedAge is how far the store's generations may be behind (0 for a
// store that is always current). Real time, not ids.now: it is the
// store's feed, not a session, that ages.
func (ids *Identities) feedAge() time.Duration {
	if ids.freshness == nil {
		return 0
	}
	return ids.freshness.ChangesBehind()
}

// trustsCache says whether a cached entry may be served without going to
// the store.
func (ids *Identities) trustsCache() bool {
	return ids.feedAge() <= ids.staleIfError
}

// servesStale says whether the entry e may stand in for a reload that
// failed with err.
func (ids *Identities) servesStale(e *entry, gen uint64, err error) bool {
	return e != nil && ids.staleIfError > 0 && e.gen == gen &&
		errors.Is(err, storage.ErrUnavailable) && ids.feedAge() <= ids.staleIfError &&
		!e.session.Expired(ids.now(), ids.sessions.IdleTimeout())
}
