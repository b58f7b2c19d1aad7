package operator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestEndSessions: list a user's sessions (with the client at sign-in),
// end one, all of a user's, and the tenant's; each is audited and
// effective on the next request.
func TestEndSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ann := e.user("ann", storage.SourceSCIM)
	ben := e.user("ben", storage.SourceSCIM)
	a1, a2, a3 := e.signIn(ann), e.signIn(ann), e.signIn(ann)
	b1 := e.signIn(ben)
	for _, sid := range []string{a1, a2, a3, b1} {
		e.wantRole("signed in", sid, "viewer")
	}
	list, err := e.svc.Sessions(ctx, ann)
	if err != nil || len(list) != 3 {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
	for _, s := range list {
		if s.ClientAddr != "192.0.2.1" || s.UserAgent != "Firefox" || s.Protocol != "oidc" || len(s.ID) != 24 {
			t.Fatalf("session = %+v", s)
		}
		for _, sid := range []string{a1, a2, a3} {
			h := storage.HashSecret(sid)
			if strings.Contains(s.ID, sid[:16]) || strings.Contains(s.ID, string(h[:4])) {
				t.Fatalf("handle %q reveals the session", s.ID)
			}
		}
	}
	if _, err := e.svc.Sessions(ctx, "no-such-user"); !errors.Is(err, operator.ErrNotFound) {
		t.Fatalf("Sessions of a missing user: %v", err)
	}
	if err := e.svc.EndSession(ctx, "admin", ann, "nope"); !errors.Is(err, operator.ErrNotFound) {
		t.Fatalf("EndSession of an unknown handle: %v", err)
	}
	if err := e.svc.EndSession(ctx, "admin", ben, list[0].ID); !errors.Is(err, operator.ErrNotFound) {
		t.Fatalf("EndSession of another user's handle: %v", err)
	}

	// End one: exactly one of ann's three sessions is signed out.
	if err := e.svc.EndSession(ctx, "admin", ann, list[0].ID); err != nil {
		t.Fatal(err)
	}
	out := 0
	for _, sid := range []string{a1, a2, a3} {
		if status, _ := e.request(sid); status != 200 {
			out++
		}
	}
	if out != 1 {
		t.Fatalf("%d sessions signed out after ending one", out)
	}
	n, err := e.svc.EndUserSessions(ctx, "admin", ann)
	if err != nil || n != 2 {
		t.Fatalf("EndUserSessions = %d, %v; want 2", n, err)
	}
	e.wantSignedOut("user's sessions ended", a1)
	e.wantSignedOut("user's sessions ended", a2)
	e.wantSignedOut("user's sessions ended", a3)
	e.wantRole("other user untouched", b1, "viewer")

	c1 := e.signIn(ann)
	n, err = e.svc.EndTenantSessions(ctx, "admin")
	if err != nil || n != 2 {
		t.Fatalf("EndTenantSessions = %d, %v; want 2", n, err)
	}
	e.wantSignedOut("tenant's sessions ended", b1)
	e.wantSignedOut("tenant's sessions ended", c1)
	evs := e.events(storage.EventSessionEnded)
	if len(evs) != 3 || evs[0].ResourceType != "Tenant" || !strings.Contains(evs[0].Reason, ": 2") {
		t.Fatalf("session.ended events = %+v", evs)
	}
}

// TestEndTenantSessionsInBatches: more users than one batch.
func TestEndTenantSessionsInBatches(t *testing.T) {
	e := newEnv(t)
	const users = 450
	e.update(func(tx storage.Tx) error {
		for i := 0; i < users; i++ {
			id := storage.NewID()
			if err := tx.PutUser(&storage.User{ID: id, UserName: id, Active: true, Source: storage.SourceSCIM}); err != nil {
				return err
			}
			_, hash := storage.NewSecret()
			if err := tx.PutSession(&storage.Session{IDHash: hash, UserID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	n, err := e.svc.EndTenantSessions(context.Background(), "admin")
	if err != nil || n != users {
		t.Fatalf("EndTenantSessions = %d, %v; want %d", n, err, users)
	}
}
