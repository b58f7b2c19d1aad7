package attacktest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// lateRoute is a protected route whose upstream is down when requests
// arrive: reverse_proxy keeps retrying the dial (as during a deploy), so
// a request waits in the gateway before it is sent upstream.
const lateRoute = `	handle /late/* {
		identity initech
		reverse_proxy 127.0.0.1:@LATEPORT@ {
			lb_try_duration 8s
			lb_try_interval 100ms
		}
	}
`

// TestRevokedRequestNotDeliveredLate sends HTTP/1 requests through a
// protected route whose upstream is down, takes some senders' access away
// while the gateway waits for the upstream, then starts the upstream. A
// revoked session's request must never reach it: not a plain GET, not a
// POST whose body the gateway has not read yet (net/http has nothing
// reading the connection then, so a past read deadline cancels nothing),
// not a GET followed by the first byte of a pipelined request (which
// stops net/http's background read). The controls: the same requests of
// users who keep their access arrive.
func TestRevokedRequestNotDeliveredLate(t *testing.T) {
	latePort := gatewaytest.FreePort(t)
	g := startBoundaryGateway(t, func(cf string, _ *boundaryGateway) string {
		route := strings.ReplaceAll(lateRoute, "@LATEPORT@", fmt.Sprint(latePort))
		// Before the catch-all handle of initech's site.
		return strings.Replace(cf, "\thandle /names/* {", route+"\thandle /names/* {", 1)
	})

	cases := []struct {
		person  string
		revoke  bool
		request string // %s: the session cookie
		later   string // sent once the request waits in the gateway
	}{
		{"victim1", true, "GET /late/plain-get HTTP/1.1\r\nHost: gw\r\nCookie: %s\r\n\r\n", ""},
		{"victim2", true, "POST /late/post HTTP/1.1\r\nHost: gw\r\nCookie: %s\r\nContent-Length: 8\r\n\r\ntransfer", ""},
		{"victim3", true, "GET /late/pipelined HTTP/1.1\r\nHost: gw\r\nCookie: %s\r\n\r\n", "G"},
		{"clean", false, "POST /late/control-post HTTP/1.1\r\nHost: gw\r\nCookie: %s\r\nContent-Length: 8\r\n\r\ntransfer", ""},
		{"bystander", false, "GET /late/control-pipelined HTTP/1.1\r\nHost: gw\r\nCookie: %s\r\n\r\n", "G"},
	}
	ids := map[string]string{}
	sessions := map[string]string{}
	for _, c := range cases {
		ids[c.person] = g.scimUser(t, initechEmail(c.person), c.person, initechEmail(c.person))
		_, sessions[c.person] = g.signIn(t, g.initech, c.person)
	}
	addr := strings.TrimPrefix(g.initech, "http://")
	for _, c := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := fmt.Fprintf(conn, c.request, sessionCookie+"="+sessions[c.person]); err != nil {
			t.Fatal(err)
		}
		if c.later != "" {
			go func() {
				time.Sleep(300 * time.Millisecond)
				_, _ = io.WriteString(conn, c.later)
			}()
		}
	}
	time.Sleep(600 * time.Millisecond)
	for _, c := range cases {
		if c.revoke {
			g.scimPatch(t, "/Users/"+ids[c.person], map[string]any{"op": "replace", "value": map[string]any{"active": false}})
		}
	}
	// Well past the watcher's interval: every revocation took effect.
	time.Sleep(time.Second)

	var mu sync.Mutex
	arrived := map[string]string{}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", latePort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		mu.Lock()
		arrived[r.URL.Path] = r.Method + " " + string(body)
		mu.Unlock()
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	// The controls arrive within a few retry intervals; give the rest as
	// long again.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cases {
		path := strings.Fields(c.request)[1]
		got, ok := arrived[path]
		switch {
		case c.revoke && ok:
			t.Errorf("%s's request %s reached the upstream after the revocation (%q)", c.person, path, got)
		case !c.revoke && !ok:
			t.Errorf("control: %s's request %s never reached the upstream", c.person, path)
		default:
			t.Logf("%s %s: arrived %v", c.person, path, ok)
		}
	}
}
