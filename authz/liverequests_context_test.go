package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// silentPoll is a long poll whose upstream has nothing to say: it sends
// its headers, then waits for its context and records when that ended.
// Nothing is written, so only a cancelled context (not a failed write)
// can end it.
type silentPoll struct{ ended chan time.Time }

func (p *silentPoll) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
		p.ended <- time.Now()
	case <-time.After(10 * time.Second):
	}
}

// TestRevocationCancelsTheHandlersContext: a revocation cancels the
// context of a live request that neither side writes to, over HTTP/2
// (where the stream's deadlines end it, not a context of the gate's),
// HTTP/1 and a writer without deadlines (where the gate cancels a context
// of its own). The control: without a revocation
// the context stays live.
func TestRevocationCancelsTheHandlersContext(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2", "no deadlines"} {
		t.Run(proto, func(t *testing.T) {
			f := newFixture(t)
			ids := f.identities(threeRoles())
			gate := f.gate(ids, GateConfig{})
			victim, bystander := f.user("victim"), f.user("bystander")
			victimCookie, bystanderCookie := f.signIn(victim), f.signIn(bystander)
			poll := &silentPoll{ended: make(chan time.Time, 2)}

			start := func(cookie string) {
				t.Helper()
				if proto == "no deadlines" {
					// The writer has no deadlines (httptest's recorder).
					req := httptest.NewRequest(http.MethodGet, "http://gw.example/poll", nil)
					req.AddCookie(&http.Cookie{Name: testCookie, Value: cookie})
					go gate.Handler(poll).ServeHTTP(httptest.NewRecorder(), req)
					return
				}
				srv := httptest.NewUnstartedServer(gate.Handler(poll))
				if proto == "HTTP/2" {
					srv.EnableHTTP2 = true
					srv.StartTLS()
				} else {
					srv.Start()
				}
				t.Cleanup(srv.Close)
				c := srv.Client()
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/poll", nil)
				req.AddCookie(&http.Cookie{Name: testCookie, Value: cookie})
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				if resp.StatusCode != http.StatusOK || resp.ProtoMajor != map[string]int{"HTTP/1.1": 1, "HTTP/2": 2}[proto] {
					t.Fatalf("%s %d, want %s 200", resp.Proto, resp.StatusCode, proto)
				}
			}
			start(victimCookie)
			start(bystanderCookie)
			waitLive(t, ids, 2)
			// Which way each request ends: the test covers both.
			ids.live.mu.Lock()
			for lr := range ids.live.reqs {
				// HTTP/1 needs its own context (see
				// liverequests_http1_test.go).
				if want := proto == "HTTP/2"; lr.deadlines != want || (lr.cancel == nil) != want {
					t.Errorf("deadlines %v, own cancel %v; want deadlines %v", lr.deadlines, lr.cancel != nil, want)
				}
			}
			ids.live.mu.Unlock()
			select {
			case <-poll.ended:
				t.Fatal("control: a context ended without a revocation")
			case <-time.After(300 * time.Millisecond):
			}

			revokedAt := time.Now()
			f.update(func(tx storage.Tx) error { return tx.DeleteUser(victim.ID) })
			select {
			case at := <-poll.ended:
				t.Logf("the victim's context ended %v after the revocation", at.Sub(revokedAt))
			case <-time.After(time.Second):
				t.Fatal("the victim's context was not cancelled within a second of the revocation")
			}
			select {
			case <-poll.ended:
				t.Fatal("the bystander's context ended too")
			case <-time.After(300 * time.Millisecond):
			}
			if live, revoked := ids.LiveRequests(); live != 1 || revoked != 1 {
				t.Errorf("live %d, revoked %d; want 1 and 1", live, revoked)
			}
		})
	}
}

// waitLive waits until n requests are live.
func waitLive(t *testing.T, ids *Identities, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if live, _ := ids.LiveRequests(); live == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never %d live requests", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
