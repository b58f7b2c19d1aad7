package console

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// fixture is a console over a real Badger store, for tenant acme.
type fixture struct {
	t     *testing.T
	h     *Handler
	store storage.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc, err := operator.New(operator.Config{Tenant: "acme", Store: st, Roles: authz.Roles{
		Levels: []string{"viewer", "editor", "admin"}, Default: "viewer",
		Mappings: []authz.GroupMapping{{Group: "Admins", Role: "admin"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Prefix: "/portcullis", Tenants: []Tenant{{
		Name: "acme", Store: st,
		Operator: func(context.Context) (Operator, error) { return svc, nil },
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, h: h, store: st}
}

// request is one request to the console.
type request struct {
	method, path string
	user         string // signed-in userName; "" none
	form         url.Values
	header       map[string]string
	cookie       string // the console cookie's value; "" none
}

func (f *fixture) do(rq request) *httptest.ResponseRecorder {
	f.t.Helper()
	var body *strings.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(rq.method, "http://gw.test"+rq.path, body)
	if rq.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	if rq.cookie != "" {
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: rq.cookie})
	}
	if rq.user != "" {
		r = r.WithContext(authz.ContextWithIdentity(r.Context(), &authz.Identity{Tenant: "acme", UserName: rq.user}))
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// session opens a page as user and returns the console cookie it set and
// the form token for it.
func (f *fixture) session(user string) (cookie, token string) {
	f.t.Helper()
	w := f.do(request{method: "GET", path: "/portcullis/", user: user})
	if w.Code != http.StatusOK {
		f.t.Fatalf("home: %d\n%s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == csrfCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/portcullis/" {
				f.t.Errorf("console cookie %+v: want HttpOnly, SameSite=Strict, Path=/portcullis/", c)
			}
			return c.Value, f.h.csrf.sign(c.Value, user)
		}
	}
	f.t.Fatal("the console set no cookie")
	return "", ""
}

// TestCSRF: a form post is accepted only with the token of this browser's
// cookie and this user, from the console's own origin.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	cookie, token := f.session("root")
	_, otherToken := f.session("mallory")
	const path = "/portcullis/acme/token/disable"
	same := map[string]string{"Origin": "http://gw.test", "Sec-Fetch-Site": "same-origin"}
	tests := []struct {
		name   string
		rq     request
		status int
	}{
		{"no token", request{form: url.Values{}, cookie: cookie, header: same}, http.StatusForbidden},
		{"wrong token", request{form: url.Values{"csrf": {"x" + token[1:]}}, cookie: cookie, header: same}, http.StatusForbidden},
		{"another user's token", request{form: url.Values{"csrf": {otherToken}}, cookie: cookie, header: same}, http.StatusForbidden},
		{"no cookie", request{form: url.Values{"csrf": {token}}, header: same}, http.StatusForbidden},
		{"foreign Origin", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: map[string]string{"Origin": "https://evil.test"}}, http.StatusForbidden},
		{"null Origin", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: map[string]string{"Origin": "null"}}, http.StatusForbidden},
		{"cross-site fetch", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{"same-site other origin", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: map[string]string{"Origin": "http://other.gw.test", "Sec-Fetch-Site": "same-site"}}, http.StatusForbidden},
		{"not signed in", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: same, user: "-"}, http.StatusForbidden},
		{"good", request{form: url.Values{"csrf": {token}}, cookie: cookie, header: same}, http.StatusSeeOther},
		{"good without Origin (not a browser)", request{form: url.Values{"csrf": {token}}, cookie: cookie}, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rq := tc.rq
			rq.method, rq.path = http.MethodPost, path
			switch rq.user {
			case "":
				rq.user = "root"
			case "-":
				rq.user = ""
			}
			w := f.do(rq)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.status, w.Body)
			}
		})
	}
}

// TestRefusedPostChangesNothing: a refused post does not reach the store.
func TestRefusedPostChangesNothing(t *testing.T) {
	f := newFixture(t)
	if _, err := scimhandler.IssueToken(context.Background(), f.store, "acme", "test"); err != nil {
		t.Fatal(err)
	}
	cookie, token := f.session("root")
	w := f.do(request{method: "POST", path: "/portcullis/acme/token/disable", user: "root", cookie: cookie,
		form: url.Values{"csrf": {token}}, header: map[string]string{"Origin": "https://evil.test"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "another site") {
		t.Fatalf("status %d\n%s", w.Code, w.Body)
	}
	err := f.store.View(context.Background(), "acme", func(tx storage.ReadTx) error {
		_, err := tx.GetSCIMToken()
		return err
	})
	if err != nil {
		t.Fatalf("the token is gone after a refused post: %v", err)
	}
}

// TestPagesHeaders: every answer carries the strict policy, and the
// token page's script is the one the policy allows by hash.
func TestPagesHeaders(t *testing.T) {
	f := newFixture(t)
	cookie, token := f.session("root")
	w := f.do(request{method: "POST", path: "/portcullis/acme/token/rotate", user: "root", cookie: cookie,
		form: url.Values{"csrf": {token}}, header: map[string]string{"Origin": "http://gw.test"}})
	if w.Code != http.StatusOK {
		t.Fatalf("rotate: %d\n%s", w.Code, w.Body)
	}
	csp := w.Header().Get("Content-Security-Policy")
	sum := sha256.Sum256([]byte(copyJS))
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(w.Body.String(), "<script>"+copyJS+"</script>") {
		t.Errorf("the page's script is not the hashed one:\n%s", w.Body)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("token page Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	if !strings.Contains(w.Body.String(), `id="token" readonly value="`) {
		t.Errorf("no token on the page:\n%s", w.Body)
	}
	for _, tc := range []struct {
		name, path string
		user       string
		status     int
	}{
		{"home", "/portcullis/", "root", 200},
		{"bare prefix", "/portcullis", "root", 302},
		{"unknown tenant", "/portcullis/globex/users", "root", 404},
		{"unknown page", "/portcullis/acme/nope", "root", 404},
		{"no identity", "/portcullis/", "", 403},
		{"bad export format", "/portcullis/acme/events/export?format=xml", "root", 400},
		{"bad time filter", "/portcullis/acme/events?since=yesterday", "root", 400},
		{"time filter out of range", "/portcullis/acme/events?since=2999-01-01T00:00", "root", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(request{method: "GET", path: tc.path, user: tc.user})
			if w.Code != tc.status {
				t.Errorf("status %d, want %d\n%s", w.Code, tc.status, w.Body)
			}
			if w.Header().Get("Content-Security-Policy") != consoleCSP || w.Header().Get("X-Frame-Options") != "DENY" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}

// TestEventsExport: the events page and its CSV and JSON Lines downloads
// show the same filtered events, streamed from the store.
func TestEventsExport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 3 {
		if _, err := scimhandler.IssueToken(ctx, f.store, "acme", "=cmd|calc"); err != nil {
			t.Fatal(err)
		}
	}
	if err := scimhandler.DisableToken(ctx, f.store, "acme", "root"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		lines      int      // body lines (CSV: with the header)
		want       []string // in the body
		absent     []string
	}{
		{"page", "/portcullis/acme/events", -1, []string{"token.created", "token.rotated", "token.disabled"}, nil},
		{"page by type", "/portcullis/acme/events?type=token.disabled", -1, []string{"token.disabled"}, []string{">token.rotated<"}},
		{"csv", "/portcullis/acme/events/export?format=csv", 5, []string{"id,time,type,actor", "'=cmd|calc"}, nil},
		{"csv by type", "/portcullis/acme/events/export?format=csv&type=token.rotated", 3, []string{"token.rotated"}, []string{"token.created", "token.disabled"}},
		{"jsonl", "/portcullis/acme/events/export?format=jsonl", 4, []string{`"type":"token.disabled"`}, nil},
		{"jsonl in the future", "/portcullis/acme/events/export?format=jsonl&since=2199-01-01T00:00", 0, nil, []string{"token"}},
		{"jsonl until the start", "/portcullis/acme/events/export?format=jsonl&until=2000-01-01T00:00", 0, nil, []string{"token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(request{method: "GET", path: tc.path, user: "root"})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d\n%s", w.Code, w.Body)
			}
			body := w.Body.String()
			if tc.lines >= 0 {
				if n := strings.Count(body, "\n"); n != tc.lines {
					t.Errorf("%d lines, want %d:\n%s", n, tc.lines, body)
				}
				if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=\"portcullis-acme-events-") {
					t.Errorf("Content-Disposition %q", cd)
				}
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(body, s) {
					t.Errorf("body has %q:\n%s", s, body)
				}
			}
		})
	}
}
