// Package sso owns sign-in through the gateway for one tenant: the OpenID
// Connect relying party (go-oidc, code flow with PKCE), the SAML 2.0 service
// provider (crewjam/saml, SP-initiated), the matching of the signed-in
// subject to a provisioned or just-in-time user, and the server-side browser
// sessions that follow. It speaks plain net/http; the Caddy handler mounts
// Service.Handler under a path prefix and calls Service.Lookup on every
// proxied request.
package sso

import (
	"context"
	"crypto/cipher"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Service signs people in to one tenant and keeps their sessions. It is safe
// for concurrent use. Close stops its background work.
type Service struct {
	cfg    TenantConfig
	store  storage.Store
	log    *zap.Logger
	now    func() time.Time
	client *http.Client // for the IdP: discovery, JWKS, token, metadata

	oidc *oidcRP
	saml *samlSP

	// httpsExternal: the configured external URL is https, so every
	// request is on HTTPS whatever reached the gateway (cookies.go).
	httpsExternal bool
	flowAEAD      cipher.AEAD // seals sign-in flows into cookies
	usedFlows     *usedFlows
	refusals      *refusalLimiter

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Option adjusts a Service; used by tests and embedders.
type Option func(*Service)

// WithClock makes the Service read the time from now (sessions, flows,
// audit times). The protocol libraries keep the real clock.
func WithClock(now func() time.Time) Option {
	return func(s *Service) { s.now = now }
}

// WithHTTPClient sets the client used to reach the IdP (discovery, JWKS,
// token and userinfo endpoints, SAML metadata).
func WithHTTPClient(c *http.Client) Option {
	return func(s *Service) { s.client = c }
}

// New checks cfg, reaches the IdP once (OIDC discovery, or SAML metadata
// from its URL or file), loads the key that seals sign-in flows and
// prepares the SP key, generating and storing them the first time (and
// the SP key only when none is configured). ctx bounds that start-up work only.
func New(ctx context.Context, cfg TenantConfig, store storage.Store, logger *zap.Logger, opts ...Option) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("sso: a store is required")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Service{
		cfg:    cfg,
		store:  store,
		log:    logger.With(zap.String("tenant", cfg.Tenant)),
		now:    time.Now,
		client: &http.Client{Timeout: 15 * time.Second},

		httpsExternal: strings.HasPrefix(cfg.ExternalURL, "https://"),
		usedFlows:     newUsedFlows(maxUsedFlows),
		refusals:      newRefusalLimiter(),
	}
	for _, o := range opts {
		o(s)
	}
	if s.flowAEAD, err = loadOrCreateFlowKey(ctx, s); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go s.flushRefusals(bg)
	switch {
	case cfg.OIDC != nil:
		s.oidc, err = newOIDCRP(ctx, s, cfg.OIDC)
	case cfg.SAML != nil:
		s.saml, err = newSAMLSP(ctx, bg, s, cfg.SAML)
	}
	if err != nil {
		stop()
		s.wg.Wait()
		return nil, err
	}
	return s, nil
}

// Close stops background work (SAML metadata refresh, the recording of
// refused sign-ins left unrecorded). It does not close
// the store.
func (s *Service) Close() error {
	s.stop()
	s.wg.Wait()
	return nil
}

// Protocol is "oidc" or "saml".
func (s *Service) Protocol() string {
	if s.oidc != nil {
		return protocolOIDC
	}
	return protocolSAML
}

const (
	protocolOIDC = "oidc"
	protocolSAML = "saml"
)

// Endpoint paths under the prefix.
const (
	PathLogin        = "/login"
	PathOIDCCallback = "/oidc/callback"
	PathSAMLACS      = "/saml/acs"
	PathSAMLMetadata = "/saml/metadata"
	PathSAMLSLO      = "/saml/slo"
	PathLogout       = "/logout"
	// PathSignedOut shows the "You are signed out" page; register
	// <external URL><prefix>/signed-out as the OIDC post-logout redirect
	// (post_logout_redirect) so that sign-out at the IdP lands there.
	PathSignedOut = "/signed-out"
)

// LoginURL is the relative URL that starts a sign-in and comes back to
// returnPath (sanitised again at /login), for a Service mounted at prefix.
func (s *Service) LoginURL(prefix, returnPath string) string {
	return strings.TrimSuffix(prefix, "/") + PathLogin + "?rd=" + queryEscape(SanitizeReturnPath(returnPath))
}

// Handler serves the sign-in endpoints under prefix (e.g. "/sso"):
//
//	GET  <prefix>/login?rd=/path   start a sign-in, come back to /path
//	GET  <prefix>/oidc/callback    OIDC redirect URI
//	POST <prefix>/saml/acs         SAML Assertion Consumer Service (HTTP-POST)
//	GET  <prefix>/saml/metadata    SP metadata XML
//	GET|POST <prefix>/saml/slo     SAML Single Logout (IdP requests and responses)
//	GET|POST <prefix>/logout       end the session, then IdP logout if offered
//	GET  <prefix>/signed-out       the "You are signed out" page
//
// Any other path under the prefix gets the not_found page (404), any other
// method on an endpoint too.
//
// externalURL returns the scheme and host the browser uses to reach the
// gateway, e.g. "https://app.example.com" (no trailing slash); the redirect
// URI, ACS and SLO URLs are built from it. The request path keeps the prefix
// (the handler strips it itself).
func (s *Service) Handler(prefix string, externalURL func(r *http.Request) string) http.Handler {
	serve := s.handler(prefix, externalURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r) })
}

// ServeFunc is Handler for a caller that takes refusals itself: a failure
// page (4xx, 5xx) is first offered to TenantConfig.OnRefusal, and when
// that answers with an error, nothing but headers is written and the
// function returns the error. The Caddy wiring hands such errors to
// handle_errors.
func (s *Service) ServeFunc(prefix string, externalURL func(r *http.Request) string) func(http.ResponseWriter, *http.Request) error {
	serve := s.handler(prefix, externalURL)
	return func(w http.ResponseWriter, r *http.Request) error {
		r, slot := withRefusalSlot(r)
		serve(w, r)
		return slot.err
	}
}

func (s *Service) handler(prefix string, externalURL func(r *http.Request) string) func(http.ResponseWriter, *http.Request) {
	prefix = strings.TrimSuffix(prefix, "/")
	mux := http.NewServeMux()
	ep := &endpoints{s: s, prefix: prefix, externalURL: externalURL}
	mux.HandleFunc("/", ep.notFound)
	mux.HandleFunc("GET "+PathLogin, ep.login)
	mux.HandleFunc("GET "+PathLogout, ep.logout)
	mux.HandleFunc("POST "+PathLogout, ep.logout)
	mux.HandleFunc("GET "+PathSignedOut, ep.signedOut)
	if s.oidc != nil {
		mux.HandleFunc("GET "+PathOIDCCallback, ep.oidcCallback)
	}
	if s.saml != nil {
		mux.HandleFunc("POST "+PathSAMLACS, ep.samlACS)
		mux.HandleFunc("GET "+PathSAMLMetadata, ep.samlMetadata)
		mux.HandleFunc("GET "+PathSAMLSLO, ep.samlSLO)
		mux.HandleFunc("POST "+PathSAMLSLO, ep.samlSLO)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			ep.notFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		mux.ServeHTTP(w, r2)
	}
}

// endpoints carries what every handler needs to build absolute URLs.
type endpoints struct {
	s           *Service
	prefix      string
	externalURL func(r *http.Request) string
}

// url returns the absolute URL of the endpoint at path under the prefix.
func (ep *endpoints) url(r *http.Request, path string) string {
	return strings.TrimSuffix(ep.externalURL(r), "/") + ep.prefix + path
}

// login starts a sign-in at the IdP.
func (ep *endpoints) login(w http.ResponseWriter, r *http.Request) {
	returnPath := SanitizeReturnPath(r.URL.Query().Get("rd"))
	if ep.s.oidc != nil {
		ep.oidcLogin(w, r, returnPath)
		return
	}
	ep.samlLogin(w, r, returnPath)
}
