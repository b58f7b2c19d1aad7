package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// metricsCaddyfile is a quick-start-like gateway with Caddy's metrics on:
// one tenant signing in with OIDC, an app route, an admin-only route and a
// route to a streaming backend.
const metricsCaddyfile = `{
	admin {ADMIN}
	persist_config off
	default_bind 127.0.0.1
	metrics
	portcullis {
		storage badger {STORE}
		# A tenant of its own: the collectors live as long as the process,
		# and other tests of the package count under their tenants.
		tenant metered {
			oidc {
				issuer {ISSUER}
				client_id portcullis-metered
				client_secret {SECRET}
			}
			session {
				cookie_name metered_session
			}
			roles viewer editor admin
			map_group "Engineering" editor
			map_group "IT Admins" admin
		}
	}
}

:{PORT} {
	handle /scim/v2/metered/* {
		scim metered
	}
	handle /sso/* {
		sso metered
	}
	handle /admin/* {
		identity metered {
			require admin
			route admin-pages
		}
		reverse_proxy {BACKEND}
	}
	handle /events/* {
		identity metered {
			route events
		}
		reverse_proxy {STREAM} {
			flush_interval -1
		}
	}
	handle {
		identity metered {
			require viewer
			route app
		}
		reverse_proxy {BACKEND}
	}
}
`

// TestMetricsWalkthrough runs the quick start's steps against a real Caddy
// with metrics on, scrapes the admin API's /metrics and checks the series:
// SCIM writes and a refused token, sign-ins, the gate's decisions per
// route, the identity cache, a live request ended by a deactivation and
// the deprovisioning-to-session-end histogram; then reloads the config and
// checks that the counters go on.
func TestMetricsWalkthrough(t *testing.T) {
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@metered.example", Email: "alice@metered.example", EmailVerified: true, Name: "Alice Liddell"},
		{Subject: "bob", PreferredUsername: "bob@metered.example", Email: "bob@metered.example", EmailVerified: true, Name: "Bob Builder"},
		{Subject: "carol", PreferredUsername: "carol@metered.example", Email: "carol@metered.example", EmailVerified: true, Name: "Carol"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	port := gatewaytest.FreePort(t)
	g := gateway{admin: fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)), site: fmt.Sprintf("http://127.0.0.1:%d", port)}
	secret := fmt.Sprintf("secret-%d", time.Now().UnixNano())
	idp.AddClient("portcullis-metered", secret, []string{g.site + "/sso/oidc/callback"}, []string{g.site + "/"})
	backend := gatewaytest.StartBackend(t, nil)
	stream := startStreamingBackend(t)

	cf := strings.NewReplacer("{ADMIN}", g.admin, "{STORE}", strconv.Quote(filepath.Join(t.TempDir(), "store")),
		"{ISSUER}", idp.Issuer, "{SECRET}", secret, "{PORT}", strconv.Itoa(port),
		"{BACKEND}", backend.Addr, "{STREAM}", stream).Replace(metricsCaddyfile)
	gatewaytest.Load(t, cf)

	// Step 1: mint the SCIM token; step 2: the IdP pushes users and a group.
	token := issueToken(t, g, "metered")
	create := func(kind string, body map[string]any) string {
		t.Helper()
		a := call(t, http.MethodPost, g.scimBase("metered")+"/"+kind, token, body)
		expect(t, a, http.StatusCreated, "SCIM POST /"+kind)
		var res struct{ ID string }
		a.json(t, &res)
		return res.ID
	}
	aliceID := create("Users", scimUserBody("alice@metered.example", "Alice Liddell", true))
	bobID := create("Users", scimUserBody("bob@metered.example", "Bob Builder", true))
	create("Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]any{{"value": aliceID}},
	})
	expect(t, call(t, http.MethodGet, g.scimBase("metered")+"/Users", "not-the-token", nil), http.StatusUnauthorized, "wrong token")

	// Step 3: sign in through the IdP and open the app; an admin page is
	// denied; carol is not provisioned.
	idp.AutoLogin("alice")
	alice := gatewaytest.NewBrowser(t)
	if p := alice.Get(g.site + "/app/page"); p.Status != http.StatusOK {
		t.Fatalf("alice's app page: %d %s", p.Status, p.Body)
	}
	alice.Get(g.site + "/app/other") // served from the identity cache
	if p := alice.Get(g.site + "/admin/users"); p.Status != http.StatusForbidden {
		t.Fatalf("alice's admin page: %d", p.Status)
	}
	idp.AutoLogin("bob")
	bob := gatewaytest.NewBrowser(t)
	if p := bob.Get(g.site + "/app/page"); p.Status != http.StatusOK {
		t.Fatalf("bob's app page: %d", p.Status)
	}
	idp.AutoLogin("carol")
	if p := gatewaytest.NewBrowser(t).Get(g.site + "/app/page"); p.Status != http.StatusForbidden {
		t.Fatalf("carol (not provisioned): %d", p.Status)
	}
	anon := gatewaytest.NewBrowser(t)
	anon.StopRedirects()
	if p := anon.Get(g.site + "/app/page"); p.Status != http.StatusFound {
		t.Fatalf("anonymous: %d", p.Status)
	}

	// Step 4: alice keeps an event stream open; the IdP deactivates her:
	// the stream ends. Bob is deleted; his next request is refused.
	events := openEventStream(t, g.site+"/events/feed", alice.Cookie(g.site, "metered_session"))
	patch := map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "path": "active", "value": false}},
	}
	expect(t, call(t, http.MethodPatch, g.scimBase("metered")+"/Users/"+aliceID, token, patch), http.StatusOK, "deactivating alice")
	if err := readUntilEnd(events, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, http.MethodDelete, g.scimBase("metered")+"/Users/"+bobID, token, nil), http.StatusNoContent, "deleting bob")
	bob.StopRedirects()
	if p := bob.Get(g.site + "/app/page"); p.Status != http.StatusFound {
		t.Fatalf("bob after deletion: %d", p.Status)
	}

	// The live-request watcher counts after it ends the request: wait for
	// the count rather than racing it.
	var m scrape
	deadline := time.Now().Add(5 * time.Second)
	for m = scrapeMetrics(t, g); m.value(`portcullis_live_requests_revoked_total{tenant="metered"}`) < 1; m = scrapeMetrics(t, g) {
		if time.Now().After(deadline) {
			t.Fatal("portcullis_live_requests_revoked_total never counted the ended stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("scrape after the walkthrough:\n%s", m.portcullis())

	want := map[string]float64{
		`portcullis_scim_requests_total{operation="create",resource="Users",status="201",tenant="metered"}`:  2,
		`portcullis_scim_requests_total{operation="create",resource="Groups",status="201",tenant="metered"}`: 1,
		`portcullis_scim_requests_total{operation="list",resource="Users",status="401",tenant="metered"}`:    1,
		`portcullis_scim_requests_total{operation="patch",resource="Users",status="200",tenant="metered"}`:   1,
		`portcullis_scim_requests_total{operation="delete",resource="Users",status="204",tenant="metered"}`:  1,
		`portcullis_scim_token_failures_total{reason="invalid",tenant="metered"}`:                            1,
		`portcullis_scim_token_failures_total{reason="missing",tenant="metered"}`:                            0,
		`portcullis_scim_rate_limited_total{tenant="metered"}`:                                               0,
		`portcullis_signins_total{protocol="oidc",result="success",tenant="metered"}`:                        2,
		`portcullis_signins_total{protocol="oidc",result="not_provisioned",tenant="metered"}`:                1,
		// alice: the page that sent her to sign in, then the page, the
		// cached page; bob: sent to sign in, the page, refused after his
		// deletion; carol: sent to sign in; the anonymous browser.
		`portcullis_gate_decisions_total{decision="unauthenticated",route="app",tenant="metered"}`: 5,
		`portcullis_gate_decisions_total{decision="allowed",route="app",tenant="metered"}`:         3,
		`portcullis_gate_decisions_total{decision="denied",route="admin-pages",tenant="metered"}`:  1,
		`portcullis_gate_decisions_total{decision="allowed",route="admin-pages",tenant="metered"}`: 0,
		`portcullis_gate_decisions_total{decision="allowed",route="events",tenant="metered"}`:      1,
		// alice's second app page, her admin page and her event stream.
		`portcullis_identity_cache_hits_total{tenant="metered"}`:                                        3,
		`portcullis_live_requests_revoked_total{tenant="metered"}`:                                      1,
		`portcullis_deprovision_to_session_end_seconds_count{ended_by="live_request",tenant="metered"}`: 1,
		`portcullis_deprovision_to_session_end_seconds_count{ended_by="next_request",tenant="metered"}`: 1,
	}
	for series, v := range want {
		if got := m.value(series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	// alice's first request, bob's first and his refused one (a sign-in
	// stores a session, which moves no store generation).
	if got := m.value(`portcullis_identity_cache_loads_total{tenant="metered"}`); got != 3 {
		t.Errorf("identity cache loads = %v, want 3", got)
	}
	// The watcher checks every 100 ms: the stream ends well within 2.5s.
	if got := m.value(`portcullis_deprovision_to_session_end_seconds_bucket{ended_by="live_request",tenant="metered",le="2.5"}`); got != 1 {
		t.Errorf("live-request revocation not within 2.5s: bucket %v\n%s", got, m.portcullis())
	}
	for _, who := range []string{aliceID, bobID, "alice", "bob", "carol", "Liddell"} {
		if strings.Contains(m.body, who) {
			t.Errorf("the scrape names a user (%q)", who)
		}
	}
	if n := theMetrics().clock.running("metered"); n != 0 {
		t.Errorf("%d deprovisioning clocks still running", n)
	}

	// A reload registers the metrics on the new config's registry: the
	// counters go on from where they were.
	if status := reload(t, g, strings.Replace(cf, "route app", "route app-v2", 1)); status != http.StatusOK {
		t.Fatalf("reload: %d", status)
	}
	expect(t, call(t, http.MethodGet, g.scimBase("metered")+"/Users", token, nil), http.StatusOK, "SCIM after reload")
	anon.Get(g.site + "/app/page")
	after := scrapeMetrics(t, g)
	for series, v := range map[string]float64{
		`portcullis_scim_requests_total{operation="create",resource="Users",status="201",tenant="metered"}`:        2,
		`portcullis_scim_requests_total{operation="list",resource="Users",status="200",tenant="metered"}`:          1,
		`portcullis_signins_total{protocol="oidc",result="success",tenant="metered"}`:                              2,
		`portcullis_gate_decisions_total{decision="unauthenticated",route="app-v2",tenant="metered"}`:              1,
		`portcullis_deprovision_to_session_end_seconds_count{ended_by="live_request",tenant="metered"}`:            1,
		`portcullis_gate_decisions_total{decision="unauthenticated",route="app",tenant="metered"}`:                 5,
		`portcullis_scim_requests_total{operation="delete",resource="Users",status="204",tenant="metered"}`:        1,
		`portcullis_scim_requests_total{operation="patch",resource="Users",status="200",tenant="metered"}`:         1,
		`portcullis_scim_requests_total{operation="create",resource="Groups",status="201",tenant="metered"}`:       1,
		`portcullis_scim_token_failures_total{reason="invalid",tenant="metered"}`:                                  1,
		`portcullis_live_requests_revoked_total{tenant="metered"}`:                                                 1,
		`portcullis_deprovision_to_session_end_seconds_count{ended_by="next_request",tenant="metered"}`:            1,
		`portcullis_signins_total{protocol="oidc",result="not_provisioned",tenant="metered"}`:                      1,
		`portcullis_gate_decisions_total{decision="denied",route="admin-pages",tenant="metered"}`:                  1,
		`portcullis_gate_decisions_total{decision="allowed",route="events",tenant="metered"}`:                      1,
		`portcullis_scim_requests_total{operation="list",resource="Users",status="401",tenant="metered"}`:          1,
		`portcullis_identity_cache_hits_total{tenant="metered"}`:                                                   3,
		`portcullis_gate_decisions_total{decision="allowed",route="app",tenant="metered"}`:                         3,
		`portcullis_scim_rate_limited_total{tenant="metered"}`:                                                     0,
		`portcullis_scim_token_failures_total{reason="missing",tenant="metered"}`:                                  0,
		`portcullis_gate_decisions_total{decision="allowed",route="admin-pages",tenant="metered"}`:                 0,
		`portcullis_gate_decisions_total{decision="bad_request",route="app-v2",tenant="metered"}`:                  0,
		`portcullis_gate_decisions_total{decision="error",route="app-v2",tenant="metered"}`:                        0,
		`portcullis_gate_decisions_total{decision="denied",route="app-v2",tenant="metered"}`:                       0,
		`portcullis_gate_decisions_total{decision="allowed",route="app-v2",tenant="metered"}`:                      0,
		`portcullis_scim_token_failures_total{reason="disabled",tenant="metered"}`:                                 0,
		`portcullis_deprovision_to_session_end_seconds_bucket{ended_by="live_request",tenant="metered",le="+Inf"}`: 1,
	} {
		if got := after.value(series); got != v {
			t.Errorf("after reload: %s = %v, want %v", series, got, v)
		}
	}
	// Caddy's own metrics are served alongside.
	if !strings.Contains(after.body, "caddy_http_requests_total") {
		t.Error("Caddy's http metrics are missing from the scrape")
	}
}

// startStreamingBackend runs an event-stream backend that sends a line
// every 20 ms for at most 30 s, and returns its host:port.
func startStreamingBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; i < 1500; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			_ = rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// openEventStream opens a stream through the gateway with a session cookie
// and returns its body once the first event arrived.
func openEventStream(t *testing.T, url, session string) *bufio.Reader {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(&http.Cookie{Name: "metered_session", Value: session})
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	return br
}

// readUntilEnd reads the stream until it ends, or fails after limit.
func readUntilEnd(r *bufio.Reader, limit time.Duration) error {
	start := time.Now()
	for time.Since(start) < limit {
		if _, err := r.ReadString('\n'); err != nil {
			return nil
		}
	}
	return fmt.Errorf("the stream still runs %v after the deactivation", limit)
}

// scrape is a /metrics answer in Prometheus' text format.
type scrape struct {
	body   string
	series map[string]float64 // the series as printed, e.g. name{a="b"}
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$`)

func scrapeMetrics(t *testing.T, g gateway) scrape {
	t.Helper()
	resp, err := httpClient.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: %d %v", resp.StatusCode, err)
	}
	s := scrape{body: string(b), series: map[string]float64{}}
	for _, line := range strings.Split(s.body, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s.series[m[1]] = v
	}
	return s
}

// value is a series' value; 0 when it is absent.
func (s scrape) value(series string) float64 { return s.series[series] }

// portcullis is the Portcullis part of the scrape.
func (s scrape) portcullis() string {
	var lines []string
	for _, line := range strings.Split(s.body, "\n") {
		if strings.HasPrefix(line, "portcullis_") || strings.HasPrefix(line, "# HELP portcullis_") || strings.HasPrefix(line, "# TYPE portcullis_") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// TestMetricsHotPathAllocations checks that what every request on an
// identity route reports costs no allocation: the label values are bound
// when the route and tenant are provisioned.
func TestMetricsHotPathAllocations(t *testing.T) {
	decide := gateObserver("alloc-test", "app")
	ids := newIdentitiesObserver("alloc-test")
	for name, f := range map[string]func(){
		"gate decision": func() { decide(authz.DecisionAllowed) },
		"cache hit":     ids.CacheHit,
		"cache load":    ids.CacheLoad,
		"refused session without a deprovisioning": func() { ids.SessionRefused("someone") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
