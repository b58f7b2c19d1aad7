package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/storage"
)

// Mappings is the tenant's role model: the config's mappings (pinned) and
// the stored ones.
func (s *Service) Mappings(ctx context.Context) (*Mappings, error) {
	m := &Mappings{Roles: append([]string{}, s.roles.Levels...), Default: s.defaultRole(),
		Config: []Mapping{}, Stored: []Mapping{}}
	for _, c := range s.roles.Mappings {
		r, _ := s.role(c.Role)
		m.Config = append(m.Config, Mapping{Group: c.Group, Role: r})
	}
	err := s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		stored, err := tx.StoredMappings()
		m.Stored = m.Stored[:0]
		for _, st := range stored {
			m.Stored = append(m.Stored, Mapping{Group: st.Group, Role: st.Role})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// mappingKey is the form a stored mapping of ref is kept under: the id of
// the one group ref names (so it survives a rename), else ref as given (no
// group yet, or several groups of that displayName). groups are the ids
// ref names now.
func mappingKey(tx storage.ReadTx, ref string) (key string, groups []string, err error) {
	groups, err = authz.GroupRef(tx, ref)
	if err != nil {
		return "", nil, err
	}
	if len(groups) == 1 {
		return groups[0], groups, nil
	}
	return ref, groups, nil
}

func checkRef(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > storage.MaxMappingGroupLen {
		return "", fmt.Errorf("%w: the group (its id, externalId or displayName) is required, at most %d bytes", ErrInvalid, storage.MaxMappingGroupLen)
	}
	return ref, nil
}

// findStored finds the stored mapping that speaks for ref: under its key,
// under ref as given, or one whose own reference names the same group.
func findStored(tx storage.ReadTx, key, ref string, groups []string) (*storage.Mapping, error) {
	stored, err := tx.StoredMappings()
	if err != nil {
		return nil, err
	}
	for _, m := range stored {
		if m.Group == key || m.Group == ref {
			return &m, nil
		}
	}
	if len(groups) != 1 {
		return nil, nil
	}
	for _, m := range stored {
		ids, err := authz.GroupRef(tx, m.Group)
		if err != nil {
			return nil, err
		}
		if len(ids) == 1 && ids[0] == groups[0] {
			return &m, nil
		}
	}
	return nil, nil
}

// SetMapping maps a group to a role at runtime (audited as
// mapping.changed); it takes effect on the next request of every member.
// A group the config maps is refused with ErrPinnedByConfig.
func (s *Service) SetMapping(ctx context.Context, actor, group, role string) error {
	ref, err := checkRef(group)
	if err != nil {
		return err
	}
	if len(s.roles.Levels) == 0 {
		return fmt.Errorf("%w: the tenant has no roles to map groups to", ErrInvalid)
	}
	if role, err = s.role(role); err != nil {
		return err
	}
	return s.update(ctx, func(tx storage.Tx) error {
		t, err := authz.BuildRoleTable(tx, s.roles)
		if err != nil {
			return err
		}
		key, groups, err := mappingKey(tx, ref)
		if err != nil {
			return err
		}
		if t.PinnedByConfig(ref, groups) {
			return ErrPinnedByConfig
		}
		old, err := findStored(tx, key, ref, groups)
		if err != nil {
			return err
		}
		before := ""
		if old != nil {
			if old.Role == role {
				return nil
			}
			before = old.Group + "=" + old.Role
			if old.Group != key {
				if _, err := tx.DeleteMapping(old.Group); err != nil {
					return err
				}
			}
		}
		if err := tx.PutMapping(storage.Mapping{Group: key, Role: role, Modified: s.now().UTC()}); err != nil {
			return err
		}
		return tx.AppendEvent(storage.Event{Type: storage.EventMappingChanged, Actor: actor, ResourceType: "Mapping",
			ResourceID: key, Before: before, After: key + "=" + role, Reason: "group " + ref})
	})
}

// DeleteMapping removes a stored mapping (audited as mapping.changed): the
// group's members fall back to their other groups or the default on their
// next request. ErrPinnedByConfig for a group the config maps, ErrNotFound
// when no stored mapping speaks for the group.
func (s *Service) DeleteMapping(ctx context.Context, actor, group string) error {
	ref, err := checkRef(group)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx storage.Tx) error {
		t, err := authz.BuildRoleTable(tx, s.roles)
		if err != nil {
			return err
		}
		key, groups, err := mappingKey(tx, ref)
		if err != nil {
			return err
		}
		if t.PinnedByConfig(ref, groups) {
			return ErrPinnedByConfig
		}
		old, err := findStored(tx, key, ref, groups)
		if err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("%w: no stored mapping for group %q", ErrNotFound, ref)
		}
		if ok, err := tx.DeleteMapping(old.Group); err != nil {
			return err
		} else if !ok {
			return errors.New("operator: the stored mapping vanished")
		}
		return tx.AppendEvent(storage.Event{Type: storage.EventMappingChanged, Actor: actor, ResourceType: "Mapping",
			ResourceID: old.Group, Before: old.Group + "=" + old.Role, Reason: "group " + ref})
	})
}
