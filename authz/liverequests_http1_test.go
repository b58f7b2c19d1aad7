package authz

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// delayedForward stands for a proxy that cannot reach its upstream at
// once (retrying a dial during a deploy, waiting in a queue, a slow auth
// step before the proxy): it waits, then forwards the request (reads its
// body) unless its context ended meanwhile. It reports which.
type delayedForward struct {
	wait    time.Duration
	started chan struct{}
	outcome chan string
}

func (d *delayedForward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.started <- struct{}{}
	select {
	case <-r.Context().Done():
		d.outcome <- "stopped"
		return
	case <-time.After(d.wait):
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		d.outcome <- "stopped: " + err.Error()
		return
	}
	d.outcome <- fmt.Sprintf("forwarded %q", body)
}

// TestRevocationStopsAnHTTP1RequestBeforeItIsForwarded: on HTTP/1 a
// revocation must end the request's context whatever state the
// connection's reader is in. net/http only cancels the context when a
// read of the connection fails; a past read deadline makes that happen
// when the server's background read is running, but there is none while
// a request body is unread (even one already in the server's buffer,
// which the handler then reads without touching the connection), and
// none after the client sent the first byte of a pipelined request.
// Those requests must be stopped too, or a revoked session's request
// reaches the upstream after the revocation. The control: the same
// requests without a revocation are forwarded.
func TestRevocationStopsAnHTTP1RequestBeforeItIsForwarded(t *testing.T) {
	cases := []struct {
		name string
		raw  string // the request as the client writes it, in one write
		// later is what the client sends once the handler runs (after
		// the server's background read started).
		later string
	}{
		{"GET, nothing more sent", "GET /app HTTP/1.1\r\nHost: gw.example\r\nCookie: %s\r\n\r\n", ""},
		{"POST, body buffered and unread", "POST /app HTTP/1.1\r\nHost: gw.example\r\nCookie: %s\r\nContent-Length: 8\r\n\r\ntransfer", ""},
		{"GET, pipelined byte in the same write", "GET /app HTTP/1.1\r\nHost: gw.example\r\nCookie: %s\r\n\r\nG", ""},
		{"GET, then a pipelined byte", "GET /app HTTP/1.1\r\nHost: gw.example\r\nCookie: %s\r\n\r\n", "G"},
	}
	for _, c := range cases {
		for _, revoke := range []bool{false, true} {
			name := c.name + ", control"
			if revoke {
				name = c.name + ", revoked"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				ids := f.identities(threeRoles())
				gate := f.gate(ids, GateConfig{})
				victim := f.user("victim")
				cookie := testCookie + "=" + f.signIn(victim)
				d := &delayedForward{wait: 1500 * time.Millisecond, started: make(chan struct{}, 1), outcome: make(chan string, 1)}
				srv := httptest.NewServer(gate.Handler(d))
				t.Cleanup(srv.Close)

				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				if _, err := fmt.Fprintf(conn, c.raw, cookie); err != nil {
					t.Fatal(err)
				}
				select {
				case <-d.started:
				case <-time.After(3 * time.Second):
					// The gate refused it: show why.
					_ = conn.SetReadDeadline(time.Now().Add(time.Second))
					resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
					if err == nil {
						t.Fatalf("the request never reached the handler: %s", resp.Status)
					}
					t.Fatalf("the request never reached the handler: %v", err)
				}
				if c.later != "" {
					// Past the background read's start: the request is
					// live, its handler running.
					time.Sleep(50 * time.Millisecond)
					if _, err := io.WriteString(conn, c.later); err != nil {
						t.Fatal(err)
					}
					time.Sleep(50 * time.Millisecond)
				}
				if revoke {
					f.update(func(tx storage.Tx) error { return tx.DeleteUser(victim.ID) })
				}
				var got string
				select {
				case got = <-d.outcome:
				case <-time.After(5 * time.Second):
					t.Fatal("the handler never finished")
				}
				switch {
				case revoke && got != "stopped" && !strings.HasPrefix(got, "stopped:"):
					t.Errorf("after the revocation the handler %s; want its context ended first", got)
				case !revoke && !strings.HasPrefix(got, "forwarded"):
					t.Errorf("control: the handler %s; want it forwarded", got)
				}
				t.Logf("handler: %s", got)
			})
		}
	}
}

// finishedThenWaits answers in full at once (a Content-Length body,
// flushed), then stays in the handler until its context ends or a while
// passed, as a proxy does between relaying an answer and returning.
type finishedThenWaits struct{ started chan string }

func (h finishedThenWaits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFromContext(r.Context())
	w.Header().Set("Content-Length", "2")
	_, _ = io.WriteString(w, "ok")
	_ = http.NewResponseController(w).Flush()
	h.started <- id.UserID
	if r.URL.Path == "/wait" {
		select {
		case <-r.Context().Done():
		case <-time.After(1500 * time.Millisecond):
		}
	}
}

// TestRevocationLeavesTheNextRequestOnTheConnectionAlone: a front proxy
// (or any keep-alive client) sends one user's request and then another's
// on the same HTTP/1 connection. The first user's session is revoked
// after their answer was complete but before their handler returned; the
// connection then carries the second user's request, which must be
// served as that user. A past read deadline on the connection fails
// net/http's background read, which cancels the context of the whole
// connection (not the request's), and the connection is kept alive: every
// later request on it would start with a cancelled context (the gate's
// store read fails, and the signed-in bystander is told to sign in). The
// control: the same sequence without a revocation.
func TestRevocationLeavesTheNextRequestOnTheConnectionAlone(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(fmt.Sprintf("revoked %v", revoke), func(t *testing.T) {
			f := newFixture(t)
			ids := f.identities(threeRoles())
			gate := f.gate(ids, GateConfig{})
			victim, bystander := f.user("victim"), f.user("bystander")
			victimCookie, bystanderCookie := f.signIn(victim), f.signIn(bystander)
			h := finishedThenWaits{started: make(chan string, 2)}
			srv := httptest.NewServer(gate.Handler(h))
			t.Cleanup(srv.Close)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			br := bufio.NewReader(conn)
			send := func(path, cookie string) (*http.Response, error) {
				if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gw.example\r\nCookie: %s=%s\r\n\r\n", path, testCookie, cookie); err != nil {
					return nil, err
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return nil, err
				}
				body, err := io.ReadAll(resp.Body)
				t.Logf("%s: %s %s", path, resp.Status, body)
				return resp, err
			}
			resp, err := send("/wait", victimCookie)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("the victim's request: %v %v", resp, err)
			}
			<-h.started
			if revoke {
				f.update(func(tx storage.Tx) error { return tx.DeleteUser(victim.ID) })
			}
			// The victim's handler returns (at the revocation, or after
			// its wait).
			deadline := time.Now().Add(3 * time.Second)
			for {
				if live, _ := ids.LiveRequests(); live == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the victim's request never ended")
				}
				time.Sleep(10 * time.Millisecond)
			}
			resp, err = send("/now", bystanderCookie)
			if err != nil {
				t.Fatalf("the bystander's request on the same connection failed: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the bystander's request: %s %v", resp.Status, resp.Header)
			}
			if who := <-h.started; who != bystander.ID {
				t.Fatalf("the second request ran as %q, want the bystander", who)
			}
		})
	}
}
