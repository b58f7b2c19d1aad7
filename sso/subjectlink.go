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

// recordSubjectLink is the record kind of subject links.
const recordSubjectLink = "sso.subject_link"

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

// linkSubject links id's subject to the user it signed in as, unless it
// has no subject or is linked to that user already.
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
	return tx.PutRecord(recordSubjectLink, key, []byte(userID), 0)
}
