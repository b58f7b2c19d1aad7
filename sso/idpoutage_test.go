package sso

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
)

// outageGateway is a gateway whose Service does not wait for its IdP,
// retries it quickly, and whose log the test reads.
func outageGateway(t *testing.T, opts ...Option) (*gateway, *observer.ObservedLogs) {
	t.Helper()
	g := newGateway(t)
	core, logs := observer.New(zap.InfoLevel)
	g.log = zap.New(zapcore.NewTee(g.log.Core(), core))
	g.noWait = true
	g.opts = append([]Option{WithIdPRetry(20*time.Millisecond, 100*time.Millisecond)}, opts...)
	return g, logs
}

// freeAddr is an address of 127.0.0.1 where nothing listens (connections
// are refused) until the test starts something there.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// expectUnavailable checks that u answers 503 with a Retry-After of 1 to
// 60 seconds and the page that says the IdP cannot be reached.
func expectUnavailable(t *testing.T, method, u string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s %s: status %d, want 503:\n%s", method, u, resp.StatusCode, body)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Fatalf("%s %s: Retry-After %q", method, u, resp.Header.Get("Retry-After"))
	}
	mustContain(t, "unavailable page", string(body), "cannot be reached right now")
}

// waitUntil polls cond for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logged counts the log entries whose message contains snippet.
func logged(logs *observer.ObservedLogs, snippet string) int {
	return logs.FilterMessageSnippet(snippet).Len()
}

// TestOIDCProviderOutage: a provider that is down when the Service starts
// does not stop it; sign-in answers 503 with Retry-After while sessions
// carry on, and works as soon as the provider answers, without a restart.
// Each change is logged once.
func TestOIDCProviderOutage(t *testing.T) {
	addr := freeAddr(t)
	g, logs := outageGateway(t)
	g.putUser(&storage.User{UserName: "alice@acme.test", Emails: []string{"alice@acme.test"}, Active: true})
	g.start(TenantConfig{OIDC: &OIDCConfig{
		Issuer: "http://" + addr, ClientID: testClientID, ClientSecret: testClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"},
	}})
	startOP := func() *devidp.Provider {
		op, err := devidp.Start(devidp.Config{Addr: addr, Users: oidcUsers})
		if err != nil {
			t.Fatalf("start provider on %s: %v", addr, err)
		}
		op.AddClient(testClientID, testClientSecret, []string{g.URL() + "/sso" + PathOIDCCallback}, nil)
		op.AutoLogin("sub-alice")
		return op
	}

	expectUnavailable(t, "GET", g.URL()+"/sso/login?rd=/x")
	expectUnavailable(t, "GET", g.URL()+"/sso/oidc/callback?state=s&code=c")
	// Several attempts fail (20ms doubling to 100ms): logged once.
	time.Sleep(300 * time.Millisecond)
	if n := logged(logs, "identity provider unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}

	op := startOP()
	waitUntil(t, "the provider is reached", g.service().IdPReachable)
	if n := logged(logs, "reachable again"); n != 1 {
		t.Fatalf("recovery logged %d times, want once", n)
	}
	b := newBrowser(t)
	p := b.get(g.URL() + "/reports")
	mustContain(t, "app page after the provider came up", p.body, "app page /reports for alice@acme.test")

	// The provider goes away and the gateway restarts meanwhile: the
	// session carries on, sign-in waits for the provider.
	op.Close()
	g.restart()
	p = b.get(g.URL() + "/reports")
	mustContain(t, "app page with the provider down", p.body, "app page /reports for alice@acme.test")
	expectUnavailable(t, "GET", g.URL()+"/sso/login?rd=/x")

	op = startOP()
	defer op.Close()
	waitUntil(t, "the provider is reached again", g.service().IdPReachable)
	p = newBrowser(t).get(g.URL() + "/other")
	mustContain(t, "new sign-in after the provider came back", p.body, "app page /other for alice@acme.test")
}

// metadataServer serves the IdP's metadata from addr (a copy fetched from
// the IdP): the metadata URL the gateway reads, which the test takes down
// and brings back.
func metadataServer(t *testing.T, addr string, idp *samlIdP) (stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(idp.metadataURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() { _ = srv.Serve(l) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = srv.Shutdown(context.Background())
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestSAMLMetadataOutage: metadata that cannot be fetched at start gives
// 503 at sign-in until it can, with no restart; a failed refresh keeps the
// last good metadata, so sign-in goes on working. Each change is logged
// once.
func TestSAMLMetadataOutage(t *testing.T) {
	idp := startSAMLIdPWithUsers(t)
	addr := freeAddr(t)
	g, logs := outageGateway(t, func(s *Service) { s.metadataRefresh = 50 * time.Millisecond })
	g.start(TenantConfig{JIT: true, SAML: &SAMLConfig{
		IDPMetadataURL: "http://" + addr + "/metadata",
		EntityID:       g.URL() + "/sso/saml/metadata",
	}})

	expectUnavailable(t, "GET", g.URL()+"/sso/login?rd=/x")
	expectUnavailable(t, "POST", g.URL()+"/sso/saml/acs")
	// The SP metadata the IdP admin needs is there all the same.
	resp, err := http.Get(g.URL() + "/sso" + PathSAMLMetadata)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SP metadata during the outage: %d", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	if n := logged(logs, "identity provider unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}

	stop := metadataServer(t, addr, idp)
	waitUntil(t, "the metadata is fetched", g.service().IdPReachable)
	idp.registerSP(g.URL() + "/sso" + PathSAMLMetadata)
	_, p := samlSignIn(t, newBrowser(t), g, "carol", "carol-pw", "/f")
	mustContain(t, "app page", p.body, "app page /f for carol@acme.test")

	// The metadata URL goes away: refreshes fail, the last good copy stays.
	stop()
	waitUntil(t, "the failed refresh is logged", func() bool { return logged(logs, "refresh failed") > 0 })
	time.Sleep(300 * time.Millisecond)
	if n := logged(logs, "refresh failed"); n != 1 {
		t.Fatalf("failed refresh logged %d times, want once", n)
	}
	_, p = samlSignIn(t, newBrowser(t), g, "carol", "carol-pw", "/g")
	mustContain(t, "app page during failed refreshes", p.body, "app page /g for carol@acme.test")

	recovered := logged(logs, "reachable again")
	metadataServer(t, addr, idp)
	waitUntil(t, "the recovery is logged", func() bool { return logged(logs, "reachable again") > recovered })
	time.Sleep(200 * time.Millisecond)
	if n := logged(logs, "reachable again") - recovered; n != 1 {
		t.Fatalf("recovery logged %d times, want once", n)
	}
}
