package operator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const tenant = "acme"

// testRoles: three levels; "admins" is mapped in the config (pinned).
var testRoles = authz.Roles{
	Levels:   []string{"viewer", "editor", "admin"},
	Mappings: []authz.GroupMapping{{Group: "admins", Role: "admin"}},
}

// env is a tenant on a real Badger store with its operator Service and an
// identity gate in front of an app that echoes the role header, served on
// 127.0.0.1.
type env struct {
	t     testing.TB
	store *badgerstore.Store
	svc   *operator.Service
	usage *scimhandler.UsageTracker
	app   *httptest.Server
}

func newEnv(t testing.TB, configure ...func(*operator.Config)) *env {
	t.Helper()
	bs, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	e := &env{t: t, store: bs, usage: scimhandler.NewUsageTracker()}
	cfg := operator.Config{Tenant: tenant, Store: bs, Roles: testRoles, Usage: e.usage}
	for _, c := range configure {
		c(&cfg)
	}
	if e.svc, err = operator.New(cfg); err != nil {
		t.Fatal(err)
	}
	ids, err := authz.NewIdentities(authz.IdentitiesConfig{Tenant: tenant, Store: bs, Sessions: cookieSessions{bs}, Roles: cfg.Roles})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := authz.NewGate(authz.GateConfig{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	e.app = httptest.NewServer(gate.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "role="+r.Header.Get("X-Remote-Role"))
	})))
	t.Cleanup(e.app.Close)
	return e
}

// cookieSessions resolves the "sid" cookie over the store, as sso does.
type cookieSessions struct{ s storage.Store }

func (c cookieSessions) SessionKey(r *http.Request) ([32]byte, bool) {
	ck, err := r.Cookie("sid")
	if err != nil {
		return [32]byte{}, false
	}
	return storage.HashSecret(ck.Value), true
}

func (c cookieSessions) Lookup(r *http.Request) (*storage.Session, *storage.User, error) {
	key, ok := c.SessionKey(r)
	if !ok {
		return nil, nil, nil
	}
	var sess *storage.Session
	var user *storage.User
	err := c.s.View(r.Context(), tenant, func(tx storage.ReadTx) error {
		var err error
		if sess, err = tx.GetSession(key); err != nil {
			return err
		}
		user, err = tx.GetUser(sess.UserID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) || (sess != nil && sess.Expired(time.Now(), 0)) {
		return nil, nil, nil
	}
	return sess, user, err
}

func (cookieSessions) IdleTimeout() time.Duration { return 0 }

// request sends a request with session sid through the gate and returns
// the status and body ("role=..." when let through).
func (e *env) request(sid string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.app.URL+"/app", nil)
	req.AddCookie(&http.Cookie{Name: "sid", Value: sid})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// wantRole fails unless sid's next request is let through with role.
func (e *env) wantRole(step, sid, role string) {
	e.t.Helper()
	status, body := e.request(sid)
	if status != http.StatusOK || body != "role="+role {
		e.t.Fatalf("%s: request got %d %q, want 200 role=%s", step, status, body, role)
	}
}

// wantSignedOut fails unless sid's next request is not let through.
func (e *env) wantSignedOut(step, sid string) {
	e.t.Helper()
	if status, body := e.request(sid); status == http.StatusOK {
		e.t.Fatalf("%s: request let through (%q), want it signed out", step, body)
	}
}

func (e *env) update(fn func(tx storage.Tx) error) {
	e.t.Helper()
	if err := e.store.Update(context.Background(), tenant, fn); err != nil {
		e.t.Fatal(err)
	}
}

// user puts a user of source and returns its id.
func (e *env) user(userName, source string, groups ...string) string {
	e.t.Helper()
	id := storage.NewID()
	e.update(func(tx storage.Tx) error {
		if err := tx.PutUser(&storage.User{ID: id, UserName: userName, Emails: []string{userName + "@acme.test"},
			Active: true, Source: source}); err != nil {
			return err
		}
		for _, g := range groups {
			if _, err := tx.AddMember(g, storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
				return err
			}
		}
		return nil
	})
	return id
}

// group puts a group and returns its id.
func (e *env) group(name, source string) string {
	e.t.Helper()
	id := storage.NewID()
	e.update(func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: id, DisplayName: name, Source: source})
	})
	return id
}

// signIn stores a session of the user and returns its id.
func (e *env) signIn(userID string) string {
	e.t.Helper()
	sid, hash := storage.NewSecret()
	now := time.Now()
	e.update(func(tx storage.Tx) error {
		return tx.PutSession(&storage.Session{IDHash: hash, UserID: userID, Created: now, LastSeen: now,
			ExpiresAt: now.Add(time.Hour), Protocol: "oidc", ClientAddr: "192.0.2.1", UserAgent: "Firefox"})
	})
	return sid
}

func (e *env) events(types ...string) []storage.Event {
	e.t.Helper()
	var out []storage.Event
	err := e.store.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		out, err = tx.Events(storage.EventQuery{Types: types, Limit: 1000})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) stored(id string) *storage.User {
	e.t.Helper()
	var u *storage.User
	err := e.store.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		u, err = tx.GetUser(id)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}
