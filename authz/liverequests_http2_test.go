package authz

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// remotePoll is a silent long poll that records the client address of
// each request and when its context ended.
type remotePoll struct {
	mu      sync.Mutex
	remotes map[string]string // user id -> client address
	ended   chan string       // user ids, as their contexts end
}

func (p *remotePoll) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFromContext(r.Context())
	p.mu.Lock()
	p.remotes[id.UserID] = r.RemoteAddr
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
		p.ended <- id.UserID
	case <-time.After(5 * time.Second):
	}
}

// TestRevocationEndsOnlyItsHTTP2Stream: two users' long polls share one
// HTTP/2 connection (as through a front proxy); revoking one resets its
// stream only. The other's context stays live and the connection keeps
// carrying new requests.
func TestRevocationEndsOnlyItsHTTP2Stream(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	gate := f.gate(ids, GateConfig{})
	victim, bystander := f.user("victim"), f.user("bystander")
	cookies := map[string]string{victim.ID: f.signIn(victim), bystander.ID: f.signIn(bystander)}
	poll := &remotePoll{remotes: map[string]string{}, ended: make(chan string, 3)}
	srv := httptest.NewUnstartedServer(gate.Handler(poll))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := srv.Client()
	get := func(user string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/poll", nil)
		req.AddCookie(&http.Cookie{Name: testCookie, Value: cookies[user]})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		return resp
	}
	get(victim.ID)
	get(bystander.ID)
	waitLive(t, ids, 2)
	poll.mu.Lock()
	if a, b := poll.remotes[victim.ID], poll.remotes[bystander.ID]; a != b {
		t.Fatalf("the two polls came on different connections (%s, %s)", a, b)
	}
	poll.mu.Unlock()

	f.update(func(tx storage.Tx) error { return tx.DeleteUser(victim.ID) })
	select {
	case who := <-poll.ended:
		if who != victim.ID {
			t.Fatalf("the bystander's context ended")
		}
	case <-time.After(time.Second):
		t.Fatal("the victim's context was not cancelled within a second")
	}
	select {
	case <-poll.ended:
		t.Fatal("the bystander's context ended too")
	case <-time.After(300 * time.Millisecond):
	}
	// The shared connection still serves the bystander.
	get(bystander.ID)
	waitLive(t, ids, 2)
}
