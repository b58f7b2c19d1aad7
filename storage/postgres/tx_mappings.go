package postgres

import (
	"fmt"

	"github.com/portcullis/portcullis/storage"
)

// Stored group mappings: one row each, read whole (there are few).

func (t *tx) StoredMappings() ([]storage.Mapping, error) {
	ms, err := docs[storage.Mapping](t, `SELECT doc FROM mappings WHERE tenant = $1 ORDER BY group_ref`, t.tenant)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Mapping, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out, nil
}

func validMappingGroup(group string) error {
	if group == "" || len(group) > storage.MaxMappingGroupLen {
		return fmt.Errorf("postgres: mapping group must be 1 to %d bytes", storage.MaxMappingGroupLen)
	}
	return nil
}

// PutMapping always moves Generation: the roles of the group's members may
// change.
func (t *tx) PutMapping(m storage.Mapping) error {
	if err := t.write(); err != nil {
		return err
	}
	if err := validMappingGroup(m.Group); err != nil {
		return err
	}
	doc, err := encode(&m)
	if err != nil {
		return err
	}
	t.observed = true
	_, err = t.exec(`INSERT INTO mappings (tenant, group_ref, doc) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, group_ref) DO UPDATE SET doc = excluded.doc`, t.tenant, m.Group, doc)
	return err
}

// DeleteMapping moves Generation only when a mapping was there.
func (t *tx) DeleteMapping(group string) (bool, error) {
	if err := t.write(); err != nil {
		return false, err
	}
	if validMappingGroup(group) != nil {
		return false, nil
	}
	tag, err := t.exec(`DELETE FROM mappings WHERE tenant = $1 AND group_ref = $2`, t.tenant, group)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	t.observed = true
	return true, nil
}
