package sso

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/portcullis/portcullis/storage/keyring"
)

// The flow key seals sign-in flows into their cookies (flow.go). It is one
// random 256-bit XChaCha20-Poly1305 key per tenant, generated the first time
// the tenant's sign-in starts and kept in the store without expiry, so every
// replica sharing the store and every restart opens the flows the others
// sealed. Loading it is the only store work a sign-in start depends on, and
// it happens once, in New.

const (
	recordFlowKey = "sso.flow_key"
	flowKeyID     = "default"
)

// loadOrCreateFlowKey returns the tenant's flow AEAD, generating and
// storing the key the first time (sealed with the key encryption key when
// one is configured). Two replicas starting at once agree on one key
// (keyring.LoadOrCreate).
func loadOrCreateFlowKey(ctx context.Context, s *Service) (cipher.AEAD, error) {
	got, err := keyring.LoadOrCreate(ctx, s.store, keyring.Spec{
		Slot: keyring.Slot{Tenant: s.cfg.Tenant, Kind: recordFlowKey, Key: flowKeyID},
		KEK:  s.cfg.KeyEncryptionKey,
		Create: func() ([]byte, error) {
			fresh := make([]byte, chacha20poly1305.KeySize)
			_, err := rand.Read(fresh)
			return fresh, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sso: sign-in flow key: %w", err)
	}
	if got.Resealed {
		s.log.Info("sealed the stored sign-in flow key with the key encryption key")
	}
	key := got.Value
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("sso: the stored sign-in flow key has %d bytes, want %d", len(key), chacha20poly1305.KeySize)
	}
	return chacha20poly1305.NewX(key)
}
