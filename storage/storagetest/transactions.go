package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// fillTenant writes one of every kind of data into the tenant.
func fillTenant(h *harness, tenant string) {
	h.update(tenant, func(tx storage.Tx) error {
		_, tokHash := storage.NewSecret()
		// Before the group exists, AddMember is refused.
		if _, err := tx.AddMember("g1", user("u1")); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("AddMember to a missing group: %v, want ErrNotFound", err)
		}
		err := errors.Join(
			tx.PutUser(&storage.User{ID: "u1", UserName: "Shared", ExternalID: "ext", Emails: []string{"shared@example.com"}}),
			tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "Team", ExternalID: "gext"}),
			tx.PutSCIMToken(&storage.SCIMToken{ID: "tok-" + tenant, Hash: tokHash, Created: time.Now()}),
			tx.PutSession(sessionOf("u1", 1)),
			tx.PutRecord("kind", "key", []byte(tenant), 0),
			tx.PutMapping(storage.Mapping{Group: "Team", Role: tenant}),
			tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, ResourceID: "u1"}),
		)
		if err != nil {
			return err
		}
		_, err = tx.AddMember("g1", user("u1"))
		return err
	})
}

// checkEmpty fails if the tenant sees any data.
func checkEmpty(t *testing.T, h *harness, tenant string) {
	t.Helper()
	h.view(tenant, func(tx storage.ReadTx) error {
		notFound := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("tenant %q: %s = %v, want ErrNotFound", tenant, what, err)
			}
		}
		empty := func(what string, n int, err error) {
			t.Helper()
			if err != nil || n != 0 {
				t.Errorf("tenant %q: %s = %d, %v; want 0", tenant, what, n, err)
			}
		}
		_, err := tx.GetUser("u1")
		notFound("GetUser", err)
		_, err = tx.UserByUserName("shared")
		notFound("UserByUserName", err)
		us, err := tx.UsersByExternalID("ext")
		empty("UsersByExternalID", len(us), err)
		us, err = tx.UsersByEmail("shared@example.com")
		empty("UsersByEmail", len(us), err)
		n := 0
		err = tx.ScanUsers("", func(*storage.User) (bool, error) { n++; return true, nil })
		empty("ScanUsers", n, err)
		n, err = tx.CountUsers()
		empty("CountUsers", n, err)

		_, err = tx.GetGroup("g1")
		notFound("GetGroup", err)
		gs, err := tx.GroupsByDisplayName("team")
		empty("GroupsByDisplayName", len(gs), err)
		gs, err = tx.GroupsByExternalID("gext")
		empty("GroupsByExternalID", len(gs), err)
		n = 0
		err = tx.ScanGroups("", func(*storage.Group) (bool, error) { n++; return true, nil })
		empty("ScanGroups", n, err)
		n, err = tx.CountGroups()
		empty("CountGroups", n, err)

		n = 0
		err = tx.Members("g1", func(storage.Member) (bool, error) { n++; return true, nil })
		empty("Members", n, err)
		n, err = tx.CountMembers("g1")
		empty("CountMembers", n, err)
		ok, err := tx.IsMember("g1", "u1")
		if err != nil || ok {
			t.Errorf("tenant %q: IsMember = %v, %v; want false", tenant, ok, err)
		}
		ids, err := tx.GroupsOf("u1")
		empty("GroupsOf", len(ids), err)

		_, err = tx.GetSCIMToken()
		notFound("GetSCIMToken", err)
		_, err = tx.GetSession(sessionOf("u1", 1).IDHash)
		notFound("GetSession", err)
		ss, err := tx.SessionsOf("u1")
		empty("SessionsOf", len(ss), err)
		_, err = tx.GetRecord("kind", "key")
		notFound("GetRecord", err)
		es, err := tx.Events(storage.EventQuery{})
		empty("Events", len(es), err)
		ms, err := tx.StoredMappings()
		empty("StoredMappings", len(ms), err)
		return nil
	})
}

func testTenantIsolation(t *testing.T, h *harness) {
	// Names chosen so that naive "tenant:" or "tenant/" prefixes collide.
	tenants := []string{"a", "a:b", "a:", "a/b", "b", "A", strings.Repeat("t", 200)}
	fillTenant(h, "a")
	for _, other := range tenants[1:] {
		checkEmpty(t, h, other)
	}
	// Every tenant can hold the same ids and userName independently.
	fillTenant(h, "a:b")
	h.update("a:b", func(tx storage.Tx) error { return tx.DeleteUser("u1") })
	h.view("a", func(tx storage.ReadTx) error {
		u, err := tx.UserByUserName("SHARED")
		if err != nil || u.ID != "u1" {
			t.Fatalf("tenant a lost its user when tenant a:b deleted its own: %v", err)
		}
		ids, err := tx.GroupsOf("u1")
		if err != nil || len(ids) != 1 {
			t.Fatalf("tenant a's memberships = %v, %v; want [g1]", ids, err)
		}
		if ss, err := tx.SessionsOf("u1"); err != nil || len(ss) != 1 {
			t.Fatalf("tenant a's sessions = %d, %v; want 1", len(ss), err)
		}
		if v, err := tx.GetRecord("kind", "key"); err != nil || string(v) != "a" {
			t.Fatalf("tenant a's record = %q, %v", v, err)
		}
		tok, err := tx.GetSCIMToken()
		if err != nil || tok.ID != "tok-a" {
			t.Fatalf("tenant a's token = %+v, %v", tok, err)
		}
		if ms, err := tx.StoredMappings(); err != nil || len(ms) != 1 || ms[0].Role != "a" {
			t.Fatalf("tenant a's mappings = %+v, %v; want its own one", ms, err)
		}
		return nil
	})
	// Clearing one tenant leaves the other whole.
	h.update("a:b", func(tx storage.Tx) error {
		_, err := tx.DeleteMapping("Team")
		return errors.Join(err, tx.DeleteGroup("g1"), tx.DeleteSCIMToken(), tx.DeleteRecord("kind", "key"))
	})
	h.view("a", func(tx storage.ReadTx) error {
		if n, err := tx.CountMembers("g1"); err != nil || n != 1 {
			t.Fatalf("tenant a's members after a:b cleared = %d, %v", n, err)
		}
		return nil
	})
}

func testAbort(t *testing.T, h *harness) {
	seedDirectory(h)
	gen := h.s.Generation(tenant)
	errAbort := errors.New("abort on purpose")
	err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
		_, hash := storage.NewSecret()
		if err := errors.Join(
			tx.PutUser(&storage.User{ID: "new", UserName: "new", Emails: []string{"new@example.com"}}),
			tx.PutUser(&storage.User{ID: "u1", UserName: "renamed"}),
			tx.DeleteUser("u2"),
			tx.PutGroup(&storage.Group{ID: "g9", DisplayName: "new group"}),
			tx.DeleteGroup("g2"),
			tx.PutSCIMToken(&storage.SCIMToken{ID: "t", Hash: hash}),
			tx.PutSession(sessionOf("u1", 1)),
			tx.PutRecord("k", "k", []byte("v"), 0),
			tx.AppendEvent(storage.Event{Type: storage.EventUserCreated}),
		); err != nil {
			return err
		}
		if _, err := tx.AddMember("g1", user("u1")); err != nil {
			return err
		}
		// The transaction sees its own writes before it aborts.
		if u, err := tx.UserByUserName("NEW"); err != nil || u.ID != "new" {
			return fmt.Errorf("own write not visible: %v", err)
		}
		return fmt.Errorf("wrapped: %w", errAbort)
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update returned %v, want the fn's error", err)
	}
	if g := h.s.Generation(tenant); g != gen {
		t.Fatalf("Generation moved from %d to %d after an aborted Update", gen, g)
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		if _, err := tx.GetUser("new"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("aborted create is visible: %v", err)
		}
		if us, _ := tx.UsersByEmail("new@example.com"); len(us) != 0 {
			t.Error("aborted email index entry is visible")
		}
		if u, err := tx.UserByUserName("u1"); err != nil || u.Version != 1 {
			t.Errorf("aborted rename is visible: %+v, %v", u, err)
		}
		if _, err := tx.GetUser("u2"); err != nil {
			t.Errorf("aborted delete of u2 is visible: %v", err)
		}
		if _, err := tx.GetGroup("g9"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("aborted group create is visible: %v", err)
		}
		if _, err := tx.GetGroup("g2"); err != nil {
			t.Errorf("aborted group delete is visible: %v", err)
		}
		if ok, _ := tx.IsMember("g1", "u1"); ok {
			t.Error("aborted AddMember is visible")
		}
		if _, err := tx.GetSCIMToken(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("aborted token is visible: %v", err)
		}
		if _, err := tx.GetSession(sessionOf("u1", 1).IDHash); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("aborted session is visible: %v", err)
		}
		if _, err := tx.GetRecord("k", "k"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("aborted record is visible: %v", err)
		}
		if es, _ := tx.Events(storage.EventQuery{}); len(es) != 0 {
			t.Errorf("aborted event is visible: %v", es)
		}
		return nil
	})

	// A View's fn error comes back as is too.
	err = h.s.View(t.Context(), tenant, func(storage.ReadTx) error { return errAbort })
	wantErr(t, "View with fn error", err, errAbort)
}

func testCancelledContext(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.s.Update(ctx, tenant, func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "u1", UserName: "u1"})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := h.getUser(tenant, "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Update with a cancelled context wrote: %v", err)
	}
}

// testGeneration: the store, not the caller, decides from what a
// transaction wrote whether caches are stale. Each write kind is committed
// alone, in order, on one store seeded by seedDirectory plus a session of
// u1 and u2 and a SCIM token, and must bump Generation or leave it.
func testGeneration(t *testing.T, h *harness) {
	seedDirectory(h)
	_, hash := storage.NewSecret()
	h.update(tenant, func(tx storage.Tx) error {
		_, err := tx.AddMember("g1", user("u2"))
		return errors.Join(err, tx.PutSession(sessionOf("u1", 1)), tx.PutSession(sessionOf("u2", 2)),
			tx.PutSCIMToken(&storage.SCIMToken{ID: "tok", Hash: hash}))
	})
	touched := sessionOf("u1", 1)
	touched.LastSeen = touched.LastSeen.Add(time.Minute)
	cases := []struct {
		name  string
		write func(tx storage.Tx) error
		bumps bool
	}{
		{"PutUser create", func(tx storage.Tx) error { return tx.PutUser(&storage.User{ID: "u9", UserName: "u9"}) }, true},
		{"PutUser replace", func(tx storage.Tx) error { return tx.PutUser(&storage.User{ID: "u9", UserName: "u9-renamed"}) }, true},
		{"DeleteUser", func(tx storage.Tx) error { return tx.DeleteUser("u9") }, true},
		{"PutGroup create", func(tx storage.Tx) error { return tx.PutGroup(&storage.Group{ID: "g9", DisplayName: "g9"}) }, true},
		{"PutGroup replace", func(tx storage.Tx) error { return tx.PutGroup(&storage.Group{ID: "g9", DisplayName: "nine"}) }, true},
		{"DeleteGroup", func(tx storage.Tx) error { return tx.DeleteGroup("g9") }, true},
		{"AddMember new", func(tx storage.Tx) error { _, err := tx.AddMember("g1", user("u1")); return err }, true},
		{"AddMember already there", func(tx storage.Tx) error { _, err := tx.AddMember("g1", user("u1")); return err }, false},
		{"RemoveMember there", func(tx storage.Tx) error { _, err := tx.RemoveMember("g1", "u1"); return err }, true},
		{"RemoveMember not there", func(tx storage.Tx) error { _, err := tx.RemoveMember("g1", "u1"); return err }, false},
		{"PutSCIMToken", func(tx storage.Tx) error { return tx.PutSCIMToken(&storage.SCIMToken{ID: "tok2", Hash: hash}) }, true},
		{"DeleteSCIMToken", func(tx storage.Tx) error { return tx.DeleteSCIMToken() }, true},
		{"PutSession new", func(tx storage.Tx) error { return tx.PutSession(sessionOf("u3", 3)) }, false},
		{"PutSession LastSeen touch", func(tx storage.Tx) error { return tx.PutSession(touched) }, false},
		{"DeleteSession there", func(tx storage.Tx) error { return tx.DeleteSession(sessionOf("u3", 3).IDHash) }, true},
		{"DeleteSession not there", func(tx storage.Tx) error { return tx.DeleteSession(sessionOf("u3", 3).IDHash) }, false},
		{"DeleteSessionsOf with sessions", func(tx storage.Tx) error { _, err := tx.DeleteSessionsOf("u2"); return err }, true},
		{"DeleteSessionsOf without", func(tx storage.Tx) error { _, err := tx.DeleteSessionsOf("u2"); return err }, false},
		{"PutMapping create", func(tx storage.Tx) error { return tx.PutMapping(storage.Mapping{Group: "g1", Role: "editor"}) }, true},
		{"PutMapping replace", func(tx storage.Tx) error { return tx.PutMapping(storage.Mapping{Group: "g1", Role: "admin"}) }, true},
		{"DeleteMapping there", func(tx storage.Tx) error { _, err := tx.DeleteMapping("g1"); return err }, true},
		{"DeleteMapping not there", func(tx storage.Tx) error { _, err := tx.DeleteMapping("g1"); return err }, false},
		{"PutRecord", func(tx storage.Tx) error { return tx.PutRecord("flow", "k", []byte("v"), time.Minute) }, false},
		{"DeleteRecord", func(tx storage.Tx) error { return tx.DeleteRecord("flow", "k") }, false},
		{"AppendEvent", func(tx storage.Tx) error { return tx.AppendEvent(storage.Event{Type: storage.EventSignIn}) }, false},
		{"reads only", func(tx storage.Tx) error { _, err := tx.GetUser("u1"); return err }, false},
		{"bookkeeping and a user", func(tx storage.Tx) error {
			return errors.Join(tx.PutSession(touched), tx.PutRecord("flow", "k2", nil, 0),
				tx.PutUser(&storage.User{ID: "u8", UserName: "u8"}))
		}, true},
	}
	for _, c := range cases {
		before := h.s.Generation(tenant)
		h.update(tenant, c.write)
		after := h.s.Generation(tenant)
		if c.bumps && after <= before {
			t.Errorf("%s: Generation %d -> %d, want it to increase", c.name, before, after)
		}
		if !c.bumps && after != before {
			t.Errorf("%s: Generation %d -> %d, want it unchanged", c.name, before, after)
		}
	}

	// A failed Update and a View never bump; bookkeeping writes commit.
	g := h.s.Generation(tenant)
	_ = h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "u7", UserName: "U1"}) // ErrUniqueness aborts
	})
	h.view(tenant, func(storage.ReadTx) error { return nil })
	if got := h.s.Generation(tenant); got != g {
		t.Fatalf("Generation after a failed Update and a View = %d, want %d", got, g)
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		if v, err := tx.GetRecord("flow", "k2"); err != nil || len(v) != 0 {
			t.Fatalf("bookkeeping write not committed: %q, %v", v, err)
		}
		s, err := tx.GetSession(touched.IDHash)
		if err != nil || !s.LastSeen.Equal(touched.LastSeen) {
			t.Fatalf("LastSeen touch not committed: %+v, %v", s, err)
		}
		return nil
	})
	// Another tenant's writes leave this tenant's Generation alone.
	h.putUser("other", &storage.User{ID: "u1", UserName: "u1"})
	if got := h.s.Generation(tenant); got != g {
		t.Fatalf("Generation after another tenant's write = %d, want %d", got, g)
	}
}

// testConcurrentMembers: 50 concurrent transactions each add a different
// user to one group and bump the group record (what a SCIM PATCH does).
// They all conflict on the group; the store must retry until all land.
func testConcurrentMembers(t *testing.T, h *harness) {
	const n = 50
	h.update(tenant, func(tx storage.Tx) error {
		for i := range n {
			if err := tx.PutUser(&storage.User{ID: fmt.Sprintf("u%02d", i), UserName: fmt.Sprintf("user%02d", i)}); err != nil {
				return err
			}
		}
		return tx.PutGroup(&storage.Group{ID: "g", DisplayName: "everyone"})
	})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
				g, err := tx.GetGroup("g")
				if err != nil {
					return err
				}
				if _, err := tx.AddMember("g", user(fmt.Sprintf("u%02d", i))); err != nil {
					return err
				}
				g.Modified = time.Now()
				if err := tx.PutGroup(g); err != nil {
					return err
				}
				return tx.AppendEvent(storage.Event{Type: storage.EventMemberAdded, ResourceID: "g"})
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("updater %d: %v", i, err)
		}
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		count, err := tx.CountMembers("g")
		if err != nil || count != n {
			t.Fatalf("CountMembers = %d, %v; want %d", count, err, n)
		}
		g, err := tx.GetGroup("g")
		if err != nil || g.Version != n+1 {
			t.Fatalf("group Version = %v, %v; want %d (one bump per updater)", g, err, n+1)
		}
		es, err := tx.Events(storage.EventQuery{})
		if err != nil || len(es) != n {
			t.Fatalf("events = %d, %v; want %d", len(es), err, n)
		}
		return nil
	})
}

// testConcurrentUserName: 50 concurrent creators of one userName (in
// different case, with different ids): exactly one wins.
func testConcurrentUserName(t *testing.T, h *harness) {
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		name := "racer"
		if i%2 == 1 {
			name = "Racer"
		}
		if i%3 == 0 {
			name = "RACER"
		}
		wg.Go(func() {
			errs[i] = h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
				return tx.PutUser(&storage.User{ID: fmt.Sprintf("id-%02d", i), UserName: name})
			})
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, storage.ErrUniqueness):
			lost++
		default:
			t.Errorf("creator %d: %v, want nil or ErrUniqueness", i, err)
		}
	}
	if won != 1 || lost != n-1 {
		t.Fatalf("%d created, %d ErrUniqueness; want 1 and %d", won, lost, n-1)
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		if c, err := tx.CountUsers(); err != nil || c != 1 {
			t.Fatalf("CountUsers = %d, %v; want 1", c, err)
		}
		return nil
	})
}

func testDurability(t *testing.T, h *harness) {
	seedDirectory(h)
	fillTenant(h, "other")
	h.update(tenant, func(tx storage.Tx) error {
		_, err := tx.AddMember("g1", user("u1"))
		return errors.Join(err,
			tx.PutUser(&storage.User{ID: "u2", UserName: "Renamed", Emails: []string{"r@example.com"}}),
			tx.DeleteUser("u3"),
			tx.PutSession(sessionOf("u1", 7)),
			tx.PutRecord("kind", "key", []byte("kept"), time.Hour),
			tx.AppendEvent(storage.Event{Type: storage.EventUserUpdated, ResourceID: "u2"}),
		)
	})
	h.reopen()
	h.view(tenant, func(tx storage.ReadTx) error {
		u, err := tx.UserByUserName("renamed")
		if err != nil || u.ID != "u2" || u.Version != 2 {
			t.Fatalf("after reopen, UserByUserName(renamed) = %+v, %v", u, err)
		}
		if us, err := tx.UsersByEmail("R@example.com"); err != nil || len(us) != 1 {
			t.Fatalf("after reopen, UsersByEmail = %d, %v", len(us), err)
		}
		if _, err := tx.GetUser("u3"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("after reopen, deleted user u3: %v", err)
		}
		if ok, err := tx.IsMember("g1", "u1"); err != nil || !ok {
			t.Fatalf("after reopen, IsMember(g1, u1) = %v, %v", ok, err)
		}
		if _, err := tx.GetSession(sessionOf("u1", 7).IDHash); err != nil {
			t.Fatalf("after reopen, GetSession: %v", err)
		}
		if v, err := tx.GetRecord("kind", "key"); err != nil || string(v) != "kept" {
			t.Fatalf("after reopen, GetRecord = %q, %v", v, err)
		}
		if es, err := tx.Events(storage.EventQuery{}); err != nil || len(es) != 1 || es[0].ResourceID != "u2" {
			t.Fatalf("after reopen, Events = %v, %v", es, err)
		}
		if n, err := tx.CountGroups(); err != nil || n != 3 {
			t.Fatalf("after reopen, CountGroups = %d, %v", n, err)
		}
		return nil
	})
	h.view("other", func(tx storage.ReadTx) error {
		tok, err := tx.GetSCIMToken()
		if err != nil || tok.ID != "tok-other" {
			t.Fatalf("after reopen, other tenant's token = %+v, %v", tok, err)
		}
		if n, err := tx.CountMembers("g1"); err != nil || n != 1 {
			t.Fatalf("after reopen, other tenant's members = %d, %v", n, err)
		}
		return nil
	})
	// The reopened store takes writes, and indexes still enforce uniqueness.
	err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "u9", UserName: "RENAMED"})
	})
	wantErr(t, "PutUser of a taken userName after reopen", err, storage.ErrUniqueness)
}

// testDeleteRacesWithAdd: a delete that cascades (DeleteUser, DeleteGroup)
// runs while another transaction adds something hanging off the deleted
// record (a membership, a session), checking first that the record exists
// as every caller does. Whatever the order, nothing may survive that hangs
// off a deleted record. The deleting transaction pauses after its reads
// until the adder is done (or, for a backend whose adder waits on a lock
// held by the deleter, until a grace period has passed).
func testDeleteRacesWithAdd(t *testing.T, h *harness) {
	cases := []struct {
		name    string
		del     func(tx storage.Tx) error
		add     func(tx storage.Tx) error
		invalid func(tx storage.ReadTx) (bool, error) // true: something dangles
	}{
		{
			name: "DeleteUser vs AddMember",
			del:  func(tx storage.Tx) error { return tx.DeleteUser("u1") },
			add: func(tx storage.Tx) error {
				if _, err := tx.GetUser("u1"); err != nil {
					return err
				}
				_, err := tx.AddMember("g1", user("u1"))
				return err
			},
			invalid: func(tx storage.ReadTx) (bool, error) {
				if _, err := tx.GetUser("u1"); !errors.Is(err, storage.ErrNotFound) {
					return false, fmt.Errorf("u1 not deleted: %v", err)
				}
				ids, err := tx.GroupsOf("u1")
				if err != nil {
					return false, err
				}
				in, err := tx.IsMember("g1", "u1")
				return len(ids) > 0 || in, err
			},
		},
		{
			name: "DeleteGroup vs AddMember",
			del:  func(tx storage.Tx) error { return tx.DeleteGroup("g1") },
			add: func(tx storage.Tx) error {
				_, err := tx.AddMember("g1", user("u1"))
				return err
			},
			invalid: func(tx storage.ReadTx) (bool, error) {
				ids, err := tx.GroupsOf("u1")
				if err != nil {
					return false, err
				}
				n, err := tx.CountMembers("g1")
				return len(ids) > 0 || n > 0, err
			},
		},
		{
			name: "DeleteGroup vs nesting it in another group",
			del:  func(tx storage.Tx) error { return tx.DeleteGroup("g1") },
			add: func(tx storage.Tx) error {
				if _, err := tx.GetGroup("g1"); err != nil {
					return err
				}
				_, err := tx.AddMember("g2", group("g1"))
				return err
			},
			invalid: func(tx storage.ReadTx) (bool, error) {
				in, err := tx.IsMember("g2", "g1")
				return in, err
			},
		},
		{
			name: "DeleteUser vs PutSession",
			del:  func(tx storage.Tx) error { return tx.DeleteUser("u1") },
			add: func(tx storage.Tx) error {
				if _, err := tx.GetUser("u1"); err != nil {
					return err
				}
				return tx.PutSession(sessionOf("u1", 42))
			},
			invalid: func(tx storage.ReadTx) (bool, error) {
				ss, err := tx.SessionsOf("u1")
				if err != nil {
					return false, err
				}
				_, gerr := tx.GetSession(sessionOf("u1", 42).IDHash)
				return len(ss) > 0 || gerr == nil, nil
			},
		},
	}
	for i, c := range cases {
		ten := fmt.Sprintf("race-%d", i)
		h.update(ten, func(tx storage.Tx) error {
			return errors.Join(
				tx.PutUser(&storage.User{ID: "u1", UserName: "u1"}),
				tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "g1"}),
				tx.PutGroup(&storage.Group{ID: "g2", DisplayName: "g2"}),
			)
		})
		delRead, addDone := make(chan struct{}), make(chan struct{})
		var addErr error
		go func() {
			defer close(addDone)
			<-delRead
			addErr = h.s.Update(context.Background(), ten, c.add)
		}()
		attempt := 0
		delErr := h.s.Update(context.Background(), ten, func(tx storage.Tx) error {
			attempt++
			if err := c.del(tx); err != nil {
				return err
			}
			if attempt == 1 {
				close(delRead)
				select {
				case <-addDone:
				case <-time.After(2 * time.Second):
				}
			}
			return nil
		})
		<-addDone
		if delErr != nil {
			t.Fatalf("%s: delete: %v", c.name, delErr)
		}
		if addErr != nil && !errors.Is(addErr, storage.ErrNotFound) {
			t.Fatalf("%s: add: %v, want nil or ErrNotFound", c.name, addErr)
		}
		h.view(ten, func(tx storage.ReadTx) error {
			dangling, err := c.invalid(tx)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if dangling {
				t.Fatalf("%s: something still hangs off the deleted record (add error: %v)", c.name, addErr)
			}
			return nil
		})
	}
}

// tooBigWrites is how many small records testTooBig writes in one
// transaction before it concludes that the backend has no size limit.
const tooBigWrites = 200_000

// testTooBig: a transaction larger than the backend accepts fails with
// ErrTooBig and writes nothing, whether fn returns the error or carries
// on past it; the store keeps working. A backend that takes tooBigWrites
// writes in one transaction has no limit this test can reach, and skips.
func testTooBig(t *testing.T, h *harness) {
	gen := h.s.Generation(tenant)
	tests := []struct {
		name    string
		swallow bool // fn ignores the ErrTooBig and returns nil
	}{
		{"fn returns the error", false},
		{"fn carries on", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var overflowed bool
			err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
				overflowed = false
				for i := 0; i < tooBigWrites; i++ {
					err := tx.PutRecord("toobig", fmt.Sprint(i), []byte("x"), 0)
					if errors.Is(err, storage.ErrTooBig) {
						overflowed = true
						if tc.swallow {
							return nil
						}
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil && !overflowed {
				t.Skipf("the backend took %d writes in one transaction", tooBigWrites)
			}
			wantErr(t, "Update of an oversized transaction", err, storage.ErrTooBig)
			h.view(tenant, func(tx storage.ReadTx) error {
				if _, err := tx.GetRecord("toobig", "0"); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("a write of the refused transaction is visible: %v", err)
				}
				return nil
			})
		})
	}
	if g := h.s.Generation(tenant); g != gen {
		t.Errorf("Generation moved from %d to %d after refused Updates", gen, g)
	}
	h.update(tenant, func(tx storage.Tx) error { return tx.PutRecord("toobig", "after", []byte("x"), 0) })
	h.view(tenant, func(tx storage.ReadTx) error {
		v, err := tx.GetRecord("toobig", "after")
		if err != nil || string(v) != "x" {
			t.Errorf("write after the refused transactions: %q, %v", v, err)
		}
		return nil
	})
}
