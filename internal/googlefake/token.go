package googlefake

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis/portcullis/storage"
)

// grant is an access token the fake issued and what it allows.
type grant struct {
	subject string
	scopes  map[string]bool
	expires time.Time
}

// jwtClaims is the claim set of a service account's JWT bearer grant
// (RFC 7523 as Google documents it for server-to-server OAuth).
type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// serveToken is the token endpoint: it checks the signed grant as Google
// does (RS256 with the service account's key, issuer, audience, lifetime at
// most an hour, the subject it may act as) and issues an access token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.count("token")
	s.mu.Lock()
	fail := s.tokenFailure
	s.mu.Unlock()
	if fail != 0 {
		tokenError(w, fail, "internal_failure", "the fake token endpoint was told to fail")
		return
	}
	if r.Method != http.MethodPost {
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "expected a JWT bearer grant")
		return
	}
	sig, err := jose.ParseSigned(r.PostForm.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(sig.Signatures) != 1 {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the assertion is not an RS256 JWS")
		return
	}
	if kid := sig.Signatures[0].Header.KeyID; kid != "" && kid != s.Account.KeyID {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown key id")
		return
	}
	payload, err := sig.Verify(&s.Account.Key.PublicKey)
	if err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "bad claims")
		return
	}
	now := time.Now()
	switch {
	case c.Iss != s.Account.ClientEmail:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown issuer")
		return
	case c.Aud != s.TokenURL():
		tokenError(w, http.StatusBadRequest, "invalid_grant", "wrong audience")
		return
	case c.Exp <= now.Unix()-60 || c.Iat > now.Unix()+60 || c.Exp-c.Iat > 3600:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	case c.Sub == "" || !strings.EqualFold(c.Sub, s.AdminEmail):
		tokenError(w, http.StatusUnauthorized, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	}
	g := &grant{subject: c.Sub, scopes: map[string]bool{}, expires: now.Add(time.Hour)}
	for _, sc := range strings.Fields(c.Scope) {
		g.scopes[sc] = true
	}
	token, _ := storage.NewSecret()
	s.mu.Lock()
	s.grants[token] = g
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": token, "token_type": "Bearer", "expires_in": 3600,
	})
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// authorize checks the request's access token for scope (any of them):
// false means it answered 401 or 403 as Google does.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scopes ...string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g := s.grants[token]
	s.mu.Unlock()
	if !ok || g == nil || time.Now().After(g.expires) {
		apiError(w, http.StatusUnauthorized, "authError", "Invalid Credentials", "")
		return false
	}
	for _, sc := range scopes {
		if g.scopes[sc] {
			return true
		}
	}
	apiError(w, http.StatusForbidden, "insufficientPermissions", "Request had insufficient authentication scopes.", "")
	return false
}

// apiError writes Google's JSON error body.
func apiError(w http.ResponseWriter, status int, reason, message, retryAfter string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": status, "message": message,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": message}},
	}})
}
