package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/crewjam/saml"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/keyring"
)

// spKeyRecordKey is the record key of the generated SP key pair.
const spKeyRecordKey = "default"

// loadOrCreateSPKey returns the tenant's SP key pair from the store, or
// generates one (RSA-2048, self-signed for 10 years: IdPs use SP
// certificates only as key containers) and stores it without expiry,
// sealed with the key encryption key when one is configured. Two replicas
// starting at once agree on one pair (keyring.LoadOrCreate).
func loadOrCreateSPKey(ctx context.Context, s *Service) (*rsa.PrivateKey, *x509.Certificate, error) {
	got, err := keyring.LoadOrCreate(ctx, s.store, keyring.Spec{
		Slot:   keyring.Slot{Tenant: s.cfg.Tenant, Kind: recordSPKey, Key: spKeyRecordKey},
		KEK:    s.cfg.KeyEncryptionKey,
		Create: func() ([]byte, error) { return newSPKeyBundle(s.cfg.Tenant, s.now()) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sso: SAML SP key: %w", err)
	}
	if got.Resealed {
		s.log.Info("sealed the stored SAML SP key with the key encryption key")
	}
	s.log.Info("using the SAML SP key kept in the store")
	return parseKeyBundle(got.Value)
}

// newSPKeyBundle is a PEM private key followed by its PEM certificate.
func newSPKeyBundle(tenant string, now time.Time) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Portcullis SAML SP " + tenant},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(key)})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	return out, nil
}

func mustPKCS8(key *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return b
}

func parseKeyBundle(b []byte) (*rsa.PrivateKey, *x509.Certificate, error) {
	return parseKeyPair(b, b)
}

// parseKeyPair reads an RSA private key (PKCS#1 or PKCS#8) from keyPEM and
// the first certificate from certPEM, and checks they belong together.
func parseKeyPair(keyPEM, certPEM []byte) (*rsa.PrivateKey, *x509.Certificate, error) {
	var key *rsa.PrivateKey
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("sso: SP key: %w", err)
			}
			key = k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("sso: SP key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, nil, errors.New("sso: SP key must be an RSA key (XML encryption and most IdPs need RSA)")
			}
			key = rk
		}
		if key != nil {
			break
		}
	}
	if key == nil {
		return nil, nil, errors.New("sso: no RSA private key in the SP key PEM")
	}
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("sso: SP certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("sso: SP certificate does not match the SP key")
	}
	return key, cert, nil
}

// parseCertificatePEM reads the first CERTIFICATE block; a bare base64 DER
// (as IdP admin pages often show it) is accepted too.
func parseCertificatePEM(b []byte) (*x509.Certificate, error) {
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
	der, err := decodeBase64Loose(string(b))
	if err != nil {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(der)
}

// storeReplayCache is crewjam's AssertionReplayCache kept in the store: a
// record per assertion (and LogoutRequest) id, until the moment the library
// would refuse it anyway. The check and the write are one serialisable
// transaction, so two replicas cannot both accept the same assertion.
type storeReplayCache struct {
	s   *Service
	ctx context.Context
}

var _ saml.AssertionReplayCache = (*storeReplayCache)(nil)

func (c *storeReplayCache) Consume(id string, expiresAt time.Time) error {
	// Ids come from the IdP and can be long; key by their hash.
	sum := sha256.Sum256([]byte(id))
	key := hex.EncodeToString(sum[:])
	ttl := time.Until(expiresAt) + time.Minute
	if ttl < time.Minute {
		ttl = time.Minute
	}
	return c.s.store.Update(c.ctx, c.s.cfg.Tenant, func(tx storage.Tx) error {
		_, err := tx.GetRecord(recordReplay, key)
		if err == nil {
			return saml.ErrAssertionReplayed
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return tx.PutRecord(recordReplay, key, []byte(expiresAt.UTC().Format(time.RFC3339)), ttl)
	})
}

// decodeBase64Loose decodes standard base64 with any whitespace in it.
func decodeBase64Loose(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(clean)
}
