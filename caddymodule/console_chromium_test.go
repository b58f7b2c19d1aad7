package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// consoleCaddyfile: tenant acme signs in at an OIDC provider (JIT; Admins
// map to admin in the config, everyone else gets viewer), takes SCIM
// pushes, and its admins run the console for acme and globex (a tenant
// without sign-in). %[1]s store, %[2]s issuer, %[3]d port, %[4]s backend.
const consoleCaddyfile = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %[1]q
		tenant acme {
			oidc {
				issuer %[2]s
				client_id gw
				client_secret {env.PORTCULLIS_TEST_CONSOLE_SECRET}
			}
			provisioning jit
			roles viewer editor admin
			map_group "Admins" admin
			default_role viewer
		}
		tenant globex {
			roles viewer editor
		}
	}
}
:%[3]d {
	handle /sso/* {
		sso acme
	}
	handle /scim/v2/acme/* {
		scim acme
	}
	handle /portcullis/* {
		identity acme {
			require admin
		}
		portcullis_console /portcullis {
			tenants acme globex
		}
	}
	handle {
		identity acme {
			require viewer
		}
		reverse_proxy %[4]s
	}
}
`

// TestChromiumConsole runs the operator's console in a real headless
// Chromium: an admin signs in through the IdP's form, maps a group from
// its dropdown (and the member's next request carries the new role),
// generates and rotates the SCIM token behind the confirmation, reads
// the audit trail, and disconnects the IdP; a non-admin gets 403.
// Screenshots of each page go to the test's temp dir (or
// $PORTCULLIS_SCREENSHOTS).
func TestChromiumConsole(t *testing.T) {
	execPath := chromiumPath(t)
	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{
		{Subject: "ada", PreferredUsername: "ada", Email: "ada@acme.test", EmailVerified: true,
			Name: "Ada Lovelace", Groups: []string{"Admins"}, Password: "pw"},
		{Subject: "bob", PreferredUsername: "bob", Email: "bob@acme.test", EmailVerified: true,
			Name: "Bob Builder", Groups: []string{"Sales", "Everyone"}, Password: "pw"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	port := gatewaytest.FreePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp.AddClient("gw", "console-secret", []string{site + "/sso/oidc/callback"}, nil)
	t.Setenv("PORTCULLIS_TEST_CONSOLE_SECRET", "console-secret")
	backend := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, fmt.Sprintf(consoleCaddyfile, filepath.Join(t.TempDir(), "store"), idp.Issuer, port, backend.Addr))

	// Bob signs in (an HTTP client is his browser): his groups arrive in
	// the claims, and with no mapping he is a viewer.
	idp.AutoLogin("bob")
	bob := gatewaytest.NewBrowser(t)
	role := func() string {
		t.Helper()
		p := bob.Get(site + "/app")
		if p.Status != http.StatusOK {
			t.Fatalf("bob on /app: %d\n%s", p.Status, p.Body)
		}
		var echo gatewaytest.Echo
		if err := json.Unmarshal([]byte(p.Body), &echo); err != nil {
			t.Fatalf("bob on /app: %v\n%s", err, p.Body)
		}
		return echo.Header.Get("X-Remote-Role")
	}
	if got := role(); got != "viewer" {
		t.Fatalf("bob's role before the mapping: %q, want viewer", got)
	}
	// A non-admin gets 403 on the console.
	if p := bob.Get(site + "/portcullis/"); p.Status != http.StatusForbidden {
		t.Errorf("bob on the console: %d, want 403", p.Status)
	}
	idp.AutoLogin("")

	shots := t.TempDir()
	if dir := os.Getenv("PORTCULLIS_SCREENSHOTS"); dir != "" {
		shots = dir
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 860),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	// settle waits until the browser is on a console page that has
	// finished loading (after a click the old page may still answer).
	settle := func(step, path string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState`))
			var loc string
			if err == nil {
				loc, err = chromedp.Run(ctx, chromedp.Location())
			}
			if err == nil && state == "complete" && strings.HasPrefix(loc, site+path) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the browser did not settle on %s: state %q at %q (%v)", step, path, state, loc, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// shot checks the page's h1 and words and saves a full-page screenshot.
	shot := func(name, h1 string, words ...string) string {
		t.Helper()
		// Wait for the page with this heading: a form posted to its own
		// URL (the rotation) leaves the old page answering for a moment.
		var title string
		for deadline := time.Now().Add(15 * time.Second); ; {
			var err error
			title, err = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.readyState === "complete" && document.querySelector("main h1")?.textContent) || ""`))
			if err == nil && title == h1 {
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		file := filepath.Join(shots, name+".png")
		if err := os.WriteFile(file, png, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: screenshot %s", name, file)
		if title != h1 {
			t.Errorf("%s: h1 %q, want %q", name, title, h1)
		}
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("%s: page lacks %q:\n%s", name, w, text)
			}
		}
		return text
	}
	scimStatus := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site+"/scim/v2/acme/Users", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Ada opens the console: the IdP's form, then the tenants.
	run("opening the console", chromedp.Navigate(site+"/portcullis/"), chromedp.WaitVisible(chromedp.ID("username")))
	run("signing in as ada",
		chromedp.SendKeys(chromedp.ID("username"), "ada"),
		chromedp.SendKeys(chromedp.ID("password"), "pw"),
		chromedp.Click(chromedp.ID("submit")),
	)
	settle("home", "/portcullis/")
	shot("console_home", "Tenants", "acme", "globex", "ada")

	// Groups: Sales is unmapped (default), Admins pinned by the config.
	run("groups", chromedp.Navigate(site+"/portcullis/acme/groups"))
	settle("groups", "/portcullis/acme/groups")
	shot("console_groups", "Groups & mappings", "Sales", "Admins", "config · read-only",
		"members of several groups get the highest; unmapped → default")
	// The pinned row has no dropdown.
	pinned, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr.pinned select').length`))
	if err != nil || pinned != 0 {
		t.Errorf("the config-pinned row has %d dropdowns (%v)", pinned, err)
	}
	// Map Sales to editor from its dropdown, with the keyboard: focus the
	// select, pick the option, tab to Save and press it.
	salesRow := `//tr[th[contains(., "Sales")]]`
	run("mapping Sales to editor",
		chromedp.Focus(chromedp.Search(salesRow+`//select`)),
		chromedp.SetValue(chromedp.Search(salesRow+`//select`), "editor"),
		chromedp.Click(chromedp.Search(salesRow+`//button`)),
	)
	settle("mapping saved", "/portcullis/acme/groups")
	run("flash", chromedp.WaitVisible(chromedp.ID("flash")))
	shot("console_groups_mapped", "Groups & mappings", "Mapping saved")
	// Bob's next request carries the new role.
	if got := role(); got != "editor" {
		t.Errorf("bob's role after mapping Sales to editor: %q, want editor", got)
	}

	// Users: bob with his source badge and role; his detail says why.
	run("users", chromedp.Navigate(site+"/portcullis/acme/users"))
	settle("users", "/portcullis/acme/users")
	shot("console_users", "Users", "bob", "ada", "IdP sign-in", "editor")
	run("bob's page", chromedp.Click(chromedp.Search(`//a[text()="bob"]`)))
	settle("bob", "/portcullis/acme/users/")
	shot("console_user", "Bob Builder", "Sales", "editor", "Sessions")

	// Token: generate (shown once, with a copy button).
	run("token", chromedp.Navigate(site+"/portcullis/acme/token"))
	settle("token", "/portcullis/acme/token")
	shot("console_token_none", "SCIM token", "No token yet")
	run("generate", chromedp.Click(chromedp.ID("generate")))
	settle("generated", "/portcullis/acme/token/generate")
	shot("console_token_shown", "Your new SCIM token", "shown only this once")
	first, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("token")))
	if err != nil || len(first) < 20 {
		t.Fatalf("token on the page: %q (%v)", first, err)
	}
	run("copy", chromedp.Click(chromedp.ID("copy")))
	if st := scimStatus(first); st != http.StatusOK {
		t.Errorf("SCIM with the new token: %d", st)
	}
	run("done", chromedp.Click(chromedp.ID("done")))
	settle("token status", "/portcullis/acme/token")
	shot("console_token", "SCIM token", "active", "Did my IdP reach us?")

	// Rotate, behind the confirmation that says what will break.
	run("rotate", chromedp.Click(chromedp.ID("rotate")))
	settle("rotate confirmation", "/portcullis/acme/token/rotate")
	shot("console_token_rotate", "Rotate the SCIM token?", "stops working at once", "401", "Nobody is signed out")
	run("confirm rotate", chromedp.Click(chromedp.ID("confirm")))
	settle("rotated", "/portcullis/acme/token/rotate")
	shot("console_token_rotated", "Your rotated SCIM token")
	second, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("token")))
	if err != nil || second == first || len(second) < 20 {
		t.Fatalf("rotated token %q (%v)", second, err)
	}
	if st := scimStatus(first); st != http.StatusUnauthorized {
		t.Errorf("SCIM with the old token after rotation: %d, want 401", st)
	}
	if st := scimStatus(second); st != http.StatusOK {
		t.Errorf("SCIM with the rotated token: %d", st)
	}

	// The audit trail shows the mapping change by ada.
	run("events", chromedp.Navigate(site+"/portcullis/acme/events"))
	settle("events", "/portcullis/acme/events")
	shot("console_events", "Audit events", "mapping.changed", "token.rotated", "ada")

	// Disconnect, behind the confirmation naming the consequences.
	run("overview", chromedp.Navigate(site+"/portcullis/acme/"))
	settle("overview", "/portcullis/acme/")
	shot("console_tenant", "acme", "Identity provider connection")
	run("disconnect", chromedp.Click(chromedp.ID("disconnect")))
	settle("disconnect confirmation", "/portcullis/acme/disconnect")
	shot("console_disconnect", "Disconnect the identity provider?", "manual user", "pinned", "Nobody is signed out")
	run("confirm disconnect", chromedp.Click(chromedp.ID("confirm")))
	settle("disconnected", "/portcullis/acme/")
	run("flash", chromedp.WaitVisible(chromedp.ID("flash")))
	shot("console_disconnected", "acme", "disconnected", "No identity provider pushes users")
	if st := scimStatus(second); st != http.StatusUnauthorized {
		t.Errorf("SCIM after the disconnect: %d, want 401", st)
	}
	run("users after", chromedp.Navigate(site+"/portcullis/acme/users"))
	settle("users after", "/portcullis/acme/users")
	shot("console_users_manual", "Users", "Manual")
	// Nobody was signed out, and bob keeps the role he had.
	if got := role(); got != "editor" {
		t.Errorf("bob's role after the disconnect: %q, want editor (pinned)", got)
	}
	// Bob is now managed here: his role is set by hand.
	run("bob's page after", chromedp.Click(chromedp.Search(`//a[text()="bob"]`)))
	settle("bob after", "/portcullis/acme/users/")
	shot("console_user_manual", "Bob Builder", "managed here", "Save role")
	run("bob to admin",
		chromedp.SetValue(chromedp.ID("manual-role"), "admin"),
		chromedp.Click(chromedp.ID("save-role")),
	)
	run("flash", chromedp.WaitVisible(chromedp.ID("flash")))
	if got := role(); got != "admin" {
		t.Errorf("bob's role after setting it by hand: %q, want admin", got)
	}
}
