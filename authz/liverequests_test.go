package authz

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// ticker is an upstream that keeps a response open and sends a line every
// 20 ms: as a server-sent event stream on a plain request, or over the
// raw connection after a 101 on an upgrade, as a WebSocket backend does.
var ticker = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for i := 0; i < 1000; i++ {
			time.Sleep(20 * time.Millisecond)
			if _, err := fmt.Fprintf(conn, "tick %d\n", i); err != nil {
				return
			}
		}
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := 0; i < 1000; i++ {
		if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
			return
		}
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
})

// openStream opens a long-lived request through srv as the session
// cookie's owner and returns a reader of its lines. upgrade asks for a
// WebSocket-style upgrade; otherwise it is an event stream.
func openStream(t *testing.T, srv *httptest.Server, cookie string, upgrade bool) *bufio.Reader {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	extra := "Accept: text/event-stream\r\n"
	if upgrade {
		extra = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	}
	fmt.Fprintf(conn, "GET /live HTTP/1.1\r\nHost: gw.example\r\nCookie: %s=%s\r\n%s\r\n", testCookie, cookie, extra)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := http.StatusOK
	if upgrade {
		want = http.StatusSwitchingProtocols
	}
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if upgrade {
		return br
	}
	return bufio.NewReader(resp.Body)
}

// waitEnd reads lines until the stream ends and says how long that took;
// it fails the test when the stream is still relaying after limit.
func waitEnd(t *testing.T, r *bufio.Reader, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := r.ReadString('\n')
		if err != nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("still relaying %v after the revocation", limit)
		}
	}
}

// stillRelaying checks that a stream goes on for d.
func stillRelaying(t *testing.T, r *bufio.Reader, d time.Duration) {
	t.Helper()
	for start := time.Now(); time.Since(start) < d; {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("an unaffected stream ended after %v: %v", time.Since(start), err)
		}
	}
}

func TestLiveRequestsEndWithAccess(t *testing.T) {
	for _, upgrade := range []bool{false, true} {
		kind := "event stream"
		if upgrade {
			kind = "upgraded connection"
		}
		for _, rev := range []struct {
			name   string
			policy Policy
			revoke func(f *fixture, u *storage.User, g *storage.Group, sessionHash [32]byte)
		}{
			{"deactivated", Policy{}, func(f *fixture, u *storage.User, _ *storage.Group, _ [32]byte) {
				f.update(func(tx storage.Tx) error {
					cur, err := tx.GetUser(u.ID)
					if err != nil {
						return err
					}
					cur.Active = false
					return tx.PutUser(cur) // sessions stay: the gate's own check must end it
				})
			}},
			{"deleted", Policy{}, func(f *fixture, u *storage.User, _ *storage.Group, _ [32]byte) {
				f.update(func(tx storage.Tx) error { return tx.DeleteUser(u.ID) })
			}},
			{"signed out", Policy{}, func(f *fixture, _ *storage.User, _ *storage.Group, h [32]byte) {
				f.update(func(tx storage.Tx) error { return tx.DeleteSession(h) })
			}},
			{"expired", Policy{}, func(f *fixture, _ *storage.User, _ *storage.Group, _ [32]byte) {
				f.clock.Advance(13 * time.Hour)
			}},
			{"removed from the allowed group", Policy{AllowGroups: []string{"Ops"}}, func(f *fixture, u *storage.User, g *storage.Group, _ [32]byte) {
				f.leave(u, g)
			}},
			{"role below require", Policy{Require: "admin"}, func(f *fixture, u *storage.User, g *storage.Group, _ [32]byte) {
				f.leave(u, g)
			}},
			{"public route, deactivated", Policy{Public: true}, func(f *fixture, u *storage.User, _ *storage.Group, _ [32]byte) {
				f.update(func(tx storage.Tx) error { return tx.DeleteUser(u.ID) })
			}},
		} {
			t.Run(kind+"/"+rev.name, func(t *testing.T) {
				f := newFixture(t)
				ids := f.identities(threeRoles(GroupMapping{Group: "Ops", Role: "admin"}))
				srv := serve(t, f.gate(ids, GateConfig{Policy: rev.policy}), ticker)
				ops := f.group("Ops", "")
				victim, bystander := f.user("victim"), f.user("bystander")
				f.join(victim, ops)
				f.join(bystander, ops)
				victimCookie, bystanderCookie := f.signIn(victim), f.signIn(bystander)
				if rev.name == "expired" {
					// The bystander's session outlives the victim's.
					f.update(func(tx storage.Tx) error {
						s, err := tx.GetSession(storage.HashSecret(bystanderCookie))
						if err != nil {
							return err
						}
						s.ExpiresAt = s.ExpiresAt.Add(24 * time.Hour)
						return tx.PutSession(s)
					})
				}
				victimStream := openStream(t, srv, victimCookie, upgrade)
				bystanderStream := openStream(t, srv, bystanderCookie, upgrade)
				stillRelaying(t, victimStream, 150*time.Millisecond) // control: it relays

				rev.revoke(f, victim, ops, storage.HashSecret(victimCookie))
				took := waitEnd(t, victimStream, time.Second)
				t.Logf("ended %v after the revocation", took)
				stillRelaying(t, bystanderStream, 300*time.Millisecond)
				if _, revoked := ids.LiveRequests(); revoked != 1 {
					t.Errorf("%d requests ended by revocation, want 1", revoked)
				}
			})
		}
	}
}

// TestNoRevocationKeepsStreams is the control of the test above: with no
// change, a stream outlives several watcher rounds and store writes that
// do not touch its session.
func TestNoRevocationKeepsStreams(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	srv := serve(t, f.gate(ids, GateConfig{}), ticker)
	u := f.user("steady")
	s := openStream(t, srv, f.signIn(u), true)
	go func() {
		for i := 0; i < 5; i++ {
			time.Sleep(100 * time.Millisecond)
			f.user(fmt.Sprintf("other%d", i)) // writes that move the generation
		}
	}()
	stillRelaying(t, s, time.Second)
	if live, revoked := ids.LiveRequests(); live != 1 || revoked != 0 {
		t.Fatalf("live %d, revoked %d; want 1 and 0", live, revoked)
	}
}

// TestLiveRequestsForgotten: a finished request leaves the registry, and
// the watcher stops when none is left.
func TestLiveRequestsForgotten(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{}), up)
	cookie := f.signIn(f.user("u"))
	for i := 0; i < 20; i++ {
		get(t, srv, "/", withCookie(cookie))
	}
	if live, _ := ids.LiveRequests(); live != 0 {
		t.Fatalf("%d live requests after every request ended", live)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		ids.live.mu.Lock()
		watching := ids.live.watching
		ids.live.mu.Unlock()
		if !watching {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher still runs with no live request")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// racingSessions deactivates the user right after the gate's store read,
// as a SCIM PATCH committing concurrently would: the gate admits the
// request on data the revocation has already changed.
type racingSessions struct {
	*storeSessions
	once sync.Once
	hook func()
}

func (s *racingSessions) Lookup(r *http.Request) (*storage.Session, *storage.User, error) {
	sess, u, err := s.storeSessions.Lookup(r)
	s.once.Do(s.hook)
	return sess, u, err
}

// TestRevocationRacingTheAdmission: a revocation that commits between the
// gate's read and the request's registration still ends the request (the
// request carries the generation it was checked at; found by review).
func TestRevocationRacingTheAdmission(t *testing.T) {
	for _, upgrade := range []bool{false, true} {
		f := newFixture(t)
		victim := f.user("victim")
		cookie := f.signIn(victim)
		rs := &racingSessions{storeSessions: f.sessions}
		rs.hook = func() {
			f.update(func(tx storage.Tx) error {
				cur, err := tx.GetUser(victim.ID)
				if err != nil {
					return err
				}
				cur.Active = false
				return tx.PutUser(cur)
			})
		}
		ids, err := NewIdentities(IdentitiesConfig{Tenant: testTenant, Store: f.store, Sessions: rs, Roles: threeRoles(), Logger: f.logger, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		srv := serve(t, f.gate(ids, GateConfig{}), ticker)
		took := waitEnd(t, openStream(t, srv, cookie, upgrade), time.Second)
		t.Logf("upgrade=%v: ended %v after it opened", upgrade, took)
	}
}
