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
// deactivated user forever. Such a cache asks ChangesBehind and stops
// trusting its entries once it exceeds what it tolerates (authz's
// StaleIfError).
type ChangeFreshness interface {
	// ChangesBehind is how far this process's Generation of every
	// tenant may be behind the database: 0 while change notifications
	// are flowing, else the time since the last successful poll or the
	// last sign of life of the notification connection.
	ChangesBehind() time.Duration
}
