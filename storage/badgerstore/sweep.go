package badgerstore

import (
	"context"
	"math"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Deleting a group of any size must fit one small transaction (a group of
// 100,000 members has 200,000 membership keys; Badger takes ~52,000 writes
// in one commit). So DeleteGroup only removes the group record and writes a
// tombstone; every membership read filters tombstoned groups out, so the
// group and its memberships are gone for readers at the commit; and the
// sweeper below removes the membership keys in batches afterwards. The
// tombstone is durable, so a crash mid-sweep leaves it in place and Open
// resumes the sweep. The last batch deletes the tombstone.

// sweepBatch is how many memberships one sweep transaction removes (two
// keys each): far under Badger's limit, and short enough that a concurrent
// writer it conflicts with waits little.
const sweepBatch = 5000

// tombstones returns the ids of the tenant's tombstoned groups in this
// transaction's snapshot (its own writes included). There are few (only
// deletions whose sweep is unfinished), so one prefix scan per transaction
// is cheap, and membership reads then check a map.
func (t *tx) tombstones() (map[string]bool, error) {
	if t.tombs != nil {
		return t.tombs, nil
	}
	m := make(map[string]bool)
	err := t.iterate(t.k.tombstones(), "", func(suffix []byte, _ *badger.Item) (bool, error) {
		m[string(suffix)] = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	t.tombs = m
	return m, nil
}

// tombstoneMembers returns, per group, how many of its raw membership keys
// name a tombstoned group as a member: its member counters count them
// (the sweep has not removed them yet) but readers must not. One scan of
// the tombstoned groups' member-of entries per transaction, cached.
func (t *tx) tombstoneMembers() (map[string]int, error) {
	if t.tombMembers != nil {
		return t.tombMembers, nil
	}
	tombs, err := t.tombstones()
	if err != nil {
		return nil, err
	}
	m := make(map[string]int)
	for gid := range tombs {
		err := t.iterate(t.k.comp(kindMemberOf, gid), "", func(suffix []byte, item *badger.Item) (bool, error) {
			typ, err := item.ValueCopy(nil)
			if err != nil {
				return false, err
			}
			if string(typ) == storage.MemberGroup {
				m[string(suffix)]++
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	t.tombMembers = m
	return m, nil
}

// sweepStep removes up to budget memberships of the tombstoned group
// groupID (its members first, then its own memberships in other groups)
// and, once none is left, the tombstone. done is true when the tombstone
// is gone (or was not there).
func (t *tx) sweepStep(groupID string, budget int) (done bool, err error) {
	there, err := t.exists(t.k.tombstone(groupID))
	if err != nil || !there {
		return !there, err
	}
	var members []string
	err = t.iterate(t.k.comp(kindMember, groupID), "", func(suffix []byte, _ *badger.Item) (bool, error) {
		members = append(members, string(suffix))
		return len(members) < budget, nil
	})
	if err != nil {
		return false, err
	}
	// The group's own counters go down with its keys, a shard at a time
	// (a batch touches each shard once), so they are gone with the last.
	removed := make(map[byte]int64)
	for _, m := range members {
		if err := t.del(t.k.compID(kindMember, groupID, m)); err != nil {
			return false, err
		}
		if err := t.del(t.k.compID(kindMemberOf, m, groupID)); err != nil {
			return false, err
		}
		removed[memberShard(m)]++
	}
	for shard, n := range removed {
		if err := t.addMemberCountShard(append(t.k.memberCounts(groupID), shard), -n); err != nil {
			return false, err
		}
	}
	if budget -= len(members); budget == 0 {
		return false, nil
	}
	// The group as a member of other groups. A user may share the id (ids
	// are unique per kind only), so only entries of type Group go.
	var parents []string
	err = t.iterate(t.k.comp(kindMemberOf, groupID), "", func(suffix []byte, item *badger.Item) (bool, error) {
		typ, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if string(typ) == storage.MemberGroup {
			parents = append(parents, string(suffix))
		}
		return len(parents) < budget, nil
	})
	if err != nil {
		return false, err
	}
	for _, p := range parents {
		if err := t.del(t.k.compID(kindMember, p, groupID)); err != nil {
			return false, err
		}
		if err := t.del(t.k.compID(kindMemberOf, groupID, p)); err != nil {
			return false, err
		}
		if err := t.addMemberCount(p, groupID, -1); err != nil {
			return false, err
		}
	}
	if len(parents) == budget {
		return false, nil // maybe more
	}
	t.tombs, t.tombMembers = nil, nil
	return true, t.del(t.k.tombstone(groupID))
}

// clearTombstone finishes, inside this transaction, the sweep of a deleted
// group whose id is being created again, so the new group starts with no
// members. Ids are UUIDs, so this only happens when a caller reuses ids on
// purpose; with many memberships left the transaction is refused with
// storage.ErrTooBig, and the create succeeds once the sweeper is done.
func (t *tx) clearTombstone(groupID string) error {
	_, err := t.sweepStep(groupID, math.MaxInt)
	return err
}

// runSweeper sweeps every tombstone at start (left by a crash or a Close
// mid-sweep) and again whenever a commit that deleted a group kicks it. It
// sleeps on a channel in between: no timer.
func (s *Store) runSweeper() {
	defer close(s.sweepDone)
	for {
		s.sweepAll()
		select {
		case <-s.stop:
			return
		case <-s.sweepKick:
		}
	}
}

// kickSweeper wakes the sweeper without blocking; one pending kick is
// enough, as a sweep pass handles every tombstone.
func (s *Store) kickSweeper() {
	select {
	case s.sweepKick <- struct{}{}:
	default:
	}
}

type tombstoneRef struct{ tenant, group string }

// sweepAll sweeps every tombstone of every tenant.
func (s *Store) sweepAll() {
	var refs []tombstoneRef
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{nsTombstone}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if tenant, group, ok := parseTombstone(it.Item().Key()); ok {
				refs = append(refs, tombstoneRef{tenant, group})
			}
		}
		return nil
	})
	if err != nil {
		s.logger.Warn("listing deleted groups to sweep failed", zap.Error(err))
		return
	}
	for _, r := range refs {
		if err := s.sweepGroup(r); err != nil {
			// Readers already treat the group as gone; the next kick or
			// Open tries again.
			s.logger.Warn("sweeping a deleted group's memberships failed",
				zap.String("tenant", r.tenant), zap.String("group", r.group), zap.Error(err))
		}
	}
}

// sweepGroup removes the memberships of one deleted group, a batch per
// transaction, until the tombstone is gone or the store closes.
func (s *Store) sweepGroup(r tombstoneRef) error {
	prefix := tenantPrefix(r.tenant)
	for {
		select {
		case <-s.stop:
			return nil
		default:
		}
		var done bool
		_, err := s.run(context.Background(), prefix, func(t *tx) error {
			var err error
			done, err = t.sweepStep(r.group, sweepBatch)
			return err
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}
