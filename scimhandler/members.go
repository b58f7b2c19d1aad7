package scimhandler

import (
	"errors"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/portcullis/portcullis/storage"
)

// maxMemberChanges bounds the membership changes of one request, which all
// go into one transaction with their audit events.
const maxMemberChanges = 10000

// memberEdit collects the membership changes of one group within a
// transaction. Changes are applied at the end with AddMember/RemoveMember,
// so adding one member to a group of 10,000 touches one membership record,
// and re-adding a present member (JumpCloud does) changes nothing.
type memberEdit struct {
	tx      storage.Tx
	groupID string
	want    map[string]*storage.Member // id → wanted member; nil: removed
	order   []string
}

func newMemberEdit(tx storage.Tx, groupID string) *memberEdit {
	return &memberEdit{tx: tx, groupID: groupID, want: map[string]*storage.Member{}}
}

func (e *memberEdit) set(id string, m *storage.Member) error {
	if _, seen := e.want[id]; !seen {
		if len(e.order) >= maxMemberChanges {
			return errBadRequest(scimTypeTooMany, "at most %d membership changes are accepted per request", maxMemberChanges)
		}
		e.order = append(e.order, id)
	}
	e.want[id] = m
	return nil
}

func (e *memberEdit) add(m storage.Member) error { return e.set(m.ID, &m) }
func (e *memberEdit) remove(id string) error     { return e.set(id, nil) }

// clear removes every member, current or added so far.
func (e *memberEdit) clear() error {
	for id := range e.want {
		e.want[id] = nil
	}
	return e.tx.Members(e.groupID, func(m storage.Member) (bool, error) {
		return true, e.remove(m.ID)
	})
}

// current lists the members as they stand with the edits so far.
func (e *memberEdit) current() ([]storage.Member, error) {
	var out []storage.Member
	err := e.tx.Members(e.groupID, func(m storage.Member) (bool, error) {
		if _, edited := e.want[m.ID]; !edited {
			out = append(out, m)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range e.order {
		if m := e.want[id]; m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

// commit applies the edits and lists what actually changed.
func (e *memberEdit) commit() (added, removed []storage.Member, err error) {
	for _, id := range e.order {
		if m := e.want[id]; m != nil {
			ok, err := e.tx.AddMember(e.groupID, *m)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				added = append(added, *m)
			}
			continue
		}
		ok, err := e.tx.RemoveMember(e.groupID, id)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			removed = append(removed, storage.Member{ID: id})
		}
	}
	return added, removed, nil
}

// resolveMember checks a members[] element and finds whether its value
// is a user or a group of the tenant.
func resolveMember(tx storage.ReadTx, groupID string, v any) (storage.Member, error) {
	var id string
	switch t := v.(type) {
	case string:
		id = t // a bare id
	case map[string]any:
		_, idv, _ := getField(t, "value")
		var isStr bool
		if id, isStr = idv.(string); !isStr && idv != nil {
			return storage.Member{}, errInvalidValue("members.value must be a string (the id of a User or Group), not %s", jsonTypeName(idv))
		}
	default:
		return storage.Member{}, errInvalidValue("each member must be an object whose value is the id of a User or Group, not %s", jsonTypeName(v))
	}
	id = strings.TrimSpace(id)
	if id == "" {
		return storage.Member{}, errInvalidValue("each member needs a value: the id of a User or Group")
	}
	if len(id) > maxIDLength {
		return storage.Member{}, errInvalidValue("member value is longer than %d bytes", maxIDLength)
	}
	if id == groupID {
		return storage.Member{}, errInvalidValue("a group cannot be a member of itself")
	}
	_, err := tx.GetUser(id)
	if err == nil {
		return storage.Member{ID: id, Type: storage.MemberUser}, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return storage.Member{}, err
	}
	_, err = tx.GetGroup(id)
	if err == nil {
		return storage.Member{ID: id, Type: storage.MemberGroup}, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return storage.Member{}, err
	}
	return storage.Member{}, errInvalidValue("member %q is neither a User nor a Group of this tenant", truncate(id, 64))
}

// memberID reads the id of a members[] element given to remove.
func memberID(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case map[string]any:
		_, idv, _ := getField(t, "value")
		s, _ := idv.(string)
		return strings.TrimSpace(s)
	}
	return ""
}

func (e *memberEdit) addAll(value any) error {
	for _, v := range asList(value) {
		m, err := resolveMember(e.tx, e.groupID, v)
		if err != nil {
			return err
		}
		if err := e.add(m); err != nil {
			return err
		}
	}
	return nil
}

// applyMemberOp applies one PATCH operation on "members".
func (e *memberEdit) applyMemberOp(op patchOp, t patchTarget, base string) error {
	if t.ref.sub != "" {
		return errInvalidPath("members' sub-attributes cannot be changed: add or remove members instead")
	}
	if t.filter == nil {
		switch op.op {
		case opAdd:
			return e.addAll(op.value)
		case opReplace:
			if err := e.clear(); err != nil {
				return err
			}
			return e.addAll(op.value)
		default: // remove: all members, or only those in the value (Entra ID)
			if op.value == nil {
				return e.clear()
			}
			for _, v := range asList(op.value) {
				if id := memberID(v); id != "" {
					if err := e.remove(id); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	// members[value eq "id"] (Okta, Entra ID) needs no scan.
	ids, direct := memberIDsOf(t.filterExpr)
	if !direct {
		current, err := e.current()
		if err != nil {
			return err
		}
		for _, m := range current {
			el, err := renderMember(e.tx, m, base, true, nil)
			if err != nil {
				return err
			}
			if t.filter.match(el) {
				ids = append(ids, m.ID)
			}
		}
	}
	if op.op == opRemove || op.op == opReplace {
		for _, id := range ids {
			if err := e.remove(id); err != nil {
				return err
			}
		}
	}
	if op.op == opRemove || op.value == nil {
		return nil
	}
	return e.addAll(op.value)
}

// memberIDsOf recognises `value eq "a"` and `value eq "a" or value eq "b"`.
func memberIDsOf(expr filter.Expression) ([]string, bool) {
	switch x := expr.(type) {
	case *filter.AttributeExpression:
		s, ok := x.CompareValue.(string)
		if ok && strings.EqualFold(x.AttributePath.AttributeName, "value") && x.AttributePath.URIPrefix == nil &&
			x.AttributePath.SubAttribute == nil && strings.EqualFold(string(x.Operator), string(filter.EQ)) {
			return []string{unescapeFilterString(s)}, true
		}
	case *filter.LogicalExpression:
		if strings.EqualFold(string(x.Operator), string(filter.OR)) {
			l, okL := memberIDsOf(x.Left)
			r, okR := memberIDsOf(x.Right)
			if okL && okR {
				return append(l, r...), true
			}
		}
	}
	return nil, false
}

// recordMemberChanges writes one audit event per membership change.
func recordMemberChanges(tx storage.Tx, actor, groupID string, added, removed []storage.Member) error {
	for _, m := range added {
		if err := tx.AppendEvent(storage.Event{Type: storage.EventMemberAdded, Actor: actor,
			ResourceType: "Group", ResourceID: groupID, After: memberSummary(m)}); err != nil {
			return err
		}
	}
	for _, m := range removed {
		if err := tx.AppendEvent(storage.Event{Type: storage.EventMemberRemoved, Actor: actor,
			ResourceType: "Group", ResourceID: groupID, Before: "member=" + m.ID}); err != nil {
			return err
		}
	}
	return nil
}
