package authz

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/portcullis/portcullis/storage"
)

// Roles is one tenant's permission model: ordered levels, the IdP groups
// that grant them, and what a user in no mapped group gets.
type Roles struct {
	// Levels are the role names, lowest first (e.g. viewer, editor,
	// admin). Empty: the tenant has no roles; users are only
	// authenticated, and the role header is not sent.
	Levels []string
	// Mappings grant a level to the members of a group.
	Mappings []GroupMapping
	// Default is the level of a user in no mapped group; "" means the
	// lowest level.
	Default string
	// RequireMappedGroup refuses users in no mapped group instead of
	// giving them Default: the IdP taking a user out of every mapped group
	// means they lose access. See the package doc for what the gateway
	// does to such a user.
	RequireMappedGroup bool
}

// GroupMapping is one `map_group "<group>" <role>` line.
type GroupMapping struct {
	// Group names the IdP group by id, externalId or displayName; see
	// GroupRef for how it is matched.
	Group string
	// Role is one of Roles.Levels (matched case-insensitively).
	Role string
}

// Validate checks the model and says what is wrong in words an admin can
// act on.
func (r *Roles) Validate() error {
	var errs []error
	seen := make(map[string]bool, len(r.Levels))
	for _, l := range r.Levels {
		if err := validRoleName(l); err != nil {
			errs = append(errs, err)
			continue
		}
		k := strings.ToLower(l)
		if seen[k] {
			errs = append(errs, fmt.Errorf("role %q is listed twice", l))
		}
		seen[k] = true
	}
	if r.Default != "" && r.level(r.Default) < 0 {
		errs = append(errs, fmt.Errorf("default role %q is not one of the roles %v", r.Default, r.Levels))
	}
	if len(r.Levels) == 0 && len(r.Mappings) > 0 {
		errs = append(errs, errors.New("map_group needs roles to be declared"))
	}
	if len(r.Levels) == 0 && r.RequireMappedGroup {
		errs = append(errs, errors.New("require_mapped_group needs roles and map_group lines"))
	}
	if r.RequireMappedGroup && len(r.Mappings) == 0 {
		errs = append(errs, errors.New("require_mapped_group without any map_group would refuse everyone"))
	}
	for _, m := range r.Mappings {
		if strings.TrimSpace(m.Group) == "" {
			errs = append(errs, errors.New("map_group has an empty group name"))
		}
		if r.level(m.Role) < 0 {
			errs = append(errs, fmt.Errorf("map_group %q: role %q is not one of the roles %v", m.Group, m.Role, r.Levels))
		}
	}
	return errors.Join(errs...)
}

// validRoleName keeps role names safe to put in a header and a page: printable
// ASCII without spaces or commas.
func validRoleName(name string) error {
	if name == "" {
		return errors.New("a role name is empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7F || c == ',' || c == '"' || c == '\\' {
			return fmt.Errorf("role %q: role names are printable ASCII without spaces, commas, quotes or backslashes", name)
		}
	}
	return nil
}

// level returns the index of role in Levels (case-insensitive), or -1.
func (r *Roles) level(role string) int {
	for i, l := range r.Levels {
		if strings.EqualFold(l, role) {
			return i
		}
	}
	return -1
}

// defaultLevel is the level of a user in no mapped group (-1: no roles).
func (r *Roles) defaultLevel() int {
	if len(r.Levels) == 0 {
		return -1
	}
	if r.Default == "" {
		return 0
	}
	return r.level(r.Default)
}

// GroupRef resolves a group reference from the configuration to the groups
// it names in the tenant. A reference binds, in this order, to:
//  1. the group whose id is the reference (ids are compared as given and
//     lower-cased, since store ids are lower-case UUIDs an admin may paste
//     in upper case);
//  2. otherwise the groups whose externalId is exactly the reference;
//  3. otherwise the groups whose displayName equals it, ignoring case
//     (display names are not unique, so this may be several groups).
//
// Binding by id or externalId first means a mapping written against either
// survives a rename in the IdP, and a display name that happens to equal
// another group's externalId never captures the mapping.
func GroupRef(tx storage.ReadTx, ref string) ([]string, error) {
	for _, id := range uniqueStrings(ref, strings.ToLower(ref)) {
		g, err := tx.GetGroup(id)
		if err == nil {
			return []string{g.ID}, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	byExternal, err := tx.GroupsByExternalID(ref)
	if err != nil {
		return nil, err
	}
	if len(byExternal) > 0 {
		return groupIDs(byExternal), nil
	}
	byName, err := tx.GroupsByDisplayName(ref)
	if err != nil {
		return nil, err
	}
	return groupIDs(byName), nil
}

func uniqueStrings(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

func groupIDs(gs []*storage.Group) []string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	sort.Strings(ids)
	return ids
}
