package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/scimhandler"
)

func init() {
	caddy.RegisterModule(SCIM{})
}

// Limits of the SCIM endpoint. They are what the endpoint advertises in
// its ServiceProviderConfig, so they are fixed rather than per route.
const (
	scimMaxBodyBytes = 1 << 20 // 1 MiB: larger bodies get 413
	scimMaxResults   = 200     // page size cap for list and search
)

// SCIM serves one tenant's SCIM 2.0 endpoint under its base path
// (/scim/v2/<tenant> unless Prefix or BaseURL says otherwise) and checks
// the tenant's bearer token itself. Requests under the base path are
// answered there; any other request goes to the next handler, as the sso
// handler does outside its prefix, so "scim acme" without a matcher, side
// by side with identity and reverse_proxy, takes only the SCIM paths.
type SCIM struct {
	// Tenant is the name of a tenant configured in the portcullis app.
	Tenant string `json:"tenant"`

	// Prefix is the base path this gateway sees SCIM requests under.
	// Default: the path of BaseURL, or /scim/v2/<tenant> without one. Set
	// it when a proxy in front serves the endpoint under another path.
	Prefix string `json:"prefix,omitempty"`

	// BaseURL overrides the SCIM base URL (e.g.
	// "https://id.example.com/scim/v2/acme") for a gateway behind another
	// proxy. Default: derived from each request's scheme, host and path.
	BaseURL string `json:"base_url,omitempty"`

	prefix  string // the base path, no trailing slash; "" is the root
	handler http.Handler
}

// CaddyModule returns the Caddy module information.
func (SCIM) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portcullis_scim",
		New: func() caddy.Module { return new(SCIM) },
	}
}

// Provision finds the tenant in the portcullis app and builds its endpoint.
func (s *SCIM) Provision(ctx caddy.Context) error {
	app, err := portcullisApp(ctx, "scim", s.Tenant)
	if err != nil {
		return err
	}
	rt, err := app.tenantRuntime("scim", s.Tenant)
	if err != nil {
		return err
	}
	if rt.cfg.Google != nil {
		return errPulledFromGoogle(s.Tenant)
	}
	// scimhandler names the tenant in its log entries itself.
	h, err := scimhandler.New(scimhandler.Config{
		Tenant:       s.Tenant,
		Store:        app.store, // opened at start, not here (storehandle.go)
		Logger:       ctx.Logger(),
		BaseURL:      s.BaseURL,
		MaxBodyBytes: scimMaxBodyBytes,
		MaxResults:   scimMaxResults,
		ClientIP:     caddyClientIP,
		Observer:     newSCIMObserver(s.Tenant),
		Usage:        app.scimUsage(s.Tenant),                   // read by the operator (operators.go)
		RoleOf:       scimRoleOf(app.tenants[s.Tenant].roles()), // audits an adoption's role change
		UserWritten:  app.noteUserWritten(s.Tenant),             // the operator's search lists it at once
	})
	if err != nil {
		return fmt.Errorf("scim %s: %v", s.Tenant, err)
	}
	s.prefix, err = scimBasePath(s.Tenant, s.Prefix, s.BaseURL)
	if err != nil {
		return fmt.Errorf("scim %s: %v", s.Tenant, err)
	}
	s.handler = h
	app.endpoints.addSCIM(s.Tenant, s)
	return nil
}

// scimBasePath is the path a SCIM endpoint answers under, without a
// trailing slash ("" for the root, where it answers everything): prefix if
// set, else the path of baseURL if set, else /scim/v2/<tenant>.
func scimBasePath(tenant, prefix, baseURL string) (string, error) {
	switch {
	case prefix != "":
		if !strings.HasPrefix(prefix, "/") || strings.HasPrefix(prefix, "//") || strings.ContainsAny(prefix, "?#*\\ \t") {
			return "", fmt.Errorf("prefix %q is not a path such as /scim/v2/%s", prefix, tenant)
		}
		return strings.TrimRight(prefix, "/"), nil
	case baseURL != "":
		// scimhandler.New has checked that it is an absolute URL.
		u, err := url.Parse(baseURL)
		if err != nil {
			return "", fmt.Errorf("base_url: %v", err)
		}
		return strings.TrimRight(u.Path, "/"), nil
	}
	return "/scim/v2/" + tenant, nil
}

// underSCIMBase says whether path is the base path or below it. It
// compares as Caddy's path matchers do (case-insensitively, on the path
// cleaned of dot segments and doubled slashes), so a request that
// "handle /scim/v2/acme/*" took is never passed on from inside it.
func underSCIMBase(path, base string) bool {
	// Only a path with "//" or a dot segment changes when cleaned; this
	// runs on every request of a site-level identity, so skip the
	// allocation for the clean ones.
	if strings.Contains(path, "//") || strings.Contains(path, "/.") {
		path = caddyhttp.CleanPath(path, true)
	}
	if len(path) < len(base) || !strings.EqualFold(path[:len(base)], base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || rest[0] == '/'
}

// caddyClientIP is the client address Caddy determined for r: the peer,
// or the address a trusted proxy (the server's trusted_proxies) named.
func caddyClientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// ServeHTTP answers the SCIM requests under the base path and passes any
// other request on.
func (s *SCIM) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !underSCIMBase(r.URL.Path, s.prefix) {
		return next.ServeHTTP(w, r)
	}
	s.handler.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*SCIM)(nil)
	_ caddyhttp.MiddlewareHandler = (*SCIM)(nil)
)
