package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// chromiumPath finds Debian's chromium. Without it the test is skipped,
// except in CI (CI set), where .ci/run installs it and its absence is a
// failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium"}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium not found at /usr/bin/chromium or on PATH, and CI is set: .ci/run installs it with apt-get install -y chromium")
	}
	t.Skip("Chromium not found at /usr/bin/chromium or on PATH: skipping the real-browser sign-in test (install it with apt-get install -y chromium; with CI set this is a failure)")
	return ""
}

// chromiumCaddyfile is one protected app behind tenant acme, signing in at
// an OIDC provider. %[1]s store, %[2]s issuer, %[3]d port, %[4]s backend.
const chromiumCaddyfile = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
	portcullis {
		storage badger %[1]q
		tenant acme {
			oidc {
				issuer %[2]s
				client_id gw
				client_secret {env.PORTCULLIS_TEST_CHROMIUM_SECRET}
			}
			provisioning jit
			roles viewer editor
			map_group "Engineering" editor
		}
	}
}
:%[3]d {
	handle /sso/* {
		sso acme
	}
	handle {
		identity acme {
			require viewer
		}
		reverse_proxy %[4]s
	}
}
`

// TestChromiumSignIn drives a real headless Chromium through the whole
// sign-in: from a protected URL to the provider's login form, typing the
// username and password, submitting, and back to the page, which shows the
// identity the app received.
func TestChromiumSignIn(t *testing.T) {
	execPath := chromiumPath(t)

	idp, err := devidp.Start(devidp.Config{Addr: "127.0.0.1:0", Users: []devidp.User{{
		Subject: "ada", PreferredUsername: "ada", Email: "ada@acme.test", EmailVerified: true,
		Name: "Ada Lovelace", Groups: []string{"Engineering"}, Password: "correct horse",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	port := gatewaytest.FreePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp.AddClient("gw", "chromium-secret", []string{site + "/sso/oidc/callback"}, nil)
	t.Setenv("PORTCULLIS_TEST_CHROMIUM_SECRET", "chromium-secret")
	backend := gatewaytest.StartBackend(t, nil)
	gatewaytest.Load(t, fmt.Sprintf(chromiumCaddyfile, filepath.Join(t.TempDir(), "store"), idp.Issuer, port, backend.Addr))

	var browserLog bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&browserLog),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 20*time.Second)
	defer cancelTimeout()

	start := site + "/reports/q3?view=full"
	fail := func(step string, err error) {
		t.Helper()
		t.Fatalf("browser, %s: %v\nChromium output:\n%s", step, err, browserLog.String())
	}
	// The protected page sends the browser to the provider's login form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(start),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		fail("opening the protected page", err)
	}
	loginURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		fail("reading the login form's URL", err)
	}
	// Type the credentials and submit; the browser comes back to the app,
	// which shows the backend's JSON in a <pre>.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "ada"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	); err != nil {
		fail("signing in", err)
	}
	finalURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		fail("reading the final URL", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre")))
	if err != nil {
		fail("reading the page", err)
	}
	if !strings.HasPrefix(loginURL, idp.Issuer) {
		t.Errorf("login form at %s, want the provider %s", loginURL, idp.Issuer)
	}
	if finalURL != start {
		t.Errorf("landed on %s, want %s", finalURL, start)
	}
	var echo gatewaytest.Echo
	if err := json.Unmarshal([]byte(text), &echo); err != nil {
		t.Fatalf("page text is not the backend's answer: %v\n%s", err, text)
	}
	wantHeaders(t, echo.Header, map[string]string{
		"X-Remote-User":   "ada",
		"X-Remote-Email":  "ada@acme.test",
		"X-Remote-Name":   "Ada Lovelace",
		"X-Remote-Groups": "Engineering",
		"X-Remote-Role":   "editor",
	})
	if echo.URI != "/reports/q3?view=full" || echo.Method != http.MethodGet {
		t.Errorf("backend saw %s %s", echo.Method, echo.URI)
	}
}
