package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/googlefake"
)

// shortGoogleRetry makes a failing listing fail in milliseconds instead of
// the production backoff's half a minute (googleRetryForTests).
func shortGoogleRetry(t *testing.T) {
	t.Helper()
	googleRetryForTests = &directory.RetryPolicy{Attempts: 3, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond, MaxRetryAfter: 2 * time.Second}
	t.Cleanup(func() { googleRetryForTests = nil })
}

// startGoogleFake runs a fake Google Workspace for example.com and writes
// its service account key file.
func startGoogleFake(t *testing.T, admin string) (*googlefake.Server, string) {
	t.Helper()
	f, err := googlefake.New("example.com", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, gatewaytest.WriteFile(t, t.TempDir(), "google-sa.json", string(f.Account.JSON))
}

// googleGateway is a gateway whose tenant acme is pulled from the fake
// Google and signs in at devidp (standing in for accounts.google.com, its
// users having the same emails); tenant globex has no google block.
type googleGateway struct {
	gateway
	fake *googlefake.Server
	idp  *devidp.Provider
}

func startGoogleGateway(t *testing.T, fake *googlefake.Server, keyFile string) *googleGateway {
	t.Helper()
	g := &googleGateway{fake: fake}
	port := gatewaytest.FreePort(t)
	g.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	g.site = fmt.Sprintf("http://127.0.0.1:%d", port)
	var err error
	g.idp, err = devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "alice", PreferredUsername: "alice@example.com", Email: "alice@example.com", EmailVerified: true, Name: "Alice Archer"},
		{Subject: "bob", PreferredUsername: "bob@example.com", Email: "bob@example.com", EmailVerified: true, Name: "Bob Baker"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.idp.Close)
	g.idp.AddClient("gw", "gw-secret", []string{g.site + "/sso/oidc/callback"}, []string{g.site + "/"})
	t.Setenv("ACME_GOOGLE_KEY", keyFile)
	app := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, fmt.Sprintf(`{
	admin %s
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %q
		tenant acme {
			oidc {
				issuer %s
				client_id gw
				client_secret gw-secret
			}
			google {
				domain example.com
				credentials_file {env.ACME_GOOGLE_KEY}
				admin_email it-admin@example.com
				users mapped_groups
				activity_poll 200ms
				api_endpoint %s
			}
			external_url %s
			roles viewer admin
			map_group "Staff" viewer
			map_group "App Admins" admin
		}
		tenant globex
	}
}

:%d {
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
`, g.admin, filepath.Join(t.TempDir(), "store"), g.idp.Issuer, fake.URL(), g.site, port, app.Addr))
	return g
}

func (g *googleGateway) syncURL(tenant string) string {
	return "http://" + g.admin + "/portcullis/tenants/" + tenant + "/sync"
}

// syncStatus asks the admin API for the tenant's status.
func (g *googleGateway) syncStatus(t *testing.T) directory.Status {
	t.Helper()
	a := call(t, http.MethodGet, g.syncURL("acme"), "", nil)
	expect(t, a, http.StatusOK, "GET sync")
	var st directory.Status
	a.json(t, &st)
	return st
}

// syncNow is "sync now" through the admin API: 202 with the status.
func (g *googleGateway) syncNow(t *testing.T) directory.Status {
	t.Helper()
	a := call(t, http.MethodPost, g.syncURL("acme"), "", nil)
	expect(t, a, http.StatusAccepted, "POST sync")
	var st directory.Status
	a.json(t, &st)
	return st
}

// waitSync waits for the sync that started at or after since to end.
func (g *googleGateway) waitSync(t *testing.T, since time.Time) directory.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := g.syncStatus(t)
		if !st.Running && !st.LastStart.Before(since) && !st.LastEnd.IsZero() {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no sync started after %s ended within 30s: %+v", since, g.syncStatus(t))
	return directory.Status{}
}

// signIn signs subject in through devidp and returns the browser, landed
// on the app with the role it was given.
func (g *googleGateway) signIn(t *testing.T, subject string) (*gatewaytest.Browser, string) {
	t.Helper()
	g.idp.AutoLogin(subject)
	b := gatewaytest.NewBrowser(t)
	p := b.Get(g.site + "/")
	if p.Status != http.StatusOK {
		t.Fatalf("%s signing in: landed on %s (%d):\n%s", subject, p.URL, p.Status, p.Body)
	}
	return b, gatewaytest.ParseEcho(t, p.Body).Header.Get("X-Remote-Role")
}

// reachesApp says whether the browser's session still reaches the app
// (without following a redirect to sign in again).
func (g *googleGateway) reachesApp(t *testing.T, b *gatewaytest.Browser) bool {
	t.Helper()
	b.StopRedirects()
	defer b.FollowRedirects()
	return b.Get(g.site+"/").Status == http.StatusOK
}

// eventsSince lists the tenant's events newer than the event id after
// (all when ""), oldest first.
func (g *googleGateway) eventsSince(t *testing.T, after string) eventsPage {
	t.Helper()
	a := call(t, http.MethodGet, "http://"+g.admin+"/portcullis/tenants/acme/events?limit=500", "", nil)
	expect(t, a, http.StatusOK, "events")
	var p eventsPage
	a.json(t, &p)
	var out eventsPage
	for _, e := range p.Events {
		if e.ID == after {
			break
		}
		out.Events = append([]struct {
			ID         string    `json:"id"`
			Time       time.Time `json:"time"`
			Type       string    `json:"type"`
			Actor      string    `json:"actor"`
			ResourceID string    `json:"resourceId"`
		}{e}, out.Events...)
	}
	return out
}

func (p eventsPage) count(typ, actor string) int {
	n := 0
	for _, e := range p.Events {
		if e.Type == typ && e.Actor == actor {
			n++
		}
	}
	return n
}

// TestGoogleSyncGateway runs the Google Workspace pull end to end through a
// real gateway: the sync at start imports the mapped groups' members, a
// user signs in and gets the mapped role, "sync now" through the admin API
// and the CLI, a listing failing midway changes nothing, a user dropped
// from every mapped group is deactivated by the next sync, and a user
// suspended in Google is refused at the next activity poll.
func TestGoogleSyncGateway(t *testing.T) {
	shortGoogleRetry(t)
	fake, keyFile := startGoogleFake(t, "it-admin@example.com")
	alice := fake.AddUser(googlefake.User{PrimaryEmail: "alice@example.com", GivenName: "Alice", FamilyName: "Archer"})
	bob := fake.AddUser(googlefake.User{PrimaryEmail: "bob@example.com", GivenName: "Bob", FamilyName: "Baker"})
	// Enough users outside the mapped groups that users.list takes two
	// pages (500 a page), so a fault can hit the middle of the listing.
	for i := range 520 {
		fake.AddUser(googlefake.User{PrimaryEmail: fmt.Sprintf("other%03d@example.com", i), GivenName: "Other"})
	}
	admins := fake.AddGroup(googlefake.Group{Email: "app-admins@example.com", Name: "App Admins"})
	staff := fake.AddGroup(googlefake.Group{Email: "staff@example.com", Name: "Staff"})
	fake.AddGroup(googlefake.Group{Email: "unmapped@example.com", Name: "Unmapped"})
	fake.AddUserMember(admins, alice)
	fake.AddUserMember(staff, alice)
	fake.AddUserMember(staff, bob)

	loaded := time.Now().UTC().Add(-time.Second)
	g := startGoogleGateway(t, fake, keyFile)

	// The sync at start, in the background.
	st := g.waitSync(t, loaded)
	if st.Result != directory.ResultOK || st.Counts.UsersCreated != 2 || st.Counts.GroupsCreated != 2 || st.Counts.MembershipsAdded != 3 {
		t.Fatalf("first sync: %+v", st)
	}
	if st.NextRun.IsZero() || st.Counts.APICalls == 0 {
		t.Errorf("status lacks the next run or the API calls: %+v", st)
	}
	evs := g.eventsSince(t, "")
	if evs.count("user.created", directory.Actor) != 2 || evs.count("group.created", directory.Actor) != 2 {
		t.Fatalf("events after the first sync: %s", evs.types())
	}

	// Sign-in: the mapped role shows on the request after it.
	aliceBrowser, role := g.signIn(t, "alice")
	if role != "admin" {
		t.Fatalf("alice's role %q, want admin (App Admins)", role)
	}
	bobBrowser, role := g.signIn(t, "bob")
	if role != "viewer" {
		t.Fatalf("bob's role %q, want viewer (Staff)", role)
	}

	// Sync now through the admin API; asking again during the sync joins
	// it. A rate limit with Retry-After keeps the sync running a second.
	fake.AddFault(googlefake.Fault{Path: "/admin/directory/v1/groups", Status: 429, Reason: "rateLimitExceeded", RetryAfter: "1", Times: 1})
	first := g.syncNow(t)
	again := g.syncNow(t)
	if !first.Running || !again.LastStart.Equal(first.LastStart) {
		t.Fatalf("a sync asked for during a sync started another: %v then %v", first.LastStart, again.LastStart)
	}
	st = g.waitSync(t, first.LastStart)
	if st.Result != directory.ResultOK || st.Counts.Retries != 1 {
		t.Fatalf("sync now: %+v", st)
	}
	if c := st.Counts; c.UsersCreated+c.UsersUpdated+c.UsersDeactivated+c.GroupsCreated+c.GroupsUpdated+c.MembershipsAdded+c.MembershipsRemoved != 0 {
		t.Errorf("a sync with nothing changed in Google changed the store: %+v", c)
	}
	fake.ClearFaults()

	// A listing failing midway changes nothing: bob left Staff, but the
	// sync never completed the listing that would show it.
	before := g.eventsSince(t, "")
	last := ""
	if n := len(before.Events); n > 0 {
		last = before.Events[n-1].ID
	}
	fake.RemoveMember(staff, bob)
	fake.AddFault(googlefake.Fault{Path: "/admin/directory/v1/users", MidListing: true, Status: 500, Reason: "backendError"})
	st = g.waitSync(t, g.syncNow(t).LastStart)
	if st.Result != directory.ResultFailed || !strings.Contains(st.LastError, "500") {
		t.Fatalf("sync with a failing listing: %+v", st)
	}
	if got := g.eventsSince(t, last); got.types() != "sync.failed" {
		t.Fatalf("a failed sync wrote events %q, want only sync.failed", got.types())
	}
	if !g.reachesApp(t, bobBrowser) {
		t.Fatal("a failed sync ended bob's session")
	}
	a := call(t, http.MethodGet, "http://"+g.admin+"/portcullis/tenants/acme/events?type=sync.failed", "", nil)
	expect(t, a, http.StatusOK, "events of type sync.failed")
	var failed eventsPage
	if a.json(t, &failed); failed.count("sync.failed", directory.Actor) != 1 {
		t.Fatalf("sync.failed events: %s", a.body)
	}
	fake.ClearFaults()

	// Sync now through the CLI: bob, in no mapped group, is deactivated.
	stdout, stderr, err := gatewaytest.RunCLI(t, "portcullis", "sync", "acme", "--wait", "--address", g.admin)
	if err != nil {
		t.Fatalf("caddy portcullis sync --wait: %v\n%s", err, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Result != directory.ResultOK || st.Running || st.Counts.UsersDeactivated != 1 {
		t.Fatalf("caddy portcullis sync --wait printed %s (%v)", stdout, err)
	}
	if g.reachesApp(t, bobBrowser) {
		t.Fatal("bob, in no mapped group any more, still reaches the app after the sync")
	}
	stdout, stderr, err = gatewaytest.RunCLI(t, "portcullis", "sync-status", "acme", "--address", g.admin)
	if err != nil || !strings.Contains(stdout, `"result": "ok"`) || !strings.Contains(stdout, `"usersDeactivated": 1`) {
		t.Fatalf("caddy portcullis sync-status: %v\n%s\n%s", err, stdout, stderr)
	}
	_, stderr, err = gatewaytest.RunCLI(t, "portcullis", "sync", "globex", "--address", g.admin)
	if err == nil || !strings.Contains(stderr, "not pulled from Google Workspace") {
		t.Fatalf("caddy portcullis sync of a tenant without google: %v\n%s", err, stderr)
	}
	a = call(t, http.MethodGet, g.syncURL("globex"), "", nil)
	expect(t, a, http.StatusNotFound, "GET sync of a tenant without google")
	a = call(t, http.MethodDelete, g.syncURL("acme"), "", nil)
	expect(t, a, http.StatusMethodNotAllowed, "DELETE sync")

	// Fast deprovisioning: suspended in Google, alice is refused once the
	// activity poll (200ms here, 1m by default) has seen it.
	if !g.reachesApp(t, aliceBrowser) {
		t.Fatal("alice lost access before her suspension")
	}
	suspended := time.Now()
	fake.SuspendUser(alice)
	for g.reachesApp(t, aliceBrowser) {
		if time.Since(suspended) > 10*time.Second {
			t.Fatalf("alice still reaches the app 10s after her suspension: %+v", g.syncStatus(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("suspension to refusal with activity_poll 200ms: %s", time.Since(suspended).Round(time.Millisecond))
	if st := g.syncStatus(t); st.ActivityApplied < 1 || st.LastActivityPoll.IsZero() {
		t.Errorf("status does not show the activity poll: %+v", st)
	}

	m := scrapeMetrics(t, g.gateway)
	for series, min := range map[string]float64{
		`portcullis_google_syncs_total{result="ok",tenant="acme"}`:     3,
		`portcullis_google_syncs_total{result="failed",tenant="acme"}`: 1,
		`portcullis_google_users_deactivated_total{tenant="acme"}`:     2,
		`portcullis_google_api_calls_total{tenant="acme"}`:             10,
	} {
		if got := m.value(series); got < min {
			t.Errorf("%s = %v, want at least %v\n%s", series, got, min, m.portcullis())
		}
	}
}

// TestGoogleConfigRefused checks what is refused when the config loads: a
// tenant both pulled from Google and pushed over SCIM, and google settings
// the sync cannot work with.
func TestGoogleConfigRefused(t *testing.T) {
	fake, keyFile := startGoogleFake(t, "it-admin@example.com")
	storeDir := t.TempDir()
	config := func(google, extra, site string) string {
		return fmt.Sprintf("{\n admin off\n persist_config off\n default_bind 127.0.0.1\n portcullis {\n storage badger %q\n tenant acme {\n google {\n%s\n }\n%s\n }\n }\n}\n:0 {\n%s\n}\n",
			storeDir, google, extra, site)
	}
	good := fmt.Sprintf("domain example.com\n credentials_file %q\n admin_email it-admin@example.com\n api_endpoint %s", keyFile, fake.URL())
	tests := []struct {
		name, caddyfile, wantErr string
	}{
		{"scim and google", config(good, "roles viewer\n map_group Staff viewer", "scim acme"),
			"tenant acme is pulled from Google Workspace (google block); a tenant is pushed over SCIM or pulled from Google, not both"},
		{"mapped groups without map_group", config(good, "", "respond ok"), "users mapped_groups needs map_group lines"},
		{"missing key file", config("domain example.com\n credentials_file /nonexistent/sa.json\n admin_email a@example.com", "roles viewer\n map_group Staff viewer", "respond ok"), "credentials_file: open /nonexistent/sa.json"},
		{"interval under a minute", config(good+"\n interval 30s", "roles viewer\n map_group Staff viewer", "respond ok"), "interval 30s is shorter than a minute"},
		{"placeholder unset", config("domain example.com\n credentials_file {env.NO_SUCH_GOOGLE_KEY}\n admin_email a@example.com", "roles viewer\n map_group Staff viewer", "respond ok"), "expands to nothing"},
		{"not a key file", config(fmt.Sprintf("domain example.com\n credentials_file %q\n admin_email a@example.com", gatewaytest.WriteFile(t, t.TempDir(), "k.json", "{}")), "roles viewer\n map_group Staff viewer", "respond ok"), "service account key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := caddy.Load(gatewaytest.Adapt(t, tt.caddyfile), true)
			if err == nil {
				_ = caddy.Stop()
				t.Fatal("config loaded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}

	// JSON config skips the Caddyfile's checks; the app makes its own.
	err := caddy.Load([]byte(`{"admin":{"disabled":true},"apps":{"portcullis":{"storage":{"backend":"badger","dir":"`+storeDir+`"},"tenants":[{"name":"acme","google":{"domain":"example.com","admin_email":"a@example.com","users":"all"}}]}}}`), true)
	if err == nil || !strings.Contains(err.Error(), "tenant acme: google: credentials_file (the service account's JSON key file) is required") {
		_ = caddy.Stop()
		t.Fatalf("google without credentials_file in JSON: %v", err)
	}
}

// TestGoogleCaddyfile checks the google block's syntax.
func TestGoogleCaddyfile(t *testing.T) {
	tests := []struct {
		name, block, want, wantErr string
	}{
		{
			name:  "every option",
			block: "domain example.com\n credentials_file {env.KEY}\n admin_email it-admin@example.com\n interval 2h\n users all\n activity_poll 30s\n api_endpoint http://127.0.0.1:1/",
			want:  `{"domain":"example.com","credentials_file":"{env.KEY}","admin_email":"it-admin@example.com","interval":7200000000000,"users":"all","activity_poll":30000000000,"api_endpoint":"http://127.0.0.1:1/"}`,
		},
		{
			name:  "customer, poll off",
			block: "customer my_customer\n credentials_file /k.json\n admin_email a@example.com\n activity_poll off",
			want:  `{"customer":"my_customer","credentials_file":"/k.json","admin_email":"a@example.com","activity_poll":-1}`,
		},
		{name: "domain and customer", block: "domain a.com\n customer c\n credentials_file /k\n admin_email a@a.com", wantErr: "google needs domain or customer (one of them)"},
		{name: "no domain", block: "credentials_file /k\n admin_email a@a.com", wantErr: "google needs domain or customer"},
		{name: "no key", block: "domain a.com\n admin_email a@a.com", wantErr: "google needs credentials_file"},
		{name: "bad users", block: "domain a.com\n credentials_file /k\n admin_email a@a.com\n users some", wantErr: `google users "some": use mapped_groups or all`},
		{name: "bad poll", block: "domain a.com\n credentials_file /k\n admin_email a@a.com\n activity_poll soon", wantErr: "activity_poll"},
		{name: "twice", block: "domain a.com\n domain b.com\n credentials_file /k\n admin_email a@a.com", wantErr: "google domain is set twice"},
		{name: "unknown", block: "domain a.com\n credentials_file /k\n admin_email a@a.com\n scopes x", wantErr: `unrecognized google option "scopes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := adaptedApps(t, "{\n portcullis {\n tenant acme {\n google {\n "+tt.block+"\n }\n }\n }\n}\n")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var app struct {
				Tenants []struct {
					Google json.RawMessage `json:"google"`
				} `json:"tenants"`
			}
			if err := json.Unmarshal(apps["portcullis"], &app); err != nil || len(app.Tenants) != 1 {
				t.Fatalf("%v: %s", err, apps["portcullis"])
			}
			if got := string(app.Tenants[0].Google); got != tt.want {
				t.Fatalf("google\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestGoogleSyncReload checks that a reload hands the tenant's sync over:
// the new config's syncer stops the old one before it starts, so two syncs
// of one tenant never run side by side.
func TestGoogleSyncReload(t *testing.T) {
	shortGoogleRetry(t)
	fake, keyFile := startGoogleFake(t, "it-admin@example.com")
	staff := fake.AddGroup(googlefake.Group{Email: "staff@example.com", Name: "Staff"})
	fake.AddUserMember(staff, fake.AddUser(googlefake.User{PrimaryEmail: "alice@example.com", GivenName: "Alice"}))
	loaded := time.Now().UTC().Add(-time.Second)
	g := startGoogleGateway(t, fake, keyFile)
	g.waitSync(t, loaded)
	old := runningApp().googleSyncer("acme")

	a := call(t, http.MethodGet, "http://"+g.admin+"/config/", "", nil)
	expect(t, a, http.StatusOK, "GET /config/")
	req, err := http.NewRequest(http.MethodPost, "http://"+g.admin+"/load", strings.NewReader(string(a.body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even though unchanged
	reloaded := time.Now().UTC()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	current := runningApp().googleSyncer("acme")
	runningSyncers.Lock()
	registered := runningSyncers.byTenant["acme"]
	runningSyncers.Unlock()
	if current == nil || current == old || registered != current {
		t.Fatalf("after the reload: old %p, current %p, registered %p", old, current, registered)
	}
	if st := g.waitSync(t, reloaded); st.Result != directory.ResultOK || st.Counts.UsersCreated != 0 {
		t.Fatalf("the sync at the reload: %+v", st)
	}
}
