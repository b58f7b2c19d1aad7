package devidp

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var testUsers = []User{
	{Subject: "sub-alice", PreferredUsername: "alice@example.com", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", Groups: []string{"Engineering"}, Password: "demo"},
	{Subject: "sub-bob", PreferredUsername: "bob@example.com", Email: "bob@example.com", EmailVerified: true, Name: "Bob Example", Password: "demo"},
	{Subject: "sub-robot", PreferredUsername: "robot", Name: "Robot"}, // no password: AutoLogin only
}

func TestStartAddress(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantErr    string
		issuerHost string // without the port
	}{
		{name: "default", cfg: Config{}, issuerHost: "127.0.0.1"},
		{name: "ipv4 loopback", cfg: Config{Addr: "127.0.0.1:0"}, issuerHost: "127.0.0.1"},
		{name: "localhost", cfg: Config{Addr: "localhost:0"}, issuerHost: "localhost"},
		{name: "all interfaces", cfg: Config{Addr: ":0"}, wantErr: "not a loopback address"},
		{name: "unspecified", cfg: Config{Addr: "0.0.0.0:0"}, wantErr: "not a loopback address"},
		{name: "a host name", cfg: Config{Addr: "example.com:0"}, wantErr: "not a loopback address"},
		{name: "no port", cfg: Config{Addr: "127.0.0.1"}, wantErr: "missing port"},
		{name: "user without subject", cfg: Config{Users: []User{{PreferredUsername: "x"}}}, wantErr: "no subject"},
		{name: "subject twice", cfg: Config{Users: []User{{Subject: "a"}, {Subject: "a"}}}, wantErr: "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(tc.cfg)
			if tc.wantErr != "" {
				if err == nil {
					p.Close()
					t.Fatalf("Start(%+v) succeeded, want error containing %q", tc.cfg, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			u, err := url.Parse(p.Issuer)
			if err != nil || u.Scheme != "http" || u.Hostname() != tc.issuerHost || u.Port() == "" || u.Port() == "0" {
				t.Fatalf("issuer %q, want http://%s:<port>", p.Issuer, tc.issuerHost)
			}
			// Discovery answers with the same issuer.
			ctx := context.Background()
			if _, err := oidc.NewProvider(ctx, p.Issuer); err != nil {
				t.Fatalf("discovery: %v", err)
			}
		})
	}
}

// rp is a relying party driving the provider like a browser plus a server.
type rp struct {
	t        *testing.T
	p        *Provider
	browser  *http.Client
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
	callback string
}

const (
	testClient   = "demo-client"
	testSecret   = "demo-secret"
	testCallback = "http://127.0.0.1:1/callback" // never dialled: the test stops at the redirect
)

func newRP(t *testing.T) *rp {
	t.Helper()
	p, err := Start(Config{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.AddClient(testClient, testSecret, []string{testCallback}, nil)
	prov, err := oidc.NewProvider(context.Background(), p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &rp{
		t: t, p: p,
		browser: &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if strings.HasPrefix(req.URL.String(), testCallback) {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
		conf: &oauth2.Config{
			ClientID: testClient, ClientSecret: testSecret, Endpoint: prov.Endpoint(),
			RedirectURL: testCallback, Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
		},
		verifier: prov.Verifier(&oidc.Config{ClientID: testClient}),
	}
}

// authorize starts a code flow and returns the login page's response.
func (c *rp) authorize(verifier string) *http.Response {
	c.t.Helper()
	u := c.conf.AuthCodeURL("state-1", oidc.Nonce("nonce-1"), oauth2.S256ChallengeOption(verifier))
	resp, err := c.browser.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// claims exchanges the code the callback got and verifies the ID token.
func (c *rp) claims(resp *http.Response, verifier string) map[string]any {
	c.t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		c.t.Fatalf("wanted the redirect to the callback, got %d: %s", resp.StatusCode, body(c.t, resp))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), testCallback) || loc.Query().Get("state") != "state-1" {
		c.t.Fatalf("callback redirect %q", resp.Header.Get("Location"))
	}
	ctx := context.Background()
	tok, err := c.conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		c.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		c.t.Fatalf("verify: %v", err)
	}
	if idt.Nonce != "nonce-1" {
		c.t.Fatalf("nonce %q", idt.Nonce)
	}
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

func TestLoginForm(t *testing.T) {
	c := newRP(t)
	verifier := oauth2.GenerateVerifier()
	resp := c.authorize(verifier)
	page := body(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != pathLogin {
		t.Fatalf("at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	for _, want := range []string{
		"Development identity provider — for local trial only",
		`id="username"`, `id="password"`, `id="submit"`,
		"alice@example.com", "bob@example.com", `<code id="demo-password">demo</code>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if strings.Contains(page, "robot") {
		t.Error("a user without password is listed on the form")
	}
	id := resp.Request.URL.Query().Get("authRequestID")

	post := func(user, password string) *http.Response {
		resp, err := c.browser.PostForm(c.p.Issuer+pathLogin, url.Values{"authRequestID": {id}, "username": {user}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, bad := range []struct{ user, password string }{
		{"alice@example.com", "wrong"},
		{"alice@example.com", ""},
		{"nobody@example.com", "demo"},
		{"robot", ""},
		{"", ""},
	} {
		resp := post(bad.user, bad.password)
		if page := body(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `id="error"`) {
			t.Errorf("%q/%q: status %d", bad.user, bad.password, resp.StatusCode)
		}
	}
	// Case and email both find the user.
	m := c.claims(post("ALICE@example.com", "demo"), verifier)
	want := map[string]any{
		"sub": "sub-alice", "preferred_username": "alice@example.com", "email": "alice@example.com",
		"email_verified": true, "name": "Alice Example", "groups": []any{"Engineering"},
	}
	for k, v := range want {
		got := m[k]
		if gs, ok := got.([]any); ok {
			if ws, _ := v.([]any); !slices.Equal(gs, ws) {
				t.Errorf("claim %s = %v, want %v", k, got, v)
			}
		} else if got != v {
			t.Errorf("claim %s = %v, want %v", k, got, v)
		}
	}
}

func TestAutoLogin(t *testing.T) {
	c := newRP(t)
	c.p.AutoLogin("sub-robot")
	verifier := oauth2.GenerateVerifier()
	if m := c.claims(c.authorize(verifier), verifier); m["sub"] != "sub-robot" || m["groups"] != nil {
		t.Fatalf("claims %v", m)
	}
	// Groups change at the provider show in the next token.
	c.p.SetGroups("sub-robot", []string{"Admins"})
	if m := c.claims(c.authorize(verifier), verifier); m["groups"] == nil {
		t.Fatalf("claims %v lack the new groups", m)
	}
}

func TestLoginRefusals(t *testing.T) {
	c := newRP(t)
	tests := []struct {
		name   string
		method string
		target string
		body   string
		status int
	}{
		{"no auth request", http.MethodGet, pathLogin, "", http.StatusBadRequest},
		{"unknown auth request", http.MethodPost, pathLogin, "authRequestID=nope&username=alice%40example.com&password=demo", http.StatusBadRequest},
		{"oversized form", http.MethodPost, pathLogin, "authRequestID=" + strings.Repeat("a", 2*maxFormBytes), http.StatusBadRequest},
		{"bad form encoding", http.MethodPost, pathLogin, "authRequestID=%zz", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, c.p.Issuer+tc.target, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if page := body(t, resp); resp.StatusCode != tc.status || !strings.Contains(page, "for local trial only") {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, page)
			}
		})
	}
}

func TestFaultWrongNonce(t *testing.T) {
	c := newRP(t)
	c.p.AutoLogin("sub-alice")
	c.p.SetFaults(Faults{WrongNonce: true})
	verifier := oauth2.GenerateVerifier()
	resp := c.authorize(verifier)
	defer resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := c.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := c.verifier.Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce == "nonce-1" {
		t.Fatal("WrongNonce fault had no effect")
	}
}

func TestPKCERequired(t *testing.T) {
	c := newRP(t)
	c.p.AutoLogin("sub-alice")
	verifier := oauth2.GenerateVerifier()
	resp := c.authorize(verifier)
	defer resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	wrong := oauth2.GenerateVerifier()
	if _, err := c.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(wrong)); err == nil {
		t.Fatal("code exchanged with the wrong PKCE verifier")
	}
}

func TestHomeAndLoggedOut(t *testing.T) {
	c := newRP(t)
	for path, want := range map[string]string{"/": "Engineering", pathLoggedOut: `id="signed-out"`} {
		resp, err := c.browser.Get(c.p.Issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		if page := body(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(page, want) || !strings.Contains(page, "for local trial only") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, page)
		}
	}
}

// TestNotInTheGateway keeps the development provider out of the gateway
// binary: neither cmd/caddy nor caddymodule may depend on it.
func TestNotInTheGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	for _, pkg := range []string{"github.com/portcullis/portcullis/cmd/caddy", "github.com/portcullis/portcullis/caddymodule"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/portcullis/portcullis/devidp" || dep == "github.com/portcullis/portcullis/demoapp" || dep == "github.com/portcullis/portcullis/demo" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
