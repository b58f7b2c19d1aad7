package authz

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// feedLag is a change feed as a shared store reports it: how far behind
// this process's generations may be. The store itself is real (Badger).
type feedLag struct{ behind atomic.Int64 }

func (f *feedLag) ChangesBehind() time.Duration { return time.Duration(f.behind.Load()) }

// TestCacheTrustsAFeedWithinStaleIfError: with a store whose change feed
// can fall behind, a cached identity is served from the cache only while
// the feed is within StaleIfError; past it every request goes to the store
// (which here answers, so the caller still gets in, read afresh).
func TestCacheTrustsAFeedWithinStaleIfError(t *testing.T) {
	const window = 30 * time.Second
	tests := []struct {
		name   string
		behind time.Duration
		want   map[string]int
	}{
		{name: "listening", behind: 0, want: map[string]int{"hit": 1}},
		{name: "polling, within the window", behind: 2 * time.Second, want: map[string]int{"hit": 1}},
		{name: "at the window", behind: window, want: map[string]int{"hit": 1}},
		{name: "past the window: read the store", behind: window + time.Millisecond, want: map[string]int{"load": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			obs := newCountingObserver()
			feed := &feedLag{}
			ids, err := NewIdentities(IdentitiesConfig{Tenant: testTenant, Store: f.store, Sessions: f.sessions,
				Roles: threeRoles(), Logger: f.logger, Now: f.clock.Now, Observer: obs,
				StaleIfError: window, Freshness: feed})
			if err != nil {
				t.Fatal(err)
			}
			srv := serve(t, f.gate(ids, GateConfig{Policy: Policy{Require: "viewer"}}), &upstream{})
			cookie := f.signIn(f.user("alice"))
			if res := get(t, srv, "/x", asAPI, withCookie(cookie)); res.status != http.StatusOK {
				t.Fatalf("first request: %d", res.status)
			}
			obs.take()
			feed.behind.Store(int64(tc.behind))
			if res := get(t, srv, "/x", asAPI, withCookie(cookie)); res.status != http.StatusOK {
				t.Fatalf("second request: %d", res.status)
			}
			if got := obs.take(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("cache %v, want %v", got, tc.want)
			}
		})
	}
}
