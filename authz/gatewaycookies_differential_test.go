package authz

import (
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/internal/cookieheader"
)

// TestStrippedSessionNeverReadable: whenever the gate could read a session
// from a Cookie line (cookieheader.Value, as net/http reads it), the line
// the app gets back has no pair net/http would read under that name, on
// both the in-place run path and the rebuilt one, with the spellings a
// client controls (spaces, tabs, empty pairs, quotes, vertical tab).
func TestStrippedSessionNeverReadable(t *testing.T) {
	owns := func(n string) bool { return n == "s" || n == "__Host-s" }
	readable := 0 // control: lines the gate reads a session from before
	for _, line := range []string{
		"s=1",
		"s=1; a=2",
		"a=2; s=1",
		"a=2; s=1; b=3",
		"a=2;s=1;b=3",
		" \ts=1 ;; a=2 ; ",
		"a=2;;;s=1",
		`a="x; s=1; y="`,
		"a=2; s =1",
		"a=2;\vs=1",
		"s=1; s=1; a=2; s=1",
		"a=1, s=2; s=1",
	} {
		h := http.Header{"Cookie": {line}}
		if _, n := cookieheader.Value(h, "s"); n > 0 {
			readable++
		}
		stripGatewayCookieLines(h, "Cookie", h["Cookie"], owns)
		r := &http.Request{Header: h}
		if got := r.CookiesNamed("s"); len(got) != 0 {
			t.Errorf("%q: the app still reads the session from %q", line, h["Cookie"])
		}
		if _, n := cookieheader.Value(h, "s"); n != 0 {
			t.Errorf("%q: the gate still reads a session from %q", line, h["Cookie"])
		}
	}
	if readable < 10 {
		t.Fatalf("control: a session was readable in only %d lines", readable)
	}
}
