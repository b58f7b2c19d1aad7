package postgres

import (
	"fmt"

	"github.com/portcullis/portcullis/storage"
)

// membersPage is how many members Members reads per query.
const membersPage = 1000

func (t *tx) Members(groupID string, fn func(storage.Member) (bool, error)) error {
	if !validID(groupID) {
		return nil
	}
	after := ""
	for {
		if t.failed != nil {
			return t.failed
		}
		rows, err := t.tx.Query(t.ctx, `SELECT member_id, member_type FROM memberships
			WHERE tenant = $1 AND group_id = $2 AND member_id > $3 ORDER BY member_id LIMIT $4`,
			t.tenant, groupID, after, membersPage)
		if err != nil {
			return t.fail(err)
		}
		var page []storage.Member
		for rows.Next() {
			var m storage.Member
			if err := rows.Scan(&m.ID, &m.Type); err != nil {
				rows.Close()
				return t.fail(err)
			}
			page = append(page, m)
		}
		if err := rows.Err(); err != nil {
			return t.fail(err)
		}
		for _, m := range page {
			if more, err := fn(m); err != nil || !more {
				return err
			}
		}
		if len(page) < membersPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

func (t *tx) IsMember(groupID, memberID string) (bool, error) {
	if !validID(groupID) || !validID(memberID) {
		return false, nil
	}
	var ok bool
	_, err := t.scanOne(`SELECT EXISTS (SELECT 1 FROM memberships WHERE tenant = $1 AND group_id = $2 AND member_id = $3)`,
		[]any{t.tenant, groupID, memberID}, &ok)
	return ok, err
}

func (t *tx) CountMembers(groupID string) (int, error) {
	if !validID(groupID) {
		return 0, nil
	}
	var n int
	_, err := t.scanOne(`SELECT count(*) FROM memberships WHERE tenant = $1 AND group_id = $2`,
		[]any{t.tenant, groupID}, &n)
	return n, err
}

func (t *tx) GroupsOf(memberID string) ([]string, error) {
	if !validID(memberID) {
		return nil, nil
	}
	return t.strs(`SELECT group_id FROM memberships WHERE tenant = $1 AND member_id = $2 ORDER BY group_id`,
		t.tenant, memberID)
}

// addMemberSQL adds a membership if the group exists, and also reads the
// member's record: under SERIALIZABLE that read makes a concurrent
// DeleteUser or DeleteGroup of the member conflict with this transaction
// (one of them retries) instead of leaving a membership of a member
// deleted meanwhile. The member itself need not exist.
const addMemberSQL = `WITH g AS (SELECT 1 FROM groups WHERE tenant = $1 AND id = $2),
	m AS (SELECT 1 FROM %s WHERE tenant = $1 AND id = $3),
	ins AS (INSERT INTO memberships (tenant, group_id, member_id, member_type)
		SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM g)
		ON CONFLICT DO NOTHING RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM g), EXISTS (SELECT 1 FROM m), EXISTS (SELECT 1 FROM ins)`

var (
	addUserMemberSQL  = fmt.Sprintf(addMemberSQL, "users")
	addGroupMemberSQL = fmt.Sprintf(addMemberSQL, "groups")
)

// AddMember requires the group to exist (storage.ErrNotFound otherwise).
func (t *tx) AddMember(groupID string, m storage.Member) (bool, error) {
	if err := t.write(); err != nil {
		return false, err
	}
	if !validID(groupID) {
		return false, storage.ErrNotFound
	}
	if !validID(m.ID) {
		return false, fmt.Errorf("postgres: member id must be 1 to %d bytes of UTF-8 text", maxIDLen)
	}
	q := addUserMemberSQL
	switch m.Type {
	case "", storage.MemberUser:
		m.Type = storage.MemberUser
	case storage.MemberGroup:
		q = addGroupMemberSQL
	default:
		return false, fmt.Errorf("postgres: member type %q is neither %q nor %q", m.Type, storage.MemberUser, storage.MemberGroup)
	}
	var groupExists, memberExists, added bool
	if _, err := t.scanOne(q, []any{t.tenant, groupID, m.ID, m.Type}, &groupExists, &memberExists, &added); err != nil {
		return false, err
	}
	if !groupExists {
		return false, storage.ErrNotFound
	}
	if added {
		t.observed = true
	}
	return added, nil
}

func (t *tx) RemoveMember(groupID, memberID string) (bool, error) {
	if err := t.write(); err != nil {
		return false, err
	}
	if !validID(groupID) || !validID(memberID) {
		return false, nil
	}
	tag, err := t.exec(`DELETE FROM memberships WHERE tenant = $1 AND group_id = $2 AND member_id = $3`,
		t.tenant, groupID, memberID)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	t.observed = true
	return true, nil
}
