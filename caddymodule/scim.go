package caddymodule

import (
	"fmt"
	"net/http"

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

// SCIM serves one tenant's SCIM 2.0 endpoint. It answers every request it
// gets (it never calls the next handler) and checks the tenant's bearer
// token itself. Put it under a path such as /scim/v2/<tenant>/*; the base
// URL in Location headers and meta.location is that prefix.
type SCIM struct {
	// Tenant is the name of a tenant configured in the portcullis app.
	Tenant string `json:"tenant"`

	// BaseURL overrides the SCIM base URL (e.g.
	// "https://id.example.com/scim/v2/acme") for a gateway behind another
	// proxy. Default: derived from each request's scheme, host and path.
	BaseURL string `json:"base_url,omitempty"`

	handler http.Handler
}

// CaddyModule returns the Caddy module information.
func (SCIM) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.scim",
		New: func() caddy.Module { return new(SCIM) },
	}
}

// Provision finds the tenant in the portcullis app and builds its endpoint.
func (s *SCIM) Provision(ctx caddy.Context) error {
	app, err := portcullisApp(ctx, "scim", s.Tenant)
	if err != nil {
		return err
	}
	if _, err := app.tenantRuntime("scim", s.Tenant); err != nil {
		return err
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
	})
	if err != nil {
		return fmt.Errorf("scim %s: %v", s.Tenant, err)
	}
	s.handler = h
	return nil
}

// caddyClientIP is the client address Caddy determined for r: the peer,
// or the address a trusted proxy (the server's trusted_proxies) named.
func caddyClientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// ServeHTTP answers the SCIM request; the endpoint is terminal.
func (s *SCIM) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	s.handler.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*SCIM)(nil)
	_ caddyhttp.MiddlewareHandler = (*SCIM)(nil)
)
