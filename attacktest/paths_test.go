package attacktest

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// rawGet writes a GET of target (sent byte for byte, whatever it holds)
// to the site at base with the session cookie ("" for none), as a script
// (Accept: application/json) or a browser (html), and reads the answer.
func rawGet(t *testing.T, base, target, session string, html bool) answer {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	accept := "application/json"
	if html {
		accept = "text/html"
	}
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: " + accept + "\r\nConnection: close\r\n"
	if session != "" {
		req += "Cookie: " + sessionCookie + "=" + session + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// servletEcho decodes the servlet backend's answer.
func servletEcho(t *testing.T, a answer) gatewaytest.ServletEcho {
	t.Helper()
	var e gatewaytest.ServletEcho
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.RawPath == "" {
		t.Fatalf("expected the servlet backend's answer, got %d:\n%.300s", a.status, a.body)
	}
	return e
}

// badPathCase is a request path a servlet container (or another backend)
// could read differently from Caddy's matchers.
type badPathCase struct {
	name, target string
	// raw: the bytes are such that Go's HTTP parser may refuse the request
	// itself (400 without the gateway's JSON body).
	raw bool
}

var badPaths = []badPathCase{
	{"; parameter in a middle segment", "/j/admin;x/secret", false},
	{"; parameter in the first segment", "/j;x/admin/secret", false},
	{"; jsessionid in a middle segment", "/j/admin;jsessionid=ABC/secret", false},
	{"; parameter in the last segment", "/j/viewer/page;x", false},
	{"empty ; parameter", "/j/admin;/secret", false},
	{"%3b parameter", "/j/admin%3bx/secret", false},
	{"%3B parameter", "/j/admin%3Bx/secret", false},
	{"raw backslash", `/j/admin\secret`, false},
	{"raw backslash in the first segment", `/j\admin/secret`, false},
	{"%5c backslash", "/j/admin%5csecret", false},
	{"%5C backslash", "/j/admin%5Csecret", false},
	{"%00", "/j/admin%00/secret", false},
	{"%00 at the end", "/j/viewer/page%00", false},
	{"%0a", "/j/viewer/page%0a", false},
	{"%0d%0a", "/j/viewer/%0d%0apage", false},
	{"%09", "/j/admin%09/secret", false},
	{"%1f", "/j/viewer/pa%1fge", false},
	{"%7f", "/j/admin%7f/secret", false},
	{"raw NUL", "/j/admin\x00/secret", true},
	{"raw tab", "/j/admin\t/secret", true},
	{"raw DEL", "/j/admin\x7f/secret", true},
	{"raw 0x01", "/j/viewer/pa\x01ge", true},
	{"segment ending in a dot", "/j/admin./secret", false},
	{"segment ending in %2e", "/j/admin%2e/secret", false},
	{"segment ending in %2E", "/j/admin%2E/secret", false},
	{"segment ending in %20", "/j/admin%20/secret", false},
	{"segment ending in %20 at the end", "/j/viewer/page%20", false},
	{"dot segment", "/./x", false},
	{"dot-dot segment", "/../x", false},
	{"dot segment inside", "/j/./admin/secret", false},
	{"dot-dot segment inside", "/j/viewer/../admin/secret", false},
	{"%2e%2e segment", "/j/viewer/%2e%2e/admin/secret", false},
	{"last segment ending in a dot", "/j/viewer/page.", false},
}

// expectBadPath checks that the gateway refused target with 400 (and the
// JSON error for a script) and the backend got nothing.
func expectBadPath(t *testing.T, g *boundaryGateway, base string, c badPathCase, session string, html bool) {
	t.Helper()
	g.servlet.Take()
	a := rawGet(t, base, c.target, session, html)
	seen := g.servlet.Take()
	for _, e := range seen {
		t.Errorf("GET %q: the backend served %q (routed as %q) to %q", c.target, e.RawPath, e.Routed, e.User)
	}
	if a.status != http.StatusBadRequest {
		t.Errorf("GET %q: %d, want 400\n%.300s", c.target, a.status, a.body)
		return
	}
	if html || (c.raw && !strings.HasPrefix(a.header.Get("Content-Type"), "application/json")) {
		return // a page, or Go's own parser refused the request line
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Error != "bad_path" {
		t.Errorf("GET %q: 400 with %q, want JSON error bad_path", c.target, a.body)
	}
}

// TestPathParsingDifferentials plays the setup: /j/admin/* needs
// role admin, everything else any signed-in user, both proxied to a
// servlet-style backend that strips ;parameters from every segment. A
// viewer asking for /j/admin;x/secret (and every other path a backend
// could read differently from Caddy's matchers) must get 400 and the
// backend nothing; on a public route too.
func TestPathParsingDifferentials(t *testing.T) {
	g := startBoundaryGateway(t, nil)
	_, eve := g.signIn(t, g.acme, "eve")   // viewer
	_, root := g.signIn(t, g.acme, "root") // admin

	t.Run("controls", func(t *testing.T) {
		// The backend does read ;parameters away: this is the hole.
		g.servlet.Take()
		if e := servletEcho(t, rawGet(t, "http://"+g.servlet.Addr, "/j/admin;x/secret", "", false)); e.Routed != "/j/admin/secret" {
			t.Fatalf("the servlet backend routes /j/admin;x/secret as %q", e.Routed)
		}
		for _, c := range []struct {
			name, target, session, routed string
			status                        int
		}{
			{"a viewer's clean path", "/j/viewer/page", eve, "/j/viewer/page", http.StatusOK},
			{"a semicolon in the query", "/j/viewer/page?a=1;b=2", eve, "/j/viewer/page", http.StatusOK},
			{"an admin's admin page", "/j/admin/secret", root, "/j/admin/secret", http.StatusOK},
			{"a viewer's admin page", "/j/admin/secret", eve, "", http.StatusForbidden},
			{"anonymous on the public route", "/pub/page", "", "/pub/page", http.StatusOK},
		} {
			g.servlet.Take()
			a := rawGet(t, g.acme, c.target, c.session, false)
			if a.status != c.status {
				t.Errorf("%s: %d, want %d\n%.300s", c.name, a.status, c.status, a.body)
				continue
			}
			if c.routed != "" {
				if e := servletEcho(t, a); e.Routed != c.routed {
					t.Errorf("%s: routed %q, want %q", c.name, e.Routed, c.routed)
				}
			} else if seen := g.servlet.Take(); len(seen) != 0 {
				t.Errorf("%s: the backend got %+v", c.name, seen)
			}
		}
	})

	for _, c := range badPaths {
		t.Run(c.name, func(t *testing.T) {
			expectBadPath(t, g, g.acme, c, eve, false)
		})
	}
	t.Run("an admin's request is refused too", func(t *testing.T) {
		expectBadPath(t, g, g.acme, badPathCase{target: "/j/admin;x/secret"}, root, false)
	})
	t.Run("a browser gets 400 too", func(t *testing.T) {
		expectBadPath(t, g, g.acme, badPathCase{target: "/j/admin;x/secret"}, eve, true)
	})
	t.Run("public route, anonymous", func(t *testing.T) {
		for _, target := range []string{"/pub/a;x/b", "/pub/a%3bx/b", `/pub/a\b`, "/pub/a%00", "/pub/a./b", "/pub/../j/admin/secret"} {
			expectBadPath(t, g, g.acme, badPathCase{target: target}, "", false)
		}
	})
}

// TestPathParamsOptIn: a route that names a path parameter with
// allow_path_params accepts it on the last segment only; every other
// parameter, and the named one on another segment, stays refused there.
func TestPathParamsOptIn(t *testing.T) {
	g := startBoundaryGateway(t, func(cf string, g *boundaryGateway) string {
		return gatewaytest.ReplaceOnce(t, cf, "\thandle /j/admin/* {\n", `	handle /j/app/* {
		identity acme {
			allow_path_params jsessionid
		}
		reverse_proxy `+g.servlet.Addr+`
	}
	handle /j/admin/* {
`)
	})
	_, eve := g.signIn(t, g.acme, "eve")

	t.Run("the named parameter on the last segment", func(t *testing.T) {
		g.servlet.Take()
		a := rawGet(t, g.acme, "/j/app/page;jsessionid=ABC", eve, false)
		if a.status != http.StatusOK {
			t.Fatalf("%d, want 200\n%.300s", a.status, a.body)
		}
		if e := servletEcho(t, a); e.Routed != "/j/app/page" || e.User != eveName {
			t.Errorf("the backend served %q to %q", e.Routed, e.User)
		}
	})
	t.Run("control: a clean path", func(t *testing.T) {
		if a := rawGet(t, g.acme, "/j/app/page", eve, false); a.status != http.StatusOK {
			t.Errorf("%d, want 200", a.status)
		}
	})
	for _, c := range []badPathCase{
		{name: "another parameter on the last segment", target: "/j/app/page;x"},
		{name: "the named parameter empty on a middle segment", target: "/j/app;jsessionid=/page"},
		{name: "the named parameter on a middle segment", target: "/j/app;jsessionid=ABC/page"},
		{name: "the named parameter on the first segment", target: "/j;jsessionid=ABC/app/page"},
		{name: "a backslash", target: `/j/app\page;jsessionid=ABC`},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectBadPath(t, g, g.acme, c, eve, false)
		})
	}
}
