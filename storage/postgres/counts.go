package postgres

import (
	"encoding/json"
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

// GroupsOfEach reads the members' groups, records included, in one query
// (memberships_member, then the groups' primary key).
func (t *tx) GroupsOfEach(memberIDs []string) (map[string][]*storage.Group, error) {
	out := make(map[string][]*storage.Group)
	ids := make([]string, 0, len(memberIDs))
	for _, id := range memberIDs {
		if validID(id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, `SELECT m.member_id, g.doc FROM memberships m
		JOIN groups g ON g.tenant = m.tenant AND g.id = m.group_id
		WHERE m.tenant = $1 AND m.member_id = ANY($2) ORDER BY m.member_id, m.group_id`, t.tenant, ids)
	if err != nil {
		return nil, t.fail(err)
	}
	defer rows.Close()
	records := make(map[string]*storage.Group)
	for rows.Next() {
		var member string
		var doc []byte
		if err := rows.Scan(&member, &doc); err != nil {
			return nil, t.fail(err)
		}
		g := new(storage.Group)
		if err := json.Unmarshal(doc, g); err != nil {
			return nil, fmt.Errorf("postgres: a stored record does not decode: %w", err)
		}
		if shared, ok := records[g.ID]; ok {
			g = shared
		} else {
			records[g.ID] = g
		}
		out[member] = append(out[member], g)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}
