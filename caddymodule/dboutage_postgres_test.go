package caddymodule

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// dbProxy stands between a gateway and the PostgreSQL server, on
// 127.0.0.1, so a test can make the database unreachable for that gateway
// alone (the server is shared with other tests) and bring it back.
type dbProxy struct {
	t      *testing.T
	addr   string // 127.0.0.1:port, the same across cut and restore
	server func() (net.Conn, error)

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startDBProxy proxies to the server dbURL names (a unix socket or TCP).
func startDBProxy(t *testing.T, dbURL string) *dbProxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{t: t, conns: map[net.Conn]bool{}}
	if filepath.IsAbs(cfg.Host) {
		sock := filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port))
		p.server = func() (net.Conn, error) { return net.Dial("unix", sock) }
	} else {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
		p.server = func() (net.Conn, error) { return net.Dial("tcp", addr) }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

// url is dbURL with the proxy as its server.
func (p *dbProxy) url(t *testing.T, dbURL string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.addr)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("host", host)
	q.Set("port", port)
	q.Set("sslmode", "disable") // 127.0.0.1 only, to a test server
	u.Host, u.RawQuery = "", q.Encode()
	return u.String()
}

func (p *dbProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := p.server()
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					_, _ = io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
}

// cut closes every proxied connection and refuses new ones: to the
// gateway, the database is down.
func (p *dbProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	p.wg.Wait()
}

// restore listens again on the same address.
func (p *dbProxy) restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("re-listening on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// outageWindow is the stale_if_error of the outage test.
const outageWindow = 2 * time.Second

// TestDatabaseOutage makes the database unreachable for a running gateway:
// SCIM and sign-in answer 503 with Retry-After and write nothing; a
// signed-in caller whose identity is cached keeps access for stale_if_error
// and is refused (503) after it; when the database is back, the same
// session works again.
func TestDatabaseOutage(t *testing.T) {
	dbURL := newTestDatabase(t)
	proxy := startDBProxy(t, dbURL)
	port := gatewaytest.FreePort(t)
	rs := newReplicaSet(t, dbURL, port)
	gw := rs.startReplica(t, "replica-a", port, proxy.url(t, dbURL), "stale_if_error "+outageWindow.String())
	rs.scimToken = issueToken(t, gw.gw, "acme")
	users := gw.gw.scimBase("acme") + "/Users"
	expect(t, call(t, http.MethodPost, users, rs.scimToken, newUser("alice@acme.example")), http.StatusCreated, "POST alice")
	cookie := rs.signIn(t, gw)
	if st, _ := visit(t, gw, "/app/home", cookie); st != http.StatusOK {
		t.Fatalf("signed-in request: %d", st)
	}

	proxy.cut()
	cutAt := time.Now()

	// SCIM: 503 with Retry-After, a SCIM error body.
	for _, req := range []struct {
		method, url string
		body        any
	}{
		{http.MethodPost, users, newUser("during-outage@acme.example")},
		{http.MethodGet, users + "?filter=" + url.QueryEscape(`userName eq "alice@acme.example"`), nil},
	} {
		a := call(t, req.method, req.url, rs.scimToken, req.body)
		expect(t, a, http.StatusServiceUnavailable, req.method+" during the outage")
		if a.header.Get("Retry-After") == "" || a.header.Get("Content-Type") != "application/scim+json" {
			t.Fatalf("%s during the outage: headers %v body %s", req.method, a.header, a.body)
		}
	}

	// The operator admin API: 503 with Retry-After, as SCIM.
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/users"},
		{http.MethodGet, "/events"},
		{http.MethodPost, "/scim-token"},
	} {
		a := call(t, req.method, "http://"+gw.gw.admin+"/portcullis/tenants/acme"+req.path, "", nil)
		expect(t, a, http.StatusServiceUnavailable, "admin "+req.method+" "+req.path+" during the outage")
		if a.header.Get("Retry-After") == "" {
			t.Fatalf("admin %s %s during the outage: no Retry-After (headers %v)", req.method, req.path, a.header)
		}
	}

	// Sign-in: the callback cannot store the session: 503, Retry-After.
	rs.oidc.AutoLogin("alice")
	p := gatewaytest.NewBrowser(t).Get(gw.gw.site + "/app/home")
	if p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" {
		t.Fatalf("sign-in during the outage: %d at %s, Retry-After %q", p.Status, p.URL, p.Header.Get("Retry-After"))
	}

	// The cached identity works within the window...
	if time.Since(cutAt) < outageWindow/2 {
		if st, _ := visit(t, gw, "/app/home", cookie); st != http.StatusOK {
			t.Fatalf("cached identity %v into the outage: %d, want 200 (stale_if_error %v)", time.Since(cutAt), st, outageWindow)
		}
	} else {
		t.Logf("the checks above took %v; not checking the window's start", time.Since(cutAt))
	}
	// ... and is refused after it.
	var refusedAt time.Duration
	for {
		st, retry := visit(t, gw, "/app/home", cookie)
		if st == http.StatusOK {
			if time.Since(cutAt) > outageWindow+5*time.Second {
				t.Fatalf("cached identity still served %v into the outage (stale_if_error %v)", time.Since(cutAt), outageWindow)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if st != http.StatusServiceUnavailable || retry == "" {
			t.Fatalf("after stale_if_error: %d, Retry-After %q; want 503 with Retry-After", st, retry)
		}
		refusedAt = time.Since(cutAt)
		break
	}
	// The window counts from the last moment the replica knew it was
	// current (its notification connection alive), at most a poll
	// interval or so before the cut.
	if refusedAt < outageWindow-2*replicaPollInterval {
		t.Fatalf("refused %v into the outage, before stale_if_error %v", refusedAt, outageWindow)
	}
	t.Logf("cached identity refused %v into the outage (stale_if_error %v)", refusedAt, outageWindow)

	proxy.restore()
	for deadline := time.Now().Add(15 * time.Second); ; {
		st, _ := visit(t, gw, "/app/home", cookie)
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session did not work again after the database came back: %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Nothing of the refused POST was written.
	var list listResponse
	a := call(t, http.MethodGet, users+"?filter="+url.QueryEscape(`userName eq "during-outage@acme.example"`), rs.scimToken, nil)
	expect(t, a, http.StatusOK, "filter after the outage")
	a.json(t, &list)
	if list.TotalResults != 0 {
		t.Fatalf("the POST answered 503 left a user: %s", a.body)
	}
	expect(t, call(t, http.MethodPost, users, rs.scimToken, newUser("during-outage@acme.example")), http.StatusCreated, "the same POST once the database is back")
}
