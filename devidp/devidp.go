// Package devidp is a development OpenID provider, for local trial and tests
// only: it is never part of the gateway binary (cmd/caddy and caddymodule do
// not import it) and must never stand in for a real identity provider.
//
// It owns a real provider built from zitadel's op package (discovery,
// authorize, token, userinfo, JWKS, end_session) over in-memory users and
// clients, served on a loopback address, with its own sign-in step: a login
// form that lists the sample users and their passwords (for the quick start's
// `go run ./cmd/demo`), or, for tests, an automatic sign-in of a chosen user.
// Faults make it issue the bad answers a relying party must refuse.
//
// The ID token carries sub, preferred_username, email, email_verified and
// name (for the profile and email scopes) and a "groups" claim with the
// user's groups; the userinfo endpoint answers the same.
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a person the provider can sign in.
type User struct {
	Subject           string
	PreferredUsername string // what the login form asks for
	Email             string
	EmailVerified     bool
	Name              string
	Groups            []string // the ID token's "groups" claim
	// Password for the login form; a user without one can only be signed in
	// by AutoLogin.
	Password string
}

// Config says where the provider listens and whom it knows.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:0" (a free port) or
	// "localhost:9000". The issuer is "http://" + Addr with the port the
	// listener got. It must be a loopback address unless AllowNonLoopback:
	// the provider speaks plain HTTP and shows passwords on its login form.
	// Empty means "127.0.0.1:0".
	Addr string
	// AllowNonLoopback lets Addr name another interface.
	AllowNonLoopback bool
	Users            []User
}

// Faults make the provider misbehave in one way each.
type Faults struct {
	WrongNonce           bool // ID token nonce differs from the request's
	WrongAudience        bool // ID token aud is another client
	WrongIssuer          bool // ID token iss is another issuer
	Expired              bool // ID token already expired
	UnpublishedKey       bool // ID token signed by a key not in the JWKS
	GroupsOnlyInUserinfo bool // groups claim left out of the ID token
}

// otherClientID is the client a WrongAudience ID token is issued to.
const otherClientID = "someone-elses-client"

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is "http://<host>:<port>", the host as Config.Addr gave it.
	Issuer string
	server *http.Server
	done   chan struct{}
	op     *op.Provider
	st     *memStorage
}

// Start runs a provider on cfg.Addr with cfg.Users. Close stops it.
func Start(cfg Config) (*Provider, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen address %q: %w", addr, err)
	}
	if !cfg.AllowNonLoopback && !isLoopbackHost(host) {
		return nil, fmt.Errorf("devidp: listen address %q is not a loopback address; the development provider is for local trial only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	lnAddr := ln.Addr().(*net.TCPAddr)
	if !cfg.AllowNonLoopback && !lnAddr.IP.IsLoopback() {
		// "localhost" resolved to something else.
		_ = ln.Close()
		return nil, fmt.Errorf("devidp: %q listens on %s, not a loopback address", addr, lnAddr)
	}
	if host == "" {
		host = "localhost"
	}
	issuer := "http://" + net.JoinHostPort(host, fmt.Sprint(lnAddr.Port))

	p, err := newProvider(issuer, cfg.Users)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.server = &http.Server{
		Handler:           p.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newProvider builds the op provider for issuer; routes serves it.
func newProvider(issuer string, users []User) (*Provider, error) {
	st, err := newMemStorage(users)
	if err != nil {
		return nil, err
	}
	st.issuer = issuer
	p := &Provider{Issuer: issuer, st: st}

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, err
	}
	config := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: pathLoggedOut,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
	}
	issuerFn := func(bool) (op.IssuerFromRequest, error) {
		return func(r *http.Request) string {
			if r.URL.Path == "/oauth/token" && st.faults().WrongIssuer {
				return "http://127.0.0.1:1/not-the-issuer"
			}
			return p.Issuer
		}, nil
	}
	// Plain HTTP issuers are refused by op unless allowed; this provider
	// only ever listens on loopback (or where its caller insisted).
	p.op, err = op.NewProvider(config, st, issuerFn, op.WithAllowInsecure())
	if err != nil {
		return nil, err
	}
	return p, nil
}

const (
	pathLogin     = "/login"
	pathLoggedOut = "/logged-out"
)

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(p.op.IssuerFromRequest)
	callback := op.AuthCallbackURL(p.op)
	mux.Handle(pathLogin, interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.login(w, r, callback)
	}))
	mux.HandleFunc("GET "+pathLoggedOut, p.loggedOut)
	mux.HandleFunc("GET /{$}", p.home)
	mux.Handle("/", p.op)
	return mux
}

// Close stops the provider.
func (p *Provider) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.server.Shutdown(ctx); err != nil {
		_ = p.server.Close()
	}
	<-p.done
}

// AddClient registers a confidential web client (client_secret_basic or
// client_secret_post, authorization code flow). redirectURIs and
// postLogoutURIs are matched exactly.
func (p *Provider) AddClient(id, secret string, redirectURIs, postLogoutURIs []string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.clients[id] = &client{id: id, secret: secret, redirectURIs: redirectURIs, postLogoutURIs: postLogoutURIs, loginURL: p.Issuer + pathLogin}
}

// AutoLogin makes the login step sign in subject without a form; "" shows
// the form.
func (p *Provider) AutoLogin(subject string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.autoLogin = subject
}

// SetFaults replaces the active faults.
func (p *Provider) SetFaults(f Faults) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.fault = f
}

// SetGroups changes the groups the provider asserts for subject.
func (p *Provider) SetGroups(subject string, groups []string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	if u, ok := p.st.users[subject]; ok {
		u.Groups = append([]string(nil), groups...)
	}
}

// EndSessionCalls counts requests that reached TerminateSession.
func (p *Provider) EndSessionCalls() int {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.terminated
}

// memStorage implements op.Storage in memory.
type memStorage struct {
	mu         sync.Mutex
	issuer     string
	users      map[string]*User
	order      []string // subjects, as configured
	clients    map[string]*client
	requests   map[string]*authRequest
	codes      map[string]string // code -> request id
	tokens     map[string]*accessToken
	signing    *signingKey
	published  *signingKey // in the JWKS
	unlisted   *signingKey // signs under Faults.UnpublishedKey
	autoLogin  string
	fault      Faults
	terminated int
}

func newMemStorage(users []User) (*memStorage, error) {
	newKey := func(id string) (*signingKey, error) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		return &signingKey{id: id, key: k}, nil
	}
	published, err := newKey("published")
	if err != nil {
		return nil, err
	}
	unlisted, err := newKey("unlisted")
	if err != nil {
		return nil, err
	}
	s := &memStorage{
		users:     map[string]*User{},
		clients:   map[string]*client{},
		requests:  map[string]*authRequest{},
		codes:     map[string]string{},
		tokens:    map[string]*accessToken{},
		published: published,
		unlisted:  unlisted,
	}
	for i := range users {
		u := users[i]
		if u.Subject == "" {
			return nil, fmt.Errorf("devidp: user %d has no subject", i)
		}
		if _, dup := s.users[u.Subject]; dup {
			return nil, fmt.Errorf("devidp: subject %q given twice", u.Subject)
		}
		u.Groups = append([]string(nil), u.Groups...)
		s.users[u.Subject] = &u
		s.order = append(s.order, u.Subject)
	}
	return s, nil
}

func (s *memStorage) faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// userByName finds the user a person typed on the login form: by
// preferred_username or email, ignoring case.
func (s *memStorage) userByName(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.TrimSpace(name)
	if name == "" {
		return User{}, false
	}
	for _, sub := range s.order {
		u := s.users[sub]
		if strings.EqualFold(u.PreferredUsername, name) || strings.EqualFold(u.Email, name) {
			return *u, true
		}
	}
	return User{}, false
}

// listed returns the users in the order they were configured.
func (s *memStorage) listed() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.order))
	for _, sub := range s.order {
		out = append(out, *s.users[sub])
	}
	return out
}

func (s *memStorage) hasRequest(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.requests[id]
	return ok
}

func (s *memStorage) completeLogin(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("unknown auth request")
	}
	if _, ok := s.users[subject]; !ok {
		return errors.New("unknown user")
	}
	req.subject = subject
	req.authTime = time.Now()
	req.done = true
	return nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type notFound struct{ what string }

func (e notFound) Error() string { return e.what + " not found" }
func (notFound) IsNotFound()     {}

func (s *memStorage) CreateAuthRequest(_ context.Context, ar *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := &authRequest{
		id:          randomID(),
		clientID:    ar.ClientID,
		redirectURI: ar.RedirectURI,
		state:       ar.State,
		nonce:       ar.Nonce,
		scopes:      ar.Scopes,
		responseTyp: ar.ResponseType,
	}
	if ar.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: ar.CodeChallenge, Method: ar.CodeChallengeMethod}
	}
	if s.fault.WrongNonce {
		req.nonce = "not-" + ar.Nonce
	}
	if s.fault.WrongAudience {
		// The code, and so the ID token, is issued to another client.
		req.clientID = otherClientID
	}
	s.requests[req.id] = req
	return req, nil
}

func (s *memStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.requests[id]; ok {
		return r, nil
	}
	return nil, notFound{"auth request"}
}

func (s *memStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.requests[s.codes[code]]; ok {
		return r, nil
	}
	return nil, notFound{"code"}
}

func (s *memStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *memStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *memStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &accessToken{id: randomID(), subject: req.GetSubject(), expires: time.Now().Add(5 * time.Minute)}
	s.tokens[t.id] = t
	return t.id, t.expires, nil
}

func (s *memStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not offered")
}

func (s *memStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *memStorage) TerminateSession(context.Context, string, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminated++
	return nil
}

func (s *memStorage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *memStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *memStorage) SigningKey(context.Context) (op.SigningKey, error) {
	if s.faults().UnpublishedKey {
		return s.unlisted, nil
	}
	return s.published, nil
}

func (s *memStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *memStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.published}}, nil
}

func (s *memStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok && id == otherClientID && s.fault.WrongAudience {
		for _, registered := range s.clients {
			c, ok = registered, true
			break
		}
	}
	if !ok {
		return nil, notFound{"client"}
	}
	cc := *c
	cc.expired = s.fault.Expired
	if s.fault.WrongAudience {
		cc.id = otherClientID
	}
	return &cc, nil
}

func (s *memStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *memStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *memStorage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.fillUserinfo(ui, req.GetSubject(), scopes, !s.faults().GroupsOnlyInUserinfo)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *memStorage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token invalid or expired")
	}
	return s.fillUserinfo(ui, t.subject, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, "groups"}, true)
}

func (s *memStorage) fillUserinfo(ui *oidc.UserInfo, subject string, scopes []string, withGroups bool) error {
	s.mu.Lock()
	u, ok := s.users[subject]
	s.mu.Unlock()
	if !ok {
		return notFound{"user"}
	}
	ui.Subject = u.Subject
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			ui.Name = u.Name
			ui.PreferredUsername = u.PreferredUsername
		case oidc.ScopeEmail:
			ui.Email = u.Email
			ui.EmailVerified = oidc.Bool(u.EmailVerified)
		}
	}
	if withGroups && u.Groups != nil {
		ui.AppendClaims("groups", u.Groups)
	}
	return nil
}

func (s *memStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not offered")
}

func (s *memStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *memStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile is not offered")
}

func (s *memStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile is not offered")
}

func (s *memStorage) Health(context.Context) error { return nil }

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

type accessToken struct {
	id      string
	subject string
	expires time.Time
}

type authRequest struct {
	id          string
	clientID    string
	redirectURI string
	state       string
	nonce       string
	scopes      []string
	responseTyp oidc.ResponseType
	challenge   *oidc.CodeChallenge
	subject     string
	authTime    time.Time
	done        bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseTyp }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

type client struct {
	id, secret     string
	redirectURIs   []string
	postLogoutURIs []string
	loginURL       string
	expired        bool
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.postLogoutURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType        { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string           { return c.loginURL + "?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration {
	if c.expired {
		// exp lands an hour in the past.
		return -time.Hour
	}
	return 5 * time.Minute
}
func (c *client) DevMode() bool { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(string) bool { return true }

// IDTokenUserinfoClaimsAssertion puts the profile and email claims in the ID
// token as well as at userinfo, as Entra ID and Google do.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
