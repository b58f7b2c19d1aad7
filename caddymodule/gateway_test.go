package caddymodule

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// TestContract runs the contract Caddyfile in this process and walks the
// issue's acceptance checks: tokens through the admin API, SCIM with full
// base URLs, rotation, disabling, tenant isolation, audit events, the CLI,
// and a config reload that keeps the store.
func TestContract(t *testing.T) {
	storeDir := filepath.Join(t.TempDir(), "portcullis-data")
	cf, g := contractCaddyfile(t, storeDir)
	gatewaytest.Load(t, cf)
	acmeUsers := g.scimBase("acme") + "/Users"
	globexUsers := g.scimBase("globex") + "/Users"
	adminTenants := "http://" + g.admin + "/portcullis/tenants/"

	// Before any token exists, SCIM is closed.
	expect(t, call(t, "GET", acmeUsers, "", nil), http.StatusUnauthorized, "no token")
	expect(t, call(t, "GET", acmeUsers, "not-a-token", nil), http.StatusUnauthorized, "made-up token")

	acmeToken := issueToken(t, g, "acme")
	globexToken := issueToken(t, g, "globex")

	var alice scimUser
	t.Run("create user with full base URL", func(t *testing.T) {
		a := call(t, "POST", acmeUsers, acmeToken, newUser("alice"))
		expect(t, a, http.StatusCreated, "POST /Users")
		a.json(t, &alice)
		want := acmeUsers + "/" + alice.ID
		if alice.ID == "" || a.header.Get("Location") != want || alice.Meta.Location != want {
			t.Fatalf("Location %q, meta.location %q, want %q", a.header.Get("Location"), alice.Meta.Location, want)
		}
		var got scimUser
		a = call(t, "GET", want, acmeToken, nil)
		expect(t, a, http.StatusOK, "GET the created user")
		a.json(t, &got)
		if got.UserName != "alice" {
			t.Fatalf("userName %q", got.UserName)
		}
	})

	t.Run("tenant isolation", func(t *testing.T) {
		expect(t, call(t, "GET", globexUsers, acmeToken, nil), http.StatusUnauthorized, "acme token on globex")
		expect(t, call(t, "GET", acmeUsers, globexToken, nil), http.StatusUnauthorized, "globex token on acme")
		expect(t, call(t, "GET", globexUsers+"/"+alice.ID, globexToken, nil), http.StatusNotFound, "acme user through globex")
		var list listResponse
		a := call(t, "GET", globexUsers, globexToken, nil)
		expect(t, a, http.StatusOK, "globex list")
		a.json(t, &list)
		if list.TotalResults != 0 || len(list.Resources) != 0 {
			t.Fatalf("globex sees %d users: %s", list.TotalResults, a.body)
		}
		// The same userName is free in another tenant.
		expect(t, call(t, "POST", globexUsers, globexToken, newUser("alice")), http.StatusCreated, "alice in globex")
	})

	t.Run("rotate kills the old token at once", func(t *testing.T) {
		newToken := issueToken(t, g, "acme")
		if newToken == acmeToken {
			t.Fatal("rotation returned the same token")
		}
		expect(t, call(t, "GET", acmeUsers, acmeToken, nil), http.StatusUnauthorized, "old token")
		expect(t, call(t, "GET", acmeUsers, newToken, nil), http.StatusOK, "new token")
		expect(t, call(t, "GET", globexUsers, globexToken, nil), http.StatusOK, "other tenant's token")
		acmeToken = newToken
	})

	t.Run("events newest first, filtered, paged", func(t *testing.T) {
		var page eventsPage
		a := call(t, "GET", adminTenants+"acme/events", "", nil)
		expect(t, a, http.StatusOK, "events")
		a.json(t, &page)
		// The first request without a valid token is audited too (the
		// handler records one rejection a minute).
		if got, want := page.types(), "token.rotated,user.created,token.created,token.rejected"; got != want {
			t.Fatalf("event types %s, want %s", got, want)
		}
		for i := 1; i < len(page.Events); i++ {
			if page.Events[i-1].ID <= page.Events[i].ID || page.Events[i-1].Time.Before(page.Events[i].Time) {
				t.Fatalf("events not newest first: %+v", page.Events)
			}
		}
		if page.Events[0].Actor != "admin" || page.Next != "" {
			t.Fatalf("actor %q, next %q", page.Events[0].Actor, page.Next)
		}
		if strings.Contains(string(a.body), acmeToken) {
			t.Fatal("events carry the token")
		}

		a = call(t, "GET", adminTenants+"acme/events?type=user.created", "", nil)
		expect(t, a, http.StatusOK, "filtered events")
		page = eventsPage{}
		a.json(t, &page)
		if page.types() != "user.created" || page.Events[0].ResourceID != alice.ID {
			t.Fatalf("filtered events: %s", a.body)
		}

		a = call(t, "GET", adminTenants+"acme/events?type=token.created,token.rotated&limit=1", "", nil)
		expect(t, a, http.StatusOK, "first page")
		page = eventsPage{}
		a.json(t, &page)
		if page.types() != "token.rotated" || page.Next == "" {
			t.Fatalf("first page: %s", a.body)
		}
		a = call(t, "GET", adminTenants+"acme/events?type=token.created,token.rotated&limit=1&before="+url.QueryEscape(page.Next), "", nil)
		expect(t, a, http.StatusOK, "second page")
		page = eventsPage{}
		a.json(t, &page)
		if page.types() != "token.created" || page.Next != "" {
			t.Fatalf("second page: %s", a.body)
		}
	})

	t.Run("admin API refuses bad requests", func(t *testing.T) {
		tests := []struct {
			method, path string
			status       int
			errContains  string
		}{
			{"POST", "nosuch/scim-token", http.StatusNotFound, `unknown tenant "nosuch"`},
			{"GET", "nosuch/events", http.StatusNotFound, "unknown tenant"},
			{"GET", "acme/other", http.StatusNotFound, "no such portcullis admin route"},
			{"GET", "acme/events/x", http.StatusNotFound, "no such portcullis admin route"},
			{"PUT", "acme/scim-token", http.StatusMethodNotAllowed, "method not allowed"},
			{"POST", "acme/events", http.StatusMethodNotAllowed, "method not allowed"},
			{"GET", "acme/events?limit=0", http.StatusBadRequest, "limit"},
			{"GET", "acme/events?limit=100000", http.StatusBadRequest, "limit"},
			{"GET", "acme/events?limit=ten", http.StatusBadRequest, "limit"},
			{"GET", "acme/events?since=yesterday", http.StatusBadRequest, "since"},
			{"GET", "acme/events?types=user.created", http.StatusBadRequest, `unknown query parameter "types"`},
			{"GET", "acme/events?before=" + strings.Repeat("x", 1000), http.StatusBadRequest, "longer than"},
		}
		for _, tt := range tests {
			a := call(t, tt.method, adminTenants+tt.path, "", nil)
			var body struct {
				Error string `json:"error"`
			}
			if a.status != tt.status {
				t.Errorf("%s %s: status %d, want %d (%s)", tt.method, tt.path, a.status, tt.status, a.body)
				continue
			}
			a.json(t, &body)
			if !strings.Contains(body.Error, tt.errContains) {
				t.Errorf("%s %s: error %q, want it to contain %q", tt.method, tt.path, body.Error, tt.errContains)
			}
		}
	})

	t.Run("CLI", func(t *testing.T) {
		stdout, stderr, err := gatewaytest.RunCLI(t, "portcullis", "token", "rotate", "acme", "--address", g.admin)
		if err != nil {
			t.Fatalf("token rotate: %v\n%s", err, stderr)
		}
		cliToken := strings.TrimSpace(stdout)
		if strings.Count(stdout, "\n") != 1 || len(cliToken) < 32 || strings.Contains(stderr, cliToken) {
			t.Fatalf("token rotate printed stdout %q stderr %q; want the token once, on stdout", stdout, stderr)
		}
		expect(t, call(t, "GET", acmeUsers, acmeToken, nil), http.StatusUnauthorized, "token before the CLI rotation")
		expect(t, call(t, "GET", acmeUsers, cliToken, nil), http.StatusOK, "CLI token")

		if _, stderr, err := gatewaytest.RunCLI(t, "portcullis", "token", "disable", "acme", "--address", g.admin); err != nil {
			t.Fatalf("token disable: %v\n%s", err, stderr)
		}
		expect(t, call(t, "GET", acmeUsers, cliToken, nil), http.StatusUnauthorized, "after disable")

		stdout, stderr, err = gatewaytest.RunCLI(t, "portcullis", "events", "acme", "--type", "token.disabled,token.rotated", "--limit", "1", "--all", "--address", g.admin)
		if err != nil {
			t.Fatalf("events: %v\n%s", err, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 3 || !strings.Contains(lines[0], `"token.disabled"`) || !strings.Contains(lines[1], `"token.rotated"`) {
			t.Fatalf("events printed:\n%s", stdout)
		}

		_, stderr, err = gatewaytest.RunCLI(t, "portcullis", "token", "rotate", "nosuch", "--address", g.admin)
		if err == nil || !strings.Contains(stderr, "unknown tenant") {
			t.Fatalf("rotate of an unknown tenant: err %v, stderr %s", err, stderr)
		}
	})

	t.Run("disable through the admin API", func(t *testing.T) {
		token := issueToken(t, g, "acme")
		expect(t, call(t, "GET", acmeUsers, token, nil), http.StatusOK, "before disable")
		expect(t, call(t, "DELETE", adminTenants+"acme/scim-token", "", nil), http.StatusNoContent, "disable")
		expect(t, call(t, "GET", acmeUsers, token, nil), http.StatusUnauthorized, "after disable")
		expect(t, call(t, "POST", acmeUsers, token, newUser("bob")), http.StatusUnauthorized, "write after disable")
		expect(t, call(t, "GET", globexUsers, globexToken, nil), http.StatusOK, "other tenant after disable")
		acmeToken = issueToken(t, g, "acme")
	})

	t.Run("reload keeps the open store and the data", func(t *testing.T) {
		before := runningApp()
		if before == nil {
			t.Fatal("no running app")
		}
		store, key := before.Store(), before.storeKey

		// A reload that fails (a scim handler of an unknown tenant) leaves
		// the running config and its store alone.
		bad := gatewaytest.ReplaceOnce(t, cf, "scim globex", "scim initech")
		if status := reload(t, g, bad); status != http.StatusBadRequest {
			t.Fatalf("bad reload: status %d", status)
		}
		if runningApp() != before {
			t.Fatal("a failed reload replaced the running app")
		}
		if refs, ok := openStores.References(key); !ok || refs != 1 {
			t.Fatalf("store %s has %d users after a failed reload, want 1", key, refs)
		}
		expect(t, call(t, "GET", acmeUsers+"/"+alice.ID, acmeToken, nil), http.StatusOK, "user after failed reload")

		// Reload the same Caddyfile, as `caddy reload` does.
		if status := reload(t, g, cf); status != http.StatusOK {
			t.Fatalf("reload: status %d", status)
		}

		after := runningApp()
		if after == nil || after == before {
			t.Fatal("reload did not start a new app")
		}
		if after.Store() != store {
			t.Fatal("reload reopened the store")
		}
		if refs, ok := openStores.References(key); !ok || refs != 1 {
			t.Fatalf("store %s has %d users after reload, want 1", key, refs)
		}
		a := call(t, "GET", acmeUsers+"/"+alice.ID, acmeToken, nil)
		expect(t, a, http.StatusOK, "user after reload")
	})
}

// reload loads a Caddyfile through the admin API's /load, forcing a reload
// even of an unchanged config, and returns the status.
func reload(t *testing.T, g gateway, caddyfile string) int {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+g.admin+"/load", strings.NewReader(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The old servers close their idle connections as they stop; a request
	// that picked one of them before it was closed gets EOF, which is the
	// reload working, not a failure. Start the next requests afresh.
	httpClient.CloseIdleConnections()
	return resp.StatusCode
}

// TestConfigErrors checks that configs the adapter accepts but that cannot
// run are refused at load with a clear message, and open no store.
func TestConfigErrors(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	storeDir := filepath.Join(t.TempDir(), "store")
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	// withTenants is a config with tenant acme configured by acme (the
	// inside of its block) and the site's handlers.
	withTenants := func(acme, site string) string {
		return "{\n admin off\n persist_config off\n default_bind 127.0.0.1\n portcullis {\n storage badger " + storeDir +
			"\n tenant acme {\n" + acme + "\n }\n tenant globex\n }\n}\n:0 {\n" + site + "\n}\n"
	}
	oidc := "oidc {\n issuer " + idp.Issuer + "\n client_id gw\n }\n roles viewer editor"
	tests := []struct {
		name, caddyfile, wantErr string
	}{
		{
			name:      "identity of a tenant without sign-in",
			caddyfile: withTenants(oidc, "identity globex"),
			wantErr:   "tenant globex has no sign-in configured; add an oidc or saml block",
		},
		{
			name:      "sso of a tenant without sign-in",
			caddyfile: withTenants(oidc, "sso globex"),
			wantErr:   "tenant globex has no sign-in configured",
		},
		{
			name:      "identity of an unconfigured tenant",
			caddyfile: withTenants(oidc, "identity initech"),
			wantErr:   `tenant "initech" is not configured`,
		},
		{
			name:      "identity_jwks of an unconfigured tenant",
			caddyfile: withTenants(oidc, "identity_jwks initech"),
			wantErr:   `tenant "initech" is not configured`,
		},
		{
			name:      "require of an unknown role",
			caddyfile: withTenants(oidc, "identity acme {\n require admin\n}"),
			wantErr:   `require "admin": not one of the roles [viewer editor]`,
		},
		{
			name:      "map_group to an unknown role",
			caddyfile: withTenants(oidc+"\n map_group Engineering admin", "identity acme"),
			wantErr:   `tenant acme: map_group "Engineering": role "admin" is not one of the roles [viewer editor]`,
		},
		{
			name:      "client secret from an unset variable",
			caddyfile: withTenants("oidc {\n issuer "+idp.Issuer+"\n client_id gw\n client_secret {env.PORTCULLIS_TEST_UNSET_SECRET}\n }", "sso acme"),
			wantErr:   "expands to nothing (is the environment variable set?)",
		},
		{
			name:      "SAML certificate file missing",
			caddyfile: withTenants("saml {\n idp_entity_id https://idp\n idp_sso_url https://idp/sso\n idp_certificate /nonexistent/idp.pem\n entity_id urn:sp\n }", "sso acme"),
			wantErr:   "saml idp_certificate: open /nonexistent/idp.pem",
		},
		{
			name:      "assertion lifetime too long",
			caddyfile: withTenants(oidc+"\n assertion {\n ttl 1h\n }", "identity acme"),
			wantErr:   "assertion lifetime",
		},
		{
			name:      "scim of an unconfigured tenant",
			caddyfile: "{\n admin off\n persist_config off\n default_bind 127.0.0.1\n portcullis {\n storage badger " + storeDir + "\n tenant acme\n }\n}\n:0 {\n scim globex\n}\n",
			wantErr:   `tenant "globex" is not configured`,
		},
		{
			name:      "scim without the portcullis app",
			caddyfile: "{\n admin off\n persist_config off\n default_bind 127.0.0.1\n}\n:0 {\n scim acme\n}\n",
			wantErr:   "the portcullis app is not configured",
		},
		{
			name:      "bad base_url",
			caddyfile: "{\n admin off\n persist_config off\n default_bind 127.0.0.1\n portcullis {\n storage badger " + storeDir + "\n tenant acme\n }\n}\n:0 {\n scim acme {\n base_url /relative\n }\n}\n",
			wantErr:   "must be an absolute http(s) URL",
		},
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
			openStores.Range(func(key, _ any) bool {
				t.Errorf("store %v left open", key)
				return true
			})
		})
	}

	// A tenant named twice in JSON config (the Caddyfile adapter already
	// refuses it) is refused by the app itself.
	err = caddy.Load([]byte(`{"admin":{"disabled":true},"apps":{"portcullis":{"storage":{"backend":"badger","dir":"`+storeDir+`"},"tenants":[{"name":"acme"},{"name":"acme"}]}}}`), true)
	if err == nil || !strings.Contains(err.Error(), `tenant "acme" is configured twice`) {
		_ = caddy.Stop()
		t.Fatalf("duplicate tenant in JSON: %v", err)
	}
}

// TestDefaultStorageDir checks that without a storage line the store lives
// under Caddy's data directory.
func TestDefaultStorageDir(t *testing.T) {
	gatewaytest.Load(t, "{\n admin off\n persist_config off\n portcullis {\n tenant acme\n }\n}\n")
	app := runningApp()
	if app == nil {
		t.Fatal("no running app")
	}
	// gatewaytest.Load points XDG_DATA_HOME (Caddy's data home) at a temp dir.
	want := filepath.Join(os.Getenv("XDG_DATA_HOME"), "caddy", "portcullis")
	if app.storeKey != "badger:"+want {
		t.Fatalf("store %s, want badger:%s", app.storeKey, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("store directory: %v", err)
	}
}
