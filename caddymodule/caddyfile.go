package caddymodule

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("portcullis", parseGlobalOption)

	// The directive order, for directives side by side in one site or
	// block: scim, sso, identity_jwks, identity, then Caddy's header and
	// everything after it. So a flat site (scim, sso and identity at site
	// level, no handle blocks) behaves like the handle layout:
	//   - scim and sso come first and answer only their own paths (the
	//     tenant's SCIM base path, the sign-in prefix), passing everything
	//     else on, so identity never guards the sign-in or SCIM endpoints
	//     (a guarded /sso/login would send the browser to sign in forever);
	//   - identity decides who the caller is before anything else acts on
	//     the request, so header, redir, rewrite, request_header and the
	//     proxies can use its placeholders, and nothing is served or
	//     redirected to an unauthenticated caller on a protected route:
	//     handle, route, respond, reverse_proxy, php_fastcgi, file_server
	//     all come after it.
	// Caddy only lets a plugin place a directive relative to a standard
	// one, so each is put before "header" in turn: each lands just before
	// it, after the ones registered earlier.
	httpcaddyfile.RegisterHandlerDirective("scim", parseHandler[SCIM])
	httpcaddyfile.RegisterDirectiveOrder("scim", httpcaddyfile.Before, "header")
	httpcaddyfile.RegisterHandlerDirective("sso", parseHandler[SSO])
	httpcaddyfile.RegisterDirectiveOrder("sso", httpcaddyfile.Before, "header")
	httpcaddyfile.RegisterHandlerDirective("identity_jwks", parseHandler[IdentityJWKS])
	httpcaddyfile.RegisterDirectiveOrder("identity_jwks", httpcaddyfile.Before, "header")
	httpcaddyfile.RegisterHandlerDirective("identity", parseHandler[Identity])
	httpcaddyfile.RegisterDirectiveOrder("identity", httpcaddyfile.Before, "header")

	// The operator's console answers requests itself, behind identity.
	httpcaddyfile.RegisterDirective("portcullis_console", parseConsoleDirective)
	httpcaddyfile.RegisterDirectiveOrder("portcullis_console", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobalOption sets up the portcullis app from the global options
// block. Syntax:
//
//	portcullis {
//		storage <backend> [<args...>]   # e.g. storage badger ./portcullis-data
//		tenant <name> [{
//			# tenant settings: see parseTenant
//		}]
//		templates <dir>                 # page templates for every tenant (pages.Load)
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the portcullis global option may appear only once")
	}
	app := new(App)
	d.Next() // "portcullis"
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := make(map[string]bool)
	var sawStorage bool
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if sawStorage {
				return nil, d.Err("storage is set twice")
			}
			sawStorage = true
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			backend := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "portcullis.storage."+backend)
			if err != nil {
				return nil, err
			}
			app.StorageRaw = caddyconfig.JSONModuleObject(unm, "backend", backend, nil)

		case "tenant":
			t, err := parseTenant(d)
			if err != nil {
				return nil, err
			}
			if seen[t.Name] {
				return nil, d.Errf("tenant %q is configured twice", t.Name)
			}
			seen[t.Name] = true
			app.Tenants = append(app.Tenants, t)

		case "templates":
			if app.Templates != "" {
				return nil, d.Err("templates is set twice")
			}
			if err := oneArg(d, &app.Templates); err != nil {
				return nil, err
			}

		default:
			return nil, d.Errf("unrecognized portcullis option %q (expected storage, tenant or templates)", d.Val())
		}
	}
	raw, err := json.Marshal(app)
	if err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "portcullis", Value: raw}, nil
}

// parseTenant reads one tenant, the dispenser being on "tenant". Syntax
// (every setting is optional; Caddyfile.example documents each):
//
//	tenant <name> [{
//		oidc {
//			issuer <url>
//			client_id <id>
//			client_secret <secret>          # e.g. {env.OIDC_SECRET}
//			scopes <scope...>
//			groups_claim <claim>
//			email_claim <claim>
//			name_claim <claim>
//			username_claim <claim>
//			post_logout_redirect <url>
//			trust_email_without_verified_claim
//		}
//		saml {
//			idp_metadata_url <url> | idp_metadata_file <path> |
//			idp_entity_id <id> + idp_sso_url <url> [+ idp_slo_url <url>] + idp_certificate <path>
//			metadata_refresh <duration>
//			entity_id <id>
//			sp_key <path>
//			sp_cert <path>
//			name_id_format email|persistent|transient|unspecified|<urn>
//			email_attribute <name>
//			name_attribute <name>
//			groups_attribute <name>
//			sign_authn_requests
//			allow_encrypted_assertions
//		}
//		allowed_domains <domain...>
//		provisioning scim|jit
//		session {
//			cookie_name <name>
//			absolute_timeout <duration>
//			idle_timeout <duration>|off
//		}
//		external_url <url>
//		roles <role...>
//		map_group <group> <role>
//		default_role <role>
//		require_mapped_group
//		assertion {
//			issuer <iss>
//			ttl <duration>
//		}
//		audit_retention <duration>      # default 400d; "d" counts days
//		audit_max_events <count>        # default 1000000
//		templates <dir>                 # page templates (pages.Load); default the global templates
//		google { ... }                  # pull users and groups from Google Workspace: see parseGoogle
//	}]
//
// The audit log is bounded: events older than audit_retention are never
// listed and are deleted within the hour; past audit_max_events the oldest
// are deleted first.
func parseTenant(d *caddyfile.Dispenser) (*Tenant, error) {
	if !d.NextArg() {
		return nil, d.Err("tenant needs a name")
	}
	t := &Tenant{Name: d.Val()}
	if err := CheckTenantName(t.Name); err != nil {
		return nil, d.Err(err.Error())
	}
	if d.NextArg() {
		return nil, d.Errf("tenant %s: unexpected argument %q (settings go in a block)", t.Name, d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		// map_group is the only setting that may repeat.
		if opt != "map_group" {
			if seen[opt] {
				return nil, d.Errf("tenant %s: %s is set twice", t.Name, opt)
			}
			seen[opt] = true
		}
		var err error
		switch opt {
		case "oidc":
			t.OIDC, err = parseOIDC(d, t.Name)
		case "saml":
			t.SAML, err = parseSAML(d, t.Name)
		case "google":
			t.Google, err = parseGoogle(d, t.Name)
		case "allowed_domains":
			for d.NextArg() {
				// Accept "a.com, b.com" as well as "a.com b.com".
				for _, dom := range strings.Split(d.Val(), ",") {
					if dom = strings.TrimSpace(dom); dom != "" {
						t.AllowedDomains = append(t.AllowedDomains, dom)
					}
				}
			}
			if len(t.AllowedDomains) == 0 {
				err = d.Errf("tenant %s: allowed_domains needs at least one domain", t.Name)
			}
		case "provisioning":
			err = oneArg(d, &t.Provisioning)
			if err == nil && t.Provisioning != provisioningSCIM && t.Provisioning != provisioningJIT {
				err = d.Errf("tenant %s: provisioning %q: use scim or jit", t.Name, t.Provisioning)
			}
		case "session":
			t.Session, err = parseSession(d, t.Name)
		case "external_url":
			err = oneArg(d, &t.ExternalURL)
			if err == nil {
				if _, perr := parseExternalURL(t.ExternalURL); perr != nil {
					err = d.Errf("tenant %s: external_url: %v", t.Name, perr)
				}
			}
		case "roles":
			t.Roles = d.RemainingArgs()
			if len(t.Roles) == 0 {
				err = d.Errf("tenant %s: roles needs at least one role, lowest first", t.Name)
			}
		case "map_group":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("tenant %s: map_group needs a group and a role, e.g. map_group \"Engineering\" editor", t.Name)
			}
			t.GroupMappings = append(t.GroupMappings, GroupMapping{Group: args[0], Role: args[1]})
		case "default_role":
			err = oneArg(d, &t.DefaultRole)
		case "require_mapped_group":
			err = noArgs(d)
			t.RequireMappedGroup = true
		case "assertion":
			t.Assertion, err = parseAssertion(d, t.Name)
		case "audit_retention":
			err = durationArg(d, &t.AuditRetention)
		case "templates":
			err = oneArg(d, &t.Templates)
		case "audit_max_events":
			var raw string
			if err = oneArg(d, &raw); err == nil {
				t.AuditMaxEvents, err = strconv.Atoi(raw)
				if err != nil || t.AuditMaxEvents <= 0 {
					err = d.Errf("tenant %s: audit_max_events %q: want a positive whole number", t.Name, raw)
				}
			}
		default:
			return nil, d.Errf("tenant %s: unrecognized option %q", t.Name, opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if t.OIDC != nil && t.SAML != nil {
		return nil, d.Errf("tenant %s: configure oidc or saml, not both", t.Name)
	}
	return t, nil
}

func parseOIDC(d *caddyfile.Dispenser, tenant string) (*TenantOIDC, error) {
	if d.NextArg() {
		return nil, d.Errf("tenant %s: oidc takes a block, not arguments", tenant)
	}
	o := new(TenantOIDC)
	strs := map[string]*string{
		"issuer":               &o.Issuer,
		"client_id":            &o.ClientID,
		"client_secret":        &o.ClientSecret,
		"groups_claim":         &o.GroupsClaim,
		"email_claim":          &o.EmailClaim,
		"name_claim":           &o.NameClaim,
		"username_claim":       &o.UserNameClaim,
		"post_logout_redirect": &o.PostLogoutRedirect,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if dst, ok := strs[opt]; ok {
			if err := oneArg(d, dst); err != nil {
				return nil, err
			}
			continue
		}
		switch opt {
		case "scopes":
			o.Scopes = d.RemainingArgs()
			if len(o.Scopes) == 0 {
				return nil, d.ArgErr()
			}
		case "trust_email_without_verified_claim":
			if err := noArgs(d); err != nil {
				return nil, err
			}
			o.TrustEmailWithoutVerifiedClaim = true
		default:
			return nil, d.Errf("tenant %s: unrecognized oidc option %q", tenant, opt)
		}
	}
	if o.Issuer == "" || o.ClientID == "" {
		return nil, d.Errf("tenant %s: oidc needs issuer and client_id", tenant)
	}
	return o, nil
}

// samlNameIDFormats are the short names name_id_format accepts.
var samlNameIDFormats = map[string]string{
	"email":       "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"transient":   "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}

func parseSAML(d *caddyfile.Dispenser, tenant string) (*TenantSAML, error) {
	if d.NextArg() {
		return nil, d.Errf("tenant %s: saml takes a block, not arguments", tenant)
	}
	c := new(TenantSAML)
	strs := map[string]*string{
		"idp_metadata_url":  &c.IDPMetadataURL,
		"idp_metadata_file": &c.IDPMetadataFile,
		"idp_entity_id":     &c.IDPEntityID,
		"idp_sso_url":       &c.IDPSSOURL,
		"idp_slo_url":       &c.IDPSLOURL,
		"idp_certificate":   &c.IDPCertificateFile,
		"entity_id":         &c.EntityID,
		"sp_key":            &c.SPKeyFile,
		"sp_cert":           &c.SPCertFile,
		"email_attribute":   &c.EmailAttribute,
		"name_attribute":    &c.NameAttribute,
		"groups_attribute":  &c.GroupsAttribute,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if dst, ok := strs[opt]; ok {
			if err := oneArg(d, dst); err != nil {
				return nil, err
			}
			continue
		}
		var err error
		switch opt {
		case "metadata_refresh":
			err = durationArg(d, &c.MetadataRefresh)
		case "name_id_format":
			var f string
			if err = oneArg(d, &f); err == nil {
				if full, ok := samlNameIDFormats[f]; ok {
					f = full
				} else if !strings.HasPrefix(f, "urn:") {
					err = d.Errf("tenant %s: name_id_format %q: use email, persistent, transient, unspecified or a urn:oasis:names:tc:SAML:... format", tenant, f)
				}
				c.NameIDFormat = f
			}
		case "sign_authn_requests":
			err = noArgs(d)
			c.SignAuthnRequests = true
		case "allow_encrypted_assertions":
			err = noArgs(d)
			c.AllowEncryptedAssertions = true
		default:
			err = d.Errf("tenant %s: unrecognized saml option %q", tenant, opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.EntityID == "" {
		return nil, d.Errf("tenant %s: saml needs entity_id (this service provider's entity id, e.g. https://app.example.com/sso/saml/metadata)", tenant)
	}
	return c, nil
}

func parseSession(d *caddyfile.Dispenser, tenant string) (*TenantSession, error) {
	if d.NextArg() {
		return nil, d.Errf("tenant %s: session takes a block, not arguments", tenant)
	}
	s := new(TenantSession)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "cookie_name":
			err = oneArg(d, &s.CookieName)
		case "absolute_timeout":
			err = durationArg(d, &s.AbsoluteTimeout)
		case "idle_timeout":
			var raw string
			if err = oneArg(d, &raw); err != nil {
				break
			}
			if raw == "off" {
				s.IdleTimeout = -1 // sso: negative means no idle limit
				break
			}
			err = parseDurationValue(d, "idle_timeout", raw, &s.IdleTimeout)
		default:
			err = d.Errf("tenant %s: unrecognized session option %q", tenant, d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseAssertion(d *caddyfile.Dispenser, tenant string) (*TenantAssertion, error) {
	if d.NextArg() {
		return nil, d.Errf("tenant %s: assertion takes a block, not arguments", tenant)
	}
	a := new(TenantAssertion)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "issuer":
			err = oneArg(d, &a.Issuer)
		case "ttl":
			err = durationArg(d, &a.TTL)
		default:
			err = d.Errf("tenant %s: unrecognized assertion option %q", tenant, d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// oneArg reads exactly one argument of the current option into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs a value", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one value, found also %q", opt, d.Val())
	}
	return nil
}

// noArgs checks that a flag option has no arguments.
func noArgs(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no value, found %q", opt, d.Val())
	}
	return nil
}

// durationArg reads one duration ("90s", "8h", "1d") into dst.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var raw string
	if err := oneArg(d, &raw); err != nil {
		return err
	}
	return parseDurationValue(d, opt, raw, dst)
}

// parseDurationValue parses the positive duration raw of option opt.
func parseDurationValue(d *caddyfile.Dispenser, opt, raw string, dst *caddy.Duration) error {
	dur, err := caddy.ParseDuration(raw)
	if err != nil {
		return d.Errf("%s %q: %v", opt, raw, err)
	}
	if dur <= 0 {
		return d.Errf("%s %q must be positive", opt, raw)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseHandler builds a handler directive's module from the Caddyfile
// through the module's own UnmarshalCaddyfile.
func parseHandler[T any, PT interface {
	*T
	caddyfile.Unmarshaler
	caddyhttp.MiddlewareHandler
}](h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := PT(new(T))
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile reads the scim directive. Syntax:
//
//	scim [<matcher>] <tenant> [<prefix>] [{
//		base_url <url>
//	}]
func (s *SCIM) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "scim"
	if !d.NextArg() {
		return d.Err("scim needs the tenant name, e.g. scim acme")
	}
	s.Tenant = d.Val()
	if d.NextArg() {
		s.Prefix = d.Val()
		if _, err := scimBasePath(s.Tenant, s.Prefix, ""); err != nil {
			return d.Errf("scim %s: %v", s.Tenant, err)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "base_url":
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.BaseURL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("scim: unrecognized option %q (expected base_url)", d.Val())
		}
	}
	return nil
}

// UnmarshalCaddyfile reads the sso directive. Syntax:
//
//	sso [<matcher>] <tenant> [<prefix>]
func (s *SSO) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "sso"
	if !d.NextArg() {
		return d.Err("sso needs the tenant name, e.g. sso acme")
	}
	s.Tenant = d.Val()
	if d.NextArg() {
		s.Prefix = d.Val()
		if _, err := cleanPathPrefix(s.Prefix); err != nil {
			return d.Errf("sso %s: prefix: %v", s.Tenant, err)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("sso takes no block (its settings are in the tenant), found %q", d.Val())
	}
	return nil
}

// UnmarshalCaddyfile reads the identity_jwks directive. Syntax:
//
//	identity_jwks [<matcher>] <tenant>
func (j *IdentityJWKS) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "identity_jwks"
	if !d.NextArg() {
		return d.Err("identity_jwks needs the tenant name, e.g. identity_jwks acme")
	}
	j.Tenant = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("identity_jwks takes no block, found %q", d.Val())
	}
	return nil
}

// UnmarshalCaddyfile reads the identity directive. Syntax:
//
//	identity [<matcher>] <tenant> [{
//		require <role>
//		allow_groups <group...>
//		public
//		assertion_audience <audience>
//		header_prefix <prefix>
//		header_user|header_email|header_name|header_groups|header_role|header_assertion <name>
//		login_prefix <path>
//		allow_path_params <name...>     # e.g. jsessionid: ;name=value on the last segment only
//		route <name>                    # names the route in audit events, logs and metrics
//	}]
func (h *Identity) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "identity"
	if !d.NextArg() {
		return d.Err("identity needs the tenant name, e.g. identity acme")
	}
	h.Tenant = d.Val()
	if d.NextArg() {
		return d.Errf("identity %s: unexpected argument %q (the policy goes in a block: identity %s { require editor })", h.Tenant, d.Val(), h.Tenant)
	}
	headers := map[string]*string{
		"header_prefix":    &h.HeaderPrefix,
		"header_user":      &h.HeaderUser,
		"header_email":     &h.HeaderEmail,
		"header_name":      &h.HeaderName,
		"header_groups":    &h.HeaderGroups,
		"header_role":      &h.HeaderRole,
		"header_assertion": &h.HeaderAssertion,
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("identity %s: %s is set twice", h.Tenant, opt)
		}
		seen[opt] = true
		if dst, ok := headers[opt]; ok {
			if err := oneArg(d, dst); err != nil {
				return err
			}
			continue
		}
		var err error
		switch opt {
		case "require":
			err = oneArg(d, &h.Require)
		case "allow_groups":
			h.AllowGroups = d.RemainingArgs()
			if len(h.AllowGroups) == 0 {
				err = d.Errf("identity %s: allow_groups needs at least one group", h.Tenant)
			}
		case "public":
			err = noArgs(d)
			h.Public = true
		case "allow_path_params":
			h.AllowPathParams = d.RemainingArgs()
			if len(h.AllowPathParams) == 0 {
				err = d.Errf("identity %s: allow_path_params needs the parameter names, e.g. allow_path_params jsessionid", h.Tenant)
			}
			for _, p := range h.AllowPathParams {
				if p == "" || strings.ContainsAny(p, ";=/\\ ") {
					err = d.Errf("identity %s: allow_path_params: %q is not a parameter name", h.Tenant, p)
				}
			}
		case "assertion_audience":
			err = oneArg(d, &h.AssertionAudience)
		case "route":
			err = oneArg(d, &h.Route)
		case "login_prefix":
			err = oneArg(d, &h.LoginPrefix)
			if err == nil {
				if _, perr := cleanPathPrefix(h.LoginPrefix); perr != nil {
					err = d.Errf("identity %s: login_prefix: %v", h.Tenant, perr)
				}
			}
		default:
			err = d.Errf("identity %s: unrecognized option %q", h.Tenant, opt)
		}
		if err != nil {
			return err
		}
	}
	if h.Public && (h.Require != "" || len(h.AllowGroups) > 0) {
		return d.Errf("identity %s: a public route cannot also require a role or groups", h.Tenant)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*SCIM)(nil)
	_ caddyfile.Unmarshaler = (*SSO)(nil)
	_ caddyfile.Unmarshaler = (*IdentityJWKS)(nil)
	_ caddyfile.Unmarshaler = (*Identity)(nil)
)
