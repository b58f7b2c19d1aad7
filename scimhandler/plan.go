package scimhandler

import (
	"errors"
	"sort"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/portcullis/portcullis/storage"
)

// Query planning: a filter that pins a resource through an indexed
// attribute (userName eq, id eq, externalId eq, emails eq, displayName eq
// for groups, membership) is answered from the store's indexes, and the
// whole filter is then evaluated on those candidates only. Every other
// filter scans the tenant.

// lookupKind names an index read.
type lookupKind int

const (
	lookupID          lookupKind = iota // GetUser / GetGroup
	lookupUserName                      // UserByUserName
	lookupExternalID                    // UsersByExternalID / GroupsByExternalID
	lookupEmail                         // UsersByEmail
	lookupDisplayName                   // GroupsByDisplayName
	lookupInGroup                       // users that are members of a group
	lookupHasMember                     // groups that have a member
)

// indexLookup is one index read whose results hold every resource a filter
// term can match.
type indexLookup struct {
	kind  lookupKind
	value string
}

// planLookups returns lookups whose union holds every resource of rt that
// node can match, or ok=false when the filter needs a scan.
func planLookups(rt *resourceType, node filterNode) (lookups []indexLookup, ok bool) {
	switch n := node.(type) {
	case *andNode:
		l, okL := planLookups(rt, n.l)
		r, okR := planLookups(rt, n.r)
		switch {
		case okL && okR:
			if lookupCost(r) < lookupCost(l) {
				return r, true
			}
			return l, true
		case okL:
			return l, true
		case okR:
			return r, true
		}
	case *orNode:
		l, okL := planLookups(rt, n.l)
		r, okR := planLookups(rt, n.r)
		if okL && okR {
			return append(l, r...), true
		}
	case *compareNode:
		// The store does not index empty values (an email element with
		// "value":"" is kept in the document but has no index entry), so
		// eq "" is answered by a scan.
		if n.op != filter.EQ || n.isNull || n.isBool || n.isNum || n.ref.container != "" || n.raw == "" {
			return nil, false
		}
		if k, ok := indexFor(rt, n.ref.name, n.ref.sub, n.viaValue); ok {
			return []indexLookup{{k, n.raw}}, true
		}
	case *valuePathNode:
		if n.ref.container != "" {
			return nil, false
		}
		if v, ok := valueEq(n.inner); ok && v != "" {
			if k, ok := indexFor(rt, n.ref.name, "value", false); ok {
				return []indexLookup{{k, v}}, true
			}
		}
	}
	return nil, false
}

// indexFor maps an attribute compared with eq to the index serving it.
func indexFor(rt *resourceType, name, sub string, viaValue bool) (lookupKind, bool) {
	if viaValue {
		sub = "value"
	}
	name, sub = strings.ToLower(name), strings.ToLower(sub)
	switch {
	case name == "id" && sub == "":
		return lookupID, true
	case name == "externalid" && sub == "":
		return lookupExternalID, true
	case rt == userResource && name == "username" && sub == "":
		return lookupUserName, true
	case rt == userResource && name == "emails" && sub == "value":
		return lookupEmail, true
	case rt == userResource && name == "groups" && sub == "value":
		return lookupInGroup, true
	case rt == groupResource && name == "displayname" && sub == "":
		return lookupDisplayName, true
	case rt == groupResource && name == "members" && sub == "value":
		return lookupHasMember, true
	}
	return 0, false
}

// valueEq finds `value eq "x"` in a value path's filter (alone or and-ed).
func valueEq(node filterNode) (string, bool) {
	switch n := node.(type) {
	case *compareNode:
		if n.op == filter.EQ && !n.isNull && !n.isBool && !n.isNum && strings.EqualFold(n.ref.name, "value") {
			return n.raw, true
		}
	case *andNode:
		if v, ok := valueEq(n.l); ok {
			return v, true
		}
		return valueEq(n.r)
	}
	return "", false
}

// lookupCost ranks plans: unique indexes first, then fewer reads.
func lookupCost(ls []indexLookup) int {
	cost := 0
	for _, l := range ls {
		switch l.kind {
		case lookupID, lookupUserName:
			cost++
		case lookupExternalID, lookupEmail, lookupDisplayName:
			cost += 4
		default:
			cost += 16
		}
	}
	return cost
}

// lookupRecords runs lookups and returns the distinct records in id order.
func lookupRecords(tx storage.ReadTx, rt *resourceType, lookups []indexLookup) ([]record, error) {
	found := map[string]record{}
	addUser := func(u *storage.User) { found[u.ID] = record{id: u.ID, user: u} }
	addGroup := func(g *storage.Group) { found[g.ID] = record{id: g.ID, group: g} }
	for _, l := range lookups {
		if len(l.value) > maxIndexedLength {
			continue // nothing longer is ever stored
		}
		var err error
		if rt == userResource {
			switch l.kind {
			case lookupID:
				var u *storage.User
				if u, err = tx.GetUser(l.value); err == nil {
					addUser(u)
				}
			case lookupUserName:
				var u *storage.User
				if u, err = tx.UserByUserName(l.value); err == nil {
					addUser(u)
				}
			case lookupExternalID, lookupEmail:
				var us []*storage.User
				if l.kind == lookupExternalID {
					us, err = tx.UsersByExternalID(l.value)
				} else {
					us, err = tx.UsersByEmail(l.value)
				}
				for _, u := range us {
					addUser(u)
				}
			case lookupInGroup:
				err = tx.Members(l.value, func(m storage.Member) (bool, error) {
					if m.Type == storage.MemberGroup {
						return true, nil
					}
					u, err := tx.GetUser(m.ID)
					if err == nil {
						addUser(u)
					} else if !errors.Is(err, storage.ErrNotFound) {
						return false, err
					}
					return true, nil
				})
			}
		} else {
			switch l.kind {
			case lookupID:
				var g *storage.Group
				if g, err = tx.GetGroup(l.value); err == nil {
					addGroup(g)
				}
			case lookupDisplayName, lookupExternalID:
				var gs []*storage.Group
				if l.kind == lookupDisplayName {
					gs, err = tx.GroupsByDisplayName(l.value)
				} else {
					gs, err = tx.GroupsByExternalID(l.value)
				}
				for _, g := range gs {
					addGroup(g)
				}
			case lookupHasMember:
				var ids []string
				if ids, err = tx.GroupsOf(l.value); err == nil {
					for _, id := range ids {
						g, gerr := tx.GetGroup(id)
						if gerr == nil {
							addGroup(g)
						} else if !errors.Is(gerr, storage.ErrNotFound) {
							err = gerr
							break
						}
					}
				}
			}
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	out := make([]record, 0, len(found))
	for _, r := range found {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}
