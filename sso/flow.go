package sso

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// A login flow is one sign-in in progress: what the browser must come back
// with (OIDC state, SAML RelayState) and what the SP must remember (nonce,
// PKCE verifier, SAML request id, return path, the redirect URI or ACS URL).
//
// The flow lives in the browser, not in the store, so that anonymous
// traffic (anyone can start a sign-in) costs no durable write: it is sealed
// (XChaCha20-Poly1305, with the tenant's flow key, see flowkey.go) into a
// short-lived cookie whose name is derived from the flow id, and the IdP
// echoes the flow id as state or RelayState. The seal authenticates the
// flow id too (it is the additional data), so a cookie only opens for its
// own state: the browser that started the sign-in is the one that must
// finish it. A flow is single use: consumeFlow records its id in memory
// until it expires (usedFlows).

// flowTTL bounds how long a sign-in may take at the IdP (MFA included).
const flowTTL = 10 * time.Minute

type loginFlow struct {
	Protocol   string    `json:"p"`
	ReturnPath string    `json:"r,omitempty"`
	Created    time.Time `json:"t"`
	// OIDC
	Nonce       string `json:"n,omitempty"`
	Verifier    string `json:"v,omitempty"`
	RedirectURI string `json:"u,omitempty"`
	// SAML
	RequestID string `json:"i,omitempty"`
	ACSURL    string `json:"a,omitempty"`
}

// Flow failures, each a reason in the signin.refused audit event.
var (
	errFlowMalformed = errors.New("state or RelayState is missing or malformed")
	errFlowNoCookie  = errors.New("the browser did not send the sign-in cookie (another browser, or cookies blocked)")
	errFlowMismatch  = errors.New("state or RelayState does not match the sign-in cookie")
	errFlowUnknown   = errors.New("sign-in request expired or already used")
)

// flowSealVersion is the first byte of a sealed flow, so that a later
// format can be told apart.
const flowSealVersion = 1

// maxFlowCookieLen bounds the cookie value consumeFlow decodes.
const maxFlowCookieLen = 4096

// maxSealedFlowLen keeps a flow cookie (name and value) under the 4096
// bytes browsers store: a flow with the longest return path seals to about
// 3.4 KB; one whose return path escapes to more is sent back to "/".
const maxSealedFlowLen = 3800

// startFlow seals f into a fresh flow cookie and returns the flow id to
// send to the IdP as state or RelayState. crossSitePost says the IdP comes
// back with a cross-site POST (SAML), which only carries SameSite=None
// cookies.
func (s *Service) startFlow(w http.ResponseWriter, r *http.Request, prefix string, f *loginFlow, crossSitePost bool) (string, error) {
	id := newRandom()
	f.Created = s.now()
	value, err := s.sealFlow(id, f)
	if err == nil && len(value) > maxSealedFlowLen {
		f.ReturnPath = "/"
		value, err = s.sealFlow(id, f)
	}
	if err != nil {
		return "", err
	}
	c := &http.Cookie{
		Name:     s.flowCookieName(r, id),
		Value:    value,
		Path:     s.flowCookiePath(r, prefix),
		MaxAge:   int(flowTTL / time.Second),
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	}
	if crossSitePost && c.Secure {
		// The IdP posts the SAML response from its own site; browsers only
		// send SameSite=None cookies (which must be Secure) with that.
		c.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
	return id, nil
}

// consumeFlow checks that the browser holds the cookie of flow id, clears
// the cookie, opens it and returns the flow. It never lets a flow be used
// twice while this process runs (see usedFlows for why that suffices).
func (s *Service) consumeFlow(w http.ResponseWriter, r *http.Request, prefix, id string) (*loginFlow, error) {
	if !validSecret(id) {
		return nil, errFlowMalformed
	}
	name := s.flowCookieName(r, id)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errFlowNoCookie
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: s.flowCookiePath(r, prefix), MaxAge: -1, HttpOnly: true, Secure: s.secure(r)})
	f, err := s.openFlow(id, c.Value)
	if err != nil {
		return nil, errFlowMismatch
	}
	expires := f.Created.Add(flowTTL)
	if !s.now().Before(expires) {
		return nil, errFlowUnknown
	}
	if !s.usedFlows.consume(id, expires, s.now()) {
		return nil, errFlowUnknown
	}
	return f, nil
}

// flowAD is the additional data a flow is sealed with: the tenant and the
// flow id, so a cookie opens neither for another tenant nor another state.
func (s *Service) flowAD(id string) []byte {
	return []byte("portcullis sso flow\x00" + s.cfg.Tenant + "\x00" + id)
}

func (s *Service) sealFlow(id string, f *loginFlow) (string, error) {
	// Return paths keep their & < > as they are (json.Marshal would
	// make each six bytes).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return "", err
	}
	plain := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	aead := s.flowAEAD
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = flowSealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", err
	}
	out = aead.Seal(out, out[1:], plain, s.flowAD(id))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

func (s *Service) openFlow(id, value string) (*loginFlow, error) {
	if len(value) > maxFlowCookieLen {
		return nil, errFlowMismatch
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	aead := s.flowAEAD
	if err != nil || len(raw) < 1+aead.NonceSize()+aead.Overhead() || raw[0] != flowSealVersion {
		return nil, errFlowMismatch
	}
	nonce, sealed := raw[1:1+aead.NonceSize()], raw[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, s.flowAD(id))
	if err != nil {
		return nil, errFlowMismatch
	}
	var f loginFlow
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, errFlowMismatch
	}
	return &f, nil
}

// validSecret says whether v looks like a storage.NewSecret plaintext: 64
// lower-case hex digits. Anything else is refused before any work.
func validSecret(v string) bool {
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
