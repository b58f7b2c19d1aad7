package authz

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// countingObserver counts what Identities and gates report.
type countingObserver struct {
	mu        sync.Mutex
	counts    map[string]int
	refused   []string
	liveEnded []string
}

func newCountingObserver() *countingObserver {
	return &countingObserver{counts: map[string]int{}}
}

func (o *countingObserver) add(what string) {
	o.mu.Lock()
	o.counts[what]++
	o.mu.Unlock()
}

func (o *countingObserver) CacheHit()  { o.add("hit") }
func (o *countingObserver) CacheLoad() { o.add("load") }
func (o *countingObserver) SessionRefused(userID string) {
	o.mu.Lock()
	o.refused = append(o.refused, userID)
	o.mu.Unlock()
}
func (o *countingObserver) LiveRequestEnded(userID string) {
	o.mu.Lock()
	o.liveEnded = append(o.liveEnded, userID)
	o.mu.Unlock()
}

// take returns and clears the counts.
func (o *countingObserver) take() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.counts
	o.counts = map[string]int{}
	return c
}

func TestObserveDecisionsAndCache(t *testing.T) {
	f := newFixture(t)
	obs := newCountingObserver()
	ids, err := NewIdentities(IdentitiesConfig{Tenant: testTenant, Store: f.store, Sessions: f.sessions,
		Roles: threeRoles(GroupMapping{Group: "Admins", Role: "admin"}), Logger: f.logger, Now: f.clock.Now, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	var decisions [DecisionCount]int
	var mu sync.Mutex
	g := f.gate(ids, GateConfig{Policy: Policy{Require: "admin"}, ObserveDecision: func(d Decision) {
		mu.Lock()
		decisions[d]++
		mu.Unlock()
	}})
	srv := serve(t, g, &upstream{})

	admins := f.group("Admins", "")
	alice, bob := f.user("alice"), f.user("bob")
	f.join(alice, admins)
	aliceCookie, bobCookie := f.signIn(alice), f.signIn(bob)

	steps := []struct {
		name     string
		path     string
		opts     []reqOpt
		status   int
		decision Decision
		cache    map[string]int
	}{
		{"anonymous", "/x", nil, http.StatusUnauthorized, DecisionUnauthenticated, map[string]int{}},
		{"first request loads", "/x", []reqOpt{withCookie(aliceCookie)}, http.StatusOK, DecisionAllowed, map[string]int{"load": 1}},
		{"second is a hit", "/x", []reqOpt{withCookie(aliceCookie)}, http.StatusOK, DecisionAllowed, map[string]int{"hit": 1}},
		{"below the role", "/x", []reqOpt{withCookie(bobCookie)}, http.StatusForbidden, DecisionDenied, map[string]int{"load": 1}},
		{"ambiguous path", "/x;y", []reqOpt{withCookie(aliceCookie)}, http.StatusBadRequest, DecisionBadRequest, map[string]int{}},
	}
	for _, s := range steps {
		mu.Lock()
		decisions = [DecisionCount]int{}
		mu.Unlock()
		res := get(t, srv, s.path, append([]reqOpt{asAPI}, s.opts...)...)
		if res.status != s.status {
			t.Fatalf("%s: status %d, want %d", s.name, res.status, s.status)
		}
		mu.Lock()
		want := [DecisionCount]int{}
		want[s.decision] = 1
		if decisions != want {
			t.Errorf("%s: decisions %v, want %v", s.name, decisions, want)
		}
		mu.Unlock()
		if got := obs.take(); fmt.Sprint(got) != fmt.Sprint(s.cache) {
			t.Errorf("%s: cache %v, want %v", s.name, got, s.cache)
		}
	}

	// Alice is deactivated and her sessions end (as SCIM does): her next
	// request is refused, and the cache says it was hers.
	f.update(func(tx storage.Tx) error {
		u, err := tx.GetUser(alice.ID)
		if err != nil {
			return err
		}
		u.Active = false
		if err := tx.PutUser(u); err != nil {
			return err
		}
		_, err = tx.DeleteSessionsOf(alice.ID)
		return err
	})
	if res := get(t, srv, "/x", asAPI, withCookie(aliceCookie)); res.status != http.StatusUnauthorized {
		t.Fatalf("after deactivation: %d", res.status)
	}
	obs.mu.Lock()
	refused := fmt.Sprint(obs.refused)
	obs.mu.Unlock()
	if refused != fmt.Sprint([]string{alice.ID}) {
		t.Errorf("refused sessions %s, want alice's", refused)
	}
}

func TestObserveLiveRequestEnded(t *testing.T) {
	f := newFixture(t)
	obs := newCountingObserver()
	ids, err := NewIdentities(IdentitiesConfig{Tenant: testTenant, Store: f.store, Sessions: f.sessions,
		Roles: threeRoles(), Logger: f.logger, Now: f.clock.Now, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, f.gate(ids, GateConfig{}), ticker)
	alice := f.user("alice")
	stream := openStream(t, srv, f.signIn(alice), false)
	f.update(func(tx storage.Tx) error {
		_, err := tx.DeleteSessionsOf(alice.ID)
		return err
	})
	waitEnd(t, stream, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs.mu.Lock()
		ended := fmt.Sprint(obs.liveEnded)
		obs.mu.Unlock()
		if ended == fmt.Sprint([]string{alice.ID}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live requests ended %s, want alice's", ended)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
