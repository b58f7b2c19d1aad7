package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// testEventRetentionAge: an event older than the tenant's MaxAge is never
// returned, whatever the query; a tenant with no retention set keeps
// DefaultEventMaxAge.
func testEventRetentionAge(t *testing.T, h *harness) {
	if err := h.s.SetEventRetention(tenant, storage.EventRetention{MaxAge: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	appendAt := func(ten string, ats map[string]time.Time) {
		h.update(ten, func(tx storage.Tx) error {
			for id, at := range ats {
				if err := tx.AppendEvent(storage.Event{Time: at, Type: storage.EventUserUpdated, ResourceID: id}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	appendAt(tenant, map[string]time.Time{"old": now.Add(-48 * time.Hour), "recent": now.Add(-2 * time.Hour), "new": now})
	appendAt("default", map[string]time.Time{
		"too old": now.Add(-storage.DefaultEventMaxAge - time.Hour),
		"kept":    now.Add(-storage.DefaultEventMaxAge + time.Hour),
	})
	cases := []struct {
		tenant string
		q      storage.EventQuery
		want   []string
	}{
		{tenant, storage.EventQuery{}, []string{"new", "recent"}},
		{tenant, storage.EventQuery{Since: now.Add(-72 * time.Hour)}, []string{"new", "recent"}},
		{tenant, storage.EventQuery{Until: now.Add(-time.Hour)}, []string{"recent"}},
		{tenant, storage.EventQuery{Since: now.Add(-72 * time.Hour), Until: now.Add(-24*time.Hour - time.Minute)}, nil},
		{"default", storage.EventQuery{}, []string{"kept"}},
	}
	for _, c := range cases {
		if got := eventResources(eventsOf(t, h, c.tenant, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%s: Events(%+v) = %v, want %v", c.tenant, c.q, got, c.want)
		}
	}
}

// testEventRetentionCap: once an Update that appended events returns, the
// tenant holds at most MaxEvents events, the newest; lowering the cap
// applies at once.
func testEventRetentionCap(t *testing.T, h *harness) {
	const limit = 10
	if err := h.s.SetEventRetention(tenant, storage.EventRetention{MaxEvents: limit}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	next := 0
	appendN := func(n int) {
		h.update(tenant, func(tx storage.Tx) error {
			for i := next; i < next+n; i++ {
				err := tx.AppendEvent(storage.Event{Time: base.Add(time.Duration(i) * time.Second),
					Type: storage.EventUserUpdated, ResourceID: fmt.Sprint(i)})
				if err != nil {
					return err
				}
			}
			return nil
		})
		next += n
	}
	newest := func(n int) []string {
		var out []string
		for i := next - 1; i >= max(0, next-n); i-- {
			out = append(out, fmt.Sprint(i))
		}
		return out
	}
	check := func(step string, atMost int) {
		t.Helper()
		got := eventResources(eventsOf(t, h, tenant, storage.EventQuery{Limit: 1000}))
		if len(got) > atMost || len(got) == 0 || !slices.Equal(got, newest(len(got))) {
			t.Fatalf("%s: events %v, want at most %d, the newest", step, got, atMost)
		}
	}
	for i := range 25 { // one at a time, past the cap
		appendN(1)
		check(fmt.Sprintf("after append %d", i), limit)
	}
	appendN(3 * limit) // more than the cap in one Update
	check("after a large append", limit)
	if got := eventsOf(t, h, tenant, storage.EventQuery{Limit: 1000}); len(got) < limit/2 {
		t.Fatalf("the cap of %d kept only %d events", limit, len(got))
	}

	// Lowering the cap applies before SetEventRetention returns; other
	// tenants keep theirs.
	h.update("other", func(tx storage.Tx) error {
		for range 2 * limit {
			if err := tx.AppendEvent(storage.Event{Type: storage.EventSignIn}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := h.s.SetEventRetention(tenant, storage.EventRetention{MaxEvents: 3}); err != nil {
		t.Fatal(err)
	}
	check("after lowering the cap", 3)
	if got := eventsOf(t, h, "other", storage.EventQuery{Limit: 1000}); len(got) != 2*limit {
		t.Fatalf("another tenant has %d events, want %d", len(got), 2*limit)
	}
}
