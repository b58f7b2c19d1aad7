package operator

import (
	"strings"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/storage"
)

// RoutePolicy is one route the tenant's identity handlers guard, with its
// policy, as the config declares it (Config.Routes).
type RoutePolicy struct {
	// Route names the route (its `route` option, else its policy).
	Route  string
	Policy authz.Policy
}

// RouteAccess says whether a user gets through one route.
type RouteAccess struct {
	Route   string `json:"route"`
	Policy  string `json:"policy"` // e.g. "require editor; allow_groups ops"
	Allowed bool   `json:"allowed"`
	// Why says what decides it, e.g. "role viewer is below editor".
	Why string `json:"why,omitempty"`
}

// routeAccess applies every configured route's policy to a user as the
// gate does: public routes let anyone in; any other needs an active user
// with a role (not refused by require_mapped_group), at least the required
// level, and direct membership in one of allow_groups (named as in
// map_group) when set.
func (s *Service) routeAccess(tx storage.ReadTx, u *storage.User, groupIDs []string, rr authz.RoleReason) ([]RouteAccess, error) {
	if s.routes == nil {
		return nil, nil
	}
	member := make(map[string]bool, len(groupIDs))
	for _, g := range groupIDs {
		member[g] = true
	}
	refs := map[string]bool{} // allow_groups reference → the user is in a group it names
	out := []RouteAccess{}
	for _, rp := range s.routes() {
		a := RouteAccess{Route: rp.Route, Policy: rp.Policy.String(), Allowed: true}
		p := rp.Policy
		switch {
		case p.Public:
			a.Why = "public route"
		case !u.Active:
			a.Allowed, a.Why = false, "the user is deactivated"
		case rr.From == authz.RoleFromNone:
			a.Allowed, a.Why = false, "in no mapped group (require_mapped_group)"
		}
		if a.Allowed && !p.Public && p.Require != "" {
			need := s.level(p.Require)
			if rr.Level < need || need < 0 {
				a.Allowed, a.Why = false, "role "+orNone(rr.Role)+" is below "+p.Require
			} else {
				a.Why = "role " + rr.Role + " is at least " + p.Require
			}
		}
		if a.Allowed && !p.Public && len(p.AllowGroups) > 0 {
			in := ""
			for _, ref := range p.AllowGroups {
				ok, seen := refs[ref]
				if !seen {
					ids, err := authz.GroupRef(tx, ref)
					if err != nil {
						return nil, err
					}
					for _, id := range ids {
						ok = ok || member[id]
					}
					refs[ref] = ok
				}
				if ok {
					in = ref
					break
				}
			}
			if in == "" {
				a.Allowed, a.Why = false, "in none of "+strings.Join(p.AllowGroups, ", ")
			} else {
				a.Why = strings.TrimPrefix(a.Why+"; member of "+in, "; ")
			}
		}
		if a.Allowed && a.Why == "" {
			a.Why = "any signed-in user"
		}
		out = append(out, a)
	}
	return out, nil
}

// level is the index of role in the tenant's levels (case-insensitive), -1
// when it is not one.
func (s *Service) level(role string) int {
	for i, l := range s.roles.Levels {
		if strings.EqualFold(l, role) {
			return i
		}
	}
	return -1
}

func orNone(role string) string {
	if role == "" {
		return "(none)"
	}
	return role
}
