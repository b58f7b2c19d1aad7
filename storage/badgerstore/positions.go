package badgerstore

import (
	"bytes"
	"errors"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// UserIDAt finds the user at position through the id-bucket counters (see
// countBucketLen): the counters up to the bucket holding it, then that
// bucket's keys, without reading a record.
func (t *tx) UserIDAt(position int) (string, error) {
	return t.idAt(countUsers, kindUser, position)
}

// GroupIDAt is UserIDAt for groups.
func (t *tx) GroupIDAt(position int) (string, error) {
	return t.idAt(countGroups, kindGroup, position)
}

func (t *tx) idAt(countKind, recordKind byte, position int) (string, error) {
	if position < 0 {
		return "", storage.ErrNotFound
	}
	skip := int64(position)
	bc, err := t.bucketCounts(countKind)
	if err != nil {
		return "", err
	}
	var bucket []byte
	for i, n := range bc.counts {
		if skip < n {
			bucket = []byte(bc.buckets[i])
			break
		}
		skip -= max(n, 0)
	}
	if bucket == nil {
		return "", storage.ErrNotFound
	}
	// The bucket's first id may equal the bucket itself (a short id), so
	// the walk seeks to it inclusively, unlike iterate's cursor.
	prefix := t.k.kind(recordKind)
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := t.txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(append(prefix, bucket...)); it.Valid(); it.Next() {
		if skip == 0 {
			return string(it.Item().Key()[len(prefix):]), nil
		}
		skip--
	}
	// Counters ahead of the records would be corruption; say not found
	// rather than invent a position.
	return "", storage.ErrNotFound
}

// GroupsOfEach reads each member's groups as GroupsOf does, but through
// one iterator that seeks from member to member (a Badger iterator costs
// a merge over every table to open: one per member was ~half of it).
func (t *tx) GroupsOfEach(memberIDs []string) (map[string][]string, error) {
	out := make(map[string][]string)
	if len(memberIDs) == 0 {
		return out, nil
	}
	tombs, err := t.tombstones()
	if err != nil {
		return nil, err
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = t.k.kind(kindMemberOf)
	it := t.txn.NewIterator(opts)
	defer it.Close()
	// The members of a page are neighbours in key order: walked in key
	// order, each member's keys start where the previous member's ended, a
	// few Next steps where a Seek (a merge over every table) was ~70% of
	// the call.
	type member struct {
		id     string
		prefix []byte
	}
	members := make([]member, 0, len(memberIDs))
	for _, id := range memberIDs {
		if validID(id) {
			members = append(members, member{id, t.k.comp(kindMemberOf, id)})
		}
	}
	slices.SortFunc(members, func(a, b member) int { return bytes.Compare(a.prefix, b.prefix) })
	started := false
	for _, m := range members {
		id, prefix := m.id, m.prefix
		if _, done := out[id]; done {
			continue
		}
		var gids []string
		if !started || !stepTo(it, prefix, maxSteps) {
			it.Seek(prefix)
		}
		started = true
		for ; it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			gid := string(item.Key()[len(prefix):])
			if tombs[gid] {
				continue
			}
			if tombs[id] {
				// A deleted group awaiting its sweep is no member of
				// anything (as in GroupsOf).
				typ, err := item.ValueCopy(nil)
				if err != nil {
					return nil, err
				}
				if string(typ) == storage.MemberGroup {
					continue
				}
			}
			gids = append(gids, gid)
		}
		if len(gids) > 0 {
			out[id] = gids
		}
	}
	return out, nil
}

// maxSteps bounds the Next steps stepTo takes before a Seek is cheaper.
const maxSteps = 8

// stepTo moves it forward to the first key at or after target within n
// steps; false when it did not get there (it then needs a Seek).
func stepTo(it *badger.Iterator, target []byte, n int) bool {
	for range n {
		if !it.Valid() || bytes.Compare(it.Item().Key(), target) >= 0 {
			return true
		}
		it.Next()
	}
	return !it.Valid() || bytes.Compare(it.Item().Key(), target) >= 0
}

// GetGroups is GetGroup for each id (point reads: nothing to batch).
func (t *tx) GetGroups(ids []string) (map[string]*storage.Group, error) {
	out := make(map[string]*storage.Group, len(ids))
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		g, err := t.GetGroup(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = g
	}
	return out, nil
}
