package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(SSO{})
}

// DefaultSSOPrefix is where the sign-in endpoints are served unless the sso
// handler names another prefix, and where the identity handler sends
// browsers to sign in unless it names another login_prefix.
const DefaultSSOPrefix = "/sso"

// SSO serves one tenant's sign-in endpoints under a path prefix:
//
//	GET      <prefix>/login?rd=/path   start a sign-in, come back to /path
//	GET      <prefix>/oidc/callback    OIDC redirect URI
//	POST     <prefix>/saml/acs         SAML Assertion Consumer Service
//	GET      <prefix>/saml/metadata    SP metadata for the IdP's admin
//	GET|POST <prefix>/saml/slo         SAML Single Logout
//	GET|POST <prefix>/logout           sign out
//	GET      <prefix>/signed-out       the "You are signed out" page (register it
//	                                   as the OIDC post_logout_redirect)
//
// Requests outside the prefix go to the next handler, so the directive may
// also stand at site level. The handler needs the full request path: mount
// it with `handle /sso/*`, not `handle_path`.
type SSO struct {
	// Tenant is the name of a tenant configured in the portcullis app with
	// an oidc or saml block.
	Tenant string `json:"tenant"`
	// Prefix is the path the endpoints live under (default "/sso").
	Prefix string `json:"prefix,omitempty"`

	prefix string
	serve  func(http.ResponseWriter, *http.Request) error
}

// CaddyModule returns the Caddy module information.
func (SSO) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.portcullis_sso",
		New: func() caddy.Module { return new(SSO) },
	}
}

// Provision mounts the tenant's sign-in service under the prefix.
func (s *SSO) Provision(ctx caddy.Context) error {
	app, err := portcullisApp(ctx, "sso", s.Tenant)
	if err != nil {
		return err
	}
	rt, err := app.tenantRuntime("sso", s.Tenant)
	if err != nil {
		return err
	}
	if rt.signIn == nil {
		return fmt.Errorf("sso %s: tenant %s has no sign-in configured; add an oidc or saml block to it", s.Tenant, s.Tenant)
	}
	s.prefix, err = cleanPathPrefix(s.Prefix)
	if err != nil {
		return fmt.Errorf("sso %s: prefix: %v", s.Tenant, err)
	}
	s.serve = rt.signIn.ServeFunc(s.prefix, rt.externalURLOf)
	app.endpoints.addSSO(s.Tenant, s)
	return nil
}

// cleanPathPrefix checks a path prefix from the config and returns it
// without a trailing slash; "" gives DefaultSSOPrefix.
func cleanPathPrefix(p string) (string, error) {
	if p == "" {
		return DefaultSSOPrefix, nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "?#*\\ \t") {
		return "", fmt.Errorf("%q is not a path such as /sso", p)
	}
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "", fmt.Errorf("the prefix cannot be the root: the sign-in endpoints need a path of their own such as /sso")
	}
	return p, nil
}

// underPrefix says whether path is prefix or below it.
func underPrefix(path, prefix string) bool {
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// ServeHTTP answers the sign-in endpoints and passes anything else on.
func (s *SSO) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !underPrefix(r.URL.Path, s.prefix) {
		return next.ServeHTTP(w, r)
	}
	// A failure page goes to handle_errors when the site has one that
	// takes it (errorpages.go).
	return s.serve(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*SSO)(nil)
	_ caddyhttp.MiddlewareHandler = (*SSO)(nil)
)
