package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/keyring"
)

// The signing key lives in the tenant's store as a keyed record, so every
// restart (and every replica on a shared store) signs with the same key and
// backends keep their cached JWKS.
const (
	assertionKeyKind = "assertion-key"
	assertionKeyName = "es256"
)

// DefaultAssertionTTL is the lifetime of an assertion: long enough for one
// request to reach the backend, short enough that a captured one is soon
// useless.
const DefaultAssertionTTL = 60 * time.Second

// maxAssertionTTL bounds a configured lifetime.
const maxAssertionTTL = 10 * time.Minute

// AssertionConfig configures a tenant's AssertionSigner.
type AssertionConfig struct {
	Store  storage.Store
	Tenant string
	// Issuer is the iss claim; backends check it. Use the gateway's URL
	// for the tenant (e.g. https://gw.example.com/portcullis/acme).
	Issuer string
	// TTL is the lifetime of an assertion (default DefaultAssertionTTL,
	// at most 10 minutes).
	TTL time.Duration
	// KeyEncryptionKey, when set (32 bytes), seals the signing key at
	// rest in the store (see package keyring); a key stored in plaintext
	// is sealed on the first start with it. Nil keeps it in plaintext.
	KeyEncryptionKey []byte
	Logger           *zap.Logger
}

// AssertionSigner signs identity assertions (JWT, ES256) for one tenant and
// publishes its public key as a JWKS.
type AssertionSigner struct {
	issuer string
	ttl    time.Duration
	kid    string
	signer jose.Signer
	jwks   []byte
}

// NewAssertionSigner loads the tenant's signing key from the store, or
// generates and stores one the first time. Concurrent first starts agree on
// one key (keyring.LoadOrCreate: the read and the write are one
// serialisable transaction, and the loser reads the winner's key).
func NewAssertionSigner(ctx context.Context, cfg AssertionConfig) (*AssertionSigner, error) {
	if cfg.Store == nil || cfg.Tenant == "" || cfg.Issuer == "" {
		return nil, errors.New("authz: an assertion signer needs a store, a tenant and an issuer")
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultAssertionTTL
	}
	if ttl < 0 || ttl > maxAssertionTTL {
		return nil, fmt.Errorf("authz: assertion lifetime %s is outside (0, %s]", ttl, maxAssertionTTL)
	}
	got, err := keyring.LoadOrCreate(ctx, cfg.Store, keyring.Spec{
		Slot: keyring.Slot{Tenant: cfg.Tenant, Kind: assertionKeyKind, Key: assertionKeyName},
		KEK:  cfg.KeyEncryptionKey,
		Create: func() ([]byte, error) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			return x509.MarshalPKCS8PrivateKey(key)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("authz: loading the assertion key of tenant %q: %w", cfg.Tenant, err)
	}
	der, created := got.Value, got.Created
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("authz: the stored assertion key of tenant %q is unreadable: %w", cfg.Tenant, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("authz: the stored assertion key of tenant %q is not a P-256 key", cfg.Tenant)
	}

	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("authz: assertion key thumbprint: %w", err)
	}
	// The RFC 7638 thumbprint as key id: stable for the key, and a new key
	// gets a new id, so backends can tell them apart.
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("authz: assertion signer: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("authz: encoding the JWKS: %w", err)
	}
	if cfg.Logger != nil && created {
		cfg.Logger.Info("generated the identity assertion key", zap.String("tenant", cfg.Tenant), zap.String("kid", pub.KeyID))
	}
	return &AssertionSigner{issuer: cfg.Issuer, ttl: ttl, kid: pub.KeyID, signer: signer, jwks: jwks}, nil
}

// Issuer is the iss claim of every assertion.
func (s *AssertionSigner) Issuer() string { return s.issuer }

// KeyID is the kid of the signing key.
func (s *AssertionSigner) KeyID() string { return s.kid }

// TTL is the lifetime of an assertion.
func (s *AssertionSigner) TTL() time.Duration { return s.ttl }

// AssertionClaims are the claims of an identity assertion.
type AssertionClaims struct {
	jwt.Claims
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email,omitempty"`
	Name              string   `json:"name,omitempty"`
	Groups            []string `json:"groups"`
	Role              string   `json:"role,omitempty"`
	Tenant            string   `json:"tenant"`
}

// Sign returns an assertion of id for audience, issued at now, and its
// expiry.
func (s *AssertionSigner) Sign(id *Identity, audience string, now time.Time) (string, time.Time, error) {
	exp := now.Add(s.ttl)
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	claims := AssertionClaims{
		Claims: jwt.Claims{
			Issuer:    s.issuer,
			Subject:   id.UserID,
			Audience:  jwt.Audience{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(exp),
		},
		PreferredUsername: id.UserName,
		Email:             id.Email,
		Name:              id.Name,
		Groups:            groups,
		Role:              id.Role,
		Tenant:            id.Tenant,
	}
	tok, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// JWKSHandler serves the public key set (GET or HEAD) for backends that
// verify assertions.
func (s *AssertionSigner) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(s.jwks)
	})
}

// assertion returns the entry's assertion for audience, signing a new one
// when there is none or the cached one has used half its lifetime, so a
// backend never receives one about to expire. The entry itself is replaced
// on any store write, so a cached assertion never outlives a role change.
func (e *entry) assertion(s *AssertionSigner, audience string, now time.Time) (string, error) {
	e.assertionMu.Lock()
	defer e.assertionMu.Unlock()
	i := 0
	for ; i < len(e.assertions); i++ {
		if e.assertions[i].audience == audience {
			if now.Before(e.assertions[i].refreshAt) && !now.Before(e.assertions[i].issuedAt) {
				return e.assertions[i].token, nil
			}
			break
		}
	}
	tok, _, err := s.Sign(&e.identity, audience, now)
	if err != nil {
		return "", err
	}
	c := cachedAssertion{audience: audience, token: tok, issuedAt: now, refreshAt: now.Add(s.ttl / 2)}
	if i < len(e.assertions) {
		e.assertions[i] = c
	} else {
		e.assertions = append(e.assertions, c)
	}
	return tok, nil
}
