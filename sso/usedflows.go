package sso

import (
	"crypto/sha256"
	"sync"
	"time"
)

// usedFlows remembers the ids of consumed sign-in flows until they expire,
// so that a flow cookie and its state or RelayState are accepted once.
// It lives in memory only: no store write per sign-in.
//
// Forgetting (a restart, another replica, or eviction when the set is full)
// lets a captured flow cookie be presented again, which gains nothing:
//   - OIDC: the flow only carries the nonce and PKCE verifier; the IdP's
//     authorization code is single-use and bound to the verifier, so a
//     replayed callback fails at the token endpoint;
//   - SAML: a replayed response still meets the assertion replay cache,
//     which is kept in the store (storeReplayCache) for every assertion that
//     was accepted, so a valid assertion is never accepted twice.
//
// Eviction is oldest first: every flow has the same lifetime, so the oldest
// entry is also the next to expire.
type usedFlows struct {
	max int

	mu    sync.Mutex
	ids   map[[16]byte]time.Time // id digest → the flow's expiry
	order [][16]byte             // ids in consumption order (a queue)
	head  int                    // order[head:] are live
}

// maxUsedFlows bounds the set (about 100 bytes an entry, ~10 MB): more
// sign-ins than this finishing within one flow lifetime is far beyond any
// tenant's real traffic.
const maxUsedFlows = 100_000

func newUsedFlows(max int) *usedFlows {
	return &usedFlows{max: max, ids: map[[16]byte]time.Time{}}
}

// consume marks id used until expires and reports whether it was unused.
func (u *usedFlows) consume(id string, expires, now time.Time) bool {
	sum := sha256.Sum256([]byte(id))
	var key [16]byte
	copy(key[:], sum[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expire(now)
	if _, seen := u.ids[key]; seen {
		return false
	}
	for len(u.ids) >= u.max {
		u.dropOldest()
	}
	u.ids[key] = expires
	u.order = append(u.order, key)
	return true
}

// expire forgets the ids whose flows have expired.
func (u *usedFlows) expire(now time.Time) {
	for u.head < len(u.order) {
		exp, ok := u.ids[u.order[u.head]]
		if ok && now.Before(exp) {
			break
		}
		u.dropOldest()
	}
}

func (u *usedFlows) dropOldest() {
	if u.head >= len(u.order) {
		return
	}
	delete(u.ids, u.order[u.head])
	u.order[u.head] = [16]byte{}
	u.head++
	// Reclaim the queue's spent front once it is half the slice.
	if u.head > 1024 && u.head*2 > len(u.order) {
		u.order = append(u.order[:0:0], u.order[u.head:]...)
		u.head = 0
	}
}

// size is how many ids the set holds.
func (u *usedFlows) size() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.ids)
}
