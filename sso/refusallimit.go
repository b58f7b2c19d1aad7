package sso

import (
	"container/list"
	"sync"
	"time"
)

// Refused sign-ins are limited and counted per client address, the way
// scimhandler limits failed SCIM tokens: anyone can send a garbage callback
// or SAML post, and each must cost neither a durable write nor an audit
// record of its own.
//
// Each address has a token bucket of refusals: a burst of refusalBurst,
// refilled one per refusalRefill. Once it is empty, the address's refusals
// are answered 429 with Retry-After. The limit applies to refusals only: a
// sign-in that succeeds is never limited, so an attacker sharing an
// address (a NAT) with real users cannot lock them out.
//
// The audit log gets at most one signin.refused event per address and
// refusalWindow, carrying how many refusals it stands for. Refusals that
// name a known user (deactivated, outside the allowed domains) are counted
// under their own (address, user) key, so that such a refusal is recorded
// even while the address also sends anonymous garbage; they are limited by
// the address's bucket all the same. Refusals left unrecorded when an
// address goes quiet are written by flushRefusals once per window, one
// event per key; it runs only while some are left (no timer otherwise).
const (
	refusalBurst  = 10
	refusalRefill = 6 * time.Second
	refusalWindow = time.Minute
	// maxTrackedRefusers bounds the limiter's memory (~250 bytes an
	// entry): past it the least recently refused key is forgotten, and
	// its unrecorded count with it.
	maxTrackedRefusers = 10000
	// refusalRecordBudget bounds the signin.refused records written as
	// refusals arrive, per tenant and refusalWindow, whatever the number
	// of addresses: one record per address a minute is still unbounded
	// for an attacker who rotates addresses (an IPv6 /48 holds 65,536
	// /64s). Refusals past it are counted, and flushRefusals writes the
	// count as one event per window.
	refusalRecordBudget = 20
)

// refusalLimiter is safe for concurrent use.
type refusalLimiter struct {
	burst  float64
	refill time.Duration
	window time.Duration
	max    int

	mu      sync.Mutex
	buckets lru[*refusalBucket]
	tallies lru[*refusalTally]

	// The tenant's record budget in the current window, and the
	// refusals left out of every record for want of it.
	budgetStart     time.Time
	budgetUsed      int
	overBudget      int
	overBudgetSince time.Time

	// unrecorded is signalled (without blocking; one pending signal is
	// enough) when a refusal is left out of a record: flushRefusals
	// sleeps on it, so a tenant nobody is refused at has no timer.
	unrecorded chan struct{}
}

type refusalBucket struct {
	tokens   float64
	refilled time.Time
}

// refusalTally is what a key has been refused since its last record.
type refusalTally struct {
	client, userID string
	lastRecord     time.Time // zero: never recorded
	pending        int       // refusals not yet in any record
	pendingSince   time.Time // the first of them
	lastReason     string
	protocol       string
}

// refusalVerdict is the limiter's decision about one refusal.
type refusalVerdict struct {
	limited    bool // answer 429
	retryAfter time.Duration
	// record asks the caller to write a signin.refused event now,
	// standing for count refusals since since (this one included).
	record bool
	count  int
	since  time.Time
}

func newRefusalLimiter() *refusalLimiter {
	return &refusalLimiter{
		burst: refusalBurst, refill: refusalRefill, window: refusalWindow, max: maxTrackedRefusers,
		buckets: newLRU[*refusalBucket](), tallies: newLRU[*refusalTally](),
		unrecorded: make(chan struct{}, 1),
	}
}

// signalUnrecorded wakes flushRefusals. l.mu is held.
func (l *refusalLimiter) signalUnrecorded() {
	select {
	case l.unrecorded <- struct{}{}:
	default:
	}
}

// hasUnrecorded says whether any refusal waits for a record: a key's
// pending count, or the tenant's over-budget count.
func (l *refusalLimiter) hasUnrecorded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.overBudget > 0 {
		return true
	}
	found := false
	l.tallies.each(func(t *refusalTally) bool {
		found = t.pending > 0
		return !found
	})
	return found
}

// refused records a refusal from client (a clientaddr key) at now; userID
// is the known user it names, or "".
func (l *refusalLimiter) refused(client, userID, protocol, reason string, now time.Time) refusalVerdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v refusalVerdict

	b := l.buckets.get(client, l.max, func() *refusalBucket { return &refusalBucket{tokens: l.burst, refilled: now} })
	if elapsed := now.Sub(b.refilled); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.refill))
		b.refilled = now
	}
	if b.tokens >= 1 {
		b.tokens--
	} else {
		v.limited = true
		v.retryAfter = time.Duration((1 - b.tokens) * float64(l.refill))
	}

	t := l.tallies.get(client+"\x00"+userID, l.max, func() *refusalTally { return &refusalTally{client: client, userID: userID} })
	if t.pending == 0 {
		t.pendingSince = now
	}
	t.pending++
	t.lastReason, t.protocol = reason, protocol
	if t.lastRecord.IsZero() || now.Sub(t.lastRecord) >= l.window || now.Before(t.lastRecord) {
		if !l.takeBudget(now) {
			// Counted in the tenant-wide tally instead of the key's, so
			// the key is not flushed one event each.
			t.pending--
			if l.overBudget == 0 {
				l.overBudgetSince = now
			}
			l.overBudget++
			l.signalUnrecorded()
			return v
		}
		v.record, v.count, v.since = true, t.pending, t.pendingSince
		t.lastRecord, t.pending = now, 0
		return v
	}
	l.signalUnrecorded()
	return v
}

// takeBudget spends one record of the tenant's window budget, if any is
// left. l.mu is held.
func (l *refusalLimiter) takeBudget(now time.Time) bool {
	if now.Sub(l.budgetStart) >= l.window || now.Before(l.budgetStart) {
		l.budgetStart, l.budgetUsed = now, 0
	}
	if l.budgetUsed >= refusalRecordBudget {
		return false
	}
	l.budgetUsed++
	return true
}

// takeOverBudget returns, and clears, the refusals no record holds for want
// of budget, and the time of the first.
func (l *refusalLimiter) takeOverBudget() (n int, since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, since = l.overBudget, l.overBudgetSince
	l.overBudget = 0
	return n, since
}

// dueTallies returns, and marks recorded, up to limit keys whose refusals
// went unrecorded for a whole window.
func (l *refusalLimiter) dueTallies(now time.Time, limit int) []refusalTally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []refusalTally
	l.tallies.each(func(t *refusalTally) bool {
		if t.pending > 0 && now.Sub(t.lastRecord) >= l.window {
			out = append(out, *t)
			t.lastRecord, t.pending = now, 0
		}
		return len(out) < limit
	})
	return out
}

// lru is a map bounded to its most recently used keys.
type lru[V any] struct {
	m     map[string]*list.Element
	order list.List // front: most recent
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any]() lru[V] { return lru[V]{m: map[string]*list.Element{}} }

// get returns key's value, made the most recent, creating it with fresh
// (and forgetting the least recent key past max) when absent.
func (c *lru[V]) get(key string, max int, fresh func() V) V {
	if e, ok := c.m[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val
	}
	for len(c.m) >= max {
		oldest := c.order.Back()
		delete(c.m, oldest.Value.(*lruEntry[V]).key)
		c.order.Remove(oldest)
	}
	v := fresh()
	c.m[key] = c.order.PushFront(&lruEntry[V]{key: key, val: v})
	return v
}

// each calls fn from the least recent key on, until fn returns false.
func (c *lru[V]) each(fn func(V) bool) {
	for e := c.order.Back(); e != nil; e = e.Prev() {
		if !fn(e.Value.(*lruEntry[V]).val) {
			return
		}
	}
}

func (c *lru[V]) len() int { return len(c.m) }
