package sso

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/portcullis/portcullis/storage"
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
// storing the key the first time. Two replicas starting at once agree on
// one key: the second to commit reads the first's.
func loadOrCreateFlowKey(ctx context.Context, s *Service) (cipher.AEAD, error) {
	var key []byte
	err := s.store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		v, err := tx.GetRecord(recordFlowKey, flowKeyID)
		key = v
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		fresh := make([]byte, chacha20poly1305.KeySize)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		err = s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
			v, err := tx.GetRecord(recordFlowKey, flowKeyID)
			if err == nil {
				key = v
				return nil
			}
			if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			key = fresh
			return tx.PutRecord(recordFlowKey, flowKeyID, fresh, 0)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("sso: sign-in flow key: %w", err)
	}
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("sso: the stored sign-in flow key has %d bytes, want %d", len(key), chacha20poly1305.KeySize)
	}
	return chacha20poly1305.NewX(key)
}
