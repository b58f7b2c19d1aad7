package scimhandler_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// hangUpBody cancels the request's context once the handler has read the
// whole body: the client hangs up just as the handler goes to write.
type hangUpBody struct {
	r      io.Reader
	cancel context.CancelFunc
	hungUp atomic.Bool
}

func (b *hangUpBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) && !b.hungUp.Swap(true) {
		b.cancel()
	}
	return n, err
}

// serveHungUp sends one request straight to the handler whose client
// hangs up after sending its body (or, without a body, before the handler
// starts). The token is cached by a GET first, as a SCIM client that is
// mid-run has it cached, so authentication reads nothing.
func serveHungUp(t *testing.T, e *testEnv, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	e.want(e.do("GET", "/ServiceProviderConfig", nil), http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rd io.Reader
	hb := &hangUpBody{r: strings.NewReader(body), cancel: cancel}
	if body != "" {
		rd = hb
	} else {
		cancel()
	}
	req := httptest.NewRequestWithContext(ctx, method, e.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if body != "" && !hb.hungUp.Load() {
		t.Fatal("the handler did not read the body to its end; the hang-up was not simulated")
	}
	return rec
}

// TestHangUpDoesNotLoseWrites: a client that hangs up once its request is
// sent (the request's context is cancelled before the transaction) still
// gets its change committed with its audit event.
func TestHangUpDoesNotLoseWrites(t *testing.T) {
	for _, c := range []struct {
		name, method, path, body string
		event                    string
		check                    func(t *testing.T, e *testEnv, ids map[string]string)
	}{
		{name: "create user", method: "POST", path: "/Users", body: `{"userName":"late@example.com"}`,
			event: storage.EventUserCreated},
		{name: "replace user", method: "PUT", path: "/Users/{u}", body: `{"userName":"u@example.com","displayName":"Renamed"}`,
			event: storage.EventUserUpdated,
			check: func(t *testing.T, e *testEnv, ids map[string]string) {
				if got := e.user(ids["u"]).DisplayName; got != "Renamed" {
					t.Errorf("displayName %q", got)
				}
			}},
		{name: "deactivate user", method: "PATCH", path: "/Users/{u}",
			body:  `{"Operations":[{"op":"replace","path":"active","value":false}]}`,
			event: storage.EventUserDeactivated,
			check: func(t *testing.T, e *testEnv, ids map[string]string) {
				if e.user(ids["u"]).Active {
					t.Error("still active")
				}
			}},
		{name: "delete user", method: "DELETE", path: "/Users/{u}", event: storage.EventUserDeleted},
		{name: "create group", method: "POST", path: "/Groups", body: `{"displayName":"Late","members":[{"value":"{u}"}]}`,
			event: storage.EventGroupCreated},
		{name: "add member", method: "PATCH", path: "/Groups/{g}",
			body:  `{"Operations":[{"op":"add","path":"members","value":[{"value":"{u}"}]}]}`,
			event: storage.EventMemberAdded,
			check: func(t *testing.T, e *testEnv, ids map[string]string) {
				if m := e.members(ids["g"]); m[ids["u"]] == "" {
					t.Errorf("members %v", m)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ids := map[string]string{"u": e.createUser("u@example.com"), "g": e.createGroup("G")}
			fill := func(s string) string {
				return strings.NewReplacer("{u}", ids["u"], "{g}", ids["g"]).Replace(s)
			}
			before := len(e.events(c.event))
			rec := serveHungUp(t, e, c.method, fill(c.path), fill(c.body))
			if rec.Code >= 300 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if got := len(e.events(c.event)); got != before+1 {
				t.Errorf("%s events %d, want %d", c.event, got, before+1)
			}
			if c.check != nil {
				c.check(t, e, ids)
			}
		})
	}
}

// TestHangUpKeepsRejectionRecord: the token.rejected record of a failed
// attempt is written though the client is already gone.
func TestHangUpKeepsRejectionRecord(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("GET", "/ServiceProviderConfig", nil), http.StatusOK) // caches the token record
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", e.base+"/Users", nil)
	req.Header.Set("Authorization", "Bearer wrong-token")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ev := e.events(storage.EventTokenRejected); len(ev) != 1 {
		t.Errorf("token.rejected events %d, want 1", len(ev))
	}
}

// TestTokenCallsAndCancellation: DisableToken completes for a caller that
// is gone; IssueToken for a caller already gone issues nothing (no one
// would receive the secret), so the working token stays.
func TestTokenCallsAndCancellation(t *testing.T) {
	e := newEnv(t)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := scimhandler.IssueToken(gone, e.badger, tenant, "admin"); !errors.Is(err, context.Canceled) {
		t.Fatalf("IssueToken for a cancelled caller: %v", err)
	}
	if ev := e.events(storage.EventTokenRotated); len(ev) != 0 {
		t.Errorf("rotation recorded for nobody: %+v", ev)
	}
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	if err := scimhandler.DisableToken(gone, e.badger, tenant, "admin"); err != nil {
		t.Fatalf("DisableToken for a cancelled caller: %v", err)
	}
	if ev := e.events(storage.EventTokenDisabled); len(ev) != 1 {
		t.Errorf("token.disabled events %d, want 1", len(ev))
	}
	e.want(e.do("GET", "/Users", nil), http.StatusUnauthorized)
}
