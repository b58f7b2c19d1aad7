package postgres

import "github.com/portcullis/portcullis/storage"

// UserIDAt reads the id at position from the primary key (tenant, id) in
// an index-only scan: PostgreSQL's OFFSET still steps over position index
// entries, but entries of ~50 bytes, not records (see the figures of
// `go run ./bench -only scale`).
func (t *tx) UserIDAt(position int) (string, error) { return t.idAt("users", position) }

// GroupIDAt is UserIDAt for groups.
func (t *tx) GroupIDAt(position int) (string, error) { return t.idAt("groups", position) }

// idAt reads the id at position of the tenant's table (a constant: users
// or groups), in id order.
func (t *tx) idAt(table string, position int) (string, error) {
	if position < 0 {
		return "", storage.ErrNotFound
	}
	var id string
	found, err := t.scanOne(`SELECT id FROM `+table+` WHERE tenant = $1 ORDER BY id OFFSET $2 LIMIT 1`,
		[]any{t.tenant, position}, &id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", storage.ErrNotFound
	}
	return id, nil
}
