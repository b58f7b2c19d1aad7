package postgres

import (
	"fmt"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// ---- SCIM token ----

func (t *tx) GetSCIMToken() (*storage.SCIMToken, error) {
	ts, err := docs[storage.SCIMToken](t, `SELECT doc FROM scim_tokens WHERE tenant = $1`, t.tenant)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, storage.ErrNotFound
	}
	return ts[0], nil
}

func (t *tx) PutSCIMToken(tok *storage.SCIMToken) error {
	if err := t.write(); err != nil {
		return err
	}
	doc, err := encode(tok)
	if err != nil {
		return err
	}
	t.observed = true
	_, err = t.exec(`INSERT INTO scim_tokens (tenant, doc) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET doc = excluded.doc`, t.tenant, doc)
	return err
}

// DeleteSCIMToken is a no-op when there is no token.
func (t *tx) DeleteSCIMToken() error {
	if err := t.write(); err != nil {
		return err
	}
	t.observed = true
	_, err := t.exec(`DELETE FROM scim_tokens WHERE tenant = $1`, t.tenant)
	return err
}

// ---- sessions ----

// sessionGrace: the store deletes a session this long after its absolute
// expiry, so a just-expired session is still found (and refused by
// Session.Expired) rather than silently missing, as on Badger.
const sessionGrace = time.Hour

func (t *tx) GetSession(idHash [32]byte) (*storage.Session, error) {
	ss, err := docs[storage.Session](t, `SELECT doc FROM sessions WHERE tenant = $1 AND id_hash = $2`, t.tenant, idHash[:])
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, storage.ErrNotFound
	}
	return ss[0], nil
}

func (t *tx) SessionsOf(userID string) ([]*storage.Session, error) {
	if !validID(userID) {
		return nil, nil
	}
	return docs[storage.Session](t, `SELECT doc FROM sessions WHERE tenant = $1 AND user_id = $2 ORDER BY id_hash`,
		t.tenant, userID)
}

// PutSession creates or replaces the session. It also reads the user's
// record (the guard subquery): under SERIALIZABLE a DeleteUser running
// meanwhile then conflicts with it instead of leaving a session of a
// deleted user.
func (t *tx) PutSession(s *storage.Session) error {
	if err := t.write(); err != nil {
		return err
	}
	if !validID(s.UserID) {
		return fmt.Errorf("postgres: session user id must be 1 to %d bytes of UTF-8 text", maxIDLen)
	}
	doc, err := encode(s)
	if err != nil {
		return err
	}
	var expires *time.Time
	if !s.ExpiresAt.IsZero() {
		expires = &s.ExpiresAt
	}
	_, err = t.exec(`INSERT INTO sessions (tenant, id_hash, user_id, expires_at, doc)
		SELECT $1, $2, $3, $4, $5 FROM (SELECT EXISTS (SELECT 1 FROM users WHERE tenant = $1 AND id = $3)) AS guard
		ON CONFLICT (tenant, id_hash) DO UPDATE SET user_id = excluded.user_id,
			expires_at = excluded.expires_at, doc = excluded.doc`,
		t.tenant, s.IDHash[:], s.UserID, expires, doc)
	return err
}

// DeleteSession is a no-op when there is no such session.
func (t *tx) DeleteSession(idHash [32]byte) error {
	if err := t.write(); err != nil {
		return err
	}
	tag, err := t.exec(`DELETE FROM sessions WHERE tenant = $1 AND id_hash = $2`, t.tenant, idHash[:])
	if err != nil {
		return err
	}
	if tag.RowsAffected() > 0 {
		t.observed = true
	}
	return nil
}

func (t *tx) DeleteSessionsOf(userID string) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	if !validID(userID) {
		return 0, nil
	}
	tag, err := t.exec(`DELETE FROM sessions WHERE tenant = $1 AND user_id = $2`, t.tenant, userID)
	if err != nil {
		return 0, err
	}
	n := int(tag.RowsAffected())
	if n > 0 {
		t.observed = true
	}
	return n, nil
}

// ---- short-lived records ----

// recordKey is the primary key of a record: kind and key, hashed so that
// neither length is bounded by the btree's entry size.
func recordKey(kind, k string) []byte { return key(kind + "\x00" + k) }

// GetRecord checks the exact expiry itself: the maintenance loop deletes
// expired records only now and then.
func (t *tx) GetRecord(kind, k string) ([]byte, error) {
	var value []byte
	var storedKind, storedKey string
	var expires *time.Time
	found, err := t.scanOne(`SELECT kind, key, value, expires_at FROM records WHERE tenant = $1 AND key_hash = $2`,
		[]any{t.tenant, recordKey(kind, k)}, &storedKind, &storedKey, &value, &expires)
	if err != nil {
		return nil, err
	}
	if !found || storedKind != kind || storedKey != k || (expires != nil && !time.Now().Before(*expires)) {
		return nil, storage.ErrNotFound
	}
	return value, nil
}

func (t *tx) PutRecord(kind, k string, value []byte, ttl time.Duration) error {
	if err := t.write(); err != nil {
		return err
	}
	if !validText(kind) || !validText(k) {
		return fmt.Errorf("postgres: record kind and key must be UTF-8 text")
	}
	var expires *time.Time
	if ttl > 0 {
		at := time.Now().Add(ttl)
		expires = &at
	}
	if value == nil {
		value = []byte{}
	}
	_, err := t.exec(`INSERT INTO records (tenant, key_hash, kind, key, value, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, key_hash) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
		t.tenant, recordKey(kind, k), kind, k, value, expires)
	return err
}

// DeleteRecord is a no-op when there is no such record.
func (t *tx) DeleteRecord(kind, k string) error {
	if err := t.write(); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM records WHERE tenant = $1 AND key_hash = $2`, t.tenant, recordKey(kind, k))
	return err
}
