package attacktest

import (
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// revocationDeadline is how soon after losing access a user's upgraded or
// streaming connection must end.
const revocationDeadline = time.Second

// streamGrace is how long the backend's side may outlive the client's.
const streamGrace = 500 * time.Millisecond

// streamPair is one person's WebSocket and SSE stream on a route.
type streamPair struct {
	ws, sse *liveStream
	names   [2]string // the backend's names of the two streams
}

// openPair opens a WebSocket and an event stream of site+prefix as the
// session's user, and waits until both relay.
func openPair(t *testing.T, site, prefix, session, name string) streamPair {
	t.Helper()
	p := streamPair{names: [2]string{name + "-ws", name + "-sse"}}
	p.ws = openWS(t, site+prefix+"/ws/feed?name="+p.names[0], session)
	p.sse = openSSE(t, site+prefix+"/sse/feed?name="+p.names[1], session)
	for _, s := range []*liveStream{p.ws, p.sse} {
		if err := s.waitPushes(2, 3*time.Second); err != nil {
			t.Fatalf("before any revocation: %v", err)
		}
	}
	return p
}

// bothEnds is a stream as the client has it and the backend's log of it.
type bothEnds struct {
	s    *liveStream
	log  *gatewaytest.StreamLog
	name string
}

// streamsOf pairs each stream of p with the backend's record of it.
func (g *boundaryGateway) streamsOf(p streamPair) []bothEnds {
	return []bothEnds{{p.ws, g.ws.Log, p.names[0]}, {p.sse, g.sse.Log, p.names[1]}}
}

// expectClosed checks that both streams of the victim end within
// revocationDeadline of revoked, that nothing the backend sent later than
// that reached the client, and that the gateway closed the backend's side
// too (so nothing more is relayed).
func (g *boundaryGateway) expectClosed(t *testing.T, victim streamPair, revoked time.Time, what string) {
	t.Helper()
	deadline := revoked.Add(revocationDeadline)
	for _, st := range g.streamsOf(victim) {
		ended, ok := st.s.waitEnd(deadline.Add(100 * time.Millisecond))
		if !ok {
			t.Errorf("%s: the victim's %s is still open %v after %s and has relayed %d pushes sent after it",
				what, st.s.kind, time.Since(revoked).Round(time.Millisecond), what, st.s.sentAfter(revoked))
			continue
		}
		delay := ended.Sub(revoked)
		t.Logf("%s: the victim's %s closed %v after the revocation was acknowledged", what, st.s.kind, delay.Round(time.Millisecond))
		if delay > revocationDeadline {
			t.Errorf("%s: the victim's %s closed %v after it, want within %v", what, st.s.kind, delay, revocationDeadline)
		}
		if n := st.s.sentAfter(deadline); n > 0 {
			t.Errorf("%s: %d pushes the backend sent more than %v after it reached the victim's %s", what, n, revocationDeadline, st.s.kind)
		}
		c := st.log.Conn(st.name)
		if c == nil {
			t.Errorf("the backend has no record of %s", st.name)
			continue
		}
		backendDeadline := ended.Add(streamGrace)
		for time.Now().Before(backendDeadline) {
			if _, done := c.Ended(); done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if at, done := c.Ended(); !done {
			t.Errorf("%s: the gateway still relays the backend's %s (%d pushes written after the client's side closed)", what, st.s.kind, c.PushesAfter(ended))
		} else if at.After(backendDeadline) {
			t.Errorf("%s: the backend's %s ended %v after the client's", what, st.s.kind, at.Sub(ended))
		}
	}
}

// expectRelaying checks that both streams of an unaffected person are open
// and still relay.
func expectRelaying(t *testing.T, p streamPair, who string) {
	t.Helper()
	for _, s := range []*liveStream{p.ws, p.sse} {
		if err := s.waitPushes(3, 2*time.Second); err != nil {
			t.Errorf("%s: %v", who, err)
		}
	}
}

// TestStreamsEndOnRevocation opens a WebSocket and an SSE stream through
// protected identity routes as a signed-in user, takes the user's access
// away in each way there is (SCIM deactivation, SCIM deletion, sign-out,
// removal from the group the route allows, a group change dropping the
// role below the route's require, the IdP's session end), and checks that
// both streams close within a second and relay nothing more, while another
// user's streams on the same route keep relaying. The control keeps
// streams open for 2 s without revocation.
func TestStreamsEndOnRevocation(t *testing.T) {
	g := startBoundaryGateway(t, nil)
	ids := map[string]string{}
	var everyone []string
	for _, p := range []string{"bystander", "victim1", "victim2", "victim3", "victim4", "victim5"} {
		ids[p] = g.scimUser(t, initechEmail(p), p, initechEmail(p))
		everyone = append(everyone, ids[p])
	}
	opsGroup := g.scimGroup(t, "Ops", everyone...)
	adminsGroup := g.scimGroup(t, "Admins", everyone...)
	_, bystander := g.signIn(t, g.initech, "bystander")

	t.Run("control: without revocation streams keep relaying for 2s", func(t *testing.T) {
		p := openPair(t, g.initech, "", bystander, "control")
		time.Sleep(2 * time.Second)
		for _, s := range []*liveStream{p.ws, p.sse} {
			if _, err, ended := s.endedAt(); ended {
				t.Errorf("the %s ended without revocation: %v", s.kind, err)
			}
			if n := s.count(); n < 15 {
				t.Errorf("the %s relayed %d pushes in 2s, want about 20", s.kind, n)
			}
		}
		expectRelaying(t, p, "the control")
	})

	triggers := []struct {
		name, victim, prefix string
		// revoke takes the victim's access away and returns when the
		// gateway acknowledged it.
		revoke func(t *testing.T, victim *gatewaytest.Browser) time.Time
	}{
		{"SCIM PATCH active false", "victim1", "", func(t *testing.T, _ *gatewaytest.Browser) time.Time {
			g.scimPatch(t, "/Users/"+ids["victim1"], map[string]any{"op": "replace", "value": map[string]any{"active": false}})
			return time.Now()
		}},
		{"SCIM DELETE", "victim2", "", func(t *testing.T, _ *gatewaytest.Browser) time.Time {
			if status, body := g.scim(t, http.MethodDelete, "/Users/"+ids["victim2"], nil); status != http.StatusNoContent {
				t.Fatalf("SCIM DELETE: %d %s", status, body)
			}
			return time.Now()
		}},
		{"sign-out", "victim3", "", func(t *testing.T, b *gatewaytest.Browser) time.Time {
			b.StopRedirects()
			p := b.Get(g.initech + "/sso/logout")
			at := time.Now()
			b.FollowRedirects()
			if p.Status >= 400 {
				t.Fatalf("sign-out: %d\n%.300s", p.Status, p.Body)
			}
			return at
		}},
		{"removal from the group of allow_groups", "victim4", "/ops", func(t *testing.T, _ *gatewaytest.Browser) time.Time {
			g.scimPatch(t, "/Groups/"+opsGroup, map[string]any{"op": "remove", "path": `members[value eq "` + ids["victim4"] + `"]`})
			return time.Now()
		}},
		{"role dropped below require", "victim5", "/admin", func(t *testing.T, _ *gatewaytest.Browser) time.Time {
			g.scimPatch(t, "/Groups/"+adminsGroup, map[string]any{"op": "remove", "path": `members[value eq "` + ids["victim5"] + `"]`})
			return time.Now()
		}},
	}
	for _, tr := range triggers {
		t.Run(tr.name, func(t *testing.T) {
			vb, vs := g.signIn(t, g.initech, tr.victim)
			victim := openPair(t, g.initech, tr.prefix, vs, tr.victim)
			other := openPair(t, g.initech, tr.prefix, bystander, "bystander-"+tr.victim)
			revoked := tr.revoke(t, vb)
			g.expectClosed(t, victim, revoked, tr.name)
			expectRelaying(t, other, "another user's streams on "+tr.prefix+"/")
			// The revocation did take effect for new requests: what the
			// test sees is only about connections already open.
			if a := get(t, g.initech+tr.prefix+"/ws/feed", vs); a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
				t.Errorf("after %s a new request of the victim gets %d", tr.name, a.status)
			}
		})
	}

	t.Run("session end set by the IdP", func(t *testing.T) {
		const lifetime = 4 * time.Second
		g.saml.SetSessionLifetime(lifetime)
		vs := g.signInGlobex(t, globexUser, globexPass)
		g.saml.SetSessionLifetime(0)
		end := g.saml.LastSessionEnd()
		if until := time.Until(end); until < lifetime/2 || until > lifetime {
			t.Fatalf("the IdP's session end is %v away", until)
		}
		other := g.signInGlobex(t, globexPeer, globexPW2)
		victim := openPair(t, g.globex, "", vs, "expiring")
		peer := openPair(t, g.globex, "", other, "peer-of-expiring")
		// Until the end, the victim's streams relay.
		time.Sleep(time.Until(end.Add(-300 * time.Millisecond)))
		for _, s := range []*liveStream{victim.ws, victim.sse} {
			if _, err, ended := s.endedAt(); ended {
				t.Errorf("the %s ended before the session did: %v", s.kind, err)
			}
		}
		g.expectClosed(t, victim, end, "the session's end")
		expectRelaying(t, peer, "another user's streams")
		if a := get(t, g.globex+"/ws/feed", vs); a.status != http.StatusUnauthorized {
			t.Errorf("after the session's end a new request gets %d", a.status)
		}
	})
}
