package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/portcullis/portcullis/devidp"
)

const (
	benchTenant   = "bench"
	benchClientID = "portcullis-bench"
	deprovUser    = "bench-leaver@bench.example"
)

// benchEnv is the harness's world: the ports, the development OpenID
// provider people sign in at, and the backend both sites proxy to.
type benchEnv struct {
	dir        string
	backend    string
	adminURL   string
	gatewayURL string // Portcullis site
	plainURL   string // plain reverse_proxy site, as users run it
	// matchedURL is the plain site given the Portcullis site's handle
	// layout and as many static headers as it sets identity headers, so
	// the comparison isolates Portcullis (proxy.go). Empty: no such site.
	matchedURL   string
	idp          *devidp.Provider
	clientSecret string
	// bystanderCookie is the session of the user the anonymous-load
	// figure measures (signed in by measureAnonymous's caller).
	bystanderCookie string
	// storage is the global storage directive; empty means the embedded
	// Badger store in dir/data.
	storage string
}

// viewerName is the userName of the i-th signed-in user of the proxy runs.
func viewerName(i int) string { return fmt.Sprintf("viewer%03d@bench.example", i) }

func newBenchEnv(dir, backend string, sessions int) (*benchEnv, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	e := &benchEnv{
		dir:        dir,
		backend:    backend,
		adminURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		gatewayURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		plainURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		matchedURL: fmt.Sprintf("http://127.0.0.1:%d", ports[3]),
	}
	users := []devidp.User{{Subject: "leaver", PreferredUsername: deprovUser, Email: deprovUser, EmailVerified: true, Name: "Bench Leaver"}}
	users = append(users, devidp.User{Subject: bystanderName, PreferredUsername: bystanderName, Email: bystanderName, EmailVerified: true, Name: "Bench Bystander"})
	for i := 0; i < liveCloseSamples; i++ {
		n := streamerName(i)
		users = append(users, devidp.User{Subject: n, PreferredUsername: n, Email: n, EmailVerified: true, Name: "Bench Streamer"})
	}
	for i := 0; i < revocationSamples; i++ {
		n := revokedName(i)
		users = append(users, devidp.User{Subject: n, PreferredUsername: n, Email: n, EmailVerified: true, Name: "Bench Revoked"})
	}
	for i := 0; i < sessions; i++ {
		n := viewerName(i)
		users = append(users, devidp.User{Subject: n, PreferredUsername: n, Email: n, EmailVerified: true, Name: "Bench Viewer"})
	}
	idp, err := devidp.Start(devidp.Config{
		Addr:  "127.0.0.1:0",
		Users: users,
	})
	if err != nil {
		return nil, err
	}
	e.idp = idp
	e.clientSecret = randomHex(16)
	idp.AddClient(benchClientID, e.clientSecret, []string{e.gatewayURL + "/sso/oidc/callback"}, []string{e.gatewayURL + "/"})
	return e, nil
}

// caddyfile is the gateway's configuration: one process, three sites
// (Portcullis, the matched plain site, the plain site), the same backend
// and the same upstream keep-alive pool behind all.
func (e *benchEnv) caddyfile() string {
	storage := e.storage
	if storage == "" {
		storage = "storage badger " + e.dir + "/data"
	}
	transport := `transport http {
				keepalive 2m
				keepalive_idle_conns 256
				keepalive_idle_conns_per_host 256
			}`
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	log {
		level WARN
	}
	portcullis {
		%s
		tenant %s {
			oidc {
				issuer %s
				client_id %s
				client_secret %s
			}
			roles viewer editor admin
		}
	}
}

%s {
	handle /scim/v2/%[3]s/* {
		scim %[3]s
	}
	handle /sso/* {
		sso %[3]s
	}
	handle {
		identity %[3]s {
			require viewer
		}
		reverse_proxy %[8]s {
			%[9]s
		}
	}
}

%[10]s {
	reverse_proxy %[8]s {
		%[9]s
	}
}
%[11]s`, strings.TrimPrefix(e.adminURL, "http://"), storage, benchTenant, e.idp.Issuer, benchClientID, e.clientSecret,
		e.gatewayURL, e.backend, transport, e.plainURL, e.matchedSite(transport))
}

// signIn provisions userName over SCIM, signs it in through the gateway and
// the development provider like a browser, and returns the session cookie.
func (e *benchEnv) signIn(scim *scimClient, subject, userName string) (string, string, error) {
	var u struct {
		ID string `json:"id"`
	}
	if _, err := scim.do(http.MethodPost, "/Users", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"displayName": "Bench " + strings.TrimSuffix(userName, "@bench.example"),
		"emails":      []map[string]any{{"value": userName, "primary": true}},
		"active":      true,
	}, &u); err != nil {
		return "", "", err
	}
	e.idp.AutoLogin(subject)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, e.gatewayURL+"/sso/login?rd=/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := browser.Do(req)
	if err != nil {
		return "", "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), userName) {
		return "", "", fmt.Errorf("sign-in of %s ended with %d: %s", userName, resp.StatusCode, truncate(body, 300))
	}
	gw, _ := url.Parse(e.gatewayURL)
	var cookies []string
	for _, c := range jar.Cookies(gw) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) == 0 {
		return "", "", errors.New("no session cookie after sign-in")
	}
	return strings.Join(cookies, "; "), u.ID, nil
}

// deprovisionResult is how soon a SCIM deactivation locks a user out.
type deprovisionResult struct {
	FromSendMs float64 `json:"from_patch_sent_ms"`
	AfterAckMs float64 `json:"after_patch_2xx_ms"`
	Polls      int     `json:"polls"`
}

// measureDeprovision signs a user in, keeps requesting a protected page as
// that user, deactivates the user over SCIM, and times the first refusal.
func (e *benchEnv) measureDeprovision(scim *scimClient) (*deprovisionResult, error) {
	cookie, id, err := e.signIn(scim, "leaver", deprovUser)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	type refusal struct {
		at    time.Time
		polls int
		err   error
	}
	started := make(chan struct{})
	done := make(chan refusal, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for polls := 1; time.Now().Before(deadline); polls++ {
			req, _ := http.NewRequest(http.MethodGet, e.gatewayURL+"/", nil)
			req.Header.Set("Cookie", cookie)
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
				done <- refusal{at: time.Now(), polls: polls}
				return
			}
		}
		done <- refusal{err: errors.New("user still served 15 s after deactivation")}
	}()
	select {
	case <-started:
	case r := <-done:
		return nil, r.err
	}
	time.Sleep(50 * time.Millisecond) // let the poller run in its steady state
	sent := time.Now()
	if _, err := scim.do(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}},
	}, nil); err != nil {
		return nil, err
	}
	acked := time.Now()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return &deprovisionResult{
		FromSendMs: ms(r.at.Sub(sent)),
		AfterAckMs: ms(r.at.Sub(acked)),
		Polls:      r.polls,
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// saveProfile fetches a CPU profile of the gateway from Caddy's admin
// endpoint while a run is under way.
func saveProfile(adminURL, file string) { saveProfileFor(adminURL, file, 5) }

// saveProfileFor is saveProfile over seconds (at least 1).
func saveProfileFor(adminURL, file string, seconds int) {
	savePprof(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", adminURL, max(seconds, 1)), file, "a CPU profile of the gateway")
}

// savePprof saves what a pprof endpoint of Caddy's admin answers at url
// into file; what says what it is, for the log.
func savePprof(url, file, what string) {
	resp, err := http.Get(url)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(file, raw, 0o644)
	}
	if err != nil {
		logf("profile: %v", err)
		return
	}
	logf("saved %s to %s", what, file)
}

// roundRobinTarget sends GET url as each of the signed-in users in turn.
func roundRobinTarget(url string, headers []http.Header) vegeta.Targeter {
	var next atomic.Uint64
	return func(t *vegeta.Target) error {
		t.Method = http.MethodGet
		t.URL = url
		t.Header = headers[next.Add(1)%uint64(len(headers))]
		return nil
	}
}
