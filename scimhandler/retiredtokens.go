package scimhandler

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// A token that was rotated away or disabled is remembered (its SHA-256,
// when and why it stopped working), so an IdP still sending it is told
// plainly what happened instead of being counted as a guesser: such a
// request is always answered 401 with a detail that says so, and never
// spends its address's failure budget (see failurelimit.go). The list is
// bounded: only the last maxRetiredTokens retirements of a tenant are
// kept, in one record written in the same transaction as the rotation.
const (
	retiredTokensKind = "scim.retiredtokens"
	retiredTokensKey  = "list"
	maxRetiredTokens  = 20
)

// Why a token was retired.
const (
	retiredRotated  = "rotated"
	retiredDisabled = "disabled"
)

// retiredToken is one retired SCIM token. Like the live token, only its
// hash is kept.
type retiredToken struct {
	ID      string    `json:"id"`
	Hash    [32]byte  `json:"hash"`
	Retired time.Time `json:"retired"`
	Why     string    `json:"why"` // retiredRotated or retiredDisabled
}

// loadRetiredTokens reads the tenant's retired tokens, newest first. A
// record that cannot be decoded reads as none: it only improves error
// messages, and must never stop the live token from working.
func loadRetiredTokens(tx storage.ReadTx) ([]retiredToken, error) {
	b, err := tx.GetRecord(retiredTokensKind, retiredTokensKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []retiredToken
	if json.Unmarshal(b, &list) != nil {
		return nil, nil
	}
	return list, nil
}

// retireToken records old as retired (why: retiredRotated or
// retiredDisabled) at the front of the list, dropping the oldest entries
// past maxRetiredTokens.
func retireToken(tx storage.Tx, old *storage.SCIMToken, why string, at time.Time) error {
	list, err := loadRetiredTokens(tx)
	if err != nil {
		return err
	}
	list = append([]retiredToken{{ID: old.ID, Hash: old.Hash, Retired: at.UTC(), Why: why}}, list...)
	if len(list) > maxRetiredTokens {
		list = list[:maxRetiredTokens]
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return tx.PutRecord(retiredTokensKind, retiredTokensKey, b, 0)
}

// findRetired looks sum up among the retired tokens. Every entry is
// compared in constant time, whether or not an earlier one matched.
func findRetired(list []retiredToken, sum [32]byte) (retiredToken, bool) {
	var found retiredToken
	ok := false
	for _, rt := range list {
		if subtle.ConstantTimeCompare(sum[:], rt.Hash[:]) == 1 && !ok {
			found, ok = rt, true
		}
	}
	return found, ok
}

// retiredDetail is what the client presenting a retired token is told.
// disabledNow says the tenant has no live token at all.
func retiredDetail(rt retiredToken, disabledNow bool) string {
	when := rt.Retired.UTC().Format(time.RFC3339)
	switch {
	case disabledNow:
		return fmt.Sprintf("SCIM is disabled for this tenant: this token stopped working on %s and no token is active; ask the gateway's operator for a new one", when)
	case rt.Why == retiredDisabled:
		return fmt.Sprintf("this token stopped working on %s, when SCIM was disabled for this tenant; use the current token", when)
	default:
		return fmt.Sprintf("this token was rotated on %s; use the current token", when)
	}
}

// RetiredTokenInfo is what an operator may see of a retired token: never
// its hash.
type RetiredTokenInfo struct {
	ID      string    `json:"id"`
	Retired time.Time `json:"retired"`
	Why     string    `json:"why"` // "rotated" or "disabled"
}

// RetiredTokens lists the tenant's retired tokens, newest first (at most
// the last 20 retirements are remembered).
func RetiredTokens(tx storage.ReadTx) ([]RetiredTokenInfo, error) {
	list, err := loadRetiredTokens(tx)
	if err != nil {
		return nil, err
	}
	out := make([]RetiredTokenInfo, len(list))
	for i, r := range list {
		out[i] = RetiredTokenInfo{ID: r.ID, Retired: r.Retired, Why: r.Why}
	}
	return out, nil
}
