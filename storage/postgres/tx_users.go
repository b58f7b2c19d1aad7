package postgres

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// ScanUsers and ScanGroups read records a page per query (fn runs between
// pages, free to use the transaction itself): scanFirstPage first, which
// is what a SCIM page of 100 needs (reading more would decode records no
// one asked for), then pages twice as large up to scanMaxPage, so a whole
// scan takes few round trips.
const (
	scanFirstPage = 100
	scanMaxPage   = 800
)

func (t *tx) GetUser(id string) (*storage.User, error) {
	if !validID(id) {
		return nil, storage.ErrNotFound
	}
	us, err := docs[storage.User](t, `SELECT doc FROM users WHERE tenant = $1 AND id = $2`, t.tenant, id)
	if err != nil {
		return nil, err
	}
	if len(us) == 0 {
		return nil, storage.ErrNotFound
	}
	return us[0], nil
}

func (t *tx) UserByUserName(userName string) (*storage.User, error) {
	folded := fold(userName)
	us, err := docs[storage.User](t, `SELECT doc FROM users WHERE tenant = $1 AND user_name_key = $2`, t.tenant, key(folded))
	if err != nil {
		return nil, err
	}
	if len(us) == 0 || fold(us[0].UserName) != folded {
		return nil, storage.ErrNotFound
	}
	return us[0], nil
}

func (t *tx) UsersByExternalID(externalID string) ([]*storage.User, error) {
	if externalID == "" {
		return nil, nil
	}
	us, err := docs[storage.User](t, `SELECT doc FROM users WHERE tenant = $1 AND external_id_key = $2 ORDER BY id`,
		t.tenant, key(externalID))
	return slices.DeleteFunc(us, func(u *storage.User) bool { return u.ExternalID != externalID }), err
}

func (t *tx) UsersByEmail(email string) ([]*storage.User, error) {
	if email == "" {
		return nil, nil
	}
	folded := fold(email)
	us, err := docs[storage.User](t, `SELECT u.doc FROM user_emails e
		JOIN users u ON u.tenant = e.tenant AND u.id = e.user_id
		WHERE e.tenant = $1 AND e.email_key = $2 ORDER BY e.user_id`, t.tenant, key(folded))
	return slices.DeleteFunc(us, func(u *storage.User) bool {
		return !slices.ContainsFunc(u.Emails, func(e string) bool { return fold(e) == folded })
	}), err
}

func (t *tx) ScanUsers(after string, fn func(*storage.User) (bool, error)) error {
	return scanDocs(t, "users", after, func(u *storage.User) string { return u.ID }, fn)
}

// scanDocs calls fn for each document of the tenant's table (a constant:
// users or groups) in id order after `after`, a page at a time, until fn
// returns false or an error.
func scanDocs[T any](t *tx, table, after string, id func(*T) string, fn func(*T) (bool, error)) error {
	if !validText(after) {
		return errors.New("postgres: scan cursor is not UTF-8 text")
	}
	for size := scanFirstPage; ; size = min(2*size, scanMaxPage) {
		page, err := docs[T](t, `SELECT doc FROM `+table+` WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3`,
			t.tenant, after, size)
		if err != nil {
			return err
		}
		for _, d := range page {
			if more, err := fn(d); err != nil || !more {
				return err
			}
		}
		if len(page) < size {
			return nil
		}
		after = id(page[len(page)-1])
	}
}

// emailKeys are the index keys of u's emails, distinct, sorted.
func emailKeys(u *storage.User) [][]byte {
	var out [][]byte
	for _, e := range u.Emails {
		if e != "" {
			out = append(out, key(fold(e)))
		}
	}
	slices.SortFunc(out, func(a, b []byte) int { return slices.Compare(a, b) })
	return slices.CompactFunc(out, func(a, b []byte) bool { return slices.Equal(a, b) })
}

// PutUser reads the user and the holder of its userName in one query:
// under SERIALIZABLE, that read makes two concurrent creators of one
// userName conflict, and the retry of the loser sees the winner.
func (t *tx) PutUser(u *storage.User) error {
	if err := t.write(); err != nil {
		return err
	}
	if !validID(u.ID) {
		return fmt.Errorf("postgres: user id must be 1 to %d bytes of UTF-8 text", maxIDLen)
	}
	if u.UserName == "" {
		return errors.New("postgres: user has no userName")
	}
	t.observed = true
	nameKey := key(fold(u.UserName))
	found, err := docs[storage.User](t, `SELECT doc FROM users WHERE tenant = $1 AND (id = $2 OR user_name_key = $3)`,
		t.tenant, u.ID, nameKey)
	if err != nil {
		return err
	}
	var old *storage.User
	for _, f := range found {
		if f.ID == u.ID {
			old = f
		} else if fold(f.UserName) == fold(u.UserName) {
			return storage.ErrUniqueness
		}
	}
	if old != nil {
		u.Version = old.Version + 1
		u.Created = old.Created
	} else {
		u.Version = 1
		if u.Created.IsZero() {
			u.Created = time.Now()
		}
	}
	if u.Modified.IsZero() {
		u.Modified = u.Created
	}
	doc, err := encode(u)
	if err != nil {
		return err
	}
	newEmails := emailKeys(u)
	if old == nil {
		_, err = t.exec(`WITH u AS (
				INSERT INTO users (tenant, id, user_name_key, external_id_key, doc) VALUES ($1, $2, $3, $4, $5))
			INSERT INTO user_emails (tenant, email_key, user_id) SELECT $1, k, $2 FROM unnest($6::bytea[]) AS k`,
			t.tenant, u.ID, nameKey, optKey(u.ExternalID), doc, newEmails)
		return err
	}
	if slices.EqualFunc(emailKeys(old), newEmails, func(a, b []byte) bool { return slices.Equal(a, b) }) {
		_, err = t.exec(`UPDATE users SET user_name_key = $3, external_id_key = $4, doc = $5 WHERE tenant = $1 AND id = $2`,
			t.tenant, u.ID, nameKey, optKey(u.ExternalID), doc)
		return err
	}
	_, err = t.exec(`WITH u AS (
			UPDATE users SET user_name_key = $3, external_id_key = $4, doc = $5 WHERE tenant = $1 AND id = $2),
		d AS (DELETE FROM user_emails WHERE tenant = $1 AND user_id = $2 AND NOT email_key = ANY($6::bytea[]))
		INSERT INTO user_emails (tenant, email_key, user_id) SELECT $1, k, $2 FROM unnest($6::bytea[]) AS k
		ON CONFLICT DO NOTHING`,
		t.tenant, u.ID, nameKey, optKey(u.ExternalID), doc, newEmails)
	return err
}

// DeleteUser removes the user (its email index rows cascade), its
// memberships and its sessions in one statement.
func (t *tx) DeleteUser(id string) error {
	if err := t.write(); err != nil {
		return err
	}
	if !validID(id) {
		return storage.ErrNotFound
	}
	var n int
	_, err := t.scanOne(`WITH u AS (DELETE FROM users WHERE tenant = $1 AND id = $2 RETURNING id),
		m AS (DELETE FROM memberships WHERE tenant = $1 AND member_id = $2 AND member_type = 'User'
			AND EXISTS (SELECT 1 FROM u)),
		s AS (DELETE FROM sessions WHERE tenant = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM u))
		SELECT count(*) FROM u`, []any{t.tenant, id}, &n)
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	t.observed = true
	return nil
}
