package caddymodule

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/operator"
)

// An identity route never guards its own tenant's sign-in or SCIM paths.
// In most layouts the sso and scim handlers run first (they are ordered
// before identity) and answer those paths themselves. But a site that puts
// `identity` at site level and `sso`/`scim` inside `handle` blocks runs
// identity first, since Caddy runs site-level directives before `handle`:
// identity would send the sign-in callback to sign in, and answer the
// IdP's SCIM pushes with 401. So the app remembers every sso and scim
// handler of each tenant in the loaded config, and identity hands a
// request under one of their paths to that handler, which answers it
// (both are terminal for their paths). Nothing passes on unguarded: a path
// no such handler serves is gated as any other.

// tenantEndpoints are the sso and scim handlers of the loaded config, by
// tenant. Handlers register when provisioned; identity reads at request
// time, when every handler of the config has been provisioned. The app
// freezes them when it starts (Caddy provisions every module of a config
// before it starts any app), so the per-request read takes no lock.
type tenantEndpoints struct {
	mu   sync.RWMutex
	sso  map[string][]*SSO
	scim map[string][]*SCIM
	// routes are the identity routes (routepolicies.go).
	routes map[string][]operator.RoutePolicy

	frozen atomic.Pointer[frozenEndpoints]
}

// frozenEndpoints is a read-only copy of the handlers, made at start.
type frozenEndpoints struct {
	sso  map[string][]*SSO
	scim map[string][]*SCIM
}

// freeze takes the read-only copy own uses from then on.
func (e *tenantEndpoints) freeze() {
	e.mu.RLock()
	defer e.mu.RUnlock()
	e.frozen.Store(&frozenEndpoints{sso: maps.Clone(e.sso), scim: maps.Clone(e.scim)})
}

func (e *tenantEndpoints) addSSO(tenant string, h *SSO) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sso == nil {
		e.sso = make(map[string][]*SSO)
	}
	e.sso[tenant] = append(e.sso[tenant], h)
}

func (e *tenantEndpoints) addSCIM(tenant string, h *SCIM) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.scim == nil {
		e.scim = make(map[string][]*SCIM)
	}
	e.scim[tenant] = append(e.scim[tenant], h)
}

// own returns the handler of tenant that serves r's path, if any.
func (e *tenantEndpoints) own(tenant string, r *http.Request) (func(http.ResponseWriter, *http.Request) error, bool) {
	f := e.frozen.Load()
	if f == nil {
		// Before the app started (a request racing the start).
		e.mu.RLock()
		f = &frozenEndpoints{sso: e.sso, scim: e.scim}
		defer e.mu.RUnlock()
	}
	for _, s := range f.sso[tenant] {
		if s.serve != nil && underPrefix(r.URL.Path, s.prefix) {
			return s.serve, true
		}
	}
	for _, s := range f.scim[tenant] {
		if s.handler != nil && s.prefix != "" && underSCIMBase(r.URL.Path, s.prefix) {
			h := s.handler
			return func(w http.ResponseWriter, r *http.Request) error {
				h.ServeHTTP(w, r)
				return nil
			}, true
		}
	}
	return nil, false
}

// Interface guard: the handlers identity hands requests to are Caddy
// middleware whose own ServeHTTP would answer the same paths.
var (
	_ caddyhttp.MiddlewareHandler = (*SSO)(nil)
	_ caddyhttp.MiddlewareHandler = (*SCIM)(nil)
)
