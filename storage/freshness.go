package storage

import "time"

// ChangeFreshness is implemented by a store shared between processes
// (storage/postgres), whose Generation follows changes committed by other
// replicas through a change feed. An in-process store (Badger) knows every
// change the moment it commits and does not implement it.
//
// A cache that trusts Generation to tell it when it is stale can only do
// so while the feed is current: when the store cannot reach its database,
// Generation stops moving, and a cache that kept serving would serve a
// deactivated user forever. Such a cache asks ChangesCurrentAsOf and stops
// trusting its entries once that time is older than it tolerates
// (authz's StaleIfError).
type ChangeFreshness interface {
	// ChangesCurrentAsOf is the last time this process knew its
	// Generation of every tenant was current: now while change
	// notifications are flowing, else the time of the last successful
	// poll or resynchronisation.
	ChangesCurrentAsOf() time.Time
}
