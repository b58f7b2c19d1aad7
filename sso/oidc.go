package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/portcullis/portcullis/pages"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// oidcRP is the OpenID Connect relying party of one tenant.
type oidcRP struct {
	s   *Service
	cfg *OIDCConfig
	// idp is the provider as discovery found it; nil until the provider
	// first answered (sign-in answers 503 until then).
	idp *idpLink[oidcProvider]
}

// oidcProvider is what discovery found at the issuer.
type oidcProvider struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// endSession is the provider's end_session_endpoint, or "".
	endSession string
}

// maxCodeLen bounds the authorization code taken from the query.
const maxCodeLen = 4096

// newOIDCRP prepares the relying party; discovery runs in the background
// once the Service starts.
func newOIDCRP(s *Service, cfg *OIDCConfig) *oidcRP {
	o := &oidcRP{s: s, cfg: cfg}
	o.idp = newIDPLink("oidc discovery at "+cfg.Issuer, o.discover, 0, s.retry, s.log)
	return o
}

// discover reads the provider's discovery document.
func (o *oidcRP) discover(ctx context.Context) (*oidcProvider, error) {
	s, cfg := o.s, o.cfg
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: oidc discovery at %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession           string   `json:"end_session_endpoint"`
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("sso: oidc discovery document: %w", err)
	}
	if len(meta.CodeChallengeMethods) > 0 && !contains(meta.CodeChallengeMethods, "S256") {
		// PKCE is sent anyway; a provider that ignores it still works, but
		// say so, because PKCE is what protects the code in transit.
		s.log.Warn("oidc provider does not list PKCE S256 support", zap.String("issuer", cfg.Issuer))
	}
	if meta.EndSession != "" {
		if u, err := url.Parse(meta.EndSession); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			meta.EndSession = ""
		}
	}
	// The key set fetches JWKS with the service's client, for as long as the
	// service lives; the verifier checks signature, issuer, audience
	// (client id) and expiry.
	keyCtx := oidc.ClientContext(context.Background(), s.client)
	verifier := provider.VerifierContext(keyCtx, &oidc.Config{ClientID: cfg.ClientID})
	return &oidcProvider{provider: provider, verifier: verifier, endSession: meta.EndSession}, nil
}

func (o *oidcRP) oauth2Config(p *oidcProvider, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		Endpoint:     p.provider.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       o.cfg.Scopes,
	}
}

// oidcLogin sends the browser to the provider's authorization endpoint with
// a fresh state (the flow id), nonce and PKCE S256 challenge.
func (ep *endpoints) oidcLogin(w http.ResponseWriter, r *http.Request, returnPath string) {
	s := ep.s
	p := s.oidc.idp.get()
	if p == nil {
		ep.idpUnavailable(w, r)
		return
	}
	redirectURI := ep.url(r, PathOIDCCallback)
	nonce := newRandom()
	f := &loginFlow{
		Protocol:    protocolOIDC,
		ReturnPath:  returnPath,
		Nonce:       nonce,
		Verifier:    oauth2.GenerateVerifier(),
		RedirectURI: redirectURI,
	}
	state, err := s.startFlow(w, r, ep.prefix, f, false)
	if err != nil {
		s.serverError(w, r, "start oidc sign-in", err)
		return
	}
	target := s.oidc.oauth2Config(p, redirectURI).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, target, http.StatusFound)
}

// oidcCallback finishes the code flow: the state must match the browser's
// flow cookie, the code is exchanged with the PKCE verifier, the ID token is
// verified by go-oidc and its nonce compared with the flow's.
func (ep *endpoints) oidcCallback(w http.ResponseWriter, r *http.Request) {
	s := ep.s
	// Checked before the flow is consumed, so the same callback works
	// once the provider is back.
	p := s.oidc.idp.get()
	if p == nil {
		ep.idpUnavailable(w, r)
		return
	}
	q := r.URL.Query()
	f, err := s.consumeFlow(w, r, ep.prefix, q.Get("state"))
	if err != nil {
		ep.flowFailed(w, r, protocolOIDC, err)
		return
	}
	if f.Protocol != protocolOIDC {
		ep.refuse(w, r, protocolOIDC, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "flow is not an oidc sign-in"}, nil)
		return
	}
	if e := q.Get("error"); e != "" {
		ep.refuse(w, r, protocolOIDC, &refusal{status: http.StatusBadRequest, page: pages.IdPError,
			reason: fmt.Sprintf("provider answered error %q: %s", truncate(e, 64), truncate(q.Get("error_description"), 256))}, nil)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > maxCodeLen {
		ep.refuse(w, r, protocolOIDC, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: "callback without a usable code"}, nil)
		return
	}
	id, ref, err := s.oidc.redeem(r.Context(), p, f, code)
	if err != nil {
		s.log.Error("oidc provider unreachable", zap.Error(err))
		s.observeSignIn(protocolOIDC, SignInError)
		s.writePage(w, r, pages.Data{Kind: pages.IdPUnreachable, Status: http.StatusBadGateway, Code: "idp_unreachable",
			Message: "The identity provider could not be reached to finish your sign-in.", SignInURL: s.LoginURL(ep.prefix, f.ReturnPath), SignInLabel: "Try again"})
		return
	}
	if ref != nil {
		ep.refuse(w, r, protocolOIDC, ref, nil)
		return
	}
	ep.finishSignIn(w, r, id, f.ReturnPath)
}

// redeem exchanges the code and verifies what comes back. A refusal is the
// provider's or the token's fault; an error means the provider could not be
// reached.
func (o *oidcRP) redeem(ctx context.Context, p *oidcProvider, f *loginFlow, code string) (*identity, *refusal, error) {
	ctx = oidc.ClientContext(ctx, o.s.client)
	refused := func(format string, args ...any) (*identity, *refusal, error) {
		return nil, &refusal{status: http.StatusBadRequest, page: pages.SignInFailed, reason: fmt.Sprintf(format, args...)}, nil
	}
	tok, err := o.oauth2Config(p, f.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return refused("token endpoint refused the code: %s", truncate(re.ErrorCode, 64))
		}
		return nil, nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refused("token response has no id_token")
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return refused("id token rejected: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return refused("id token nonce does not match the sign-in request")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return refused("access token does not match at_hash: %v", err)
		}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return refused("id token claims: %v", err)
	}
	groups, haveGroups := claimStrings(claims, o.cfg.GroupsClaim)
	if (!haveGroups || claimString(claims, o.cfg.EmailClaim) == "") && p.provider.UserInfoEndpoint() != "" {
		// Providers often keep groups (and sometimes email) out of the ID
		// token; the userinfo endpoint has them. Its subject must be the
		// ID token's (OIDC core 5.3.2).
		ui, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		switch {
		case err != nil:
			o.s.log.Warn("oidc userinfo failed; using ID token claims only", zap.Error(err))
		case ui.Subject != idt.Subject:
			return refused("userinfo subject does not match the id token")
		default:
			var extra map[string]any
			if err := ui.Claims(&extra); err == nil {
				for k, v := range extra {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
				if !haveGroups {
					groups, _ = claimStrings(claims, o.cfg.GroupsClaim)
				}
			}
		}
	}
	email := claimString(claims, o.cfg.EmailClaim)
	if !emailVerified(claims, o.cfg.TrustEmailWithoutVerifiedClaim) {
		// An unverified address proves nothing: it must not match an
		// account or pass the domain check.
		email = ""
	}
	id := &identity{
		protocol:    protocolOIDC,
		issuer:      idt.Issuer,
		subject:     idt.Subject,
		userNames:   []string{claimString(claims, o.cfg.UserNameClaim)},
		email:       email,
		name:        claimString(claims, o.cfg.NameClaim),
		groups:      groups,
		idTokenHint: raw,
	}
	return id, nil, nil
}

// emailVerified reads the email_verified claim: JSON true, or the string
// "true" that some providers send, is verified; false, "false", any other
// value, and (unless trustMissing, the tenant's explicit opt-in) a missing
// claim are not.
func emailVerified(claims map[string]any, trustMissing bool) bool {
	v, ok := claims["email_verified"]
	if !ok {
		return trustMissing
	}
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return t == "true"
	}
	return false
}

// logoutURL is the provider's RP-initiated logout URL, or "" (also while
// the provider was never reached: the local session ends all the same).
func (o *oidcRP) logoutURL(idTokenHint string) string {
	p := o.idp.get()
	if p == nil || p.endSession == "" {
		return ""
	}
	u, _ := url.Parse(p.endSession)
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", o.cfg.ClientID)
	if o.cfg.PostLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", o.cfg.PostLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// claimValue finds a claim by its literal name, or else by a dotted path
// ("realm_access.roles"), since some claim names contain dots themselves.
func claimValue(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func claimString(claims map[string]any, name string) string {
	v, _ := claimValue(claims, name)
	s, _ := v.(string)
	return s
}

// claimStrings reads a claim that is a list of strings or one string.
func claimStrings(claims map[string]any, name string) ([]string, bool) {
	v, ok := claimValue(claims, name)
	if !ok {
		return nil, false
	}
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}
