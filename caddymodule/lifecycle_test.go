package caddymodule

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// withOIDCTenant is the contract Caddyfile with tenant acme signing in at
// issuer, an sso route and a protected route for it.
func withOIDCTenant(t *testing.T, cf, issuer string) string {
	t.Helper()
	cf = gatewaytest.ReplaceOnce(t, cf, "\t\ttenant acme\n",
		"\t\ttenant acme {\n\t\t\toidc {\n\t\t\t\tissuer "+issuer+"\n\t\t\t\tclient_id gw\n\t\t\t\tclient_secret gw-secret\n\t\t\t}\n\t\t\troles viewer editor\n\t\t}\n")
	return gatewaytest.ReplaceOnce(t, cf, "\troute /scim/v2/acme/* {",
		"\troute /sso/* {\n\t\tsso acme\n\t}\n\troute /app/* {\n\t\tidentity acme {\n\t\t\trequire editor\n\t\t}\n\t\trespond \"app\"\n\t}\n\troute /scim/v2/acme/* {")
}

// expectSignInUnavailable checks the 503 and Retry-After of a sign-in
// while the IdP cannot be reached.
func expectSignInUnavailable(t *testing.T, u string) {
	t.Helper()
	a := call(t, "GET", u, "", nil)
	expect(t, a, http.StatusServiceUnavailable, "sign-in with the IdP down")
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}
	if !strings.Contains(string(a.body), "identity provider") {
		t.Fatalf("unavailable page: %s", a.body)
	}
}

// TestValidateWhileRunning runs a gateway in a child process whose OIDC
// provider cannot be reached, and checks that it serves anyway (SCIM,
// 503 at sign-in) and that `caddy validate` and `caddy adapt` of the same
// config, with the same store, work beside it: validation neither takes
// the store's lock nor reaches the IdP, and still reports config errors.
func TestValidateWhileRunning(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	cf, g := contractCaddyfile(t, storeDir)
	cf = withOIDCTenant(t, cf, fmt.Sprintf("http://127.0.0.1:%d", gatewaytest.FreePort(t)))
	configFile := gatewaytest.WriteFile(t, dir, "Caddyfile", cf)
	gw := gatewaytest.StartProcess(t, configFile, g.admin)
	if err := gw.WaitHTTP(g.site + "/"); err != nil {
		t.Fatal(err)
	}

	token := issueToken(t, g, "acme")
	expect(t, call(t, "GET", g.scimBase("acme")+"/Users", token, nil), http.StatusOK, "SCIM with the IdP down")
	expectSignInUnavailable(t, g.site+"/sso/login?rd=/app/x")

	for _, args := range [][]string{
		{"validate", "--config", configFile, "--adapter", "caddyfile"},
		{"adapt", "--config", configFile, "--adapter", "caddyfile"},
		{"adapt", "--config", configFile, "--adapter", "caddyfile", "--validate"},
	} {
		start := time.Now()
		stdout, stderr, err := gatewaytest.RunCLI(t, args...)
		if err != nil {
			t.Fatalf("caddy %s while the gateway runs: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("caddy %s took %v", args[0], d)
		}
	}

	bad := gatewaytest.ReplaceOnce(t, cf, "require editor", "require admin")
	badFile := gatewaytest.WriteFile(t, dir, "Caddyfile.bad", bad)
	_, stderr, err := gatewaytest.RunCLI(t, "validate", "--config", badFile, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(stderr, `not one of the roles [viewer editor]`) {
		t.Fatalf("validate of a bad config: %v\n%s", err, stderr)
	}

	// The gateway was not disturbed.
	expect(t, call(t, "GET", g.scimBase("acme")+"/Users", token, nil), http.StatusOK, "SCIM after validate")
}

// TestOIDCProviderComesUp starts Caddy with the OIDC provider down: Caddy
// starts, SCIM works, sign-in answers 503; once the provider listens on
// its address, sign-in works with no reload.
func TestOIDCProviderComesUp(t *testing.T) {
	storeDir := filepath.Join(t.TempDir(), "store")
	cf, g := contractCaddyfile(t, storeDir)
	idpAddr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	cf = withOIDCTenant(t, cf, "http://"+idpAddr)
	gatewaytest.Load(t, cf)

	token := issueToken(t, g, "acme")
	user := call(t, "POST", g.scimBase("acme")+"/Users", token, scimUserBody("alice@acme.example", "Alice", true))
	expect(t, user, http.StatusCreated, "SCIM with the IdP down")
	expectSignInUnavailable(t, g.site+"/sso/login?rd=/app/x")

	startIdP := func() *devidp.Provider {
		op, err := devidp.Start(devidp.Config{Addr: idpAddr, Users: []devidp.User{
			{Subject: "alice", PreferredUsername: "alice@acme.example", Email: "alice@acme.example", EmailVerified: true, Name: "Alice"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		op.AddClient("gw", "gw-secret", []string{g.site + "/sso/oidc/callback"}, nil)
		op.AutoLogin("alice")
		return op
	}
	op := startIdP()
	defer func() { op.Close() }()

	// The gateway retries with backoff (at most a minute; the first
	// retries come within seconds).
	deadline := time.Now().Add(30 * time.Second)
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		resp, err := noRedirect.Get(g.site + "/sso/login?rd=/app/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			// Sign-in starts: off to the provider, with no reload.
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://"+idpAddr+"/") {
				t.Fatalf("sign-in after the provider came up: %d to %q", resp.StatusCode, loc)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sign-in still unavailable 30s after the provider came up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
