package caddymodule

import (
	"sync"
	"time"
)

// revocationClock measures, for the deprovision_to_session_end_seconds
// histogram, how long it takes from a SCIM write that deactivated or
// deleted a user to the gateway ending that user's access. The SCIM
// handler starts a user's clock when the write commits; the identity
// cache or the live-request watcher stops it the first time it ends one
// of the user's requests. Each deprovisioning is measured once.
//
// The clocks live in this process only: a write on one replica and the
// refusal on another are not measured, nor a user who never comes back
// (the clock is dropped after revocationClockTTL). User ids are keys here
// and never labels.
type revocationClock struct {
	mu      sync.Mutex
	started map[revocationKey]time.Time
}

type revocationKey struct{ tenant, userID string }

const (
	// revocationClockTTL drops clocks nothing stopped: past the longest
	// session a gateway keeps by default, the user has no session left to
	// be refused.
	revocationClockTTL = 24 * time.Hour
	// maxRevocationClocks bounds the memory a mass deprovisioning takes
	// (about 100 bytes a clock).
	maxRevocationClocks = 100000
)

func newRevocationClock() *revocationClock {
	return &revocationClock{started: make(map[revocationKey]time.Time)}
}

// start starts the user's clock at the commit time. A clock already
// running keeps its start: the first deprovisioning is the one that
// ended the sessions.
func (c *revocationClock) start(tenant, userID string, at time.Time) {
	k := revocationKey{tenant, userID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.started[k]; ok {
		return
	}
	if len(c.started) >= maxRevocationClocks {
		c.dropStale(at)
	}
	if len(c.started) >= maxRevocationClocks {
		return // full of fresh clocks: this one goes unmeasured
	}
	c.started[k] = at
}

// stop stops the user's clock and says how long it ran; ok is false when
// none runs for the user (the usual case: a sign-out or an expiry).
func (c *revocationClock) stop(tenant, userID string, now time.Time) (time.Duration, bool) {
	k := revocationKey{tenant, userID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.started) == 0 {
		return 0, false
	}
	at, ok := c.started[k]
	if !ok {
		return 0, false
	}
	delete(c.started, k)
	if now.Sub(at) > revocationClockTTL {
		return 0, false
	}
	return max(now.Sub(at), 0), true
}

// dropStale removes the clocks older than revocationClockTTL.
func (c *revocationClock) dropStale(now time.Time) {
	for k, at := range c.started {
		if now.Sub(at) > revocationClockTTL {
			delete(c.started, k)
		}
	}
}

// running is the number of clocks running for tenant, for tests (other
// tests of the process count under their own tenants).
func (c *revocationClock) running(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.started {
		if k.tenant == tenant {
			n++
		}
	}
	return n
}
