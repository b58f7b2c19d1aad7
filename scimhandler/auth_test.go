package scimhandler_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

func TestBearerAuth(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"other scheme", "Basic " + e.token, http.StatusUnauthorized},
		{"scheme only", "Bearer", http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("0", 64), http.StatusUnauthorized},
		{"token with a suffix", "Bearer " + e.token + "x", http.StatusUnauthorized},
		{"huge token", "Bearer " + strings.Repeat("a", 8000), http.StatusUnauthorized},
		{"good token", "Bearer " + e.token, http.StatusOK},
		{"scheme in any case", "bEaReR " + e.token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", "/Users", nil, "Authorization", tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == http.StatusUnauthorized {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				if r.header.Get("Content-Type") != "application/scim+json" {
					t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
				}
				b := r.obj(t)
				if b["status"] != "401" || path(b, "schemas", 0) != "urn:ietf:params:scim:api:messages:2.0:Error" {
					t.Errorf("body %s", r.body)
				}
				if strings.Contains(string(r.body), e.token) {
					t.Error("the token is echoed")
				}
			}
		})
	}
	// Every endpoint checks the token first, even unknown ones. (These
	// are failures 7 to 12 from this address: past the burst of 10 they
	// get 429, see TestTokenGuessingIsLimited.)
	for _, p := range []string{"/Users", "/Groups/x", "/ServiceProviderConfig", "/Schemas", "/Bulk", "/nowhere"} {
		if r := e.do("GET", p, nil, "Authorization", ""); r.status != http.StatusUnauthorized && r.status != http.StatusTooManyRequests {
			t.Errorf("GET %s without token: %d", p, r.status)
		}
	}
	// One rejection is recorded (rate-limited), never with the token.
	evs := e.events(storage.EventTokenRejected)
	if len(evs) != 1 {
		t.Errorf("token.rejected events %d, want 1 (rate-limited)", len(evs))
	}
	for _, ev := range evs {
		if strings.Contains(ev.Reason+ev.Before+ev.After, e.token) {
			t.Error("rejection event holds a token")
		}
	}
}

func TestTokenRotateAndDisable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.token
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	fresh, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || len(fresh) != 64 {
		t.Fatalf("rotated token %q", fresh)
	}
	e.want(e.do("GET", "/Users", nil), http.StatusUnauthorized) // old token dies at once
	e.token = fresh
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	// Only the hash is stored.
	_ = e.badger.View(ctx, tenant, func(tx storage.ReadTx) error {
		tok, err := tx.GetSCIMToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Hash != storage.HashSecret(fresh) {
			t.Error("stored hash is not SHA-256 of the token")
		}
		return nil
	})

	if err := scimhandler.DisableToken(ctx, e.badger, tenant, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/Users", "/Groups", "/ServiceProviderConfig"} {
		e.want(e.do("GET", p, nil), http.StatusUnauthorized)
	}
	if err := scimhandler.DisableToken(ctx, e.badger, tenant, "admin"); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	again, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.do("GET", "/Users", nil), http.StatusUnauthorized)
	e.token = again
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	var types []string
	for _, ev := range e.events(storage.EventTokenCreated, storage.EventTokenRotated, storage.EventTokenDisabled) {
		types = append(types, ev.Type)
		if ev.Actor != "admin" || ev.ResourceID == "" {
			t.Errorf("token event %+v", ev)
		}
		for _, tok := range []string{old, fresh, again} {
			if strings.Contains(ev.Before+ev.After+ev.Reason, tok) {
				t.Errorf("token event leaks a token: %+v", ev)
			}
		}
	}
	if got := strings.Join(types, ","); got != "token.created,token.disabled,token.rotated,token.created" {
		t.Errorf("token events %s", got)
	}
}

func TestTenantIsolation(t *testing.T) {
	acme := newEnv(t)
	acme.createUser("alice")
	// A second tenant on the same store with its own handler and token.
	globex, err := scimhandler.New(scimhandler.Config{Tenant: "globex", Store: acme.badger})
	if err != nil {
		t.Fatal(err)
	}
	globexToken, err := scimhandler.IssueToken(context.Background(), acme.badger, "globex", "admin")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/globex/", globex)
	srv := newServer(t, mux)
	g := &testEnv{t: t, badger: acme.badger, token: acme.token, base: srv.URL + "/scim/v2/globex", client: srv.Client()}
	g.want(g.do("GET", "/Users", nil), http.StatusUnauthorized) // acme's token on globex
	g.token = globexToken
	list := g.want(g.do("GET", "/Users", nil), http.StatusOK).obj(t)
	if num(list["totalResults"]) != 0 {
		t.Errorf("globex sees acme's users: %s", list)
	}
	acme.token = globexToken
	acme.want(acme.do("GET", "/Users", nil), http.StatusUnauthorized)
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all loopback), so the handler sees another
// r.RemoteAddr.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// frozenClock is a clock the test moves by hand.
type frozenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *frozenClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTokenGuessingIsLimited: an attacker guessing the SCIM token from one
// address gets 401 for the first 10 failures, then 429 with Retry-After
// and a SCIM error body; the failures are audited with the address and
// counts, never a token; and the IdP's correct token gets 200 throughout,
// from the attacker's own address and from another.
func TestTokenGuessingIsLimited(t *testing.T) {
	e := newEnv(t)
	clock := &frozenClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	scimhandler.SetClock(e.h, clock.Now)
	other := *e
	other.client = clientFrom("127.0.0.2")
	e.want(other.do("GET", "/ServiceProviderConfig", nil), http.StatusOK) // the second address works here

	guesses := make([]string, 30)
	for i := range guesses {
		guesses[i], _ = storage.NewSecret()
	}
	for i, guess := range guesses {
		r := e.do("GET", "/Users", nil, "Authorization", "Bearer "+guess)
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if r.status != want {
			t.Fatalf("guess %d: status %d, want %d: %s", i+1, r.status, want, r.body)
		}
		if want == http.StatusTooManyRequests {
			if ra := r.header.Get("Retry-After"); ra != "6" {
				t.Errorf("guess %d: Retry-After %q, want 6", i+1, ra)
			}
			b := r.obj(t)
			if r.header.Get("Content-Type") != "application/scim+json" || b["status"] != "429" ||
				path(b, "schemas", 0) != "urn:ietf:params:scim:api:messages:2.0:Error" || str(b["detail"]) == "" {
				t.Errorf("guess %d: 429 body %s", i+1, r.body)
			}
		}
		// The IdP, with the right token, is served from either address.
		e.want(e.do("GET", "/Users", nil), http.StatusOK)
		e.want(other.do("GET", "/Users", nil), http.StatusOK)
	}
	// The other address's own failures are its own: 401, not 429.
	e.want(other.do("GET", "/Users", nil, "Authorization", "Bearer "+guesses[0]), http.StatusUnauthorized)
	// A refill after 6 s lets one more failure through as 401.
	clock.advance(6 * time.Second)
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+guesses[1]), http.StatusUnauthorized)
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+guesses[2]), http.StatusTooManyRequests)
	e.want(e.do("POST", "/Users", `{"userName":"still.served"}`), http.StatusCreated)

	// Audit: one token.rejected event a minute, the first naming the
	// address; the next one counts what the minute held.
	evs := e.events(storage.EventTokenRejected)
	if len(evs) != 1 || !strings.Contains(evs[0].Reason, "client 127.0.0.1, answered 401") {
		t.Fatalf("token.rejected events: %+v", evs)
	}
	clock.advance(time.Minute)
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+guesses[3]), http.StatusUnauthorized)
	evs = e.events(storage.EventTokenRejected)
	if len(evs) != 2 {
		t.Fatalf("token.rejected events after a minute: %d, want 2", len(evs))
	}
	// 29 more guesses + 2 after the refill from 127.0.0.1, 1 from
	// 127.0.0.2; 20 + 1 of them were answered 429.
	want := "since the previous token.rejected event, 32 failed attempts from 2 clients (21 of them answered 429) were not recorded"
	if !strings.Contains(evs[0].Reason, want) || !strings.Contains(evs[0].Reason, "client 127.0.0.1") {
		t.Errorf("second token.rejected event: %q\nwant it to say %q", evs[0].Reason, want)
	}
	for _, ev := range evs {
		for _, tok := range append(guesses, e.token) {
			if strings.Contains(ev.Reason+ev.Before+ev.After+ev.Actor, tok) {
				t.Fatalf("token.rejected event holds a token: %+v", ev)
			}
		}
	}
}

// TestClientIPConfig: with Config.ClientIP (how Caddy supplies the client
// address its trusted proxies vouch for), failures are counted per client
// behind the proxy, not per proxy, and an empty answer falls back to
// r.RemoteAddr.
func TestClientIPConfig(t *testing.T) {
	e := newEnv(t, func(c *scimhandler.Config) {
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client-IP") }
	})
	scimhandler.SetClock(e.h, (&frozenClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}).Now)
	wrong := "Bearer " + strings.Repeat("0", 64)
	for i := 0; i < 12; i++ {
		e.do("GET", "/Users", nil, "Authorization", wrong, "X-Test-Client-IP", "203.0.113.7")
	}
	tests := []struct {
		name, auth, clientIP string
		status               int
	}{
		{"limited client", wrong, "203.0.113.7", http.StatusTooManyRequests},
		{"an IPv6 client", wrong, "2001:db8::1", http.StatusUnauthorized},
		{"another client behind the same proxy", wrong, "198.51.100.2", http.StatusUnauthorized},
		{"no client IP: the proxy's address", wrong, "", http.StatusUnauthorized},
		{"the IdP from the limited client", "Bearer " + e.token, "203.0.113.7", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.want(e.do("GET", "/Users", nil, "Authorization", tt.auth, "X-Test-Client-IP", tt.clientIP), tt.status)
		})
	}
	evs := e.events(storage.EventTokenRejected)
	if len(evs) != 1 || !strings.Contains(evs[0].Reason, "client 203.0.113.7") {
		t.Errorf("token.rejected events: %+v", evs)
	}
}
