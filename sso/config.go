package sso

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis/portcullis/pages"
)

// TenantConfig configures sign-in for one tenant. Exactly one of OIDC and
// SAML is set.
type TenantConfig struct {
	// Tenant is the storage tenant users, sessions and audit events live in.
	Tenant string
	OIDC   *OIDCConfig
	SAML   *SAMLConfig
	// AllowedDomains, when not empty, refuses every sign-in whose email
	// domain (the part after the last "@", compared case-insensitively and
	// exactly: a subdomain is a different domain) is not listed.
	AllowedDomains []string
	// JIT lets a tenant without SCIM create users just in time from the
	// IdP's claims; their group memberships follow the groups claim at every
	// sign-in. Without it, only provisioned users can sign in.
	JIT     bool
	Session SessionConfig
	// ExternalURL is the scheme and host browsers use to reach the gateway
	// ("https://app.example.com"), when the operator configured one. An
	// https URL makes every cookie the Service sets Secure and __Host-
	// prefixed even when the request reached the gateway in plain HTTP
	// from a TLS terminator in front of it (r.TLS == nil). Empty: a
	// request is on HTTPS when it arrived over TLS.
	ExternalURL string
	// ClientIP, when set, gives the address of the client that sent r
	// (behind a trusted proxy, the address it named); refused sign-ins are
	// limited and counted per address. Default: r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// ObserveSignIn, when set, is called once for every sign-in callback
	// with its protocol ("oidc" or "saml") and result (one of the SignIn*
	// names), for metrics. It runs on the request's goroutine: keep it
	// quick.
	ObserveSignIn func(protocol, result string)
	// Pages renders the pages people see (nil: the built-in ones).
	Pages *pages.Set
	// OnRefusal, when set, is offered every failure page (4xx, 5xx, not
	// the sign-out confirmation) of a request served through ServeFunc,
	// complete with words and defaults; a non-nil error means the caller
	// answers instead (see ServeFunc). Handler never offers it.
	OnRefusal func(r *http.Request, page *pages.Data) error
	// KeyEncryptionKey, when set (32 bytes), seals the keys the Service
	// generates (the SAML SP key, the sign-in flow key) at rest in the
	// store (see package keyring); keys stored in plaintext are sealed on
	// the first start with it. Nil keeps them in plaintext.
	KeyEncryptionKey []byte
}

// SessionConfig configures the browser session.
type SessionConfig struct {
	// CookieName is the name of the session cookie (default
	// DefaultCookieName). Short-lived sign-in cookies use it as a prefix.
	CookieName string
	// AbsoluteTimeout ends a session this long after sign-in, whatever
	// happens (default 12h).
	AbsoluteTimeout time.Duration
	// IdleTimeout ends a session when no request was seen for this long
	// (default 1h; negative: no idle limit).
	IdleTimeout time.Duration
}

// OIDCConfig configures an OpenID Connect relying party (authorization code
// flow with PKCE). The provider is found by discovery from Issuer.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested; "openid" is always added. Default: openid, email,
	// profile.
	Scopes []string
	// GroupsClaim names the claim holding group names (default "groups").
	// A claim named with dots that does not exist literally is looked up as
	// a path, e.g. "realm_access.roles". When the ID token lacks it, the
	// userinfo endpoint is asked.
	GroupsClaim string
	// EmailClaim (default "email") and NameClaim (default "name").
	EmailClaim string
	NameClaim  string
	// UserNameClaim holds the name matched against a provisioned user's
	// userName (default "preferred_username"; the email is tried next).
	UserNameClaim string
	// TrustEmailWithoutVerifiedClaim makes an email that comes without an
	// email_verified claim count as verified. Only for providers that
	// verify every address they hand out but never send the claim (Entra
	// ID without the optional claim configured). An explicit
	// "email_verified": false is never trusted. Off by default: an
	// unverified email never matches a user and never passes
	// AllowedDomains, because anyone can put someone else's address on an
	// account at many providers (the nOAuth class of attack).
	TrustEmailWithoutVerifiedClaim bool
	// PostLogoutRedirect is the absolute URL the provider sends the browser
	// to after RP-initiated logout; it must be registered at the provider.
	// Empty: no post_logout_redirect_uri is sent.
	PostLogoutRedirect string
}

// SAMLConfig configures a SAML 2.0 service provider (SP-initiated,
// HTTP-Redirect AuthnRequest, HTTP-POST response).
//
// The IdP comes from IDPMetadataURL (fetched at start and refreshed every
// IDPMetadataRefresh), IDPMetadataFile, or by hand: IDPEntityID, IDPSSOURL,
// optional IDPSLOURL and IDPCertificatePEM.
type SAMLConfig struct {
	IDPMetadataURL     string
	IDPMetadataFile    string
	IDPMetadataRefresh time.Duration // default 24h
	IDPEntityID        string
	IDPSSOURL          string
	IDPSLOURL          string
	IDPCertificatePEM  string
	// EntityID is this SP's entity id, the audience assertions must name.
	EntityID string
	// SPKeyPEM and SPCertPEM are the SP's RSA key and certificate. Empty: a
	// key and self-signed certificate are generated once and kept in the
	// store, so every replica and restart uses the same ones.
	SPKeyPEM  string
	SPCertPEM string
	// NameIDFormat asked for in AuthnRequests (default: unspecified, which
	// lets the IdP choose).
	NameIDFormat string
	// Attribute names. Empty: a list of names Entra ID, Okta, Google and
	// common IdPs use is tried (see defaultEmailAttributes and friends).
	EmailAttribute  string
	NameAttribute   string
	GroupsAttribute string
	// SignAuthnRequests signs AuthnRequests (RSA-SHA256). LogoutRequests
	// are always signed, as the SAML single logout profile requires.
	SignAuthnRequests bool
	// AllowEncryptedAssertions advertises the SP certificate for encryption
	// and decrypts encrypted assertions; otherwise they are refused.
	AllowEncryptedAssertions bool
}

// DefaultCookieName is the session cookie name when none is configured.
const DefaultCookieName = "portcullis_session"

const (
	defaultAbsoluteTimeout = 12 * time.Hour
	defaultIdleTimeout     = time.Hour
	defaultMetadataRefresh = 24 * time.Hour
	minMetadataRefresh     = time.Minute
)

// withDefaults returns a copy of cfg with defaults filled in, or an error
// naming what is wrong.
func (cfg TenantConfig) withDefaults() (TenantConfig, error) {
	if cfg.Tenant == "" {
		return cfg, errors.New("sso: tenant is required")
	}
	if (cfg.OIDC == nil) == (cfg.SAML == nil) {
		return cfg, errors.New("sso: configure exactly one of oidc and saml")
	}
	s := &cfg.Session
	if s.CookieName == "" {
		s.CookieName = DefaultCookieName
	}
	if !validCookieName(s.CookieName) {
		return cfg, fmt.Errorf("sso: cookie name %q: only letters, digits, '-' and '_' are allowed", s.CookieName)
	}
	if s.AbsoluteTimeout == 0 {
		s.AbsoluteTimeout = defaultAbsoluteTimeout
	}
	if s.AbsoluteTimeout < time.Minute {
		return cfg, fmt.Errorf("sso: absolute session timeout %s is shorter than a minute", s.AbsoluteTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = defaultIdleTimeout
	}
	if s.IdleTimeout > 0 && s.IdleTimeout < 2*lastSeenGranularity {
		return cfg, fmt.Errorf("sso: idle session timeout %s is shorter than %s", s.IdleTimeout, 2*lastSeenGranularity)
	}
	domains := make([]string, 0, len(cfg.AllowedDomains))
	for _, d := range cfg.AllowedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@/ ") {
			return cfg, fmt.Errorf("sso: allowed domain %q is not a domain name", d)
		}
		domains = append(domains, d)
	}
	cfg.AllowedDomains = domains
	if cfg.ExternalURL != "" {
		u, err := url.Parse(cfg.ExternalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return cfg, fmt.Errorf("sso: external URL %q is not an absolute http(s) URL", cfg.ExternalURL)
		}
	}

	if cfg.OIDC != nil {
		o := *cfg.OIDC
		if err := o.withDefaults(); err != nil {
			return cfg, err
		}
		cfg.OIDC = &o
	}
	if cfg.SAML != nil {
		c := *cfg.SAML
		if err := c.withDefaults(); err != nil {
			return cfg, err
		}
		cfg.SAML = &c
	}
	return cfg, nil
}

func (o *OIDCConfig) withDefaults() error {
	if o.Issuer == "" || o.ClientID == "" {
		return errors.New("sso: oidc issuer and client_id are required")
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("sso: oidc issuer %q is not an http(s) URL", o.Issuer)
	}
	if o.PostLogoutRedirect != "" {
		if u, err := url.Parse(o.PostLogoutRedirect); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("sso: oidc post_logout_redirect %q is not an absolute http(s) URL", o.PostLogoutRedirect)
		}
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"openid", "email", "profile"}
	}
	hasOpenID := false
	for _, s := range o.Scopes {
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		o.Scopes = append([]string{"openid"}, o.Scopes...)
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if o.EmailClaim == "" {
		o.EmailClaim = "email"
	}
	if o.NameClaim == "" {
		o.NameClaim = "name"
	}
	if o.UserNameClaim == "" {
		o.UserNameClaim = "preferred_username"
	}
	return nil
}

func (c *SAMLConfig) withDefaults() error {
	sources := 0
	if c.IDPMetadataURL != "" {
		sources++
	}
	if c.IDPMetadataFile != "" {
		sources++
	}
	if c.IDPSSOURL != "" || c.IDPCertificatePEM != "" || c.IDPEntityID != "" {
		sources++
		if c.IDPSSOURL == "" || c.IDPCertificatePEM == "" || c.IDPEntityID == "" {
			return errors.New("sso: a SAML IdP configured by hand needs idp_entity_id, idp_sso_url and idp_certificate")
		}
	}
	if sources != 1 {
		return errors.New("sso: configure the SAML IdP by exactly one of a metadata URL, a metadata file, or by hand")
	}
	if c.EntityID == "" {
		return errors.New("sso: saml entity_id (this service provider's) is required")
	}
	if (c.SPKeyPEM == "") != (c.SPCertPEM == "") {
		return errors.New("sso: give both saml sp_key and sp_cert, or neither")
	}
	if c.IDPMetadataRefresh == 0 {
		c.IDPMetadataRefresh = defaultMetadataRefresh
	}
	if c.IDPMetadataRefresh < minMetadataRefresh {
		return fmt.Errorf("sso: saml metadata refresh %s is shorter than %s", c.IDPMetadataRefresh, minMetadataRefresh)
	}
	return nil
}

func validCookieName(name string) bool {
	if len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}
