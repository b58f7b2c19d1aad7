package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/pages"
	"github.com/portcullis/portcullis/sso"
	"github.com/portcullis/portcullis/storage"
)

// Tenant is the configuration of one tenant: who may sign in and how, and
// which roles their IdP groups give them. A tenant with neither oidc nor
// saml only receives SCIM pushes; its routes cannot be protected.
type Tenant struct {
	// Name identifies the tenant in URLs, admin API paths and storage
	// keys; see CheckTenantName.
	Name string `json:"name"`

	// OIDC or SAML (at most one) is how people sign in.
	OIDC *TenantOIDC `json:"oidc,omitempty"`
	SAML *TenantSAML `json:"saml,omitempty"`

	// AllowedDomains, when set, refuses every sign-in whose email domain
	// is not one of these (exact match, case-insensitive).
	AllowedDomains []string `json:"allowed_domains,omitempty"`

	// Google pulls the tenant's users and groups from Google Workspace
	// (google.go); such a tenant gets no SCIM endpoint.
	Google *TenantGoogle `json:"google,omitempty"`

	// Provisioning is "scim" (default: only users the IdP pushed may sign
	// in) or "jit" (users are created at sign-in from the IdP's claims,
	// with the groups the claims name).
	Provisioning string `json:"provisioning,omitempty"`

	// Session configures the browser session after sign-in.
	Session *TenantSession `json:"session,omitempty"`

	// ExternalURL is the scheme and host browsers use to reach the gateway
	// (e.g. "https://app.example.com"). The OIDC redirect URI and the SAML
	// ACS, SLO and metadata URLs are built from it. Default: each
	// request's own scheme and Host header; set it behind another proxy or
	// load balancer, and in production so that a forged Host header never
	// shapes a URL the IdP sees.
	ExternalURL string `json:"external_url,omitempty"`

	// Roles are the permission levels, lowest first. Empty: users are only
	// authenticated and no role header is sent.
	Roles []string `json:"roles,omitempty"`
	// GroupMappings grant a role to the members of an IdP group, named by
	// id, externalId or displayName.
	GroupMappings []GroupMapping `json:"group_mappings,omitempty"`
	// DefaultRole is the role of a user in no mapped group (default: the
	// lowest).
	DefaultRole string `json:"default_role,omitempty"`
	// RequireMappedGroup refuses users in no mapped group, and ends their
	// sessions, instead of giving them DefaultRole.
	RequireMappedGroup bool `json:"require_mapped_group,omitempty"`

	// Assertion configures the signed X-Remote-Assertion JWT that routes
	// with an assertion_audience send. Optional: without it the issuer is
	// derived from ExternalURL and the lifetime is 60s.
	Assertion *TenantAssertion `json:"assertion,omitempty"`

	// AuditRetention is how long the tenant's audit events are kept
	// (default 400 days): older ones are never listed and are deleted
	// within the hour.
	AuditRetention caddy.Duration `json:"audit_retention,omitempty"`
	// AuditMaxEvents caps the tenant's audit log (default 1,000,000): past
	// it, the oldest events are deleted first.
	AuditMaxEvents int `json:"audit_max_events,omitempty"`

	// Templates is a directory of html/template files that replace the
	// pages people see (default: the app's templates, else the built-in
	// pages). See pages.Load.
	Templates string `json:"templates,omitempty"`
	pages     *pages.Set
}

// eventRetention is the tenant's audit log bound for the store (zero
// fields: the store's defaults).
func (t *Tenant) eventRetention() storage.EventRetention {
	return storage.EventRetention{MaxAge: time.Duration(t.AuditRetention), MaxEvents: t.AuditMaxEvents}
}

// TenantOIDC is an OpenID Connect provider (authorization code flow with
// PKCE). The provider's endpoints come from discovery at Issuer. String
// values may hold global placeholders such as {env.OIDC_SECRET}.
type TenantOIDC struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes requested (default: openid email profile; openid is always
	// added).
	Scopes []string `json:"scopes,omitempty"`
	// Claim names: groups (default "groups"; a dotted path such as
	// realm_access.roles works), email (default "email"), display name
	// (default "name") and the name matched to a provisioned userName
	// (default "preferred_username", then the email).
	GroupsClaim   string `json:"groups_claim,omitempty"`
	EmailClaim    string `json:"email_claim,omitempty"`
	NameClaim     string `json:"name_claim,omitempty"`
	UserNameClaim string `json:"username_claim,omitempty"`
	// PostLogoutRedirect is where the provider sends the browser after
	// RP-initiated logout; it must be registered at the provider.
	PostLogoutRedirect string `json:"post_logout_redirect,omitempty"`
	// TrustEmailWithoutVerifiedClaim counts an email that comes without an
	// email_verified claim as verified, for providers that verify every
	// address but never send the claim (Entra ID without the optional
	// claim). Off by default: an unverified email never matches a user or
	// passes allowed_domains; an explicit false is never trusted.
	TrustEmailWithoutVerifiedClaim bool `json:"trust_email_without_verified_claim,omitempty"`
}

// TenantSAML is a SAML 2.0 identity provider (SP-initiated sign-in). The
// IdP comes from exactly one of IDPMetadataURL, IDPMetadataFile, or the
// hand-configured IDPEntityID, IDPSSOURL, IDPSLOURL and IDPCertificateFile.
type TenantSAML struct {
	IDPMetadataURL  string         `json:"idp_metadata_url,omitempty"`
	IDPMetadataFile string         `json:"idp_metadata_file,omitempty"`
	MetadataRefresh caddy.Duration `json:"metadata_refresh,omitempty"`

	IDPEntityID string `json:"idp_entity_id,omitempty"`
	IDPSSOURL   string `json:"idp_sso_url,omitempty"`
	IDPSLOURL   string `json:"idp_slo_url,omitempty"`
	// IDPCertificateFile is a PEM file with the IdP's signing certificate.
	IDPCertificateFile string `json:"idp_certificate_file,omitempty"`

	// EntityID is this service provider's entity id: the audience the
	// IdP's assertions must name.
	EntityID string `json:"entity_id"`
	// SPKeyFile and SPCertFile are PEM files of the SP's RSA key and
	// certificate. Without them a key pair is generated once and kept in
	// the store.
	SPKeyFile  string `json:"sp_key_file,omitempty"`
	SPCertFile string `json:"sp_cert_file,omitempty"`

	NameIDFormat string `json:"name_id_format,omitempty"`

	// Attribute names; empty: the names Entra ID, Okta and Google use.
	EmailAttribute  string `json:"email_attribute,omitempty"`
	NameAttribute   string `json:"name_attribute,omitempty"`
	GroupsAttribute string `json:"groups_attribute,omitempty"`

	SignAuthnRequests        bool `json:"sign_authn_requests,omitempty"`
	AllowEncryptedAssertions bool `json:"allow_encrypted_assertions,omitempty"`
}

// TenantSession configures the browser session.
type TenantSession struct {
	// CookieName (default "portcullis_session"). Two tenants served on one
	// host need different names.
	CookieName string `json:"cookie_name,omitempty"`
	// AbsoluteTimeout ends a session this long after sign-in (default 12h).
	AbsoluteTimeout caddy.Duration `json:"absolute_timeout,omitempty"`
	// IdleTimeout ends a session after this long without a request
	// (default 1h; negative: no idle limit).
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
}

// GroupMapping is one `map_group "<group>" <role>` line.
type GroupMapping struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// TenantAssertion configures the signed identity assertion.
type TenantAssertion struct {
	// Issuer is the iss claim backends check. Default: ExternalURL followed
	// by /portcullis/<tenant>, or urn:portcullis:<tenant> without one.
	Issuer string `json:"issuer,omitempty"`
	// TTL is the assertion's lifetime (default 60s, at most 10m).
	TTL caddy.Duration `json:"ttl,omitempty"`
}

// Provisioning modes.
const (
	provisioningSCIM = "scim"
	provisioningJIT  = "jit"
)

// signInStartTimeout bounds a tenant's start-up work against the store
// (the keys of its sign-in and of its assertions).
const signInStartTimeout = 30 * time.Second

// check validates what can be checked without the store or the IdP.
func (t *Tenant) check() error {
	if t.OIDC != nil && t.SAML != nil {
		return fmt.Errorf("tenant %s: configure oidc or saml, not both", t.Name)
	}
	switch t.Provisioning {
	case "", provisioningSCIM, provisioningJIT:
	default:
		return fmt.Errorf("tenant %s: provisioning %q: use scim or jit", t.Name, t.Provisioning)
	}
	if t.ExternalURL != "" {
		if _, err := parseExternalURL(t.ExternalURL); err != nil {
			return fmt.Errorf("tenant %s: external_url: %v", t.Name, err)
		}
	}
	if t.AuditRetention < 0 {
		return fmt.Errorf("tenant %s: audit_retention must be positive", t.Name)
	}
	if t.AuditMaxEvents < 0 {
		return fmt.Errorf("tenant %s: audit_max_events must be positive", t.Name)
	}
	roles := t.roles()
	if err := roles.Validate(); err != nil {
		return fmt.Errorf("tenant %s: %v", t.Name, err)
	}
	return nil
}

// signsIn says whether people can sign in to the tenant.
func (t *Tenant) signsIn() bool { return t.OIDC != nil || t.SAML != nil }

// parseExternalURL accepts "https://host[:port]" with nothing after it but
// an optional slash, and returns it without the slash.
func parseExternalURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must be only a scheme and host, e.g. https://app.example.com", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// roles is the tenant's authz model.
func (t *Tenant) roles() authz.Roles {
	r := authz.Roles{
		Levels:             t.Roles,
		Default:            t.DefaultRole,
		RequireMappedGroup: t.RequireMappedGroup,
	}
	for _, m := range t.GroupMappings {
		r.Mappings = append(r.Mappings, authz.GroupMapping{Group: m.Group, Role: m.Role})
	}
	return r
}

// ssoConfig turns the tenant into sso's configuration, expanding global
// placeholders ({env.*}, {file.*}) and reading the PEM files it names.
func (t *Tenant) ssoConfig(repl *caddy.Replacer) (sso.TenantConfig, error) {
	cfg := sso.TenantConfig{
		Tenant:         t.Name,
		AllowedDomains: t.AllowedDomains,
		JIT:            t.Provisioning == provisioningJIT,
		ClientIP:       caddyClientIP,
		ObserveSignIn:  signInObserver(t.Name),
	}
	if t.ExternalURL != "" {
		// An https external URL makes sso's cookies Secure and __Host-
		// even when TLS is terminated in front of Caddy.
		cfg.ExternalURL, _ = parseExternalURL(t.ExternalURL) // checked by Tenant.check
	}
	if s := t.Session; s != nil {
		cfg.Session = sso.SessionConfig{
			CookieName:      s.CookieName,
			AbsoluteTimeout: time.Duration(s.AbsoluteTimeout),
			IdleTimeout:     time.Duration(s.IdleTimeout),
		}
	}
	expand := func(s string) string { return repl.ReplaceKnown(s, "") }
	if o := t.OIDC; o != nil {
		cfg.OIDC = &sso.OIDCConfig{
			Issuer:             expand(o.Issuer),
			ClientID:           expand(o.ClientID),
			ClientSecret:       expand(o.ClientSecret),
			Scopes:             o.Scopes,
			GroupsClaim:        o.GroupsClaim,
			EmailClaim:         o.EmailClaim,
			NameClaim:          o.NameClaim,
			UserNameClaim:      o.UserNameClaim,
			PostLogoutRedirect: expand(o.PostLogoutRedirect),

			TrustEmailWithoutVerifiedClaim: o.TrustEmailWithoutVerifiedClaim,
		}
		if o.ClientSecret != "" && cfg.OIDC.ClientSecret == "" {
			return cfg, fmt.Errorf("tenant %s: oidc client_secret %q expands to nothing (is the environment variable set?)", t.Name, o.ClientSecret)
		}
	}
	if s := t.SAML; s != nil {
		c := &sso.SAMLConfig{
			IDPMetadataURL:           expand(s.IDPMetadataURL),
			IDPMetadataFile:          expand(s.IDPMetadataFile),
			IDPMetadataRefresh:       time.Duration(s.MetadataRefresh),
			IDPEntityID:              expand(s.IDPEntityID),
			IDPSSOURL:                expand(s.IDPSSOURL),
			IDPSLOURL:                expand(s.IDPSLOURL),
			EntityID:                 expand(s.EntityID),
			NameIDFormat:             s.NameIDFormat,
			EmailAttribute:           s.EmailAttribute,
			NameAttribute:            s.NameAttribute,
			GroupsAttribute:          s.GroupsAttribute,
			SignAuthnRequests:        s.SignAuthnRequests,
			AllowEncryptedAssertions: s.AllowEncryptedAssertions,
		}
		files := []struct {
			what, path string
			dst        *string
		}{
			{"idp_certificate", s.IDPCertificateFile, &c.IDPCertificatePEM},
			{"sp_key", s.SPKeyFile, &c.SPKeyPEM},
			{"sp_cert", s.SPCertFile, &c.SPCertPEM},
		}
		for _, f := range files {
			if f.path == "" {
				continue
			}
			b, err := readPEMFile(expand(f.path))
			if err != nil {
				return cfg, fmt.Errorf("tenant %s: saml %s: %v", t.Name, f.what, err)
			}
			*f.dst = b
		}
		cfg.SAML = c
	}
	return cfg, nil
}

// maxPEMFileBytes bounds the key and certificate files read at start.
const maxPEMFileBytes = 1 << 20

func readPEMFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() > maxPEMFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; is it a PEM file?", path, maxPEMFileBytes)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return "", err
	}
	if !strings.Contains(string(b), "-----BEGIN ") {
		return "", fmt.Errorf("%s holds no PEM block", path)
	}
	return string(b), nil
}

// tenantRuntime is what a running config builds for one tenant: the
// sign-in service, the identity resolver its routes share, and (on first
// use) the assertion signer. The app owns it and closes it in Cleanup, so
// nothing of it outlives a config reload.
type tenantRuntime struct {
	cfg         *Tenant
	store       storage.Store
	logger      *zap.Logger
	externalURL string // from the config, without the slash; "" derive per request

	signIn     *sso.Service      // nil: the tenant has no sign-in
	identities *authz.Identities // nil with signIn
	syncer     *directory.Syncer // nil: not pulled from Google (google.go)

	signerMu sync.Mutex
	signer   *authz.AssertionSigner
	// kek seals the generated keys at rest (nil: plaintext).
	kek []byte
}

// newTenantRuntime builds a tenant's services without reaching the store
// or the IdP (see App.Provision); start does that.
func newTenantRuntime(t *Tenant, store storage.Store, kek []byte, logger *zap.Logger, cookies *gatewayCookies) (*tenantRuntime, error) {
	rt := &tenantRuntime{cfg: t, store: store, kek: kek, logger: logger}
	if t.ExternalURL != "" {
		rt.externalURL, _ = parseExternalURL(t.ExternalURL) // checked by Tenant.check
	}
	if err := rt.prepareGoogle(); err != nil {
		return nil, err
	}
	if !t.signsIn() {
		return rt, nil
	}
	cfg, err := t.ssoConfig(caddy.NewReplacer())
	if err != nil {
		return nil, err
	}
	cfg.Pages, cfg.OnRefusal = t.pages, handRefusalToCaddy
	cfg.KeyEncryptionKey = kek
	svc, err := sso.Prepare(cfg, store, logger)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: sign-in: %v", t.Name, err)
	}
	ids, err := authz.NewIdentities(authz.IdentitiesConfig{
		Tenant:   t.Name,
		Store:    store,
		Sessions: ssoSessions{svc, cookies},
		Roles:    t.roles(),
		Logger:   logger,
		Observer: newIdentitiesObserver(t.Name),

		StaleIfError: staleIfErrorOf(store),
		Freshness:    freshnessOf(store),
	})
	if err != nil {
		_ = svc.Close()
		return nil, fmt.Errorf("tenant %s: %v", t.Name, err)
	}
	rt.signIn, rt.identities = svc, ids
	return rt, nil
}

// start loads the tenant's keys from the store and starts its sign-in,
// which reaches the IdP in the background: an IdP that does not answer is
// not an error. The store must be open.
func (rt *tenantRuntime) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), signInStartTimeout)
	defer cancel()
	if rt.signIn != nil {
		if err := rt.signIn.Start(ctx); err != nil {
			return fmt.Errorf("tenant %s: sign-in: %v", rt.cfg.Name, err)
		}
	}
	if rt.cfg.Assertion != nil {
		// Configured explicitly: load the key now, so a bad setting is
		// refused at start rather than when a route first needs it.
		if _, err := rt.assertionSigner(ctx); err != nil {
			return fmt.Errorf("tenant %s: assertion: %v", rt.cfg.Name, err)
		}
	}
	rt.startGoogle()
	return nil
}

// close stops the tenant's background work (SAML metadata refresh).
func (rt *tenantRuntime) close() error {
	rt.stopGoogle()
	if rt.signIn != nil {
		return rt.signIn.Close()
	}
	return nil
}

// externalURLOf is the scheme and host the browser used to reach the
// gateway: the configured external_url, or the request's own.
func (rt *tenantRuntime) externalURLOf(r *http.Request) string {
	if rt.externalURL != "" {
		return rt.externalURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// assertionSigner returns the tenant's signer, loading (or, the first
// time ever, generating) its key from the store on first use, so tenants
// whose routes never sign anything keep no key.
func (rt *tenantRuntime) assertionSigner(ctx context.Context) (*authz.AssertionSigner, error) {
	rt.signerMu.Lock()
	defer rt.signerMu.Unlock()
	if rt.signer != nil {
		return rt.signer, nil
	}
	cfg := authz.AssertionConfig{
		Store:            rt.store,
		Tenant:           rt.cfg.Name,
		Issuer:           rt.assertionIssuer(),
		KeyEncryptionKey: rt.kek,
		Logger:           rt.logger,
	}
	if a := rt.cfg.Assertion; a != nil {
		cfg.TTL = time.Duration(a.TTL)
	}
	s, err := authz.NewAssertionSigner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rt.signer = s
	return s, nil
}

// assertionIssuer is the iss claim of the tenant's assertions.
func (rt *tenantRuntime) assertionIssuer() string {
	if a := rt.cfg.Assertion; a != nil && a.Issuer != "" {
		return caddy.NewReplacer().ReplaceKnown(a.Issuer, "")
	}
	if rt.externalURL != "" {
		return rt.externalURL + "/portcullis/" + rt.cfg.Name
	}
	return "urn:portcullis:" + rt.cfg.Name
}

// ssoSessions adapts sso.Service to authz.SessionResolver: sso answers
// "no session" with ErrNoSession and a deactivated user with
// ErrUserInactive (plus the session and user), where authz expects a nil
// session and the stored user with a nil error respectively.
type ssoSessions struct {
	svc *sso.Service
	// cookies are the cookies of every tenant of the app: an identity
	// route removes them all, not only its own tenant's, since a site may
	// serve several tenants and no app needs another's session either.
	cookies *gatewayCookies
}

// gatewayCookies knows the cookie names of every tenant's sign-in. It is
// filled while the app provisions and read-only once it serves.
type gatewayCookies struct{ owners []*sso.Service }

// OwnsCookie says whether any tenant's sign-in set a cookie of this name.
func (c *gatewayCookies) OwnsCookie(name string) bool {
	for _, s := range c.owners {
		if s.OwnsCookie(name) {
			return true
		}
	}
	return false
}

// OwnsCookie implements authz.CookieOwner over every tenant's cookies.
func (s ssoSessions) OwnsCookie(name string) bool {
	if s.svc.OwnsCookie(name) {
		return true
	}
	return s.cookies != nil && s.cookies.OwnsCookie(name)
}

func (s ssoSessions) SessionKey(r *http.Request) ([32]byte, bool) { return s.svc.SessionKey(r) }

func (s ssoSessions) IdleTimeout() time.Duration { return s.svc.IdleTimeout() }

// ExpireStrayCookies passes on sso's clean-up of session cookies planted
// for longer paths, which the gate asks for when it sends such a request to
// sign in.
func (s ssoSessions) ExpireStrayCookies(w http.ResponseWriter, r *http.Request) {
	s.svc.ExpireStrayCookies(w, r)
}

func (s ssoSessions) Lookup(r *http.Request) (*storage.Session, *storage.User, error) {
	sess, user, err := s.svc.Lookup(r)
	switch {
	case errors.Is(err, sso.ErrNoSession):
		return nil, nil, nil
	case errors.Is(err, sso.ErrUserInactive):
		return sess, user, nil
	}
	return sess, user, err
}

// Interface guards
var (
	_ authz.SessionResolver    = ssoSessions{}
	_ authz.StrayCookieExpirer = ssoSessions{}
	_ authz.CookieOwner        = ssoSessions{}
)
