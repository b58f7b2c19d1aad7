// Package keyring keeps the key material the gateway generates (the SAML
// SP key, the assertion signing key, the sign-in flow key) in the store:
// created once per tenant even when several replicas start together, and,
// when the operator configures a key encryption key (KEK), sealed at rest
// so that a reader of the database (a backup, a replica, a leaked dump)
// cannot sign as the gateway.
package keyring

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEKSize is the size of a key encryption key: 256 bits.
const KEKSize = chacha20poly1305.KeySize

// sealedMagic starts every sealed record. Plaintext records never start
// with it: PEM starts with "-----", DER with 0x30, and a random 32-byte
// key matches 16 given bytes with probability 2^-128.
const sealedMagic = "portcullis/kek1\x00"

// kekIDSize is the length of the KEK fingerprint kept in a sealed record,
// so that opening with another KEK says so instead of "corrupt".
const kekIDSize = 8

// ErrWrongKEK is returned when a record was sealed with another key
// encryption key than the one configured.
var ErrWrongKEK = errors.New("keyring: the key was sealed with a different key_encryption_key")

// ErrNoKEK is returned when a record is sealed but no key encryption key
// is configured.
var ErrNoKEK = errors.New("keyring: the key is sealed in the store but no key_encryption_key is configured")

// ParseKEK reads a key encryption key written as 64 hex digits or as
// base64 (standard or URL alphabet, padded or not) of 32 bytes. The error
// never quotes the value: it is a secret.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keyring: the key encryption key is empty (did its {env.*} placeholder name an unset variable?)")
	}
	if len(s) == 2*KEKSize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KEKSize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("keyring: the key encryption key must be %d random bytes in hex (%d digits) or base64, e.g. the output of `openssl rand -base64 32`", KEKSize, 2*KEKSize)
}

// kekID is a fingerprint of the KEK: a hash, revealing nothing usable
// about a 256-bit random key.
func kekID(kek []byte) []byte {
	sum := sha256.Sum256(append([]byte("portcullis kek id\x00"), kek...))
	return sum[:kekIDSize]
}

// isSealed says whether a stored value is a sealed record.
func isSealed(stored []byte) bool {
	return bytes.HasPrefix(stored, []byte(sealedMagic))
}

// slotAD binds a sealed record to its tenant, kind and key: a record
// copied into another slot (another tenant's key) does not open.
func slotAD(header []byte, s Slot) []byte {
	ad := append([]byte(nil), header...)
	return fmt.Appendf(ad, "%s\x00%s\x00%s", s.Tenant, s.Kind, s.Key)
}

// seal encrypts plaintext for slot s with XChaCha20-Poly1305 under kek:
// magic, KEK id, nonce, ciphertext.
func seal(kek []byte, s Slot, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	header := append([]byte(sealedMagic), kekID(kek)...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte(nil), header...), nonce...)
	return aead.Seal(out, nonce, plaintext, slotAD(header, s)), nil
}

// open decrypts a sealed record of slot s.
func open(kek []byte, s Slot, stored []byte) ([]byte, error) {
	if kek == nil {
		return nil, ErrNoKEK
	}
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	headerLen := len(sealedMagic) + kekIDSize
	if len(stored) < headerLen+aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("keyring: the sealed key is truncated")
	}
	header := stored[:headerLen]
	if !bytes.Equal(header[len(sealedMagic):], kekID(kek)) {
		return nil, ErrWrongKEK
	}
	nonce := stored[headerLen : headerLen+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, stored[headerLen+aead.NonceSize():], slotAD(header, s))
	if err != nil {
		return nil, errors.New("keyring: the sealed key does not open: it was altered or copied from another tenant or kind")
	}
	return plain, nil
}
