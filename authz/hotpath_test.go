package authz

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHotPathAllocations pins what a cache hit allocates (BenchmarkGate
// measures the time): Authorize one array for the identity header values
// (they cannot be shared between requests: a later handler may edit them
// in place); Serve that within its live request, plus what following the
// request needs from the standard library: context.WithCancel (the context
// and its cancel func) and Request.WithContext.
func TestHotPathAllocations(t *testing.T) {
	f := newFixture(t)
	u := f.user("hot")
	g := f.group("Wiki Editors", "")
	f.join(u, g)
	ids := f.identities(threeRoles(GroupMapping{Group: "Wiki Editors", Role: "editor"}))
	gate := f.gate(ids, GateConfig{Policy: Policy{Require: "editor"}})
	// The session cookie after the app's: what goes on is then a
	// substring of the line (between them it is a new string, one more
	// allocation; see TestStripGatewayCookies).
	line := "_ga=GA1.2.3; theme=dark; " + testCookie + "=" + f.signIn(u)

	r := httptest.NewRequest(http.MethodGet, "/wiki/page", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("X-Remote-User", "forged")
	lines := []string{""}
	w := httptest.NewRecorder()
	var seen *Identity
	next := func(_ http.ResponseWriter, r *http.Request, id *Identity) error {
		if got, _ := IdentityFromContext(r.Context()); got != id {
			t.Errorf("the context carries %v, want %v", got, id)
		}
		seen = id
		return nil
	}
	request := func() {
		lines[0] = line
		r.Header["Cookie"] = lines
	}
	request()
	if err := gate.Serve(w, r, next); err != nil || seen == nil {
		t.Fatalf("refused: %v %d", err, w.Code)
	}
	if got := r.Header.Get("Cookie"); got != "_ga=GA1.2.3; theme=dark" {
		t.Errorf("Cookie going on: %q", got)
	}
	for _, tc := range []struct {
		name string
		max  float64
		run  func()
	}{
		{"Authorize", 1, func() {
			request()
			if _, ok := gate.Authorize(w, r); !ok {
				t.Fatal("refused")
			}
		}},
		{"Serve", 4, func() {
			request()
			if err := gate.Serve(w, r, next); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		if n := testing.AllocsPerRun(200, tc.run); n > tc.max {
			t.Errorf("%s on a cache hit: %v allocations, want at most %v", tc.name, n, tc.max)
		}
	}
	if live, _ := ids.LiveRequests(); live != 0 {
		t.Errorf("%d requests still followed", live)
	}
}
