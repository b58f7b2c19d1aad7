package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// sessionOf builds a session of userID whose id hash derives from n.
func sessionOf(userID string, n int) *storage.Session {
	now := time.Now().Truncate(time.Second)
	return &storage.Session{
		IDHash:    storage.HashSecret(fmt.Sprintf("session-%d", n)),
		UserID:    userID,
		Created:   now,
		LastSeen:  now,
		ExpiresAt: now.Add(8 * time.Hour),
		Protocol:  "oidc",
		// Sign-out fields round-trip too.
		IDTokenHint:  "hint",
		NameID:       "name-id",
		NameIDFormat: "format",
		SessionIndex: "idx",
		ClientAddr:   "192.0.2.7",
		UserAgent:    "Mozilla/5.0 (test)",
	}
}

func testSCIMToken(t *testing.T, h *harness) {
	get := func() (*storage.SCIMToken, error) {
		var tok *storage.SCIMToken
		err := h.s.View(t.Context(), tenant, func(tx storage.ReadTx) error {
			var err error
			tok, err = tx.GetSCIMToken()
			return err
		})
		return tok, err
	}
	_, err := get()
	wantErr(t, "GetSCIMToken before any", err, storage.ErrNotFound)

	for i := range 2 { // put, then replace (rotation)
		_, hash := storage.NewSecret()
		want := &storage.SCIMToken{ID: fmt.Sprintf("tok-%d", i), Hash: hash, Created: time.Now().Truncate(time.Second)}
		h.update(tenant, func(tx storage.Tx) error { return tx.PutSCIMToken(want) })
		got, err := get()
		wantErr(t, "GetSCIMToken", err, nil)
		if got.ID != want.ID || got.Hash != want.Hash || !got.Created.Equal(want.Created) {
			t.Fatalf("GetSCIMToken = %+v, want %+v", got, want)
		}
	}
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteSCIMToken() })
	_, err = get()
	wantErr(t, "GetSCIMToken after delete", err, storage.ErrNotFound)
	// Deleting when there is none is not an error.
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteSCIMToken() })
}

func testSessions(t *testing.T, h *harness) {
	seedDirectory(h)
	a1, a2, b1 := sessionOf("u1", 1), sessionOf("u1", 2), sessionOf("u2", 3)
	h.update(tenant, func(tx storage.Tx) error {
		return errors.Join(tx.PutSession(a1), tx.PutSession(a2), tx.PutSession(b1))
	})
	sessionHashes := func(ss []*storage.Session) [][32]byte {
		var out [][32]byte
		for _, s := range ss {
			out = append(out, s.IDHash)
		}
		slices.SortFunc(out, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
		return out
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		got, err := tx.GetSession(a1.IDHash)
		wantErr(t, "GetSession", err, nil)
		if got.UserID != "u1" || got.Protocol != "oidc" || got.IDTokenHint != "hint" || got.NameID != "name-id" ||
			got.NameIDFormat != "format" || got.SessionIndex != "idx" ||
			got.ClientAddr != "192.0.2.7" || got.UserAgent != "Mozilla/5.0 (test)" ||
			!got.ExpiresAt.Equal(a1.ExpiresAt) || !got.LastSeen.Equal(a1.LastSeen) || !got.Created.Equal(a1.Created) {
			t.Fatalf("GetSession = %+v, want %+v", got, a1)
		}
		_, err = tx.GetSession(storage.HashSecret("unknown"))
		wantErr(t, "GetSession of an unknown hash", err, storage.ErrNotFound)
		ss, err := tx.SessionsOf("u1")
		wantErr(t, "SessionsOf", err, nil)
		if got, want := sessionHashes(ss), sessionHashes([]*storage.Session{a1, a2}); !slices.Equal(got, want) {
			t.Fatalf("SessionsOf(u1) = %x, want %x", got, want)
		}
		return nil
	})

	// Replace (LastSeen bump) keeps one session.
	bumped := *a1
	bumped.LastSeen = bumped.LastSeen.Add(time.Minute)
	h.update(tenant, func(tx storage.Tx) error { return tx.PutSession(&bumped) })

	var n int
	h.update(tenant, func(tx storage.Tx) error {
		if err := tx.DeleteSession(b1.IDHash); err != nil {
			return err
		}
		if err := tx.DeleteSession(b1.IDHash); err != nil { // a no-op the second time
			return err
		}
		var err error
		n, err = tx.DeleteSessionsOf("u1")
		return err
	})
	if n != 2 {
		t.Fatalf("DeleteSessionsOf(u1) = %d, want 2", n)
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		for _, s := range []*storage.Session{a1, a2, b1} {
			_, err := tx.GetSession(s.IDHash)
			wantErr(t, "GetSession after delete", err, storage.ErrNotFound)
		}
		for _, u := range []string{"u1", "u2"} {
			if ss, err := tx.SessionsOf(u); err != nil || len(ss) != 0 {
				t.Fatalf("SessionsOf(%s) after delete = %d, %v; want none", u, len(ss), err)
			}
		}
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error {
		n, err := tx.DeleteSessionsOf("u1")
		if n != 0 {
			t.Errorf("DeleteSessionsOf with nothing left = %d, want 0", n)
		}
		return err
	})
}

func testRecords(t *testing.T, h *harness) {
	get := func(kind, key string) ([]byte, error) {
		var v []byte
		err := h.s.View(t.Context(), tenant, func(tx storage.ReadTx) error {
			var err error
			v, err = tx.GetRecord(kind, key)
			return err
		})
		return v, err
	}
	const short = 200 * time.Millisecond
	h.update(tenant, func(tx storage.Tx) error {
		return errors.Join(
			tx.PutRecord("saml-request", "r1", []byte("v1"), 0),
			tx.PutRecord("saml-request", "r2", []byte("v2"), -time.Second),
			tx.PutRecord("saml-request", "r3", []byte("v3"), time.Hour),
			tx.PutRecord("saml-request", "short", []byte("gone soon"), short),
			tx.PutRecord("replay", "r1", []byte("other kind"), 0),
			tx.PutRecord("sp-key", "empty", nil, 0),
		)
	})
	present := []struct{ kind, key, want string }{
		{"saml-request", "r1", "v1"},
		{"saml-request", "r2", "v2"}, // ttl <= 0: kept
		{"saml-request", "r3", "v3"},
		{"saml-request", "short", "gone soon"},
		{"replay", "r1", "other kind"}, // kinds are separate
		{"sp-key", "empty", ""},
	}
	for _, p := range present {
		v, err := get(p.kind, p.key)
		wantErr(t, "GetRecord("+p.kind+", "+p.key+")", err, nil)
		if string(v) != p.want {
			t.Fatalf("GetRecord(%s, %s) = %q, want %q", p.kind, p.key, v, p.want)
		}
	}
	_, err := get("saml-request", "missing")
	wantErr(t, "GetRecord of a missing key", err, storage.ErrNotFound)

	// Expiry is checked by waiting past the ttl, not by timing anything.
	time.Sleep(short + 50*time.Millisecond)
	_, err = get("saml-request", "short")
	wantErr(t, "GetRecord after its ttl", err, storage.ErrNotFound)
	for _, p := range present[:3] {
		if _, err := get(p.kind, p.key); err != nil {
			t.Fatalf("GetRecord(%s, %s) after another record expired: %v", p.kind, p.key, err)
		}
	}

	h.update(tenant, func(tx storage.Tx) error {
		return errors.Join(
			tx.PutRecord("saml-request", "r1", []byte("overwritten"), 0),
			tx.DeleteRecord("saml-request", "r3"),
			tx.DeleteRecord("saml-request", "never-there"),
		)
	})
	if v, err := get("saml-request", "r1"); err != nil || string(v) != "overwritten" {
		t.Fatalf("GetRecord after overwrite = %q, %v", v, err)
	}
	_, err = get("saml-request", "r3")
	wantErr(t, "GetRecord after delete", err, storage.ErrNotFound)
}

func eventsOf(t *testing.T, h *harness, tenant string, q storage.EventQuery) []storage.Event {
	t.Helper()
	var es []storage.Event
	h.view(tenant, func(tx storage.ReadTx) error {
		var err error
		es, err = tx.Events(q)
		return err
	})
	return es
}

func eventResources(es []storage.Event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ResourceID)
	}
	return out
}

func testEvents(t *testing.T, h *harness) {
	// Recent enough for the default retention (DefaultEventMaxAge).
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Minute)
	types := []string{storage.EventUserCreated, storage.EventGroupCreated, storage.EventMemberAdded}
	// e0..e9, one minute apart, appended out of time order in two
	// transactions; type cycles through types.
	order := []int{3, 0, 7, 1, 9, 2, 5, 8, 4, 6}
	for _, half := range [][]int{order[:5], order[5:]} {
		h.update(tenant, func(tx storage.Tx) error {
			for _, i := range half {
				err := tx.AppendEvent(storage.Event{
					Time: base.Add(time.Duration(i) * time.Minute), Type: types[i%3], Actor: "tok",
					ResourceType: "User", ResourceID: fmt.Sprintf("e%d", i), Before: "b", After: "a", Reason: "r",
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	all := eventsOf(t, h, tenant, storage.EventQuery{})
	if got, want := eventResources(all), []string{"e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"}; !slices.Equal(got, want) {
		t.Fatalf("Events() = %v, want newest first %v", got, want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID == "" || all[i].ID >= all[i-1].ID {
			t.Fatalf("event ids not set or not decreasing: %q then %q", all[i-1].ID, all[i].ID)
		}
	}
	if e := all[0]; e.Actor != "tok" || e.ResourceType != "User" || e.Before != "b" || e.After != "a" ||
		e.Reason != "r" || e.Type != types[0] || !e.Time.Equal(base.Add(9*time.Minute)) {
		t.Fatalf("event fields did not round-trip: %+v", e)
	}

	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	cases := []struct {
		name string
		q    storage.EventQuery
		want []string
	}{
		{"one type", storage.EventQuery{Types: []string{storage.EventUserCreated}}, []string{"e9", "e6", "e3", "e0"}},
		{"two types", storage.EventQuery{Types: []string{storage.EventGroupCreated, storage.EventMemberAdded}}, []string{"e8", "e7", "e5", "e4", "e2", "e1"}},
		{"unknown type", storage.EventQuery{Types: []string{"nope"}}, nil},
		{"since inclusive", storage.EventQuery{Since: at(7)}, []string{"e9", "e8", "e7"}},
		{"until exclusive", storage.EventQuery{Until: at(2)}, []string{"e1", "e0"}},
		{"window", storage.EventQuery{Since: at(3), Until: at(6)}, []string{"e5", "e4", "e3"}},
		{"window and type", storage.EventQuery{Since: at(3), Until: at(9), Types: []string{storage.EventUserCreated}}, []string{"e6", "e3"}},
		{"limit", storage.EventQuery{Limit: 3}, []string{"e9", "e8", "e7"}},
		{"before cursor", storage.EventQuery{Before: all[2].ID}, []string{"e6", "e5", "e4", "e3", "e2", "e1", "e0"}},
		{"before cursor and limit", storage.EventQuery{Before: all[2].ID, Limit: 2}, []string{"e6", "e5"}},
		{"before cursor and until", storage.EventQuery{Before: all[6].ID, Until: at(8)}, []string{"e2", "e1", "e0"}},
		{"before the oldest", storage.EventQuery{Before: all[9].ID}, nil},
		{"window in the future", storage.EventQuery{Since: at(60)}, nil},
	}
	for _, c := range cases {
		if got := eventResources(eventsOf(t, h, tenant, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%s: Events(%+v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}

	// Paging with Before visits every event once, newest first.
	var paged []string
	q := storage.EventQuery{Limit: 3}
	for range 10 {
		page := eventsOf(t, h, tenant, q)
		if len(page) == 0 {
			break
		}
		paged = append(paged, eventResources(page)...)
		q.Before = page[len(page)-1].ID
	}
	if want := eventResources(all); !slices.Equal(paged, want) {
		t.Fatalf("paged events = %v, want %v", paged, want)
	}

	// The store sets Time when it is zero.
	before := time.Now()
	h.update(tenant, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{Type: storage.EventSignIn, Actor: "u1", ResourceID: "now"})
	})
	latest := eventsOf(t, h, tenant, storage.EventQuery{Limit: 1})
	if len(latest) != 1 || latest[0].ResourceID != "now" || latest[0].Time.Before(before.Add(-time.Second)) {
		t.Fatalf("event with zero Time: %+v, want Time set to about now and listed first", latest)
	}
}

func testEventsLimit(t *testing.T, h *harness) {
	const n = 1005
	base := time.Now().Add(-time.Hour)
	h.update(tenant, func(tx storage.Tx) error {
		for i := range n {
			if err := tx.AppendEvent(storage.Event{Time: base.Add(time.Duration(i) * time.Millisecond), Type: storage.EventUserUpdated, ResourceID: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	cases := []struct {
		limit, want int
	}{
		{0, 100}, {-1, 100}, {1, 1}, {999, 999}, {1000, 1000}, {1001, 1000}, {1 << 30, 1000},
	}
	for _, c := range cases {
		es := eventsOf(t, h, tenant, storage.EventQuery{Limit: c.limit})
		if len(es) != c.want {
			t.Errorf("Events(Limit %d) gave %d events, want %d", c.limit, len(es), c.want)
		}
		if len(es) > 0 && es[0].ResourceID != fmt.Sprint(n-1) {
			t.Errorf("Events(Limit %d) starts at %s, want the newest %d", c.limit, es[0].ResourceID, n-1)
		}
	}
}

// testEventID: AppendEventID returns the id the event is listed under, and
// the id is the store's (one the caller set is replaced).
func testEventID(t *testing.T, h *harness) {
	const tenant = "acme"
	var first, second string
	h.update(tenant, func(tx storage.Tx) error {
		var err error
		if first, err = tx.AppendEventID(storage.Event{Type: storage.EventAccessDenied, Actor: "u1", ResourceID: "a"}); err != nil {
			return err
		}
		second, err = tx.AppendEventID(storage.Event{ID: "caller-chosen", Type: storage.EventAccessDenied, Actor: "u1", ResourceID: "b"})
		return err
	})
	if first == "" || second == "" || first == second || second == "caller-chosen" {
		t.Fatalf("AppendEventID returned %q and %q, want two distinct store-made ids", first, second)
	}
	got := map[string]string{}
	for _, e := range eventsOf(t, h, tenant, storage.EventQuery{}) {
		got[e.ResourceID] = e.ID
	}
	if got["a"] != first || got["b"] != second {
		t.Fatalf("events listed with ids %v, want a=%s b=%s", got, first, second)
	}
}
