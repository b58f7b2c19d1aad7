package authz

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/internal/cookieheader"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const (
	testTenant = "acme"
	testCookie = "portcullis_session"
)

// testClock is a movable clock shared by the resolver and the gate.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// storeSessions is a SessionResolver over the real store, following the
// rules package sso implements (cookie, HashSecret, GetSession, Expired,
// user; LastSeen refreshed at most once a minute).
type storeSessions struct {
	store   storage.Store
	tenant  string
	idle    time.Duration
	now     func() time.Time
	lookups atomic.Int64
}

func (s *storeSessions) SessionKey(r *http.Request) ([32]byte, bool) {
	// As sso reads its session cookie: without parsing every cookie.
	value, n := cookieheader.Value(r.Header, testCookie)
	if n == 0 || value == "" {
		return [32]byte{}, false
	}
	return storage.HashSecret(value), true
}

func (s *storeSessions) IdleTimeout() time.Duration { return s.idle }

// OwnsCookie claims the session cookie and sign-in flow cookies, as sso does.
func (s *storeSessions) OwnsCookie(name string) bool {
	return name == testCookie || strings.HasPrefix(name, testCookie+"_flow_")
}

func (s *storeSessions) Lookup(r *http.Request) (*storage.Session, *storage.User, error) {
	s.lookups.Add(1)
	key, ok := s.SessionKey(r)
	if !ok {
		return nil, nil, nil
	}
	now := s.now()
	var sess *storage.Session
	var user *storage.User
	err := s.store.View(r.Context(), s.tenant, func(tx storage.ReadTx) error {
		var err error
		if sess, err = tx.GetSession(key); err != nil {
			return err
		}
		if sess.Expired(now, s.idle) {
			sess = nil
			return nil
		}
		user, err = tx.GetUser(sess.UserID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) || sess == nil {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if now.Sub(sess.LastSeen) >= time.Minute {
		err := s.store.Update(r.Context(), s.tenant, func(tx storage.Tx) error {
			cur, err := tx.GetSession(key)
			if err != nil {
				return err
			}
			cur.LastSeen = now
			return tx.PutSession(cur)
		})
		if err != nil {
			return nil, nil, err
		}
		sess.LastSeen = now
	}
	return sess, user, nil
}

// fixture is a tenant on a real Badger store with helpers to populate it.
type fixture struct {
	t        testing.TB
	dir      string
	store    *badgerstore.Store
	clock    *testClock
	sessions *storeSessions
	logger   *zap.Logger
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	logger := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	st, err := badgerstore.Open(dir, logger)
	if err != nil {
		t.Fatalf("badgerstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	return &fixture{
		t: t, dir: dir, store: st, clock: clock, logger: logger,
		sessions: &storeSessions{store: st, tenant: testTenant, idle: time.Hour, now: clock.Now},
	}
}

func (f *fixture) update(fn func(tx storage.Tx) error) {
	f.t.Helper()
	if err := f.store.Update(context.Background(), testTenant, fn); err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

func (f *fixture) view(fn func(tx storage.ReadTx) error) {
	f.t.Helper()
	if err := f.store.View(context.Background(), testTenant, fn); err != nil {
		f.t.Fatalf("store view: %v", err)
	}
}

func (f *fixture) user(userName string) *storage.User {
	f.t.Helper()
	u := &storage.User{
		ID:          storage.NewID(),
		UserName:    userName,
		DisplayName: "User " + userName,
		Emails:      []string{userName + "@example.com"},
		Active:      true,
		Source:      storage.SourceSCIM,
	}
	f.update(func(tx storage.Tx) error { return tx.PutUser(u) })
	return u
}

func (f *fixture) group(displayName, externalID string) *storage.Group {
	f.t.Helper()
	g := &storage.Group{ID: storage.NewID(), DisplayName: displayName, ExternalID: externalID, Source: storage.SourceSCIM}
	f.update(func(tx storage.Tx) error { return tx.PutGroup(g) })
	return g
}

func (f *fixture) join(u *storage.User, groups ...*storage.Group) {
	f.t.Helper()
	f.update(func(tx storage.Tx) error {
		for _, g := range groups {
			if _, err := tx.AddMember(g.ID, storage.Member{ID: u.ID, Type: storage.MemberUser}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *fixture) leave(u *storage.User, g *storage.Group) {
	f.t.Helper()
	f.update(func(tx storage.Tx) error {
		_, err := tx.RemoveMember(g.ID, u.ID)
		return err
	})
}

// signIn stores a session for u and returns the cookie value.
func (f *fixture) signIn(u *storage.User) string {
	f.t.Helper()
	plain, hash := storage.NewSecret()
	now := f.clock.Now()
	f.update(func(tx storage.Tx) error {
		return tx.PutSession(&storage.Session{
			IDHash: hash, UserID: u.ID, Created: now, LastSeen: now,
			ExpiresAt: now.Add(12 * time.Hour), Protocol: "oidc",
		})
	})
	return plain
}

func (f *fixture) sessionCount(u *storage.User) int {
	f.t.Helper()
	var n int
	f.view(func(tx storage.ReadTx) error {
		s, err := tx.SessionsOf(u.ID)
		n = len(s)
		return err
	})
	return n
}

func (f *fixture) events(types ...string) []storage.Event {
	f.t.Helper()
	var evs []storage.Event
	f.view(func(tx storage.ReadTx) error {
		var err error
		evs, err = tx.Events(storage.EventQuery{Types: types, Limit: 100})
		return err
	})
	return evs
}

func (f *fixture) identities(roles Roles) *Identities {
	f.t.Helper()
	ids, err := NewIdentities(IdentitiesConfig{
		Tenant: testTenant, Store: f.store, Sessions: f.sessions, Roles: roles,
		Logger: f.logger, Now: f.clock.Now,
	})
	if err != nil {
		f.t.Fatalf("NewIdentities: %v", err)
	}
	return ids
}

func (f *fixture) gate(ids *Identities, cfg GateConfig) *Gate {
	f.t.Helper()
	cfg.Identities = ids
	if cfg.LoginURL == nil {
		cfg.LoginURL = testLoginURL
	}
	cfg.Logger = f.logger
	g, err := NewGate(cfg)
	if err != nil {
		f.t.Fatalf("NewGate: %v", err)
	}
	return g
}

func testLoginURL(returnPath string) string {
	return "/portcullis/login?return=" + url.QueryEscape(returnPath)
}

// threeRoles is the model most tests use.
func threeRoles(mappings ...GroupMapping) Roles {
	return Roles{Levels: []string{"viewer", "editor", "admin"}, Mappings: mappings}
}

// upstream echoes the headers it received, one "Name: value" line each,
// so tests see exactly what the legacy app would.
type upstream struct {
	mu   sync.Mutex
	last http.Header
	hits int
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.last = r.Header.Clone()
	u.hits++
	u.mu.Unlock()
	if id, ok := IdentityFromContext(r.Context()); ok {
		w.Header().Set("Test-Identity-Role", id.Role)
	}
	_, _ = io.WriteString(w, "upstream")
}

func (u *upstream) received() (http.Header, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.hits
}

// serve starts a real server on 127.0.0.1 running the gate in front of up.
func serve(t testing.TB, g *Gate, up http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(g.Handler(up))
	t.Cleanup(srv.Close)
	return srv
}

// client never follows redirects, so tests see the gate's answer.
var client = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

type reqOpt func(*http.Request)

func withCookie(v string) reqOpt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: testCookie, Value: v}) }
}

func asBrowser(r *http.Request) {
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
}

func asAPI(r *http.Request) { r.Header.Set("Accept", "application/json") }

// rawHeader adds a header under exactly this key (no canonicalisation).
func rawHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header[k] = append(r.Header[k], v) }
}

type result struct {
	status int
	header http.Header
	body   string
}

func get(t testing.TB, srv *httptest.Server, path string, opts ...reqOpt) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
