package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage/postgres/pgtest"
)

// Two real gateway processes on one PostgreSQL database, as behind a load
// balancer without sticky sessions. The tests need a server:
// PORTCULLIS_TEST_DATABASE_URL (.ci/postgres-start starts a throwaway
// one; .ci/run does so before go test). Outside CI they skip without it;
// in CI they fail (pgtest).

// replicaPollInterval is the poll_interval of the test replicas: short,
// so the test of the poll fallback is quick.
const replicaPollInterval = 300 * time.Millisecond

// newTestDatabase is an empty database of the test's own (pgtest).
func newTestDatabase(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts gateway processes")
	}
	return pgtest.NewDatabase(t)
}

// withParam adds a query parameter to a postgres:// URL.
func withParam(t *testing.T, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// replica is one gateway process of the pair.
type replica struct {
	name       string // also its connections' application_name
	gw         gateway
	configFile string
	proc       *gatewaytest.Process
}

// replicaSet is the gateways sharing one database, the IdP they sign in
// with, and the app behind them.
type replicaSet struct {
	dbURL     string
	external  string // the tenant's external_url: the load balancer's address
	oidc      *devidp.Provider
	secret    string
	backend   *gatewaytest.Backend
	scimToken string
	kek       string // every replica's key_encryption_key (hex)
}

// replicaCaddyfile is one replica's config: the tenant is the same on
// every replica (one external_url, one cookie name); only the listen and
// admin addresses differ. The database URL comes from the environment, as
// docs/operations.md recommends.
func (rs *replicaSet) replicaCaddyfile(admin string, port int, storageOptions string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage postgres "{env.PORTCULLIS_DATABASE_URL}" {
			key_encryption_key {env.PORTCULLIS_KEY}
			poll_interval %s
			%s
		}
		tenant acme {
			oidc {
				issuer %s
				client_id portcullis-acme
				client_secret {env.ACME_OIDC_SECRET}
			}
			provisioning scim
			session {
				cookie_name acme_session
			}
			external_url %s
			roles viewer editor
			default_role viewer
		}
	}
}

:%d {
	handle /scim/v2/acme/* {
		scim acme
	}
	handle /sso/* {
		sso acme
	}
	handle {
		identity acme {
			require viewer
		}
		reverse_proxy %s
	}
}
`, admin, replicaPollInterval, storageOptions, rs.oidc.Issuer, rs.external, port, rs.backend.Addr)
}

// newReplicaSet starts the IdP and the app; replicas are started with
// startReplica. dbURL is the database every replica uses.
func newReplicaSet(t *testing.T, dbURL string, externalPort int) *replicaSet {
	t.Helper()
	rs := &replicaSet{dbURL: dbURL, external: fmt.Sprintf("http://127.0.0.1:%d", externalPort)}
	var kek [32]byte
	_, _ = rand.Read(kek[:])
	rs.kek = hex.EncodeToString(kek[:])
	var err error
	rs.oidc, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice Liddell"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.oidc.Close)
	rs.secret = "test-secret-" + fmt.Sprint(time.Now().UnixNano())
	rs.oidc.AddClient("portcullis-acme", rs.secret, []string{rs.external + "/sso/oidc/callback"}, nil)
	rs.backend = gatewaytest.StartBackend(t, nil)
	return rs
}

// startReplica starts a gateway process named name listening on port
// (0: a free one), with dbURL as its database.
func (rs *replicaSet) startReplica(t *testing.T, name string, port int, dbURL, storageOptions string) *replica {
	t.Helper()
	if port == 0 {
		port = gatewaytest.FreePort(t)
	}
	r := &replica{name: name}
	r.gw.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	r.gw.site = fmt.Sprintf("http://127.0.0.1:%d", port)
	r.configFile = gatewaytest.WriteFile(t, t.TempDir(), "Caddyfile", rs.replicaCaddyfile(r.gw.admin, port, storageOptions))
	// The child process reads them when its config loads.
	t.Setenv("PORTCULLIS_DATABASE_URL", withParam(t, dbURL, "application_name", name))
	t.Setenv("ACME_OIDC_SECRET", rs.secret)
	t.Setenv("PORTCULLIS_KEY", rs.kek)
	r.proc = gatewaytest.StartProcess(t, r.configFile, r.gw.admin)
	if err := r.proc.WaitHTTP(r.gw.scimBase("acme") + "/Users"); err != nil {
		t.Fatal(err)
	}
	return r
}

// signIn signs alice in through r (the IdP signs her in without a form)
// and returns her session cookie.
func (rs *replicaSet) signIn(t *testing.T, r *replica) string {
	t.Helper()
	rs.oidc.AutoLogin("alice")
	b := gatewaytest.NewBrowser(t)
	p := b.Get(r.gw.site + "/app/home")
	if p.Status != http.StatusOK {
		t.Fatalf("sign-in through %s landed on %s with %d:\n%s", r.name, p.URL, p.Status, p.Body)
	}
	c := b.Cookie(r.gw.site, "acme_session")
	if c == "" {
		t.Fatalf("no acme_session cookie after signing in through %s", r.name)
	}
	return c
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// visit requests path on r with the session cookie and returns the
// status and the Retry-After header.
func visit(t *testing.T, r *replica, path, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.gw.site+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "acme_session", Value: cookie})
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// setActiveThrough PATCHes a user's active flag through r.
func setActiveThrough(t *testing.T, r *replica, token, id string, active bool) {
	t.Helper()
	a := call(t, http.MethodPatch, r.gw.scimBase("acme")+"/Users/"+id, token, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "path": "active", "value": active}},
	})
	expect(t, a, http.StatusOK, fmt.Sprintf("PATCH active=%v through %s", active, r.name))
}

// revocationDelay signs alice in through a, deactivates her through b,
// and returns the time from b's acknowledgement to the answer of the first
// request a refused. Requests to a follow each other back to back.
func (rs *replicaSet) revocationDelay(t *testing.T, a, b *replica, aliceID string, bound time.Duration) time.Duration {
	t.Helper()
	setActiveThrough(t, b, rs.scimToken, aliceID, true)
	cookie := rs.signIn(t, a)
	// Warm a's cache: the refusal must come from invalidation, not a miss.
	for range 2 {
		if st, _ := visit(t, a, "/app/home", cookie); st != http.StatusOK {
			t.Fatalf("signed-in request on %s: %d", a.name, st)
		}
	}
	setActiveThrough(t, b, rs.scimToken, aliceID, false)
	return refusedAfter(t, a, cookie, time.Now(), bound, "the deactivated user")
}

// refusedAfter requests a page on r with the cookie, back to back, until
// r refuses it, and returns the time from since (a write acknowledged by
// another replica) to that refusal's answer. It fails the test if r still
// lets the caller in after bound.
func refusedAfter(t *testing.T, r *replica, cookie string, since time.Time, bound time.Duration, who string) time.Duration {
	t.Helper()
	for i := 0; ; i++ {
		st, _ := visit(t, r, "/app/home", cookie)
		switch st {
		case http.StatusOK:
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusFound, 499:
			// The session was ended with the change (401, or 302 to
			// sign in for a page), or the user refused (403); or the
			// request was already in flight when r saw the change and
			// r ended it there (its live requests end with the
			// session's access; reverse_proxy then answers 499).
			return time.Since(since)
		default:
			t.Fatalf("request of %s on %s: %d", who, r.name, st)
		}
		if d := time.Since(since); d > bound || i > 100000 {
			t.Fatalf("%s still let %s in %v after the change was acknowledged", r.name, who, d)
		}
	}
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cutListener terminates the change-notification connections of the
// replica named name and returns how many it cut. It runs on a goroutine
// of its own, so it reports errors instead of failing the test.
func cutListener(dbURL, name string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, name+"-changefeed").Scan(&n)
	return n, err
}

// revocationSamples is the number of deactivations measured per case.
const revocationSamples = 50

// TestReplicasShareOneDatabase runs two gateway processes on one database:
// SCIM writes alternate between them, a session made on A is honoured by
// B, a deactivation through B is honoured by A on its next request (the
// delay measured over revocationSamples deactivations, with notifications
// healthy and then with A's notification connection cut, when polling
// takes over), and the metrics show which.
func TestReplicasShareOneDatabase(t *testing.T) {
	dbURL := newTestDatabase(t)
	externalPort := gatewaytest.FreePort(t)
	rs := newReplicaSet(t, dbURL, externalPort)
	// A listens on the external address: the IdP sends browsers back
	// there. B is reached directly, as a load balancer would.
	a := rs.startReplica(t, "replica-a", externalPort, dbURL, "")
	b := rs.startReplica(t, "replica-b", 0, dbURL, "")
	rs.scimToken = issueToken(t, a.gw, "acme")
	pair := [2]*replica{a, b}

	var aliceID string
	t.Run("SCIM writes alternate between the replicas", func(t *testing.T) {
		ids := map[string]string{}
		for i := range 20 {
			w, r := pair[i%2], pair[(i+1)%2]
			userName := fmt.Sprintf("alt-%d@acme.example", i)
			created := call(t, http.MethodPost, w.gw.scimBase("acme")+"/Users", rs.scimToken, newUser(userName))
			expect(t, created, http.StatusCreated, "POST through "+w.name)
			var u scimUser
			created.json(t, &u)
			ids[userName] = u.ID
			// The other replica reads it at once, and the same
			// userName is taken there too.
			expect(t, call(t, http.MethodGet, r.gw.scimBase("acme")+"/Users/"+u.ID, rs.scimToken, nil), http.StatusOK, "GET through "+r.name)
			expect(t, call(t, http.MethodPost, r.gw.scimBase("acme")+"/Users", rs.scimToken, newUser(userName)), http.StatusConflict, "duplicate POST through "+r.name)
		}
		var list listResponse
		for _, r := range pair {
			got := call(t, http.MethodGet, r.gw.scimBase("acme")+"/Users?count=100", rs.scimToken, nil)
			expect(t, got, http.StatusOK, "list through "+r.name)
			got.json(t, &list)
			if list.TotalResults != len(ids) {
				t.Fatalf("%s lists %d users, want %d", r.name, list.TotalResults, len(ids))
			}
		}
		alice := call(t, http.MethodPost, b.gw.scimBase("acme")+"/Users", rs.scimToken, newUser("alice@acme.example"))
		expect(t, alice, http.StatusCreated, "POST alice through B")
		var u scimUser
		alice.json(t, &u)
		aliceID = u.ID
	})
	if aliceID == "" {
		t.FailNow()
	}

	t.Run("a sign-in started on B completes on A", func(t *testing.T) {
		// B seals the sign-in flow into a cookie with the tenant's flow
		// key; the IdP sends the browser back to the external address,
		// A, which must open it: the key is shared through the database.
		// (The cookie jar, like a browser, keeps cookies per host, not
		// per port, as behind one balancer address.)
		cookie := rs.signIn(t, b)
		if st, _ := visit(t, a, "/app/home", cookie); st != http.StatusOK {
			t.Fatalf("A answered the session whose sign-in began on B with %d", st)
		}
	})

	t.Run("a session made on A is honoured by B", func(t *testing.T) {
		cookie := rs.signIn(t, a)
		if st, _ := visit(t, b, "/app/home", cookie); st != http.StatusOK {
			t.Fatalf("B answered the session made on A with %d", st)
		}
		// And sign-out on B ends it on A: the session is in the database.
		req, _ := http.NewRequest(http.MethodGet, b.gw.site+"/sso/logout", nil)
		req.AddCookie(&http.Cookie{Name: "acme_session", Value: cookie})
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out through B: %d", resp.StatusCode)
		}
		refusedAfter(t, a, cookie, time.Now(), replicaPollInterval, "a session signed out on B")
	})

	measure := func(t *testing.T, bound time.Duration) (p50, p99, worst time.Duration) {
		delays := make([]time.Duration, 0, revocationSamples)
		for range revocationSamples {
			delays = append(delays, rs.revocationDelay(t, a, b, aliceID, bound))
		}
		slices.Sort(delays)
		return percentile(delays, 0.5), percentile(delays, 0.99), delays[len(delays)-1]
	}

	t.Run("deactivation through B is refused on A's next request", func(t *testing.T) {
		if m := scrapeMetrics(t, a.gw); m.value("portcullis_store_change_feed_listening") != 1 {
			t.Fatalf("A's change feed is not listening:\n%s", m.body)
		}
		// Notifications healthy: the bound is the poll interval (a
		// change must never wait for a poll), not the speed goal, which
		// the logged figures show.
		p50, p99, worst := measure(t, replicaPollInterval)
		t.Logf("cross-replica revocation delay, notifications healthy, %d samples: p50 %v p99 %v max %v",
			revocationSamples, p50, p99, worst)
	})

	t.Run("notification connection cut: polling takes over, then notifications resume", func(t *testing.T) {
		before := scrapeMetrics(t, a.gw)
		// Cut A's listening connection for the whole measurement:
		// terminate it whenever it reconnects.
		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			cuts := 0
			defer func() { done <- cuts }()
			for {
				n, err := cutListener(dbURL, a.name)
				if err != nil {
					t.Errorf("cutting A's notification connection: %v", err)
					return
				}
				cuts += n
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		// Wait for A to notice (it reconnects with backoff and is cut
		// again).
		for deadline := time.Now().Add(10 * time.Second); ; {
			if m := scrapeMetrics(t, a.gw); m.value("portcullis_store_change_feed_listening") == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("A's change feed never stopped listening")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Polling: at most the poll interval, plus a request and a
		// poll's own time on a loaded machine.
		p50, p99, worst := measure(t, replicaPollInterval+time.Second)
		close(stop)
		cuts := <-done
		after := scrapeMetrics(t, a.gw)
		t.Logf("cross-replica revocation delay, A's notifications cut (%d cuts, poll_interval %v), %d samples: p50 %v p99 %v max %v",
			cuts, replicaPollInterval, revocationSamples, p50, p99, worst)
		polls := after.value("portcullis_store_change_feed_polls_total") - before.value("portcullis_store_change_feed_polls_total")
		if polls < 1 {
			t.Fatalf("A made no polls while its notifications were cut:\n%s", after.body)
		}
		// Restored: A listens again and notifications carry the change.
		for deadline := time.Now().Add(10 * time.Second); ; {
			m := scrapeMetrics(t, a.gw)
			if m.value("portcullis_store_change_feed_listening") == 1 && m.value("portcullis_store_change_feed_lag_seconds") == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("A's change feed did not come back:\n%s", m.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		p50, p99, worst = measure(t, replicaPollInterval)
		t.Logf("cross-replica revocation delay after the notification connection was restored: p50 %v p99 %v max %v", p50, p99, worst)
	})
}

// TestReplicaKilledDuringSCIMLoad loads both replicas with SCIM POSTs,
// SIGKILLs one mid-load, and checks through the survivor that every
// acknowledged user is there, whole, and that nothing is half written.
func TestReplicaKilledDuringSCIMLoad(t *testing.T) {
	dbURL := newTestDatabase(t)
	rs := newReplicaSet(t, dbURL, gatewaytest.FreePort(t))
	a := rs.startReplica(t, "replica-a", 0, dbURL, "")
	b := rs.startReplica(t, "replica-b", 0, dbURL, "")
	rs.scimToken = issueToken(t, a.gw, "acme")

	acked, cutOff := scimLoadUntilKill(t, []gateway{a.gw, b.gw}, rs.scimToken, func() { a.proc.Kill(t) })
	if cutOff == 0 {
		t.Fatal("the kill came after the load ended; it must hit requests in flight")
	}
	t.Logf("%d users acknowledged across both replicas; A killed with %d requests cut off", len(acked), cutOff)
	checkUsersWhole(t, b.gw, rs.scimToken, acked)
}

// scimLoadUntilKill POSTs distinct users through the gateways in turn
// (loadWorkers workers, bounded as in TestAcknowledgedWritesSurviveKill),
// calls kill once ackedBeforeKill of them were acknowledged, and goes on
// through the gateways still answering (as a load balancer would) for
// ackedAfterKill more. It returns every acknowledged user (id -> userName)
// and how many requests the kill cut off.
func scimLoadUntilKill(t *testing.T, gws []gateway, token string, kill func()) (map[string]string, int64) {
	t.Helper()
	const ackedAfterKill = 60
	var (
		mu      sync.Mutex
		acked   = map[string]string{}
		nAcked  atomic.Int64
		cutOff  atomic.Int64
		stop    atomic.Bool
		dead    = make([]atomic.Bool, len(gws))
		wg      sync.WaitGroup
		started = time.Now()
	)
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxPostsPerWorker {
				if stop.Load() || time.Since(started) > loadTimeout {
					return
				}
				n := (w + i) % len(gws)
				for k := 0; dead[n].Load() && k < len(gws); k++ {
					n = (n + 1) % len(gws)
				}
				if dead[n].Load() {
					return
				}
				userName := fmt.Sprintf("load-%d-%d", w, i)
				a, err := tryCall(http.MethodPost, gws[n].scimBase("acme")+"/Users", token, newUser(userName))
				if err != nil {
					cutOff.Add(1) // this gateway is gone: the balancer drops it
					dead[n].Store(true)
					continue
				}
				if a.status != http.StatusCreated {
					t.Errorf("POST %s: status %d: %s", userName, a.status, a.body)
					return
				}
				var u scimUser
				if err := json.Unmarshal(a.body, &u); err != nil || u.ID == "" {
					t.Errorf("POST %s: 201 without id: %s", userName, a.body)
					return
				}
				mu.Lock()
				acked[u.ID] = userName
				mu.Unlock()
				nAcked.Add(1)
			}
		}()
	}
	for nAcked.Load() < ackedBeforeKill && time.Since(started) < loadTimeout {
		time.Sleep(5 * time.Millisecond)
	}
	kill()
	for nAcked.Load() < ackedBeforeKill+ackedAfterKill && time.Since(started) < loadTimeout {
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if len(acked) < ackedBeforeKill+ackedAfterKill {
		t.Fatalf("only %d POSTs acknowledged within %v", len(acked), loadTimeout)
	}
	return acked, cutOff.Load()
}

// checkUsersWhole checks through g that every acknowledged user is there
// as posted, and that every stored user is complete and found by its
// userName.
func checkUsersWhole(t *testing.T, g gateway, token string, acked map[string]string) {
	t.Helper()
	users := g.scimBase("acme") + "/Users"
	for id, userName := range acked {
		var u scimUser
		a := call(t, http.MethodGet, users+"/"+id, token, nil)
		expect(t, a, http.StatusOK, "GET acknowledged user "+userName)
		a.json(t, &u)
		if u.ID != id || u.UserName != userName || !u.Active || len(u.Emails) != 1 || u.Emails[0].Value != userName+"@example.com" {
			t.Fatalf("user %s came back as %+v", userName, u)
		}
	}
	listed := 0
	for start, page := 1, 0; ; page++ {
		if page > 100 {
			t.Fatal("listing did not end")
		}
		var list listResponse
		a := call(t, http.MethodGet, fmt.Sprintf("%s?startIndex=%d&count=200", users, start), token, nil)
		expect(t, a, http.StatusOK, "list users")
		a.json(t, &list)
		for _, u := range list.Resources {
			if u.ID == "" || u.UserName == "" || len(u.Emails) != 1 {
				t.Fatalf("incomplete user in listing: %+v", u)
			}
			var found listResponse
			b := call(t, http.MethodGet, users+"?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", u.UserName)), token, nil)
			expect(t, b, http.StatusOK, "filter by userName")
			b.json(t, &found)
			if found.TotalResults != 1 || found.Resources[0].ID != u.ID {
				t.Fatalf("userName %s: index finds %s", u.UserName, b.body)
			}
			listed++
		}
		start += len(list.Resources)
		if len(list.Resources) == 0 || start > list.TotalResults {
			break
		}
	}
	if listed < len(acked) {
		t.Fatalf("listed %d users, fewer than the %d acknowledged", listed, len(acked))
	}
}
