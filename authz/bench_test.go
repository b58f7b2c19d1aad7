package authz

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// BenchmarkGate measures Gate.Authorize alone (no network, no upstream) for
// a signed-in user with three groups on a route that requires a role:
//
//   - cached: the hot path, warm cache, the same request object reused (the
//     gate strips the headers it set the iteration before, as it would
//     strip forged ones);
//   - cached-fresh-headers: a new header map each time, as a server hands
//     the gate (the clone is part of the cost shown);
//   - cached-assertion: hot path plus the signed assertion (reused while
//     fresh, so signing is amortised);
//   - reload: a store write before every request, so every request reads
//     session, user and groups again (the cost after a SCIM change);
//   - serve: cached, through Gate.Serve (the request followed while it
//     runs, as the Caddy handler does) over HTTP/1 (the gate makes a
//     cancellable context of its own);
//   - serve-http2: the same over HTTP/2 with a writer that has
//     deadlines, as net/http's server hands handlers (no context made);
//   - parallel: the hot path from GOMAXPROCS goroutines.
//
// The session resolver is the test one (cookie parse + SHA-256), which is
// what sso's costs too.
func BenchmarkGate(b *testing.B) {
	f := newFixture(b)
	u := f.user("bench")
	var gs []*storage.Group
	for _, name := range []string{"Engineering", "Wiki Editors", "All Staff"} {
		gs = append(gs, f.group(name, ""))
	}
	f.join(u, gs...)
	ids := f.identities(threeRoles(GroupMapping{Group: "Wiki Editors", Role: "editor"}))
	cookie := f.signIn(u)
	other := f.user("bystander")
	gate := f.gate(ids, GateConfig{Policy: Policy{Require: "editor"}})
	signed := f.gate(ids, GateConfig{Policy: Policy{Require: "editor"}, Assertions: newSigner(b, f.store), AssertionAudience: testAudience})

	newRequest := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/wiki/page?rev=3", nil)
		r.Header.Set("Accept", "text/html,application/xhtml+xml")
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
		r.Header.Set("Accept-Language", "en-GB,en;q=0.5")
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		r.Header.Set("X-Remote-User", "forged")
		r.AddCookie(&http.Cookie{Name: testCookie, Value: cookie})
		r.AddCookie(&http.Cookie{Name: "_ga", Value: "GA1.2.3456789.1234567890"})
		return r
	}
	w := httptest.NewRecorder()
	// The gate removes its session cookie from the request it passes on
	// (in place: the slice is the request's own); a reused request gets
	// the browser's Cookie line back each time, in a slice of its own.
	cookieLine := newRequest().Header.Get("Cookie")
	setCookie := func(r *http.Request) {
		lines := r.Header["Cookie"]
		if len(lines) != 1 {
			lines = []string{""}
		}
		lines[0] = cookieLine
		r.Header["Cookie"] = lines
	}
	authorize := func(b *testing.B, g *Gate, r *http.Request) {
		setCookie(r)
		if id, ok := g.Authorize(w, r); !ok || id == nil || id.Role != "editor" {
			b.Fatalf("refused: %d %s", w.Code, w.Body)
		}
	}

	b.Run("cached", func(b *testing.B) {
		r := newRequest()
		authorize(b, gate, r)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			authorize(b, gate, r)
		}
	})
	b.Run("cached-fresh-headers", func(b *testing.B) {
		r := newRequest()
		template := r.Header.Clone()
		authorize(b, gate, r)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			r.Header = template.Clone()
			authorize(b, gate, r)
		}
	})
	b.Run("cached-assertion", func(b *testing.B) {
		r := newRequest()
		authorize(b, signed, r)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			authorize(b, signed, r)
		}
	})
	b.Run("reload", func(b *testing.B) {
		r := newRequest()
		authorize(b, gate, r)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			// A write that moves the generation (an audit event or a
			// record would not).
			f.update(func(tx storage.Tx) error {
				other.DisplayName += "x"
				return tx.PutUser(other)
			})
			b.StartTimer()
			authorize(b, gate, r)
		}
	})
	// Authorize plus following the request while it runs (the live
	// request registry), as the Caddy handler calls it: over HTTP/1 (the
	// gate makes a context of its own to cancel), and over HTTP/2 with a
	// writer that has deadlines, as net/http's server hands handlers
	// (revocation resets the stream; liverequests.go).
	for _, sv := range []struct {
		name  string
		w     http.ResponseWriter
		major int
	}{{"serve", w, 1}, {"serve-http2", serverWriter{w}, 2}} {
		b.Run(sv.name, func(b *testing.B) {
			r := newRequest()
			r.ProtoMajor = sv.major
			next := func(http.ResponseWriter, *http.Request, *Identity) error { return nil }
			b.ReportAllocs()
			b.ResetTimer()
			setCookie(r)
			for b.Loop() {
				setCookie(r)
				if err := gate.Serve(sv.w, r, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		authorize(b, gate, newRequest())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := newRequest()
			w := httptest.NewRecorder()
			for pb.Next() {
				setCookie(r)
				if _, ok := gate.Authorize(w, r); !ok {
					b.Error("refused")
					return
				}
			}
		})
	})
}

// serverWriter is a recorder with the deadline methods net/http's HTTP/2
// (and HTTP/1) response writers have; a revocation during a benchmark does
// not happen, so they only need to exist.
type serverWriter struct{ *httptest.ResponseRecorder }

func (serverWriter) SetReadDeadline(time.Time) error  { return nil }
func (serverWriter) SetWriteDeadline(time.Time) error { return nil }
