package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portcullis/portcullis/storage"
)

// userPageSQL reads a page of users and their groups in one statement.
// The page's users are consecutive in id order, so their memberships are
// one range of memberships_member, (after, last id of the page], read in
// one index walk; GroupsOfEach's member_id = ANY(ids) descends the index
// once per user, which made it the slowest part of a SCIM page (~550 of
// ~1,300 µs in BenchmarkUserPage). The range also holds the memberships
// of groups and of members never created whose ids fall in it: the join
// with the page leaves those out in the server (a tenant of many nested
// groups would otherwise send thousands of rows to drop). The rows are the users (id, doc) and then the
// memberships (member id, group id) as they come: grouping them into
// arrays (array_agg, and the sort a join then needs) cost PostgreSQL more
// than the round trip it saves, and UserPage orders both itself.
const userPageSQL = `WITH page AS MATERIALIZED (
		SELECT id, doc FROM users WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3)
	SELECT id, doc, NULL::text FROM page
	UNION ALL
	SELECT m.member_id, NULL::json, m.group_id FROM memberships m JOIN page p ON p.id = m.member_id
	WHERE m.tenant = $1 AND m.member_id > $2 AND m.member_id <= (SELECT max(id) FROM page)`

// UserPage reads the users and their groups with userPageSQL.
func (t *tx) UserPage(after string, limit int) ([]*storage.User, map[string][]string, error) {
	if limit <= 0 {
		return nil, map[string][]string{}, nil
	}
	if !validText(after) {
		return nil, nil, errors.New("postgres: scan cursor is not UTF-8 text")
	}
	if t.failed != nil {
		return nil, nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, userPageSQL, t.tenant, after, limit)
	if err != nil {
		return nil, nil, t.fail(err)
	}
	defer rows.Close()
	users := make([]*storage.User, 0, min(limit, scanMaxPage))
	members := make(map[string]string, min(limit, scanMaxPage)) // the page's user ids
	interned := make(map[string]string)                         // each id made a string once
	var in []membership
	for rows.Next() {
		fds, raw := rows.FieldDescriptions(), rows.RawValues()
		if len(raw) != 3 || raw[0] == nil || fds[1].DataTypeOID != pgtype.JSONOID {
			return nil, nil, t.fail(errors.New("postgres: a user page row is not a user or a membership"))
		}
		if raw[1] != nil { // a user
			u := new(storage.User)
			if err := storage.DecodeUser(raw[1], u); err != nil {
				return nil, nil, t.fail(fmt.Errorf("postgres: a stored record does not decode: %w", err))
			}
			users = append(users, u)
			members[u.ID] = u.ID
			continue
		}
		// A membership, perhaps of a group or a member never created.
		if raw[2] == nil {
			return nil, nil, t.fail(errors.New("postgres: a user page row is not a user or a membership"))
		}
		// The member is a user of the page (the join), already read
		// unless the server interleaved the union's parts (nothing
		// promises their order; a parallel plan interleaves).
		member, ok := members[string(raw[0])]
		if !ok {
			member = intern(interned, raw[0])
		}
		in = append(in, membership{member, intern(interned, raw[2])})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, t.fail(err)
	}
	// An order PostgreSQL does not promise without an ORDER BY (which
	// would sort the documents): it is nearly always so already.
	slices.SortFunc(users, func(a, b *storage.User) int { return strings.Compare(a.ID, b.ID) })
	return users, groupsByMember(in), nil
}
