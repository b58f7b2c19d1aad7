package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	caddymap "github.com/caddyserver/caddy/v2/modules/caddyhttp/map"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/sso"
)

// TestIdentityPlaceholdersOverrideEarlierProviders: a handler that ran
// before the identity handler may already answer one of the identity's
// placeholder names, e.g. a `map` whose destination is
// {portcullis.user.role} and whose source is a request header. The
// identity handler's values must win, as they did when it Set them (static
// values are asked before any provider): otherwise a client header would
// become the role a later `header_up X-Role {portcullis.user.role}` sends.
func TestIdentityPlaceholdersOverrideEarlierProviders(t *testing.T) {
	h, session := startIdentityRoute(t)
	for _, tc := range []struct {
		name        string
		earlierMaps []string // destinations an earlier `map` answers from X-Claim
	}{
		{"no earlier handler (control)", nil},
		{"earlier map of the role", []string{"{" + authz.PlaceholderRole + "}"}},
		{"earlier map of the email", []string{"{" + authz.PlaceholderEmail + "}"}},
		{"earlier map of the user id", []string{"{" + authz.PlaceholderAuthUserID + "}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/wiki", nil)
			r.Header.Set("Cookie", sso.DefaultCookieName+"="+session)
			r.Header.Set("X-Claim", "forged")
			w := httptest.NewRecorder()
			repl := caddy.NewReplacer()
			r = caddyhttp.PrepareRequest(r, repl, w, nil)

			var id *authz.Identity
			var seen map[string]any
			identity := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				return h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					id, _ = authz.IdentityFromContext(r.Context())
					seen = map[string]any{}
					for _, p := range id.Placeholders() {
						seen[p.Name], _ = repl.Get(p.Name)
					}
					return nil
				}))
			})
			var first caddyhttp.Handler = identity
			if tc.earlierMaps != nil {
				m := &caddymap.Handler{
					Source:       "{http.request.header.X-Claim}",
					Destinations: append([]string(nil), tc.earlierMaps...),
					Mappings:     []caddymap.Mapping{{Input: "forged", Outputs: []any{"forged"}}},
				}
				if err := m.Provision(caddy.Context{}); err != nil {
					t.Fatal(err)
				}
				first = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					return m.ServeHTTP(w, r, identity)
				})
			}
			if err := first.ServeHTTP(w, r); err != nil {
				t.Fatal(err)
			}
			if id == nil {
				t.Fatalf("the request did not pass the gate (status %d)", w.Code)
			}
			for _, p := range id.Placeholders() {
				if seen[p.Name] != p.Value {
					t.Errorf("{%s} = %v, want the identity's %v", p.Name, seen[p.Name], p.Value)
				}
			}
		})
	}
}
