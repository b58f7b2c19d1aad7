package scimhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const tenant = "acme"

// testEnv is a SCIM handler for tenant "acme" on a real Badger store,
// served by a real HTTP server on 127.0.0.1 under /scim/v2/acme/.
type testEnv struct {
	t      testing.TB
	store  *countingStore
	badger *badgerstore.Store
	h      *scimhandler.Handler
	srv    *httptest.Server
	token  string
	base   string
	client *http.Client
}

func newEnv(t testing.TB, configure ...func(*scimhandler.Config)) *testEnv {
	t.Helper()
	bs, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	return newEnvOn(t, bs, configure...)
}

func newEnvOn(t testing.TB, bs *badgerstore.Store, configure ...func(*scimhandler.Config)) *testEnv {
	t.Helper()
	store := &countingStore{Store: bs}
	var logger *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt, zaptest.Level(zap.InfoLevel))
	} else {
		logger = zap.NewNop()
	}
	cfg := scimhandler.Config{Tenant: tenant, Store: store, Logger: logger}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := scimhandler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/"+tenant+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token, err := scimhandler.IssueToken(context.Background(), bs, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, store: store, badger: bs, h: h, srv: srv, token: token,
		base: srv.URL + "/scim/v2/" + tenant, client: srv.Client()}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the body as a JSON object.
func (r response) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return m
}

// do sends a request to base+path. body is a string (sent as is) or any
// value (sent as JSON). headers are name/value pairs; "Authorization" with
// value "" sends none.
func (e *testEnv) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// want fails the test unless r has the status.
func (e *testEnv) want(r response, status int) response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// createUser POSTs a minimal user and returns its id.
func (e *testEnv) createUser(userName string, extra ...string) string {
	e.t.Helper()
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
	for i := 0; i+1 < len(extra); i += 2 {
		var v any
		if err := json.Unmarshal([]byte(extra[i+1]), &v); err != nil {
			v = extra[i+1]
		}
		body[extra[i]] = v
	}
	return str(e.want(e.do("POST", "/Users", body), http.StatusCreated).obj(e.t)["id"])
}

// createGroup POSTs a group with members and returns its id.
func (e *testEnv) createGroup(displayName string, memberIDs ...string) string {
	e.t.Helper()
	members := []any{}
	for _, id := range memberIDs {
		members = append(members, map[string]any{"value": id})
	}
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": displayName, "members": members}
	return str(e.want(e.do("POST", "/Groups", body), http.StatusCreated).obj(e.t)["id"])
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// path walks a decoded JSON document: keys for objects, indexes for lists.
func path(v any, steps ...any) any {
	for _, s := range steps {
		switch k := s.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func num(v any) int {
	n, _ := v.(json.Number)
	i, _ := n.Int64()
	return int(i)
}

// events lists the tenant's audit events, newest first.
func (e *testEnv) events(types ...string) []storage.Event {
	e.t.Helper()
	var out []storage.Event
	err := e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		out, err = tx.Events(storage.EventQuery{Types: types, Limit: 1000})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *testEnv) user(id string) *storage.User {
	e.t.Helper()
	var u *storage.User
	err := e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		u, err = tx.GetUser(id)
		return err
	})
	if err != nil {
		e.t.Fatalf("GetUser(%s): %v", id, err)
	}
	return u
}

func (e *testEnv) members(groupID string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	err := e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		return tx.Members(groupID, func(m storage.Member) (bool, error) {
			out[m.ID] = m.Type
			return true, nil
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// countingStore is the real store with a count of selected transaction
// calls, so tests can see that the handler uses indexes and touches only
// the memberships it changes.
type countingStore struct {
	storage.Store
	mu     sync.Mutex
	counts map[string]int
}

func (s *countingStore) count(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]int{}
	}
	s.counts[name]++
}

// reset clears the counts and returns the previous ones.
func (s *countingStore) reset() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	s.counts = map[string]int{}
	return c
}

func (s *countingStore) View(ctx context.Context, tenant string, fn func(storage.ReadTx) error) error {
	return s.Store.View(ctx, tenant, func(tx storage.ReadTx) error {
		return fn(&countingReadTx{ReadTx: tx, s: s})
	})
}

func (s *countingStore) Update(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.Store.Update(ctx, tenant, func(tx storage.Tx) error {
		return fn(&countingTx{Tx: tx, r: countingReadTx{ReadTx: tx, s: s}})
	})
}

type countingReadTx struct {
	storage.ReadTx
	s *countingStore
}

func (t *countingReadTx) ScanUsers(after string, fn func(*storage.User) (bool, error)) error {
	t.s.count("ScanUsers")
	return t.ReadTx.ScanUsers(after, fn)
}

func (t *countingReadTx) UserPage(after string, limit int) ([]*storage.User, map[string][]string, error) {
	t.s.count("UserPage")
	return t.ReadTx.UserPage(after, limit)
}

func (t *countingReadTx) ScanGroups(after string, fn func(*storage.Group) (bool, error)) error {
	t.s.count("ScanGroups")
	return t.ReadTx.ScanGroups(after, fn)
}

func (t *countingReadTx) Members(groupID string, fn func(storage.Member) (bool, error)) error {
	t.s.count("Members")
	return t.ReadTx.Members(groupID, fn)
}

type countingTx struct {
	storage.Tx
	r countingReadTx
}

func (t *countingTx) ScanUsers(after string, fn func(*storage.User) (bool, error)) error {
	return t.r.ScanUsers(after, fn)
}

func (t *countingTx) UserPage(after string, limit int) ([]*storage.User, map[string][]string, error) {
	return t.r.UserPage(after, limit)
}

func (t *countingTx) ScanGroups(after string, fn func(*storage.Group) (bool, error)) error {
	return t.r.ScanGroups(after, fn)
}

func (t *countingTx) Members(groupID string, fn func(storage.Member) (bool, error)) error {
	return t.r.Members(groupID, fn)
}

func (t *countingTx) AddMember(groupID string, m storage.Member) (bool, error) {
	t.r.s.count("AddMember")
	return t.Tx.AddMember(groupID, m)
}

func (t *countingTx) RemoveMember(groupID, memberID string) (bool, error) {
	t.r.s.count("RemoveMember")
	return t.Tx.RemoveMember(groupID, memberID)
}

func (t *countingTx) PutGroup(g *storage.Group) error {
	t.r.s.count("PutGroup")
	return t.Tx.PutGroup(g)
}

func newServer(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// q escapes a query parameter value.
func q(s string) string { return url.QueryEscape(s) }
