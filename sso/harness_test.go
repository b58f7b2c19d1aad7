package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/html"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const testTenant = "acme"

// testClock is the Service's clock, movable by tests.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// gateway is the application side of a test: a real Badger store, the sso
// Service mounted at /sso, and a protected page at every other path that
// does what the identity handler will do: Lookup, or redirect to sign in.
type gateway struct {
	t      *testing.T
	dir    string
	store  *badgerstore.Store
	clock  *testClock
	cfg    TenantConfig
	server *httptest.Server
	log    *zap.Logger

	// noWait and opts are how start builds the Service: noWait does not
	// wait for the IdP (Prepare and Start instead of New).
	noWait bool
	opts   []Option

	mu      sync.Mutex
	svc     *Service
	handler http.Handler
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	return newGatewayServer(t, httptest.NewServer)
}

// newTLSGateway is a gateway that terminates TLS itself (a test
// certificate: browsers from newBrowserFor trust it).
func newTLSGateway(t *testing.T) *gateway {
	t.Helper()
	return newGatewayServer(t, httptest.NewTLSServer)
}

func newGatewayServer(t *testing.T, serve func(http.Handler) *httptest.Server) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: t.TempDir(), clock: &testClock{}, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	g.openStore()
	g.server = serve(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		g.server.Close()
		g.mu.Lock()
		if g.svc != nil {
			_ = g.svc.Close()
		}
		g.mu.Unlock()
		_ = g.store.Close()
	})
	return g
}

func (g *gateway) openStore() {
	st, err := badgerstore.Open(g.dir, nil)
	if err != nil {
		g.t.Fatalf("open store: %v", err)
	}
	g.store = st
}

// URL is the gateway's base URL.
func (g *gateway) URL() string { return g.server.URL }

// start builds the Service from cfg.
func (g *gateway) start(cfg TenantConfig) {
	g.t.Helper()
	if cfg.Tenant == "" {
		cfg.Tenant = testTenant
	}
	g.cfg = cfg
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := append([]Option{WithClock(g.clock.Now)}, g.opts...)
	var svc *Service
	var err error
	if g.noWait {
		svc, err = Prepare(cfg, g.store, g.log, opts...)
		if err == nil {
			err = svc.Start(ctx)
		}
	} else {
		svc, err = New(ctx, cfg, g.store, g.log, opts...)
	}
	if err != nil {
		g.t.Fatalf("sso.New: %v", err)
	}
	h := svc.Handler("/sso", func(r *http.Request) string {
		switch {
		case cfg.ExternalURL != "":
			return cfg.ExternalURL
		case r.TLS != nil:
			return "https://" + r.Host
		}
		return "http://" + r.Host
	})
	g.mu.Lock()
	g.svc, g.handler = svc, h
	g.mu.Unlock()
}

// restart closes the Service and the store, reopens the store from disk
// and starts a new Service with the same configuration.
func (g *gateway) restart() {
	g.t.Helper()
	g.mu.Lock()
	svc := g.svc
	g.svc, g.handler = nil, nil
	g.mu.Unlock()
	_ = svc.Close()
	if err := g.store.Close(); err != nil {
		g.t.Fatalf("close store: %v", err)
	}
	g.openStore()
	g.start(g.cfg)
}

func (g *gateway) service() *Service {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.svc
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	svc, h := g.svc, g.handler
	g.mu.Unlock()
	if svc == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/sso/") {
		h.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/signed-out" {
		fmt.Fprint(w, "public signed-out page")
		return
	}
	_, user, err := svc.Lookup(r)
	switch {
	case errors.Is(err, ErrNoSession):
		http.Redirect(w, r, svc.LoginURL("/sso", r.URL.RequestURI()), http.StatusFound)
	case errors.Is(err, ErrUserInactive):
		http.Error(w, "inactive", http.StatusForbidden)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		groups := g.groupNames(user.ID)
		fmt.Fprintf(w, "app page %s for %s groups=%s", r.URL.RequestURI(), user.UserName, strings.Join(groups, ","))
	}
}

// groupNames lists the display names of the user's groups, sorted.
func (g *gateway) groupNames(userID string) []string {
	var names []string
	err := g.store.View(context.Background(), testTenant, func(tx storage.ReadTx) error {
		ids, err := tx.GroupsOf(userID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			gr, err := tx.GetGroup(id)
			if err != nil {
				return err
			}
			names = append(names, gr.DisplayName)
		}
		return nil
	})
	if err != nil {
		g.t.Errorf("group names: %v", err)
	}
	sort.Strings(names)
	return names
}

// putUser provisions a user as SCIM would.
func (g *gateway) putUser(u *storage.User) {
	g.t.Helper()
	if u.ID == "" {
		u.ID = storage.NewID()
	}
	if u.Source == "" {
		u.Source = storage.SourceSCIM
	}
	err := g.store.Update(context.Background(), testTenant, func(tx storage.Tx) error { return tx.PutUser(u) })
	if err != nil {
		g.t.Fatalf("put user: %v", err)
	}
}

func (g *gateway) userByName(name string) *storage.User {
	g.t.Helper()
	var u *storage.User
	err := g.store.View(context.Background(), testTenant, func(tx storage.ReadTx) error {
		var err error
		u, err = tx.UserByUserName(name)
		return err
	})
	if err != nil {
		g.t.Fatalf("user %q: %v", name, err)
	}
	return u
}

func (g *gateway) events(types ...string) []storage.Event {
	g.t.Helper()
	var evs []storage.Event
	err := g.store.View(context.Background(), testTenant, func(tx storage.ReadTx) error {
		var err error
		evs, err = tx.Events(storage.EventQuery{Types: types, Limit: 100})
		return err
	})
	if err != nil {
		g.t.Fatalf("events: %v", err)
	}
	return evs
}

// nextRefusalWindow moves the clock past the refusal window, so that the
// next refusal from the test's address is recorded on its own.
func (g *gateway) nextRefusalWindow() { g.clock.Advance(refusalWindow) }

// lastRefusal is the reason of the newest signin.refused event.
func (g *gateway) lastRefusal() string {
	g.t.Helper()
	evs := g.events(storage.EventSignInRefused)
	if len(evs) == 0 {
		g.t.Fatalf("no signin.refused event")
	}
	return evs[0].Reason
}

func (g *gateway) sessionsOf(userID string) []*storage.Session {
	g.t.Helper()
	var out []*storage.Session
	err := g.store.View(context.Background(), testTenant, func(tx storage.ReadTx) error {
		var err error
		out, err = tx.SessionsOf(userID)
		return err
	})
	if err != nil {
		g.t.Fatalf("sessions: %v", err)
	}
	return out
}

// browser is an http.Client with a cookie jar that records every
// response, acting as a person's browser.
type browser struct {
	t      *testing.T
	client *http.Client
	jar    *cookiejar.Jar

	mu        sync.Mutex
	responses []*http.Response
	requests  []*url.URL
}

func newBrowser(t *testing.T) *browser {
	return newBrowserWith(t, http.DefaultTransport)
}

// newBrowserFor is a browser that trusts g's TLS certificate.
func newBrowserFor(t *testing.T, g *gateway) *browser {
	return newBrowserWith(t, g.server.Client().Transport)
}

func newBrowserWith(t *testing.T, base http.RoundTripper) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, jar: jar}
	b.client = &http.Client{Jar: jar, Transport: recorder{b, base}, Timeout: 20 * time.Second}
	return b
}

type recorder struct {
	b    *browser
	base http.RoundTripper
}

func (rt recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(r)
	rt.b.mu.Lock()
	rt.b.requests = append(rt.b.requests, r.URL)
	if err == nil {
		rt.b.responses = append(rt.b.responses, resp)
	}
	rt.b.mu.Unlock()
	return resp, err
}

// stopAt makes the browser stop following redirects at the first URL whose
// path is path (the response carrying that redirect is returned).
func (b *browser) stopAt(path string) {
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == path {
			return http.ErrUseLastResponse
		}
		if len(via) > 15 {
			return errors.New("too many redirects")
		}
		return nil
	}
}

func (b *browser) followAll() { b.client.CheckRedirect = nil }

type page struct {
	status int
	url    *url.URL
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submitForm submits the first form of p with its inputs, overridden by
// fill, the way a browser (or its auto-submit script) would.
func (b *browser) submitForm(p page, fill map[string]string) page {
	b.t.Helper()
	action, values := parseForm(b.t, p.body)
	for k, v := range fill {
		values.Set(k, v)
	}
	target, err := p.url.Parse(action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", action, err)
	}
	return b.post(target.String(), values)
}

// setCookies lists the Set-Cookie headers of every response so far.
func (b *browser) setCookies() []*http.Cookie {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*http.Cookie
	for _, r := range b.responses {
		out = append(out, r.Cookies()...)
	}
	return out
}

// visited lists the URLs requested so far.
func (b *browser) visited() []*url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*url.URL(nil), b.requests...)
}

// cookie returns the jar's cookie name for u, or "".
func (b *browser) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range b.jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// flowCookie is the browser's flow cookie for state, as the jar holds it
// (with the path it was set for).
func (b *browser) flowCookie(g *gateway, state string) *http.Cookie {
	b.t.Helper()
	r := httptest.NewRequest(http.MethodGet, g.URL()+"/", nil)
	name := g.service().flowCookieName(r, state)
	v := b.cookie(g.URL()+"/sso/", name)
	if v == "" {
		b.t.Fatalf("the browser holds no flow cookie %s", name)
	}
	return &http.Cookie{Name: name, Value: v, Path: "/sso/"}
}

// parseForm reads the first <form> of an HTML page: its action and the
// name/value of its inputs.
func parseForm(t *testing.T, body string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse html: %v", err)
	}
	var form *html.Node
	var find func(*html.Node)
	find = func(n *html.Node) {
		if form != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" {
			form = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		t.Fatalf("no form in page:\n%s", body)
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	values := url.Values{}
	var inputs func(*html.Node)
	inputs = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" && attr(n, "type") != "submit" {
			values.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			inputs(c)
		}
	}
	inputs(form)
	return attr(form, "action"), values
}

func mustContain(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: %q does not contain %q", what, got, want)
	}
}
