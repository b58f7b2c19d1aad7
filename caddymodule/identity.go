package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/sso"
)

func init() {
	caddy.RegisterModule(Identity{})
	caddy.RegisterModule(IdentityJWKS{})
}

// Identity protects the routes it is in: on every request it removes the
// identity headers the client sent (every header starting with the prefix,
// in any case and spelling), finds the caller's session and user, applies
// the policy, and passes the caller on to the next handler with the
// identity headers set and these placeholders:
//
//	{http.auth.user.id}               userName (Caddy's convention; access logs show it)
//	{portcullis.tenant}               tenant
//	{portcullis.user.id}              the store's user id
//	{portcullis.user.name}            userName
//	{portcullis.user.email}           primary email
//	{portcullis.user.display_name}    display name
//	{portcullis.user.groups}          groups, encoded as in X-Remote-Groups
//	{portcullis.user.role}            role
//
// Placeholder values are encoded as the identity headers are (control
// characters replaced with U+FFFD, edge spaces trimmed), so they are safe
// in `header_up X-Forwarded-User {http.auth.user.id}`.
//
// The trust boundary, on every identity route (public ones included):
// only WebSocket upgrades pass (any other Upgrade is removed and the
// request served as plain HTTP/1.1; a CONNECT tunnel that is not a
// WebSocket is refused with 400); a path a backend could read differently
// from Caddy's matchers is refused with 400 (see AllowPathParams); the
// gateway's own cookies (session, sign-in flow) are removed from the
// request; and a request that is still running when its session loses
// access (a WebSocket, an event stream, a long poll) is ended.
//
// A caller without a session is redirected to sign in when it is a browser
// (Accept: text/html) and gets 401 with a JSON body otherwise. A caller the
// policy refuses gets 403 with a page (or JSON) naming what is missing.
// Refusals go to the site's handle_errors block when it has one that takes
// them (see errorpages.go for the placeholders).
type Identity struct {
	// Tenant is the name of a tenant configured with an oidc or saml block.
	Tenant string `json:"tenant"`

	// Policy. Without any of these, any signed-in user of the tenant whose
	// account is allowed gets in.
	//
	// Require is the minimum role (that level or a higher one).
	Require string `json:"require,omitempty"`
	// AllowGroups lets in members of any of these groups (by id,
	// externalId or displayName); with Require the caller needs both.
	AllowGroups []string `json:"allow_groups,omitempty"`
	// Public lets everyone in; a caller with a session still gets the
	// identity headers.
	Public bool `json:"public,omitempty"`

	// AssertionAudience, when set, adds X-Remote-Assertion: a short-lived
	// JWT (ES256) for this audience that the backend verifies against the
	// tenant's JWKS (see identity_jwks).
	AssertionAudience string `json:"assertion_audience,omitempty"`

	// HeaderPrefix is the identity header prefix (default "X-Remote-").
	// Every request header starting with it is removed from the client's
	// request. The other Header* fields rename one header each (default:
	// the prefix followed by User, Email, Name, Groups, Role, Assertion).
	HeaderPrefix    string `json:"header_prefix,omitempty"`
	HeaderUser      string `json:"header_user,omitempty"`
	HeaderEmail     string `json:"header_email,omitempty"`
	HeaderName      string `json:"header_name,omitempty"`
	HeaderGroups    string `json:"header_groups,omitempty"`
	HeaderRole      string `json:"header_role,omitempty"`
	HeaderAssertion string `json:"header_assertion,omitempty"`

	// LoginPrefix is where the tenant's sso handler is mounted (default
	// "/sso"); browsers without a session go to <prefix>/login.
	LoginPrefix string `json:"login_prefix,omitempty"`

	// AllowPathParams lets these path parameters (";name=value") through
	// on the last path segment, for servlet apps that keep the session id
	// in the URL (jsessionid). Every other path a backend could read
	// differently from Caddy's matchers (";" parameters elsewhere,
	// backslashes, control bytes, segments ending in a dot or a space) is
	// refused with 400. Risk of the opt-in: a servlet container serves
	// "/app/page;jsessionid=x" as "/app/page", which an exact path matcher
	// (`handle /app/page`) does not match, so such a route must not be
	// stricter than the one that catches the request instead.
	AllowPathParams []string `json:"allow_path_params,omitempty"`

	// Route names the route in audit events, logs and the route label of
	// the portcullis_gate_decisions_total metric (default: its policy,
	// e.g. "require editor").
	Route string `json:"route,omitempty"`

	gate *lazyGate
	app  *App
}

// CaddyModule returns the Caddy module information.
func (Identity) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portcullis_identity",
		New: func() caddy.Module { return new(Identity) },
	}
}

// Provision builds the route's gate on the tenant's shared resolver.
func (h *Identity) Provision(ctx caddy.Context) error {
	app, err := portcullisApp(ctx, "identity", h.Tenant)
	if err != nil {
		return err
	}
	h.app = app
	rt, err := app.tenantRuntime("identity", h.Tenant)
	if err != nil {
		return err
	}
	if rt.identities == nil {
		return fmt.Errorf("identity %s: tenant %s has no sign-in configured; add an oidc or saml block to it", h.Tenant, h.Tenant)
	}
	loginPrefix, err := cleanPathPrefix(h.LoginPrefix)
	if err != nil {
		return fmt.Errorf("identity %s: login_prefix: %v", h.Tenant, err)
	}
	svc := rt.signIn
	cfg := authz.GateConfig{
		Identities: rt.identities,
		Policy:     authz.Policy{Public: h.Public, Require: h.Require, AllowGroups: h.AllowGroups},
		Headers: authz.HeaderNames{
			Prefix:    h.HeaderPrefix,
			User:      h.HeaderUser,
			Email:     h.HeaderEmail,
			Name:      h.HeaderName,
			Groups:    h.HeaderGroups,
			Role:      h.HeaderRole,
			Assertion: h.HeaderAssertion,
		},
		LoginURL:        func(returnPath string) string { return svc.LoginURL(loginPrefix, returnPath) },
		ReturnPath:      originalRequestURI,
		AllowPathParams: h.AllowPathParams,
		ClientAddr:      caddyClientIP,
		LogoutURL:       loginPrefix + sso.PathLogout,
		Pages:           rt.cfg.pages,
		OnRefusal:       handRefusalToCaddy,
		Logger:          ctx.Logger(),
		Route:           h.Route,
	}
	cfg.ObserveDecision = gateObserver(h.Tenant, routeLabel(h.Route, cfg.Policy))
	app.endpoints.addRoute(h.Tenant, operator.RoutePolicy{Route: routeLabel(h.Route, cfg.Policy), Policy: cfg.Policy})
	// Built now to check the route's settings (roles, groups, path
	// parameters) even when the route's real gate waits for the signer.
	gate, err := authz.NewGate(cfg)
	if err != nil {
		return fmt.Errorf("identity %s: %v", h.Tenant, err)
	}
	h.gate = &lazyGate{runtime: rt, cfg: cfg, audience: h.AssertionAudience}
	if h.AssertionAudience == "" {
		h.gate.ready.Store(gate)
	}
	// Otherwise the assertion key is in the store, which Provision must
	// not open (caddy validate): the gate with the signer is built at the
	// first request.
	return nil
}

// originalRequestURI is the path and query the client asked for, before any
// rewrite or handle_path strip, so sign-in comes back to the page the
// browser was on.
func originalRequestURI(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.URL.RequestURI()
}

// ServeHTTP runs the gate and, when it lets the request through, sets the
// placeholders and calls the next handler. The gate follows the request
// until the next handler returns and ends it (an upgraded connection or a
// stream included) when the session loses access.
func (h *Identity) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The tenant's own sign-in and SCIM paths go to their handlers, never
	// through the gate (ownpaths.go).
	if own, ok := h.app.endpoints.own(h.Tenant, r); ok {
		return own(w, r)
	}
	gate, err := h.gate.get(r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	return gate.Serve(w, r, func(w http.ResponseWriter, r *http.Request, id *authz.Identity) error {
		if id != nil {
			if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				setPlaceholders(repl, id)
			}
			// Handlers in Caddy (the console) read who is signed in from
			// the context, where Serve put the caller.
		}
		return next.ServeHTTP(w, r)
	})
}

// setPlaceholders gives the replacer the identity's placeholders. One
// provider, made once per cached identity, answers all of them: setting
// eight static values per request would grow the replacer's map (and
// every Set takes its lock). A provider added later is asked after the
// static values and after every earlier provider, so when an earlier
// handler of this request answers any one of the names (basic_auth's Set
// of {http.auth.user.id}, another identity route, a `map` whose
// destination is {portcullis.user.role} and whose source a client
// controls), the values are set instead, and override it as they always
// did. Every name is checked, not a few: a name left to an earlier
// provider would be that provider's value, not the identity's. Handlers
// after this one that Set a name (vars http.auth.user.id) still win.
func setPlaceholders(repl *caddy.Replacer, id *authz.Identity) {
	f := id.PlaceholderFunc()
	answered := f == nil
	for _, p := range id.Placeholders() {
		if answered {
			break
		}
		_, answered = repl.Get(p.Name)
	}
	if answered {
		for _, p := range id.Placeholders() {
			repl.Set(p.Name, p.Value)
		}
		return
	}
	repl.Map(f)
}

// IdentityJWKS serves the public key set of a tenant's identity assertions
// (GET or HEAD), for backends that verify X-Remote-Assertion. Mount it at a
// path of its own, e.g. /.well-known/portcullis/<tenant>/jwks.json. It
// answers every request it gets.
type IdentityJWKS struct {
	// Tenant is the name of a configured tenant.
	Tenant string `json:"tenant"`

	jwks *lazyJWKS
}

// CaddyModule returns the Caddy module information.
func (IdentityJWKS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portcullis_identity_jwks",
		New: func() caddy.Module { return new(IdentityJWKS) },
	}
}

// Provision finds the tenant. Its assertion key is loaded (or created) at
// the first request: it is in the store, which Provision must not open.
func (j *IdentityJWKS) Provision(ctx caddy.Context) error {
	app, err := portcullisApp(ctx, "identity_jwks", j.Tenant)
	if err != nil {
		return err
	}
	rt, err := app.tenantRuntime("identity_jwks", j.Tenant)
	if err != nil {
		return err
	}
	j.jwks = &lazyJWKS{runtime: rt}
	return nil
}

// ServeHTTP serves the key set; the endpoint is terminal.
func (j *IdentityJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h, err := j.jwks.get(r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("identity_jwks %s: %v", j.Tenant, err))
	}
	h.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Identity)(nil)
	_ caddyhttp.MiddlewareHandler = (*Identity)(nil)
	_ caddy.Provisioner           = (*IdentityJWKS)(nil)
	_ caddyhttp.MiddlewareHandler = (*IdentityJWKS)(nil)
)
