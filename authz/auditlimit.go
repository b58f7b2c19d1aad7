package authz

import (
	"sync"
	"time"
)

// auditLimiter keeps refusals from writing an audit event each: a key (a
// user and route, or a client address) is recorded at most once per
// auditInterval, and the refusals skipped in between are counted into the
// next record. A user retrying a page, or a client hammering a refused
// path, thus costs at most one store write a minute, whatever its rate.
// The memory is bounded (auditMaxKeys).
type auditLimiter struct {
	mu   sync.Mutex
	seen map[string]*auditKey
}

type auditKey struct {
	last    time.Time // when the key was last recorded
	skipped int       // refusals not recorded since
	eventID string    // the id of that record, once written
}

const (
	auditInterval = time.Minute
	auditMaxKeys  = 10000
)

// allow says whether to record key now and, when it does, how many of the
// key's refusals were skipped since its previous record. When it does not,
// lastID is the id of that previous record (see recorded), the reference
// a page shows for a refusal it stands for.
func (a *auditLimiter) allow(key string, now time.Time) (record bool, skipped int, lastID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = make(map[string]*auditKey)
	}
	if k, ok := a.seen[key]; ok {
		if now.Sub(k.last) < auditInterval && !now.Before(k.last) {
			k.skipped++
			return false, 0, k.eventID
		}
		skipped, k.skipped, k.last, k.eventID = k.skipped, 0, now, ""
		return true, skipped, ""
	}
	if len(a.seen) >= auditMaxKeys {
		for k, v := range a.seen {
			if now.Sub(v.last) >= auditInterval {
				delete(a.seen, k)
			}
		}
		if len(a.seen) >= auditMaxKeys {
			// Every key is recent: drop one rather than grow.
			for k := range a.seen {
				delete(a.seen, k)
				break
			}
		}
	}
	a.seen[key] = &auditKey{last: now}
	return true, 0, ""
}

// recorded notes the id of the record allow asked for.
func (a *auditLimiter) recorded(key, eventID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.seen[key]; ok {
		k.eventID = eventID
	}
}

// auditBudget bounds the refusal records of a whole tenant per
// auditInterval, whatever the number of addresses: one record per address a
// minute is still unbounded for an attacker who rotates addresses (an IPv6
// /48 holds 65,536 /64s). Past the budget, refusals are only counted, and
// the count goes into the next record the budget allows.
type auditBudget struct {
	mu          sync.Mutex
	windowStart time.Time
	used        int
	skipped     int // refusals not recorded for want of budget
}

// auditBudgetPerWindow is how many refusal records a tenant writes per
// auditInterval at most.
const auditBudgetPerWindow = 20

// take says whether a record may be written now and, when it may, how many
// refusals went unrecorded for want of budget since the last one.
func (b *auditBudget) take(now time.Time) (ok bool, skipped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.windowStart) >= auditInterval || now.Before(b.windowStart) {
		b.windowStart, b.used = now, 0
	}
	if b.used >= auditBudgetPerWindow {
		b.skipped++
		return false, 0
	}
	b.used++
	skipped, b.skipped = b.skipped, 0
	return true, skipped
}
