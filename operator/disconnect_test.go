package operator_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// scimPush POSTs a user to the tenant's SCIM endpoint with token.
func scimPush(t *testing.T, srv *httptest.Server, token, userName, ua string) (int, string) {
	t.Helper()
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + userName + `"}`
	req, _ := http.NewRequest("POST", srv.URL+"/scim/v2/acme/Users", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("User-Agent", ua)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// TestDisconnectAndReconnect: disconnecting stops the pull, disables SCIM
// (pushes get 401), converts every IdP-managed user to manual with their
// role at that moment pinned, signs nobody out and leaves their role as it
// was; one idp.disconnected plus one user.converted per user. Connected
// again (a new token), a push of a converted user adopts it back: same
// id, role from groups again, audited; never a duplicate.
func TestDisconnectAndReconnect(t *testing.T) {
	pulls := 0
	e := newEnv(t, func(c *operator.Config) {
		c.StopPull = func(context.Context) error { pulls++; return nil }
	})
	ctx := context.Background()
	h, err := scimhandler.New(scimhandler.Config{Tenant: tenant, Store: e.store, Usage: e.usage})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/acme/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if _, err := e.svc.TokenStatus(ctx); !errors.Is(err, operator.ErrNoToken) {
		t.Fatalf("TokenStatus before any token: %v", err)
	}
	token, err := scimhandler.IssueToken(ctx, e.store, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	const okta = "Okta SCIM Client 1.0.0"
	if status, body := scimPush(t, srv, token, "sam", okta); status != http.StatusCreated {
		t.Fatalf("push: %d %s", status, body)
	}
	scimPush(t, srv, "wrong-token", "x", "curl/8")
	st, err := e.svc.TokenStatus(ctx)
	if err != nil || st.Status != operator.TokenActive || st.Requests24h != 2 || st.Failures24h != 1 ||
		st.LastUsed == nil || st.LastUsed.Client != "Okta" || st.LastUsed.UserAgent != okta || st.Created.IsZero() || st.Rotated != nil {
		t.Fatalf("TokenStatus = %+v, %v", st, err)
	}
	if _, err := scimhandler.IssueToken(ctx, e.store, tenant, "admin"); err != nil { // rotate
		t.Fatal(err)
	}
	if st, _ := e.svc.TokenStatus(ctx); st.Rotated == nil || st.Status != operator.TokenActive {
		t.Fatalf("TokenStatus after a rotation = %+v", st)
	}

	admins := e.userGroup("admins")
	eng := e.group("engineering", storage.SourceSCIM)
	if err := e.svc.SetMapping(ctx, "admin", "engineering", "editor"); err != nil {
		t.Fatal(err)
	}
	sam := e.userID("sam")
	e.update(func(tx storage.Tx) error {
		_, err := tx.AddMember(eng, storage.Member{ID: sam, Type: storage.MemberUser})
		return err
	})
	users := map[string]struct {
		id, role string
	}{
		"sam":   {sam, "editor"},
		"root":  {e.user("root", storage.SourceJIT, admins), "admin"},
		"gail":  {e.user("gail", storage.SourceGoogle), "viewer"},
		"manny": {e.user("manny", storage.SourceManual), "viewer"},
	}
	sessions := map[string]string{}
	for name, u := range users {
		sessions[name] = e.signIn(u.id)
		e.wantRole("before", sessions[name], u.role)
	}

	n, err := e.svc.Disconnect(ctx, "admin")
	if err != nil || n != 3 || pulls != 1 {
		t.Fatalf("Disconnect = %d, %v (pull stopped %d times); want 3 converted", n, err, pulls)
	}
	for name, u := range users {
		got := e.stored(u.id)
		if got.Source != storage.SourceManual {
			t.Errorf("%s: source %q after disconnect", name, got.Source)
		}
		if name != "manny" && got.Role != u.role {
			t.Errorf("%s: pinned role %q, want %q", name, got.Role, u.role)
		}
		e.wantRole("after disconnect, nobody signed out", sessions[name], u.role)
	}
	if evs := e.events(storage.EventUserConverted); len(evs) != 3 {
		t.Fatalf("user.converted events = %+v", evs)
	}
	if evs := e.events(storage.EventIdPDisconnected); len(evs) != 1 || !strings.Contains(evs[0].After, "converted=3") {
		t.Fatalf("idp.disconnected events = %+v", evs)
	}
	if status, _ := scimPush(t, srv, token, "newbie", okta); status != http.StatusUnauthorized {
		t.Fatalf("push after disconnect: %d, want 401", status)
	}
	if st, err := e.svc.TokenStatus(ctx); err != nil || st.Status != operator.TokenDisabled || st.Disabled == nil {
		t.Fatalf("TokenStatus after disconnect = %+v, %v", st, err)
	}
	// The pinned role no longer follows the mapping...
	if err := e.svc.SetMapping(ctx, "admin", "engineering", "viewer"); err != nil {
		t.Fatal(err)
	}
	e.wantRole("pinned", sessions["sam"], "editor")
	// ...and converted users are manual now: an operator may change them.
	if _, err := e.svc.UpdateUser(ctx, "admin", sam, operator.UserChange{Role: ptr("admin")}); err != nil {
		t.Fatal(err)
	}
	e.wantRole("changed by hand", sessions["sam"], "admin")
	if n, err := e.svc.Disconnect(ctx, "admin"); err != nil || n != 0 {
		t.Fatalf("second Disconnect = %d, %v; want 0", n, err)
	}

	// Reconnect: a new token, and the IdP pushes sam again.
	token, err = scimhandler.IssueToken(ctx, e.store, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := scimPush(t, srv, token, "SAM", okta); status != http.StatusCreated || !strings.Contains(body, sam) {
		t.Fatalf("push after reconnect: %d %s, want the manual user adopted", status, body)
	}
	got := e.stored(sam)
	if got.Source != storage.SourceSCIM || got.Role != "" {
		t.Fatalf("adopted sam = %+v", got)
	}
	e.wantRole("adopted: role from groups again", sessions["sam"], "viewer")
	evs := e.events(storage.EventUserAdopted)
	if len(evs) != 1 || evs[0].ResourceID != sam || !strings.Contains(evs[0].Before, "role=admin") {
		t.Fatalf("user.adopted events = %+v", evs)
	}
	var count int
	e.store.View(ctx, tenant, func(tx storage.ReadTx) error { count, _ = tx.CountUsers(); return nil })
	if count != 4 {
		t.Fatalf("%d users after the reconnect, want 4 (no duplicate)", count)
	}
	d, err := e.svc.User(ctx, sam)
	if err != nil || d.LastSignIn == nil || time.Since(*d.LastSignIn) > time.Minute {
		t.Fatalf("User(sam) = %+v, %v", d, err)
	}
}

// userGroup puts a SCIM group of the name and returns its id.
func (e *env) userGroup(name string) string { return e.group(name, storage.SourceSCIM) }
