package postgres

import (
	"fmt"

	"github.com/portcullis/portcullis/storage"
)

// CountUsers sums the tenant's id-bucket counts (migration 0003), a few
// hundred rows where count(*) would step over every user.
func (t *tx) CountUsers() (int, error) { return t.countRecords("u") }

// CountGroups is CountUsers for groups.
func (t *tx) CountGroups() (int, error) { return t.countRecords("g") }

func (t *tx) countRecords(kind string) (int, error) {
	var n int64
	_, err := t.scanOne(`SELECT coalesce(sum(n), 0)::bigint FROM record_counts WHERE tenant = $1 AND kind = $2::"char"`,
		[]any{t.tenant, kind}, &n)
	return int(n), err
}

// UserIDAt finds the id at position from the tenant's id-bucket counts
// (migration 0003): the running sum of the buckets names the one holding
// the position, and an index-only OFFSET within that bucket the id, so a
// deep page steps over one bucket's index entries, not position of them.
func (t *tx) UserIDAt(position int) (string, error) { return t.idAt("users", "u", position) }

// GroupIDAt is UserIDAt for groups.
func (t *tx) GroupIDAt(position int) (string, error) { return t.idAt("groups", "g", position) }

// idAt reads the id at position of the tenant's table (a constant: users
// or groups, counted under kind), in id order.
func (t *tx) idAt(table, kind string, position int) (string, error) {
	if position < 0 {
		return "", storage.ErrNotFound
	}
	var id string
	found, err := t.scanOne(`WITH b AS (
			SELECT bucket, n, (sum(n) OVER (ORDER BY bucket))::bigint AS upto
			FROM record_counts WHERE tenant = $1 AND kind = $2::"char"),
		pick AS (SELECT bucket, $3::bigint - (upto - n) AS skip FROM b WHERE upto > $3::bigint ORDER BY bucket LIMIT 1)
		SELECT r.id FROM pick, LATERAL (
			SELECT id FROM `+table+` WHERE tenant = $1 AND id >= pick.bucket ORDER BY id OFFSET pick.skip LIMIT 1) r`,
		[]any{t.tenant, kind, int64(position)}, &id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", storage.ErrNotFound
	}
	return id, nil
}

// GroupsOfEach reads the members' groups in one query
// (memberships_member). A page of 100 users has a few hundred rows: the
// ids are read from pgx's buffer without a string each, the members' as
// the caller's own strings and the groups' once per distinct group, and
// every member's list is a window of one slice (groupsByMember), so the
// allocations do not grow with the rows.
func (t *tx) GroupsOfEach(memberIDs []string) (map[string][]string, error) {
	ids := validIDs(memberIDs)
	if len(ids) == 0 {
		return map[string][]string{}, nil
	}
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, `SELECT member_id, group_id FROM memberships
		WHERE tenant = $1 AND member_id = ANY($2)`, t.tenant, ids)
	if err != nil {
		return nil, t.fail(err)
	}
	defer rows.Close()
	members := make(map[string]string, len(ids))
	for _, id := range ids {
		members[id] = id
	}
	groups := make(map[string]string)
	in := make([]membership, 0, 2*len(ids)) // most users are in a few groups
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 2 {
			return nil, t.fail(fmt.Errorf("postgres: memberships row of %d columns", len(raw)))
		}
		m, ok := members[string(raw[0])]
		if !ok {
			return nil, t.fail(fmt.Errorf("postgres: memberships row of a member not asked for"))
		}
		in = append(in, membership{m, intern(groups, raw[1])})
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	return groupsByMember(in), nil
}

// GetGroups reads the groups in one query.
func (t *tx) GetGroups(ids []string) (map[string]*storage.Group, error) {
	out := make(map[string]*storage.Group, len(ids))
	valid := validIDs(ids)
	if len(valid) == 0 {
		return out, nil
	}
	gs, err := docs[storage.Group](t, `SELECT doc FROM groups WHERE tenant = $1 AND id = ANY($2)`, t.tenant, valid)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// validIDs is ids without those no record can have.
func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if validID(id) {
			out = append(out, id)
		}
	}
	return out
}
