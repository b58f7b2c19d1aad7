package keyring

import (
	"context"
	"errors"

	"github.com/portcullis/portcullis/storage"
)

// Slot names where a key lives: a record (kind, key) of a tenant, kept
// without expiry.
type Slot struct {
	Tenant string
	Kind   string
	Key    string
}

// Spec says which key to load and how to make it the first time.
type Spec struct {
	Slot
	// KEK, when set, seals the record at rest (and re-seals a plaintext
	// record left by a gateway that ran without one). Nil keeps the record
	// in plaintext, and refuses a sealed one (ErrNoKEK).
	KEK []byte
	// Create makes a new key. It may run although another replica's key
	// ends up being used; it must have no effect beyond its result.
	Create func() ([]byte, error)
}

// Loaded is the outcome of LoadOrCreate.
type Loaded struct {
	// Value is the key in plaintext.
	Value []byte
	// Created: this call stored Value (no replica had stored one).
	Created bool
	// Resealed: the record was in plaintext and this call sealed it.
	Resealed bool
}

// LoadOrCreate returns the key in spec's slot, creating and storing it if
// there is none. Replicas starting together agree on one key: the read
// and the write are one serialisable Update, and an Update that loses the
// race runs again and reads the winner's key instead of keeping its own
// candidate. A key already stored in the form wanted costs one View and
// no write.
func LoadOrCreate(ctx context.Context, st storage.Store, spec Spec) (Loaded, error) {
	if spec.KEK != nil && len(spec.KEK) != KEKSize {
		return Loaded{}, errors.New("keyring: the key encryption key must be 32 bytes")
	}
	var stored []byte
	err := st.View(ctx, spec.Tenant, func(tx storage.ReadTx) error {
		v, err := tx.GetRecord(spec.Kind, spec.Key)
		stored = v
		return err
	})
	switch {
	case err == nil:
		if isSealed(stored) {
			v, err := open(spec.KEK, spec.Slot, stored)
			return Loaded{Value: v}, err
		}
		if spec.KEK == nil {
			return Loaded{Value: stored}, nil
		}
	case !errors.Is(err, storage.ErrNotFound):
		return Loaded{}, err
	}

	// Make the candidate before the transaction (an RSA key takes a
	// while), and only when there is a chance of storing it.
	var candidate []byte
	if stored == nil {
		if candidate, err = spec.Create(); err != nil {
			return Loaded{}, err
		}
	}
	var out Loaded
	err = st.Update(ctx, spec.Tenant, func(tx storage.Tx) error {
		out = Loaded{}
		v, err := tx.GetRecord(spec.Kind, spec.Key)
		switch {
		case err == nil && isSealed(v):
			out.Value, err = open(spec.KEK, spec.Slot, v)
			return err
		case err == nil && spec.KEK == nil:
			out.Value = v
			return nil
		case err == nil:
			out.Value, out.Resealed = v, true
		case errors.Is(err, storage.ErrNotFound):
			if candidate == nil {
				if candidate, err = spec.Create(); err != nil {
					return err
				}
			}
			out.Value, out.Created = candidate, true
		default:
			return err
		}
		put := out.Value
		if spec.KEK != nil {
			if put, err = seal(spec.KEK, spec.Slot, out.Value); err != nil {
				return err
			}
		}
		return tx.PutRecord(spec.Kind, spec.Key, put, 0)
	})
	if err != nil {
		return Loaded{}, err
	}
	return out, nil
}
