package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL column: the same gateway configuration with the shared
// store, in a database of its own created for the run and dropped after
// it, and a second gateway process on that database for the cross-replica
// revocation delay.

// testDatabaseEnv names the server the tests use (.ci/postgres-start sets
// it); the column runs against it when -postgres is not given.
const testDatabaseEnv = "PORTCULLIS_TEST_DATABASE_URL"

// pgPollInterval is the replicas' poll fallback: the revocation delay is
// bounded by it even if notifications were lost, so a sample far above the
// notification path's goal shows up as about this much.
const pgPollInterval = "1s"

// revocationSamples is how many users are signed in on replica A and
// deactivated through replica B.
const revocationSamples = 30

// revokedName is the userName of the i-th cross-replica revocation sample.
func revokedName(i int) string { return fmt.Sprintf("revoked%02d@bench.example", i) }

// postgresResults is the PostgreSQL column, as saved in JSON.
type postgresResults struct {
	Proxy *proxyResults `json:"proxy,omitempty"`
	// ProxyCache is replica A's identity cache over the proxy comparison
	// (sign-ins and warm-up included).
	ProxyCache  *identityCache    `json:"proxy_identity_cache,omitempty"`
	SCIMPost1   loadResult        `json:"scim_post_users_c1"`
	SCIMPost16  loadResult        `json:"scim_post_users_c16"`
	Filter      loadResult        `json:"filter_username_eq"`
	UsersStored int               `json:"users_stored"`
	LoadSeconds float64           `json:"load_seconds"`
	RSSMiB      float64           `json:"rss_mib"`
	Revocation  *revocationResult `json:"cross_replica_revocation"`
}

// revocationResult is the delay from replica B's 2xx to a SCIM
// deactivation to replica A's first refusal of that user.
type revocationResult struct {
	Samples       int            `json:"samples"`
	P50ms         float64        `json:"p50_ms_after_2xx"`
	P99ms         float64        `json:"p99_ms_after_2xx"`
	MaxMs         float64        `json:"max_ms_after_2xx"`
	FromSendP50ms float64        `json:"p50_ms_from_patch_sent"`
	PollInterval  string         `json:"poll_interval"`
	RefusedWith   map[string]int `json:"refused_with"`
}

// postgresServer is the server URL the column runs against, or "".
func postgresServer(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(testDatabaseEnv)
}

// redactedURL is u without its password, for the saved flags.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}

// createDatabase makes an empty database on server for this run and
// returns its URL and how to drop it.
func createDatabase(server string) (string, func(), error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("-postgres must be a postgres:// URL")
	}
	name := "portcullis_bench_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to the PostgreSQL server: %w", err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("CREATE DATABASE: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.Connect(ctx, server)
		if err != nil {
			logf("postgres: connecting to drop %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			logf("postgres: DROP DATABASE %s: %v", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// runPostgres measures the PostgreSQL column: replica A takes the load,
// replica B (another process on the same database) the deactivations.
func runPostgres(o options, bin, backend string) (*postgresResults, error) {
	dbURL, drop, err := createDatabase(postgresServer(o.pgURL))
	if err != nil {
		return nil, err
	}
	defer drop()
	if strings.ContainsAny(dbURL, "\"\n\\") {
		return nil, errors.New("the PostgreSQL URL must not hold quotes, backslashes or newlines (it goes into a Caddyfile)")
	}
	dir, err := os.MkdirTemp("", "portcullis-bench-pg-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		logf("keeping %s", dir)
	}
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	storage := fmt.Sprintf("storage postgres \"%s\" {\n\t\t\tkey_encryption_key %s\n\t\t\tpoll_interval %s\n\t\t}",
		dbURL, randomHex(32), pgPollInterval)

	a, err := newBenchEnv(dirA, backend, o.sessions)
	if err != nil {
		return nil, err
	}
	defer a.idp.Close()
	a.storage = storage
	// Replica B: the same configuration (tenant, provider, key) on ports
	// of its own.
	b := *a
	b.dir = dirB
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	b.adminURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	b.gatewayURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	b.plainURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	b.matchedURL = fmt.Sprintf("http://127.0.0.1:%d", ports[3])

	gwA, err := startGateway(bin, dirA, a.caddyfile(), a.adminURL+"/config/")
	if err != nil {
		return nil, fmt.Errorf("replica A: %w", err)
	}
	defer gwA.stop()
	gwB, err := startGateway(bin, dirB, b.caddyfile(), b.adminURL+"/config/")
	if err != nil {
		return nil, fmt.Errorf("replica B: %w", err)
	}
	defer gwB.stop()
	scimA, err := newSCIMClient(a.adminURL, a.gatewayURL, benchTenant)
	if err != nil {
		return nil, err
	}
	// The token lives in the shared database: B takes the one A made.
	scimB := *scimA
	scimB.base = b.gatewayURL + "/scim/v2/" + benchTenant

	res := &postgresResults{}
	if !o.skipProxy {
		logf("postgres: proxy: Portcullis vs plain reverse_proxy, %d rounds × %d requests at c=%d", o.rounds, o.proxyReqs, o.concurrency)
		po := o
		po.profile = ""
		before, err := readIdentityCache(a.adminURL)
		if err != nil {
			return nil, err
		}
		if res.Proxy, err = a.compareProxy(gwA, scimA, po); err != nil {
			return nil, err
		}
		after, err := readIdentityCache(a.adminURL)
		if err != nil {
			return nil, err
		}
		c := after.since(before)
		res.ProxyCache = &c
	}

	var next atomic.Uint64
	logf("postgres: SCIM: POST /Users at c=1 and c=%d", o.concurrency)
	if res.SCIMPost1, err = runLoad("pg-post-c1", scimA.userTargeter(&next), 1, uint64(o.scimPosts), o.maxRun, gwA.pid()); err != nil {
		return nil, err
	}
	if res.SCIMPost16, err = runLoad("pg-post-c16", scimA.userTargeter(&next), o.concurrency, uint64(o.scimPosts), o.maxRun, gwA.pid()); err != nil {
		return nil, err
	}
	if o.only == onlySCIMPost {
		return res, nil
	}

	logf("postgres: SCIM: storing %d users", o.pgUsers)
	start := time.Now()
	for stored := int(next.Load()); stored < o.pgUsers; stored = int(next.Load()) {
		// Bounded runs of the same load, until the count is reached.
		if _, err := runLoad("pg-fill", scimA.userTargeter(&next), o.concurrency, uint64(min(20000, o.pgUsers-stored)), 5*time.Minute, 0); err != nil {
			return nil, err
		}
	}
	res.UsersStored = int(next.Load())
	res.LoadSeconds = time.Since(start).Seconds()

	logf("postgres: SCIM: %d lookups by userName eq among %d users", o.lookups, res.UsersStored)
	if res.Filter, err = runLoad("pg-filter", scimA.filterTargeter(uint64(res.UsersStored)), 1, uint64(o.lookups), o.maxRun, gwA.pid()); err != nil {
		return nil, err
	}
	if res.RSSMiB, err = residentMiB(gwA.pid()); err != nil {
		return nil, err
	}

	logf("postgres: cross-replica revocation: signed in on A, deactivated through B, %d samples", revocationSamples)
	if res.Revocation, err = measureCrossReplica(a, scimA, &scimB); err != nil {
		return nil, err
	}
	return res, nil
}

// measureCrossReplica signs each sample's user in on replica a, keeps
// requesting a protected page there, deactivates the user through
// replica B's SCIM endpoint (scimB) and times B's 2xx to a's first refusal.
func measureCrossReplica(a *benchEnv, scimA, scimB *scimClient) (*revocationResult, error) {
	res := &revocationResult{Samples: revocationSamples, PollInterval: pgPollInterval, RefusedWith: map[string]int{}}
	var afterAck, fromSend []time.Duration
	for i := 0; i < revocationSamples; i++ {
		cookie, id, err := a.signIn(scimA, revokedName(i), revokedName(i))
		if err != nil {
			return nil, err
		}
		deactivate := func() error {
			_, err := scimB.do(http.MethodPatch, "/Users/"+id, map[string]any{
				"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}},
			}, nil)
			return err
		}
		r, err := timeRefusal(a.gatewayURL, cookie, deactivate)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		afterAck = append(afterAck, r.refused.Sub(r.acked))
		fromSend = append(fromSend, r.refused.Sub(r.sent))
		res.RefusedWith[fmt.Sprint(r.status)]++
	}
	res.P50ms, res.P99ms = quantiles(afterAck)
	res.MaxMs = ms(afterAck[len(afterAck)-1]) // quantiles sorted them
	res.FromSendP50ms, _ = quantiles(fromSend)
	return res, nil
}

// refusalTiming is when a deactivation was sent and acknowledged, and when
// the gateway first refused the user afterwards (with which status).
type refusalTiming struct {
	sent, acked, refused time.Time
	status               int
}

// timeRefusal requests gatewayURL/ with cookie back to back (it must be
// served first), runs deactivate while it does, and returns the timings.
// Bounded: the user must be refused within 15 s.
func timeRefusal(gatewayURL, cookie string, deactivate func() error) (refusalTiming, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	type refusal struct {
		at     time.Time
		status int
		err    error
	}
	started := make(chan struct{})
	done := make(chan refusal, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for polls := 1; time.Now().Before(deadline); polls++ {
			req, _ := http.NewRequest(http.MethodGet, gatewayURL+"/", nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "text/html")
			resp, err := client.Do(req)
			if err != nil {
				done <- refusal{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if polls == 1 {
				if resp.StatusCode != http.StatusOK {
					done <- refusal{err: fmt.Errorf("signed-in user got %d before deactivation", resp.StatusCode)}
					return
				}
				close(started)
			}
			if resp.StatusCode != http.StatusOK {
				done <- refusal{at: time.Now(), status: resp.StatusCode}
				return
			}
		}
		done <- refusal{err: errors.New("user still served 15 s after deactivation")}
	}()
	select {
	case <-started:
	case r := <-done:
		return refusalTiming{}, r.err
	}
	time.Sleep(50 * time.Millisecond) // let the poller run in its steady state
	t := refusalTiming{sent: time.Now()}
	if err := deactivate(); err != nil {
		<-done // bounded by the poller's deadline
		return refusalTiming{}, err
	}
	t.acked = time.Now()
	r := <-done
	if r.err != nil {
		return refusalTiming{}, r.err
	}
	if r.at.Before(t.acked) {
		// Refused before the 2xx reached us: no delay after it.
		r.at = t.acked
	}
	t.refused, t.status = r.at, r.status
	return t, nil
}

// sortedCodes formats a status-code count map in a stable order.
func sortedCodes(m map[string]int) string {
	var parts []string
	for c, n := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
