package scimhandler

import (
	"container/list"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/clientaddr"
)

// Failed bearer-token attempts are limited per client address. Each address
// has a token bucket of failures: a burst of failureBurst, refilled one per
// failureRefill. A request whose token is wrong or missing spends one;
// once the bucket is empty such requests are answered 429 with Retry-After
// instead of 401.
//
// A correct token is checked first and always served, whatever its
// address's bucket holds: the IdP may share its address with an attacker
// (a NAT, or the proxy in front of Caddy when trusted proxies are not
// configured), and an attacker must never be able to lock the IdP out.
// So the limit does not make one guess less likely to succeed (256-bit
// tokens do that); it bounds the failed requests one address gets through
// to the audit and the logs, tells well-behaved clients to back off, and
// makes guessing visible in the audit log.
const (
	failureBurst  = 10
	failureRefill = 6 * time.Second
	// failureWindow is the window the audit's per-address count covers,
	// and the shortest interval between two token.rejected records.
	failureWindow = time.Minute
	// maxTrackedClients bounds the limiter's memory (~200 bytes an
	// address): past it the least recently failing address is forgotten.
	maxTrackedClients = 10000
)

// failureLimiter counts failed attempts per client address and decides
// which failures the audit log records. It is safe for concurrent use.
type failureLimiter struct {
	burst  float64
	refill time.Duration
	max    int

	mu      sync.Mutex
	clients map[string]*list.Element // key → element holding *clientFailures
	recent  list.List                // front: the address that failed last

	// Since the last recorded token.rejected event:
	lastReport        time.Time
	epoch             uint64 // incremented at each report
	unreported        int    // failed attempts not recorded
	unreportedLimited int    // of those, answered 429
	unreportedClients int    // distinct addresses they came from
}

// clientFailures is one address's bucket and window count.
type clientFailures struct {
	key         string
	tokens      float64   // failures the address may still make
	refilled    time.Time // when tokens was last brought up to date
	windowStart time.Time
	inWindow    int    // failures since windowStart
	epoch       uint64 // the report epoch of its last failure
}

// failureVerdict is what the limiter decided about one failed attempt.
type failureVerdict struct {
	client     string // the address as counted (IPv6 cut to its /64)
	retired    bool   // a retired token, not a guess (never limited)
	limited    bool   // answer 429
	retryAfter time.Duration
	inWindow   int // failures from the address within failureWindow, this one included
	// report, when true, asks the caller to record a token.rejected
	// event now; the unreported counts then cover the attempts since the
	// previous record (this one excluded).
	report            bool
	unreported        int
	unreportedLimited int
	unreportedClients int
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{
		burst:   failureBurst,
		refill:  failureRefill,
		max:     maxTrackedClients,
		clients: map[string]*list.Element{},
	}
}

// failure records a failed attempt from addr at now.
func (l *failureLimiter) failure(addr string, now time.Time) failureVerdict {
	key := clientaddr.Key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()

	c := l.touch(key, now)
	// Refill the bucket for the time since it was last brought up to date.
	if elapsed := now.Sub(c.refilled); elapsed > 0 {
		c.tokens += float64(elapsed) / float64(l.refill)
		if c.tokens > l.burst {
			c.tokens = l.burst
		}
		c.refilled = now
	}
	if now.Sub(c.windowStart) >= failureWindow || now.Before(c.windowStart) {
		c.windowStart, c.inWindow = now, 0
	}
	c.inWindow++
	v := failureVerdict{client: key, inWindow: c.inWindow}
	if c.tokens >= 1 {
		c.tokens--
	} else {
		v.limited = true
		v.retryAfter = time.Duration((1 - c.tokens) * float64(l.refill))
	}

	l.tally(c, &v, now)
	return v
}

// retiredAttempt records a request bearing a retired token from addr at
// now. Such a token was issued, so it is no guess: it spends nothing from
// the address's bucket and is never limited, but it is reported (or
// counted as unreported) like any failure.
func (l *failureLimiter) retiredAttempt(addr string, now time.Time) failureVerdict {
	key := clientaddr.Key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.touch(key, now)
	v := failureVerdict{client: key, retired: true, inWindow: c.inWindow}
	l.tally(c, &v, now)
	return v
}

// tally decides whether v is recorded now or counted into the next record.
func (l *failureLimiter) tally(c *clientFailures, v *failureVerdict, now time.Time) {
	if l.lastReport.IsZero() || now.Sub(l.lastReport) >= failureWindow || now.Before(l.lastReport) {
		v.report = true
		v.unreported, v.unreportedLimited, v.unreportedClients = l.unreported, l.unreportedLimited, l.unreportedClients
		l.lastReport = now
		l.epoch++
		l.unreported, l.unreportedLimited, l.unreportedClients = 0, 0, 0
		return
	}
	l.unreported++
	if v.limited {
		l.unreportedLimited++
	}
	if c.epoch != l.epoch {
		c.epoch = l.epoch
		l.unreportedClients++
	}
}

// touch finds or creates key's record and marks it the most recent,
// forgetting the least recent address when the limiter is full.
func (l *failureLimiter) touch(key string, now time.Time) *clientFailures {
	if e, ok := l.clients[key]; ok {
		l.recent.MoveToFront(e)
		return e.Value.(*clientFailures)
	}
	for len(l.clients) >= l.max {
		oldest := l.recent.Back()
		delete(l.clients, oldest.Value.(*clientFailures).key)
		l.recent.Remove(oldest)
	}
	// epoch 0 never equals l.epoch once a report was made, so the
	// address counts as new in the unreported tally.
	c := &clientFailures{key: key, tokens: l.burst, refilled: now, windowStart: now}
	l.clients[key] = l.recent.PushFront(c)
	return c
}

// tracked is how many addresses the limiter remembers.
func (l *failureLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
