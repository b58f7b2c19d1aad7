package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/storage"
)

// maxGroups bounds ListGroups (the scale is 1,000 groups).
const maxGroups = 10000

// ListGroups lists every group the tenant knows, in id order, with its
// member count and the level it grants.
func (s *Service) ListGroups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := s.view(ctx, func(tx storage.ReadTx, t *authz.RoleTable) error {
		out = out[:0]
		dflt := s.defaultRole() // the same for every unmapped group
		return tx.ScanGroups("", func(g *storage.Group) (bool, error) {
			v, err := groupView(tx, t, g, dflt)
			if err != nil {
				return false, err
			}
			out = append(out, v)
			return len(out) < maxGroups, nil
		})
	})
	return out, err
}

// groupView is g as the groups page shows it; dflt is s.defaultRole(),
// the level of a group no mapping names.
func groupView(tx storage.ReadTx, t *authz.RoleTable, g *storage.Group, dflt string) (Group, error) {
	n, err := tx.CountMembers(g.ID)
	if err != nil {
		return Group{}, err
	}
	v := Group{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID, Source: g.Source, Members: n}
	if v.Source == "" {
		v.Source = storage.SourceSCIM
	}
	if grant, ok := t.Grant(g.ID); ok {
		v.Level, v.LevelFrom = grant.Role, grant.From
	} else {
		v.Level, v.LevelFrom = dflt, "default"
	}
	return v, nil
}

// defaultRole is the level of a user in no mapped group ("" when the
// tenant has no roles or requires a mapped group).
func (s *Service) defaultRole() string {
	if len(s.roles.Levels) == 0 || s.roles.RequireMappedGroup {
		return ""
	}
	if s.roles.Default == "" {
		return s.roles.Levels[0]
	}
	r, _ := s.role(s.roles.Default)
	return r
}

// DeclareGroup declares a group by the value its members' sign-in claims
// will carry, so it can be mapped before anyone arrives (tenants whose
// groups come in SAML/OIDC claims). The group's source is manual; the
// first sign-in naming it joins it (sso matches claim groups by
// displayName).
func (s *Service) DeclareGroup(ctx context.Context, actor, claimValue string) (*Group, error) {
	claimValue = strings.TrimSpace(claimValue)
	if !validName(claimValue) {
		return nil, fmt.Errorf("%w: the group's claim value is required (1 to %d characters, no control characters)", ErrInvalid, maxUserNameLen)
	}
	now := s.now().UTC()
	g := &storage.Group{ID: storage.NewID(), DisplayName: claimValue, Source: storage.SourceManual, Created: now, Modified: now}
	err := s.update(ctx, func(tx storage.Tx) error {
		same, err := tx.GroupsByDisplayName(claimValue)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if len(same) > 0 {
			return fmt.Errorf("%w: a group named %q already exists (%s)", ErrConflict, claimValue, same[0].ID)
		}
		rec := *g
		if err := tx.PutGroup(&rec); err != nil {
			return err
		}
		return tx.AppendEvent(storage.Event{Type: storage.EventGroupDeclared, Actor: actor, ResourceType: "Group",
			ResourceID: g.ID, After: claimValue})
	})
	if err != nil {
		return nil, err
	}
	var out *Group
	err = s.view(ctx, func(tx storage.ReadTx, t *authz.RoleTable) error {
		stored, err := tx.GetGroup(g.ID)
		if err != nil {
			return err
		}
		v, err := groupView(tx, t, stored, s.defaultRole())
		out = &v
		return err
	})
	return out, err
}
