package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/storage"
)

// Where a user's role comes from (RoleReason.From).
const (
	RoleFromGroup   = "group"   // a mapped group granted it
	RoleFromDefault = "default" // in no mapped group: the default level
	RoleFromManual  = "manual"  // pinned by hand on a manual user
	RoleFromNone    = "none"    // require_mapped_group and no mapped group: refused
)

// Where a group mapping comes from (RoleReason.MappingFrom, GroupGrant.From).
const (
	MappingFromConfig = "config" // a map_group line
	MappingFromStored = "stored" // changed at runtime by an operator
)

// RoleReason is a user's role and why they have it.
type RoleReason struct {
	Role  string // "" when the tenant has no roles, or none applies
	Level int    // index in Roles.Levels, -1 when none
	From  string // RoleFrom*
	// For From == RoleFromGroup: the group that granted the role, and the
	// mapping that maps it (its reference and where it comes from).
	GroupID      string
	MappingGroup string
	MappingFrom  string
}

// GroupGrant is the level a group grants its members.
type GroupGrant struct {
	Level int    // index in Roles.Levels
	Role  string // Roles.Levels[Level]
	Ref   string // the mapping's group reference
	From  string // MappingFrom*
}

// RoleTable resolves roles for one snapshot of a tenant: the config
// mappings and the stored ones, each bound to the groups it names. A
// stored mapping is ignored for every group a config mapping names (the
// config wins), and entirely when its reference is, ignoring case, the
// reference of a config mapping. A table is built per store generation
// (mapping writes move it), so a changed mapping takes effect on the next
// request.
type RoleTable struct {
	roles *Roles
	// grants maps a group id to the highest level a mapping gives it.
	grants map[string]GroupGrant
	// configGroups are the ids of the groups a config mapping names.
	configGroups map[string]bool
	configRefs   map[string]bool // lower-cased config references
	stored       []storage.Mapping
}

// BuildRoleTable reads the stored mappings and binds every mapping to its
// groups in tx.
func BuildRoleTable(tx storage.ReadTx, roles Roles) (*RoleTable, error) {
	stored, err := tx.StoredMappings()
	if err != nil {
		return nil, fmt.Errorf("reading the stored group mappings: %w", err)
	}
	t := &RoleTable{roles: &roles, grants: map[string]GroupGrant{}, configGroups: map[string]bool{},
		configRefs: map[string]bool{}, stored: stored}
	for _, m := range roles.Mappings {
		t.configRefs[strings.ToLower(m.Group)] = true
		groups, err := GroupRef(tx, m.Group)
		if err != nil {
			return nil, err
		}
		lvl := roles.level(m.Role)
		for _, gid := range groups {
			t.configGroups[gid] = true
			t.grant(gid, GroupGrant{Level: lvl, Role: roles.Levels[lvl], Ref: m.Group, From: MappingFromConfig})
		}
	}
	for _, m := range stored {
		lvl := roles.level(m.Role)
		if lvl < 0 || t.configRefs[strings.ToLower(m.Group)] {
			continue // a role the config no longer has, or a group the config maps
		}
		groups, err := GroupRef(tx, m.Group)
		if err != nil {
			return nil, err
		}
		for _, gid := range groups {
			if t.configGroups[gid] {
				continue
			}
			t.grant(gid, GroupGrant{Level: lvl, Role: roles.Levels[lvl], Ref: m.Group, From: MappingFromStored})
		}
	}
	return t, nil
}

func (t *RoleTable) grant(gid string, g GroupGrant) {
	if g.Level < 0 {
		return
	}
	if old, ok := t.grants[gid]; !ok || g.Level > old.Level {
		t.grants[gid] = g
	}
}

// Grant is the level the group grants its members (ok false: unmapped).
func (t *RoleTable) Grant(groupID string) (GroupGrant, bool) {
	g, ok := t.grants[groupID]
	return g, ok
}

// Stored is the stored mappings the table was built from (do not modify).
func (t *RoleTable) Stored() []storage.Mapping { return t.stored }

// PinnedByConfig says whether a mapping of ref (bound to groupIDs) would
// be ignored because the config maps the same group: its reference is a
// config reference (ignoring case), or one of its groups is named by one.
func (t *RoleTable) PinnedByConfig(ref string, groupIDs []string) bool {
	if t.configRefs[strings.ToLower(ref)] {
		return true
	}
	for _, gid := range groupIDs {
		if t.configGroups[gid] {
			return true
		}
	}
	return false
}

// Resolve is the role of user, a direct member of groupIDs: a manual
// user's pinned role wins; else the highest level of their mapped groups
// (a config mapping before a stored one at the same level); else the
// default, or none under require_mapped_group.
func (t *RoleTable) Resolve(user *storage.User, groupIDs []string) RoleReason {
	r := t.roles
	if user != nil && user.Source == storage.SourceManual && user.Role != "" {
		if lvl := r.level(user.Role); lvl >= 0 {
			return RoleReason{Role: r.Levels[lvl], Level: lvl, From: RoleFromManual}
		}
		// A pinned role the config no longer has falls back to groups.
	}
	best, found := GroupGrant{Level: -1}, ""
	for _, gid := range groupIDs {
		g, ok := t.grants[gid]
		if !ok {
			continue
		}
		if g.Level > best.Level || (g.Level == best.Level && g.From == MappingFromConfig && best.From != MappingFromConfig) {
			best, found = g, gid
		}
	}
	if found != "" {
		return RoleReason{Role: best.Role, Level: best.Level, From: RoleFromGroup, GroupID: found,
			MappingGroup: best.Ref, MappingFrom: best.From}
	}
	if r.RequireMappedGroup {
		return RoleReason{Level: -1, From: RoleFromNone}
	}
	lvl := r.defaultLevel()
	if lvl < 0 {
		return RoleReason{Level: -1, From: RoleFromDefault}
	}
	return RoleReason{Role: r.Levels[lvl], Level: lvl, From: RoleFromDefault}
}

// ResolveUser reads the user's groups in tx and resolves their role.
func (t *RoleTable) ResolveUser(tx storage.ReadTx, user *storage.User) (RoleReason, error) {
	groupIDs, err := tx.GroupsOf(user.ID)
	if err != nil {
		return RoleReason{}, err
	}
	return t.Resolve(user, groupIDs), nil
}

// roleTableFor returns the table for gen, building it in tx when the
// cached one is for another generation. tx must have been opened after gen
// was read (as load does), so the table is never older than gen.
func (ids *Identities) roleTableFor(tx storage.ReadTx, gen uint64) (*RoleTable, error) {
	if c := ids.roleTable.Load(); c != nil && c.gen == gen {
		return c.table, nil
	}
	t, err := BuildRoleTable(tx, ids.roles)
	if err != nil {
		return nil, err
	}
	ids.roleTable.Store(&cachedRoleTable{gen: gen, table: t})
	return t, nil
}

type cachedRoleTable struct {
	gen   uint64
	table *RoleTable
}

// RoleIn is the role of user as of tx, with why (tx must be a snapshot
// of the tenant at its current generation or later).
func (ids *Identities) RoleIn(tx storage.ReadTx, user *storage.User) (RoleReason, error) {
	// The cached table is used when it is current; otherwise one is built
	// from tx and not cached, since tx may be older than the generation.
	t := (*RoleTable)(nil)
	if c := ids.roleTable.Load(); c != nil && c.gen == ids.store.Generation(ids.tenant) {
		t = c.table
	} else {
		var err error
		if t, err = BuildRoleTable(tx, ids.roles); err != nil {
			return RoleReason{}, err
		}
	}
	return t.ResolveUser(tx, user)
}

// RoleOf reads the user and says which role they have now and why.
// storage.ErrNotFound when there is no such user.
func (ids *Identities) RoleOf(ctx context.Context, userID string) (RoleReason, error) {
	var rr RoleReason
	err := ids.store.View(ctx, ids.tenant, func(tx storage.ReadTx) error {
		u, err := tx.GetUser(userID)
		if err != nil {
			return err
		}
		rr, err = ids.RoleIn(tx, u)
		return err
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return RoleReason{}, fmt.Errorf("resolving the role of user %s: %w", userID, err)
	}
	return rr, err
}
