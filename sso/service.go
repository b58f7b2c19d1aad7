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
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Service signs people in to one tenant and keeps their sessions. It is safe
// for concurrent use.
//
// Its life has two steps, so that a configuration can be checked without
// touching the store or the network (Caddy's validate): Prepare checks the
// configuration and builds the Service; Start loads the keys from the store
// and starts reaching the IdP in the background. Sessions (Lookup) work
// from Prepare on; the sign-in endpoints answer 503 with Retry-After until
// Start ran and the IdP answered once. Close stops the background work.
type Service struct {
	cfg    TenantConfig
	store  storage.Store
	log    *zap.Logger
	now    func() time.Time
	client *http.Client // for the IdP: discovery, JWKS, token, metadata
	retry  retryPolicy  // backoff while the IdP cannot be reached
	// metadataRefresh, when set (by tests), replaces the configured SAML
	// metadata refresh interval, whose minimum is a minute.
	metadataRefresh time.Duration

	oidc *oidcRP
	saml *samlSP

	// httpsExternal: the configured external URL is https, so every
	// request is on HTTPS whatever reached the gateway (cookies.go).
	httpsExternal bool
	// sessionNameSecure is the session cookie's name on HTTPS
	// (sessionCookieName).
	sessionNameSecure string
	flowAEAD          cipher.AEAD // seals sign-in flows into cookies; set by Start
	usedFlows         *usedFlows
	refusals          *refusalLimiter

	started atomic.Bool
	startMu sync.Mutex // serialises Start and Close
	closed  bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
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

// WithIdPRetry sets the backoff between attempts to reach an IdP that does
// not answer: first, doubling up to most (default 1s to 1m), jittered.
func WithIdPRetry(first, most time.Duration) Option {
	return func(s *Service) {
		if first > 0 && most >= first {
			s.retry = retryPolicy{Min: first, Max: most}
		}
	}
}

// CheckConfig reports what is wrong with cfg without building a Service.
// It reaches neither the store nor the network; it reads the SAML metadata
// file, if cfg names one.
func CheckConfig(cfg TenantConfig) error {
	_, err := prepare(cfg, nil, nil, nil)
	return err
}

// Prepare checks cfg and builds the Service without reaching the store or
// the IdP (a SAML metadata file is read). Call Start before serving
// sign-in.
func Prepare(cfg TenantConfig, store storage.Store, logger *zap.Logger, opts ...Option) (*Service, error) {
	if store == nil {
		return nil, errors.New("sso: a store is required")
	}
	return prepare(cfg, store, logger, opts)
}

// prepare is Prepare; CheckConfig calls it without a store, which nothing
// here touches.
func prepare(cfg TenantConfig, store storage.Store, logger *zap.Logger, opts []Option) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
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
		retry:  defaultRetry,

		httpsExternal: strings.HasPrefix(cfg.ExternalURL, "https://"),
		usedFlows:     newUsedFlows(maxUsedFlows),
		refusals:      newRefusalLimiter(),
	}
	s.sessionNameSecure = secureCookieName(cfg.Session.CookieName)
	for _, o := range opts {
		o(s)
	}
	switch {
	case cfg.OIDC != nil:
		s.oidc = newOIDCRP(s, cfg.OIDC)
	case cfg.SAML != nil:
		if s.saml, err = newSAMLSP(s, cfg.SAML); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start loads the key that seals sign-in flows and the SP key, generating
// and storing them the first time (the SP key only when none is
// configured), and starts the background work: reaching the IdP (retried
// with backoff until it answers, without failing Start), refreshing SAML
// metadata, recording refused sign-ins. ctx bounds the store work only.
// Start runs once; a Service that was closed does not start.
func (s *Service) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closed {
		return errors.New("sso: service is closed")
	}
	if s.started.Load() {
		return nil
	}
	aead, err := loadOrCreateFlowKey(ctx, s)
	if err != nil {
		return err
	}
	s.flowAEAD = aead
	bg, stop := context.WithCancel(context.Background())
	if s.saml != nil {
		if err := s.saml.start(ctx, bg); err != nil {
			stop()
			s.wg.Wait()
			return err
		}
	}
	if s.oidc != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.oidc.idp.run(bg)
		}()
	}
	s.stop = stop
	s.wg.Add(1)
	go s.flushRefusals(bg)
	s.started.Store(true)
	return nil
}

// WaitIdP waits for the outcome of the first attempt to reach the IdP:
// nil when it answered (sign-in works from then on), the attempt's error
// when it did not (the Service keeps trying in the background), or ctx's
// error when ctx ends first.
func (s *Service) WaitIdP(ctx context.Context) error {
	if s.oidc != nil {
		return s.oidc.idp.wait(ctx)
	}
	return s.saml.idp.wait(ctx)
}

// IdPReachable says whether sign-in can start: the Service started and its
// IdP answered at least once (a failing SAML metadata refresh keeps the
// last good copy, so it stays reachable in this sense).
func (s *Service) IdPReachable() bool {
	if !s.started.Load() {
		return false
	}
	if s.oidc != nil {
		return s.oidc.idp.get() != nil
	}
	return s.saml.idp.get() != nil
}

// newWaitIdP bounds how long New waits for the IdP's first answer.
const newWaitIdP = 10 * time.Second

// New is Prepare followed by Start, then waits (up to ctx's end, and at
// most 10s) for the first attempt to reach the IdP. An IdP that does not
// answer is not an error: the Service retries in the background and
// sign-in answers 503 until then.
func New(ctx context.Context, cfg TenantConfig, store storage.Store, logger *zap.Logger, opts ...Option) (*Service, error) {
	s, err := Prepare(cfg, store, logger, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, newWaitIdP)
	defer cancel()
	_ = s.WaitIdP(wctx)
	return s, nil
}

// Close stops background work (reaching the IdP, SAML metadata refresh,
// the recording of refused sign-ins left unrecorded). It does not close
// the store.
func (s *Service) Close() error {
	s.startMu.Lock()
	s.closed = true
	stop := s.stop
	s.startMu.Unlock()
	if stop != nil {
		stop()
	}
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
		if !s.started.Load() {
			// The keys are not loaded yet (a request that came in while
			// the gateway starts).
			s.IdPUnreachablePage(w, r, prefix, returnPathOf(r), 1)
			return
		}
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
