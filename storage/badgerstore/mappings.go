package badgerstore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// Stored group mappings are few (one per group an operator mapped), so they
// live under one prefix keyed by the raw group reference and are read whole.

func (t *tx) StoredMappings() ([]storage.Mapping, error) {
	var out []storage.Mapping
	err := t.iterate(t.k.kind(kindMapping), "", func(_ []byte, item *badger.Item) (bool, error) {
		var m storage.Mapping
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &m) }); err != nil {
			return false, fmt.Errorf("badgerstore: mapping: %w", err)
		}
		out = append(out, m)
		return true, nil
	})
	return out, err
}

func validMappingGroup(group string) error {
	if group == "" || len(group) > storage.MaxMappingGroupLen {
		return fmt.Errorf("badgerstore: mapping group must be 1 to %d bytes", storage.MaxMappingGroupLen)
	}
	return nil
}

// PutMapping always moves Generation: the roles of the group's members may
// change.
func (t *tx) PutMapping(m storage.Mapping) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if err := validMappingGroup(m.Group); err != nil {
		return err
	}
	t.observed = true
	return t.setJSON(t.k.id(kindMapping, m.Group), m)
}

// DeleteMapping moves Generation only when a mapping was there.
func (t *tx) DeleteMapping(group string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	if validMappingGroup(group) != nil {
		return false, nil
	}
	key := t.k.id(kindMapping, group)
	if _, err := t.getBytes(key); errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	t.observed = true
	return true, t.del(key)
}
