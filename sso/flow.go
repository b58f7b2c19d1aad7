package sso

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// A login flow is one sign-in in progress: what the browser must come back
// with (OIDC state, SAML RelayState) and what the SP must remember (nonce,
// PKCE verifier, SAML request id, return path). The flow id is a 256-bit
// random value; the browser holds it in a short-lived cookie whose name is
// derived from it, and the IdP echoes it as state or RelayState. The store
// keeps the flow under the SHA-256 of the id with a TTL, so a flow survives a
// restart, works across replicas sharing the store, and is deleted on use.

// recordFlow is the storage record kind of login flows.
const recordFlow = "sso.flow"

// flowTTL bounds how long a sign-in may take at the IdP (MFA included).
const flowTTL = 10 * time.Minute

type loginFlow struct {
	Protocol   string    `json:"protocol"`
	ReturnPath string    `json:"returnPath"`
	Created    time.Time `json:"created"`
	// OIDC
	Nonce       string `json:"nonce,omitempty"`
	Verifier    string `json:"verifier,omitempty"`
	RedirectURI string `json:"redirectUri,omitempty"`
	// SAML
	RequestID string `json:"requestId,omitempty"`
	ACSURL    string `json:"acsUrl,omitempty"`
}

// Flow failures, each a reason in the signin.refused audit event.
var (
	errFlowMalformed = errors.New("state or RelayState is missing or malformed")
	errFlowNoCookie  = errors.New("the browser did not send the sign-in cookie (another browser, or cookies blocked)")
	errFlowMismatch  = errors.New("state or RelayState does not match the sign-in cookie")
	errFlowUnknown   = errors.New("sign-in request unknown, expired or already used")
)

// flowCookieName is derived from the flow id, so several sign-ins (tabs)
// can be in progress at once and a callback finds its own cookie.
func (s *Service) flowCookieName(flowID string) string {
	h := storage.HashSecret(flowID)
	return s.cfg.Session.CookieName + "_flow_" + hex.EncodeToString(h[:6])
}

// startFlow stores f and sets the browser's flow cookie; it returns the flow
// id to send to the IdP. crossSitePost says the IdP comes back with a
// cross-site POST (SAML), which only carries SameSite=None cookies.
func (s *Service) startFlow(w http.ResponseWriter, r *http.Request, cookiePath string, f *loginFlow, crossSitePost bool) (string, error) {
	id, hash := storage.NewSecret()
	f.Created = s.now()
	data, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	err = s.store.Update(r.Context(), s.cfg.Tenant, func(tx storage.Tx) error {
		return tx.PutRecord(recordFlow, hex.EncodeToString(hash[:]), data, flowTTL)
	})
	if err != nil {
		return "", fmt.Errorf("store login flow: %w", err)
	}
	c := &http.Cookie{
		Name:     s.flowCookieName(id),
		Value:    id,
		Path:     cookiePath,
		MaxAge:   int(flowTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	if crossSitePost && r.TLS != nil {
		// The IdP posts the SAML response from its own site; browsers only
		// send SameSite=None cookies (which must be Secure) with that.
		c.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
	return id, nil
}

// consumeFlow checks that the browser holds the cookie of flow id, clears
// the cookie, and deletes and returns the stored flow. It never lets a flow
// be used twice.
func (s *Service) consumeFlow(w http.ResponseWriter, r *http.Request, cookiePath, id string) (*loginFlow, error) {
	if !validSecret(id) {
		return nil, errFlowMalformed
	}
	name := s.flowCookieName(id)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errFlowNoCookie
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil})
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(id)) != 1 {
		return nil, errFlowMismatch
	}
	hash := storage.HashSecret(id)
	key := hex.EncodeToString(hash[:])
	var data []byte
	err = s.store.Update(r.Context(), s.cfg.Tenant, func(tx storage.Tx) error {
		v, err := tx.GetRecord(recordFlow, key)
		if err != nil {
			return err
		}
		data = v
		return tx.DeleteRecord(recordFlow, key)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errFlowUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("consume login flow: %w", err)
	}
	var f loginFlow
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode login flow: %w", err)
	}
	if s.now().Sub(f.Created) > flowTTL {
		return nil, errFlowUnknown
	}
	return &f, nil
}

// validSecret says whether v looks like a storage.NewSecret plaintext: 64
// lower-case hex digits. Anything else is refused before it reaches the
// store.
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
