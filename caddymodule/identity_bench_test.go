package caddymodule

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/sso"
)

// benchIdentityCaddyfile is one tenant with just-in-time users, so a
// browser can sign in without a SCIM push. %[1]s admin, %[2]s store,
// %[3]s issuer, %[4]d site port.
const benchIdentityCaddyfile = `{
	admin %[1]s
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %[2]q
		tenant acme {
			provisioning jit
			oidc {
				issuer %[3]s
				client_id gw-acme
				client_secret {env.PORTCULLIS_TEST_BENCH_SECRET}
			}
			roles viewer editor admin
			default_role viewer
		}
	}
}
:%[4]d {
	handle /sso/* {
		sso acme
	}
	handle {
		identity acme {
			require viewer
		}
		respond "ok"
	}
}
`

// BenchmarkIdentityHandler measures the identity handler's own ServeHTTP
// under a running Caddy, on a cache hit: a signed-in browser's request
// (its session cookie among the site's other cookies, as a browser sends
// them), a real Caddy replacer in the request context (caddyhttp's
// PrepareRequest, as Caddy's server makes it), a next handler that does
// nothing. Each iteration gets a fresh request and replacer, made with the
// timer stopped (the server's cost, not the handler's):
//
//	go test ./caddymodule -run xxx -bench IdentityHandler -benchmem
//
// The cases put the session cookie first, in the middle and last of the
// Cookie line: the gateway's cookie is removed from the request that goes
// on, which costs nothing when the kept cookies are one run of the line
// and one string otherwise.
// startIdentityRoute runs benchIdentityCaddyfile in this process, signs
// alice in, and returns an identity handler (require viewer) provisioned in
// the running config's context, like the one serving the site, and
// alice's session cookie.
func startIdentityRoute(tb testing.TB) (*Identity, string) {
	tb.Helper()
	port := gatewaytest.FreePort(tb)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(tb))
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@acme.test", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Example"},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(idp.Close)
	idp.AddClient("gw-acme", "bench-secret", []string{site + "/sso/oidc/callback"}, nil)
	tb.Setenv("PORTCULLIS_TEST_BENCH_SECRET", "bench-secret")
	gatewaytest.Load(tb, fmt.Sprintf(benchIdentityCaddyfile, admin, filepath.Join(tb.TempDir(), "store"), idp.Issuer, port))

	idp.AutoLogin("alice")
	browser := gatewaytest.NewBrowser(tb)
	if p := browser.Get(site + "/wiki"); p.Status != http.StatusOK {
		tb.Fatalf("sign-in ended with %d at %s", p.Status, p.URL)
	}
	session := browser.Cookie(site, sso.DefaultCookieName)
	if session == "" {
		tb.Fatal("no session cookie after sign-in")
	}
	h := &Identity{Tenant: "acme", Require: "viewer"}
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	return h, session
}

func BenchmarkIdentityHandler(b *testing.B) {
	h, session := startIdentityRoute(b)
	var seen *authz.Identity
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen, _ = authz.IdentityFromContext(r.Context())
		return nil
	})
	// A writer with deadlines, as Caddy's servers hand handlers (the
	// gate follows such a request with no context of its own).
	w := serverWriter{httptest.NewRecorder()}
	sessionPair := sso.DefaultCookieName + "=" + session
	for _, tc := range []struct{ name, cookies string }{
		// baseline is the loop without the handler (next called
		// directly): subtract its process CPU time to get the handler's
		// own from a CPU-time measurement of the whole binary.
		{"baseline", sessionPair + "; _ga=GA1.2.3456789.1234567890; _gid=GA1.2.987654.1234567890; theme=dark; lang=en-GB"},
		// baseline-headers adds five static request headers instead, as
		// the bench's plain site does with request_header: what the
		// request's header map costs to take five more keys, whoever
		// adds them.
		{"baseline-headers", sessionPair + "; _ga=GA1.2.3456789.1234567890; _gid=GA1.2.987654.1234567890; theme=dark; lang=en-GB"},
		{"session-first", sessionPair + "; _ga=GA1.2.3456789.1234567890; _gid=GA1.2.987654.1234567890; theme=dark; lang=en-GB"},
		{"session-middle", "_ga=GA1.2.3456789.1234567890; _gid=GA1.2.987654.1234567890; " + sessionPair + "; theme=dark; lang=en-GB"},
		{"session-last", "_ga=GA1.2.3456789.1234567890; _gid=GA1.2.987654.1234567890; theme=dark; lang=en-GB; " + sessionPair},
	} {
		b.Run(tc.name, func(b *testing.B) {
			newRequest := func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/wiki/page?rev=3", nil)
				r.Header.Set("Accept", "text/html,application/xhtml+xml")
				r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
				r.Header.Set("Accept-Language", "en-GB,en;q=0.5")
				r.Header.Set("Accept-Encoding", "gzip, deflate, br")
				r.Header.Set("Cookie", tc.cookies)
				repl := caddy.NewReplacer()
				return caddyhttp.PrepareRequest(r, repl, w, nil)
			}
			serve := h.ServeHTTP
			switch tc.name {
			case "baseline":
				serve = func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
					return next.ServeHTTP(w, r)
				}
			case "baseline-headers":
				serve = func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
					for _, k := range [...]string{"X-Static-1", "X-Static-2", "X-Static-3", "X-Static-4", "X-Static-5"} {
						r.Header[k] = staticValue
					}
					return next.ServeHTTP(w, r)
				}
			}
			// Warm the cache, and check the placeholders and the cookie.
			r := newRequest()
			if err := h.ServeHTTP(w, r, next); err != nil || seen == nil {
				b.Fatalf("refused: %v %d %s", err, w.Code, w.Body)
			}
			repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			if got := repl.ReplaceAll("{http.auth.user.id} {portcullis.user.role}", ""); got != "alice@acme.test viewer" {
				b.Fatalf("placeholders: %q", got)
			}
			if c := r.Header.Get("Cookie"); c == "" || len(c) >= len(tc.cookies) {
				b.Fatalf("the session cookie went on: %q", c)
			}
			b.ReportAllocs()
			b.ResetTimer()
			// Requests are made in batches with the timer stopped
			// (stopping it for each would cost more than the handler).
			const batch = 512
			reqs := make([]*http.Request, 0, batch)
			for i := 0; i < b.N; i++ {
				if len(reqs) == 0 {
					b.StopTimer()
					for range min(batch, b.N-i) {
						reqs = append(reqs, newRequest())
					}
					b.StartTimer()
				}
				r := reqs[len(reqs)-1]
				reqs = reqs[:len(reqs)-1]
				if err := serve(w, r, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIdentityPlaceholders checks the replacer an identity route leaves:
// every placeholder answers, a value an earlier handler set (basic_auth's
// user id, an earlier identity route) is overridden, and a handler after
// it (vars http.auth.user.id) still overrides it.
func TestIdentityPlaceholders(t *testing.T) {
	h, session := startIdentityRoute(t)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	serve := func(before func(*caddy.Replacer)) *caddy.Replacer {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/page", nil)
		r.Header.Set("Cookie", "app=1; "+sso.DefaultCookieName+"="+session)
		repl := caddy.NewReplacer()
		r = caddyhttp.PrepareRequest(r, repl, w, nil)
		if before != nil {
			before(repl)
		}
		if err := h.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
			t.Fatalf("refused: %v %d", err, w.Code)
		}
		if got := r.Header.Get("Cookie"); got != "app=1" {
			t.Errorf("Cookie going on: %q", got)
		}
		return repl
	}
	const all = "{http.auth.user.id}|{portcullis.tenant}|{portcullis.user.name}|{portcullis.user.email}|{portcullis.user.display_name}|{portcullis.user.role}"
	const want = "alice@acme.test|acme|alice@acme.test|alice@acme.test|Alice Example|viewer"
	tests := []struct {
		name   string
		before func(*caddy.Replacer)
	}{
		{"fresh request", nil},
		{"basic_auth ran first", func(r *caddy.Replacer) { r.Set(authz.PlaceholderAuthUserID, "basic-user") }},
		{"another identity route ran first", func(r *caddy.Replacer) {
			r.Map(func(key string) (any, bool) {
				if key == authz.PlaceholderTenant || key == authz.PlaceholderRole {
					return "other", true
				}
				return nil, false
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repl := serve(tt.before)
			if got := repl.ReplaceAll(all, "-"); got != want {
				t.Errorf("placeholders %q, want %q", got, want)
			}
			repl.Set(authz.PlaceholderAuthUserID, "from-vars")
			if got, _ := repl.GetString(authz.PlaceholderAuthUserID); got != "from-vars" {
				t.Errorf("a later Set of the user id: %q", got)
			}
		})
	}
}

// serverWriter is a recorder with the deadline methods net/http's HTTP/1
// and HTTP/2 response writers have (nothing is revoked in a benchmark, so
// they only need to exist).
type serverWriter struct{ *httptest.ResponseRecorder }

func (serverWriter) SetReadDeadline(time.Time) error  { return nil }
func (serverWriter) SetWriteDeadline(time.Time) error { return nil }

// staticValue is the value of baseline-headers' static headers.
var staticValue = []string{"static"}
