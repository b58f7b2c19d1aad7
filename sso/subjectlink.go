package sso

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/portcullis/portcullis/storage"
)

// A subject link ties what the IdP guarantees about a person (the issuer
// and the subject: OIDC iss and sub, SAML Issuer and a non-transient
// NameID) to the user the first successful sign-in matched. Later sign-ins
// match by the link before anything else, so that a name or email the IdP
// lets its users change cannot move a person into someone else's account.
//
// The link is a store record without expiry, keyed by the SHA-256 of
// issuer and subject, holding the user id. It is written in the sign-in's
// own transaction, the first time only. A link whose user is gone (deleted
// over SCIM) is ignored, and replaced by the next sign-in's match.

// The reverse link (user → the subject linked to them, per IdP) lets a
// sign-in matched only by email be refused when the user already signs in
// with another subject at the same IdP: an email, even a verified one (or
// one trusted without the claim), must not move a second IdP account into
// an account that has its own.

// Record kinds of subject links and their reverse.
const (
	recordSubjectLink = "sso.subject_link"
	recordUserLink    = "sso.user_link"
)

// userLinkKey is the record key of the reverse link of userID at id's IdP.
func userLinkKey(id *identity, userID string) string {
	sum := sha256.Sum256([]byte(id.protocol + "\x00" + id.issuer + "\x00" + userID))
	return hex.EncodeToString(sum[:])
}

// linkedToAnother says whether userID is linked to a subject of id's IdP
// other than id's.
func linkedToAnother(tx storage.ReadTx, id *identity, userID string) (bool, error) {
	if id.issuer == "" {
		return false, nil
	}
	v, err := tx.GetRecord(recordUserLink, userLinkKey(id, userID))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return string(v) != subjectLinkKey(id), nil
}

// subjectLinkKey is the record key of id's link, or "" when id has no
// subject to link.
func subjectLinkKey(id *identity) string {
	if id.subject == "" || id.issuer == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id.protocol + "\x00" + id.issuer + "\x00" + id.subject))
	return hex.EncodeToString(sum[:])
}

// linkedUser returns the user id's subject is linked to, or nil.
func linkedUser(tx storage.ReadTx, id *identity) (*storage.User, error) {
	key := subjectLinkKey(id)
	if key == "" {
		return nil, nil
	}
	v, err := tx.GetRecord(recordSubjectLink, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, err := tx.GetUser(string(v))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// linkSubject links id's subject to the user it signed in as (and the
// user back to it), unless it has no subject or is linked to that user
// already. A user whose IdP account was replaced (a new subject matched by
// userName) is linked to the new subject from then on.
func linkSubject(tx storage.Tx, id *identity, userID string) error {
	key := subjectLinkKey(id)
	if key == "" {
		return nil
	}
	v, err := tx.GetRecord(recordSubjectLink, key)
	if err == nil && string(v) == userID {
		return nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := tx.PutRecord(recordSubjectLink, key, []byte(userID), 0); err != nil {
		return err
	}
	return tx.PutRecord(recordUserLink, userLinkKey(id, userID), []byte(key), 0)
}
