package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/demoapp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
)

// TestQuickStart runs the demo as `go run ./cmd/demo` does (the development
// provider, the sample app and the gateway from demo/Caddyfile, in this
// process), on free 127.0.0.1 ports with a temporary store, and walks the
// README's quick start: token, provisioning, browser sign-in through the
// provider's form, role editor, group change to admin on the next request,
// deactivation refused on the next request.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real gateway")
	}
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(demo.ClientSecretEnv, "quick-start-test-secret")

	adminAddr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	d, err := start(options{
		gatewayPort: gatewaytest.FreePort(t),
		adminAddr:   adminAddr,
		idpAddr:     "127.0.0.1:0",
		appAddr:     "127.0.0.1:0",
		dataDir:     t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	var steps strings.Builder
	d.printNextSteps(&steps)
	if !strings.Contains(steps.String(), "/portcullis/tenants/demo/scim-token") {
		t.Errorf("next steps lack the token command:\n%s", steps.String())
	}
	gw := fmt.Sprintf("http://127.0.0.1:%d", d.settings.GatewayPort)
	c := &http.Client{Timeout: 15 * time.Second}

	// 1. The SCIM token, from the admin API.
	var tok struct {
		Token string `json:"token"`
	}
	call(t, c, http.MethodPost, "http://"+adminAddr+"/portcullis/tenants/demo/scim-token", "", nil, http.StatusCreated, &tok)
	if tok.Token == "" {
		t.Fatal("no token")
	}
	scim := func(method, path string, body any, want int, out any) {
		t.Helper()
		call(t, c, method, gw+"/scim/v2/demo"+path, tok.Token, body, want, out)
	}

	// 2. Provision alice, the group Engineering with her in it, and Admins.
	var alice, engineering, admins struct {
		ID string `json:"id"`
	}
	scim(http.MethodPost, "/Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "alice@example.com",
		"name":     map[string]string{"givenName": "Alice", "familyName": "Liddell"},
		"emails":   []map[string]any{{"value": "alice@example.com", "type": "work", "primary": true}},
		"active":   true,
	}, http.StatusCreated, &alice)
	group := func(name string, members ...string) map[string]any {
		m := []map[string]string{}
		for _, id := range members {
			m = append(m, map[string]string{"value": id})
		}
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": m}
	}
	scim(http.MethodPost, "/Groups", group("Engineering", alice.ID), http.StatusCreated, &engineering)
	scim(http.MethodPost, "/Groups", group("Admins"), http.StatusCreated, &admins)

	// Without a session: a browser goes to sign-in, anything else gets 401.
	if resp := get(t, c, gw+"/whoami.json", "application/json"); resp.status != http.StatusUnauthorized {
		t.Fatalf("no session: %d %s", resp.status, resp.body)
	}

	// 3. Sign in with a browser, through the provider's login form.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	form := get(t, browser, gw+"/", "text/html")
	if form.status != http.StatusOK || !strings.HasPrefix(form.url.String(), d.idp.Issuer+"/login") ||
		!strings.Contains(form.body, `id="username"`) || !strings.Contains(form.body, demo.Password) {
		t.Fatalf("expected the provider's login form, got %d at %s: %.500s", form.status, form.url, form.body)
	}
	page := postForm(t, browser, d.idp.Issuer+"/login", url.Values{
		"authRequestID": {form.url.Query().Get("authRequestID")},
		"username":      {"alice@example.com"},
		"password":      {demo.Password},
	})
	if page.status != http.StatusOK || page.url.String() != gw+"/" {
		t.Fatalf("after sign-in at %s with %d: %.500s", page.url, page.status, page.body)
	}
	if !strings.Contains(page.body, `<span class="role" id="role">editor</span>`) {
		t.Fatalf("the app does not show role editor: %.2000s", page.body)
	}
	whoami(t, browser, gw, "editor", "Engineering")

	// Identity headers a client sends never reach the app.
	forged := getWith(t, browser, gw+"/whoami.json", map[string]string{
		"Accept": "application/json", "X-Remote-Role": "admin", "X-Remote-User": "mallory", "x_remote_groups": "Admins",
	})
	var fw demoapp.Whoami
	if err := json.Unmarshal([]byte(forged.body), &fw); err != nil || fw.Role != "editor" || fw.User != "alice@example.com" {
		t.Fatalf("forged headers got through: %s", forged.body)
	}

	// 4. Move alice from Engineering to Admins: admin on the next request.
	patch := func(ops ...map[string]any) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
	}
	scim(http.MethodPatch, "/Groups/"+engineering.ID, patch(map[string]any{
		"op": "remove", "path": `members[value eq "` + alice.ID + `"]`,
	}), http.StatusNoContent, nil)
	scim(http.MethodPatch, "/Groups/"+admins.ID, patch(map[string]any{
		"op": "add", "path": "members", "value": []map[string]string{{"value": alice.ID}},
	}), http.StatusNoContent, nil)
	whoami(t, browser, gw, "admin", "Admins")

	// 5. Deactivate alice: her next request is refused, and so is sign-in.
	scim(http.MethodPatch, "/Users/"+alice.ID, patch(map[string]any{
		"op": "replace", "value": map[string]any{"active": false},
	}), http.StatusOK, nil)
	// Deactivation ended her sessions: the app sees her no more. A client
	// that is not a browser gets 401, a browser is sent to sign in again.
	if resp := get(t, browser, gw+"/whoami.json", "application/json"); resp.status != http.StatusUnauthorized {
		t.Fatalf("deactivated user: %d %s", resp.status, resp.body)
	}
	form = get(t, browser, gw+"/", "text/html")
	if form.status != http.StatusOK || !strings.HasPrefix(form.url.String(), d.idp.Issuer+"/login") {
		t.Fatalf("deactivated user: %d at %s: %.500s", form.status, form.url, form.body)
	}
	again := postForm(t, browser, d.idp.Issuer+"/login", url.Values{
		"authRequestID": {form.url.Query().Get("authRequestID")},
		"username":      {"alice@example.com"},
		"password":      {demo.Password},
	})
	if again.status != http.StatusForbidden || !strings.Contains(again.body, "deactivated") {
		t.Fatalf("inactive alice signed in again: %d at %s: %.500s", again.status, again.url, again.body)
	}

	// The audit log tells the story.
	var events struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	call(t, c, http.MethodGet, "http://"+adminAddr+"/portcullis/tenants/demo/events?limit=500", "", nil, http.StatusOK, &events)
	var types []string
	for _, e := range events.Events {
		types = append(types, e.Type)
	}
	for _, want := range []string{
		storage.EventTokenCreated, storage.EventUserCreated, storage.EventGroupCreated, storage.EventSignIn,
		storage.EventMemberRemoved, storage.EventMemberAdded, storage.EventUserDeactivated, storage.EventSignInRefused,
	} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s event in %v", want, types)
		}
	}
}

// whoami checks the identity the app sees through the gateway.
func whoami(t *testing.T, c *http.Client, gw, role string, groups ...string) {
	t.Helper()
	resp := get(t, c, gw+"/whoami.json", "application/json")
	var w demoapp.Whoami
	if resp.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", resp.status, resp.body)
	}
	if err := json.Unmarshal([]byte(resp.body), &w); err != nil {
		t.Fatalf("whoami: %v: %s", err, resp.body)
	}
	if w.User != "alice@example.com" || w.Email != "alice@example.com" || w.Role != role || !slices.Equal(w.Groups, groups) {
		t.Fatalf("whoami %+v, want alice with role %s and groups %q", w, role, groups)
	}
}

type response struct {
	status int
	url    *url.URL
	body   string
}

func get(t *testing.T, c *http.Client, target, accept string) response {
	t.Helper()
	return getWith(t, c, target, map[string]string{"Accept": accept})
}

func getWith(t *testing.T, c *http.Client, target string, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header[k] = []string{v} // as given: x_remote_groups must stay lower case
	}
	return do(t, c, req)
}

func postForm(t *testing.T, c *http.Client, target string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, url: resp.Request.URL, body: string(b)}
}

// call sends a JSON request and decodes the answer into out.
func call(t *testing.T, c *http.Client, method, target, token string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp := do(t, c, req)
	if resp.status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, target, resp.status, want, resp.body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(resp.body), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, resp.body)
		}
	}
}
