package authz

import (
	"net/http"
	"reflect"
	"testing"
)

// A client that names identity headers in Connection would make a proxy
// drop the gateway's own values after the gate set them.
func TestStripConnectionTokens(t *testing.T) {
	hs, err := HeaderNames{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"identity token only", http.Header{"Connection": {"X-Remote-Role"}}, http.Header{}},
		{"mixed tokens and case", http.Header{"Connection": {"keep-alive, x-remote-user ,X_REMOTE_ASSERTION", "Upgrade"}},
			http.Header{"Connection": {"keep-alive", "Upgrade"}}},
		{"non-canonical key", http.Header{"connection": {"X-Remote-Groups, close"}}, http.Header{"connection": {"close"}}},
		{"unrelated kept as is", http.Header{"Connection": {"keep-alive,  Te"}}, http.Header{"Connection": {"keep-alive,  Te"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs.strip(c.in)
			if !reflect.DeepEqual(c.in, c.want) {
				t.Fatalf("got %v, want %v", c.in, c.want)
			}
		})
	}
}
