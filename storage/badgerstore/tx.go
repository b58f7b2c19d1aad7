package badgerstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// tx implements storage.Tx (and so storage.ReadTx) on one Badger
// transaction, under one tenant's key prefix. Values are JSON.
type tx struct {
	txn      *badger.Txn
	k        keyer
	writable bool
	// tooBig is set once Badger refused a write for the transaction's
	// size: Update then commits nothing, even if fn carried on.
	tooBig bool
	// observed is set by every write a cache keyed on Generation relies
	// on (see storage.Store.Generation): its commit bumps Generation.
	observed bool
	// appended counts the events the transaction appended, for the cap
	// of the tenant's audit log (see retention.go).
	appended int
	// tombstoned is set when the transaction deleted a group: its commit
	// wakes the sweeper (see sweep.go).
	tombstoned bool
	// retention is the tenant's audit log retention when the transaction
	// started; Events hides what is older than its MaxAge.
	retention storage.EventRetention
	// tombs caches the ids of the tenant's deleted groups whose
	// memberships await the sweep, loaded on first need (see sweep.go).
	tombs map[string]bool
	// tombMembers caches, per group, how many of its members are such
	// deleted groups (see tombstoneMembers); reset by membership writes.
	tombMembers map[string]int
	// countCache, in read-only transactions, shares the id-bucket
	// counters between transactions of one snapshot (countcache.go); nil:
	// every read walks them.
	countCache *sync.Map
	// counters holds the counters fn changed, written when it returns
	// (pendingcounters.go).
	counters map[string]pendingCounter
	// anchored holds the anchors this transaction wrote (setAnchor).
	anchored map[string]bool
}

var _ storage.Tx = (*tx)(nil)

// Session index entries outlive the session's absolute expiry by this much
// before Badger drops them, so a just-expired session is still found (and
// refused by Session.Expired) rather than silently missing.
const sessionGrace = time.Hour

// Events limits.
const (
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

// ---- low-level helpers ----

func (t *tx) getJSON(key []byte, v any) error {
	return t.getDecoded(key, func(b []byte) error { return json.Unmarshal(b, v) })
}

// getDecoded reads key's value into decode, which must copy what it keeps:
// the slice is Badger's and dies when decode returns.
func (t *tx) getDecoded(key []byte, decode func([]byte) error) error {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(decode)
}

// decodeUser decodes a user record into u with storage.DecodeUser: the
// result of encoding/json in one pass (json.Unmarshal of users was a fifth
// of the CPU of listing users at a million).
func decodeUser(u *storage.User) func([]byte) error {
	return func(b []byte) error { return storage.DecodeUser(b, u) }
}

// exists reads key. In a read-write transaction the read is tracked, so a
// concurrent commit that writes key makes this transaction conflict and
// retry; callers use it to guard invariants that span several keys.
func (t *tx) exists(key []byte) (bool, error) {
	_, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *tx) getBytes(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (t *tx) setJSON(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("badgerstore: encode: %w", err)
	}
	return t.written(t.txn.Set(key, b))
}

func (t *tx) set(key, value []byte) error { return t.written(t.txn.Set(key, value)) }

func (t *tx) del(key []byte) error { return t.written(t.txn.Delete(key)) }

// written passes on the error of one write. Badger bounds a transaction's
// writes (count and size, from the memtable size) and refuses the write
// past the bound with ErrTxnTooBig: that is storage.ErrTooBig, and the
// transaction must not commit the part that fit.
func (t *tx) written(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		t.tooBig = true
		return storage.ErrTooBig
	}
	return err
}

// iterate calls fn with each key suffix (after prefix) and item, in key
// order, from the first key > prefix+after (or the first key when after is
// ""), until fn returns false or an error.
func (t *tx) iterate(prefix []byte, after string, fn func(suffix []byte, item *badger.Item) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false // values are read on demand; early stops stay cheap
	opts.Prefix = prefix
	it := t.txn.NewIterator(opts)
	defer it.Close()
	start := prefix
	if after != "" {
		start = append(slices.Clip(prefix), after...)
	}
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		suffix := key[len(prefix):]
		if after != "" && string(suffix) == after {
			continue
		}
		more, err := fn(suffix, item)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// suffixes collects the key suffixes under prefix (copied).
func (t *tx) suffixes(prefix []byte) ([]string, error) {
	var out []string
	err := t.iterate(prefix, "", func(suffix []byte, _ *badger.Item) (bool, error) {
		out = append(out, string(suffix))
		return true, nil
	})
	return out, err
}

// addCount adds d to the count of kind in id's bucket (see idBucket).
// Concurrent creates do not conflict on it: group commit runs them in one
// transaction (see groupcommit.go).
func (t *tx) addCount(kind byte, id string, d int64) error {
	key := t.k.countShard(kind, id)
	n, err := t.readCounter(key)
	if err != nil {
		return err
	}
	t.setCounter(key, n+d, false)
	return nil
}

// readCounter reads (so tracks) a counter key, or the value the
// transaction gave it; an absent one is 0.
func (t *tx) readCounter(key []byte) (int64, error) {
	if c, ok := t.counters[string(key)]; ok {
		return c.value, nil
	}
	b, err := t.getBytes(key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(b) == 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	default:
		return 0, fmt.Errorf("badgerstore: counter %q is corrupt", key)
	}
}

// addMemberCount adds d to the member counter shard of groupID that
// memberID counts in (see memberCountShards), deleting a shard that
// reaches 0 so an emptied group leaves no counter behind.
func (t *tx) addMemberCount(groupID, memberID string, d int64) error {
	return t.addMemberCountShard(t.k.memberCountShard(groupID, memberID), d)
}

func (t *tx) addMemberCountShard(key []byte, d int64) error {
	t.tombMembers = nil // membership changed: recount (see tombstoneMembers)
	n, err := t.readCounter(key)
	if err != nil {
		return err
	}
	t.setCounter(key, n+d, true)
	return nil
}

// sumMemberCounts adds up the member counter shards of groupID: its raw
// membership keys. It gets each shard rather than scanning the prefix: a
// scan steps over every older version of a shard still in the memtables
// and young tables (each add rewrites one), a Get stops at the newest.
func (t *tx) sumMemberCounts(groupID string) (int, error) {
	var total int64
	key := append(t.k.memberCounts(groupID), 0)
	for shard := range byte(memberCountShards) {
		key[len(key)-1] = shard
		n, err := t.readCounter(key)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return int(total), nil
}

// sumCounts adds up the counter shards of kind.
func (t *tx) sumCounts(kind byte) (int, error) {
	bc, err := t.bucketCounts(kind)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, n := range bc.counts {
		total += n
	}
	return int(total), nil
}

func (t *tx) count(prefix []byte) (int, error) {
	n := 0
	err := t.iterate(prefix, "", func([]byte, *badger.Item) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

func (t *tx) mustWrite() error {
	if !t.writable {
		return errors.New("badgerstore: write in a read-only transaction")
	}
	return nil
}

// ---- users ----

func (t *tx) GetUser(id string) (*storage.User, error) {
	if !validID(id) {
		return nil, storage.ErrNotFound
	}
	u := new(storage.User)
	if err := t.getDecoded(t.k.id(kindUser, id), decodeUser(u)); err != nil {
		return nil, err
	}
	return u, nil
}

func (t *tx) UserByUserName(userName string) (*storage.User, error) {
	folded := fold(userName)
	id, err := t.getBytes(t.k.comp(kindUserName, folded))
	if err != nil {
		return nil, err
	}
	u, err := t.GetUser(string(id))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && fold(u.UserName) != folded) {
		return nil, storage.ErrNotFound
	}
	return u, err
}

// usersByIndex loads the users listed under an index prefix whose field,
// re-checked by match, really has the value (guarding hashed components).
func (t *tx) usersByIndex(prefix []byte, match func(*storage.User) bool) ([]*storage.User, error) {
	ids, err := t.suffixes(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*storage.User, 0, len(ids))
	for _, id := range ids {
		u, err := t.GetUser(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if match(u) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (t *tx) UsersByExternalID(externalID string) ([]*storage.User, error) {
	if externalID == "" {
		return nil, nil
	}
	return t.usersByIndex(t.k.comp(kindUserExt, externalID), func(u *storage.User) bool {
		return u.ExternalID == externalID
	})
}

func (t *tx) UsersByEmail(email string) ([]*storage.User, error) {
	if email == "" {
		return nil, nil
	}
	folded := fold(email)
	return t.usersByIndex(t.k.comp(kindUserEmail, folded), func(u *storage.User) bool {
		return slices.ContainsFunc(u.Emails, func(e string) bool { return fold(e) == folded })
	})
}

func (t *tx) ScanUsers(after string, fn func(*storage.User) (bool, error)) error {
	return t.iterate(t.k.kind(kindUser), after, func(_ []byte, item *badger.Item) (bool, error) {
		u := new(storage.User)
		if err := item.Value(decodeUser(u)); err != nil {
			return false, err
		}
		return fn(u)
	})
}

func (t *tx) CountUsers() (int, error) { return t.sumCounts(countUsers) }

// userIndexKeys lists the secondary index keys of u (not the unique
// userName one).
func (t *tx) userIndexKeys(u *storage.User) map[string]struct{} {
	keys := make(map[string]struct{}, 1+len(u.Emails))
	if u.ExternalID != "" {
		keys[string(t.k.compID(kindUserExt, u.ExternalID, u.ID))] = struct{}{}
	}
	for _, e := range u.Emails {
		if e != "" {
			keys[string(t.k.compID(kindUserEmail, fold(e), u.ID))] = struct{}{}
		}
	}
	return keys
}

func (t *tx) PutUser(u *storage.User) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if !validID(u.ID) {
		return fmt.Errorf("badgerstore: user id must be 1 to %d bytes", maxIDLen)
	}
	if u.UserName == "" {
		return errors.New("badgerstore: user has no userName")
	}
	t.observed = true
	old, err := t.GetUser(u.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// Uniqueness: this read is tracked, so two concurrent creators of one
	// userName conflict and the retry of the loser sees the winner.
	nameKey := t.k.comp(kindUserName, fold(u.UserName))
	holder, err := t.getBytes(nameKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return err
	case string(holder) != u.ID:
		return storage.ErrUniqueness
	}

	newKeys := t.userIndexKeys(u)
	if old != nil {
		u.Version = old.Version + 1
		u.Created = old.Created
		if fold(old.UserName) != fold(u.UserName) {
			if err := t.del(t.k.comp(kindUserName, fold(old.UserName))); err != nil {
				return err
			}
		}
		for k := range t.userIndexKeys(old) {
			if _, keep := newKeys[k]; !keep {
				if err := t.del([]byte(k)); err != nil {
					return err
				}
			}
		}
	} else {
		if err := t.addCount(countUsers, u.ID, 1); err != nil {
			return err
		}
		u.Version = 1
		if u.Created.IsZero() {
			u.Created = time.Now()
		}
	}
	if u.Modified.IsZero() {
		u.Modified = u.Created
	}
	if err := t.set(nameKey, []byte(u.ID)); err != nil {
		return err
	}
	for k := range newKeys {
		if err := t.set([]byte(k), nil); err != nil {
			return err
		}
	}
	return t.setJSON(t.k.id(kindUser, u.ID), u)
}

func (t *tx) DeleteUser(id string) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	old, err := t.GetUser(id)
	if err != nil {
		return err
	}
	t.observed = true
	if err := t.del(t.k.comp(kindUserName, fold(old.UserName))); err != nil {
		return err
	}
	for k := range t.userIndexKeys(old) {
		if err := t.del([]byte(k)); err != nil {
			return err
		}
	}
	if err := t.readAnchor(anchorMember, id); err != nil {
		return err
	}
	if err := t.removeMembershipsOf(id, storage.MemberUser); err != nil {
		return err
	}
	if _, err := t.DeleteSessionsOf(id); err != nil {
		return err
	}
	if err := t.addCount(countUsers, id, -1); err != nil {
		return err
	}
	return t.del(t.k.id(kindUser, id))
}

// ---- groups ----

func (t *tx) GetGroup(id string) (*storage.Group, error) {
	if !validID(id) {
		return nil, storage.ErrNotFound
	}
	g := new(storage.Group)
	if err := t.getJSON(t.k.id(kindGroup, id), g); err != nil {
		return nil, err
	}
	return g, nil
}

func (t *tx) groupsByIndex(prefix []byte, match func(*storage.Group) bool) ([]*storage.Group, error) {
	ids, err := t.suffixes(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*storage.Group, 0, len(ids))
	for _, id := range ids {
		g, err := t.GetGroup(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if match(g) {
			out = append(out, g)
		}
	}
	return out, nil
}

func (t *tx) GroupsByDisplayName(displayName string) ([]*storage.Group, error) {
	folded := fold(displayName)
	return t.groupsByIndex(t.k.comp(kindGroupName, folded), func(g *storage.Group) bool {
		return fold(g.DisplayName) == folded
	})
}

func (t *tx) GroupsByExternalID(externalID string) ([]*storage.Group, error) {
	if externalID == "" {
		return nil, nil
	}
	return t.groupsByIndex(t.k.comp(kindGroupExt, externalID), func(g *storage.Group) bool {
		return g.ExternalID == externalID
	})
}

func (t *tx) ScanGroups(after string, fn func(*storage.Group) (bool, error)) error {
	return t.iterate(t.k.kind(kindGroup), after, func(_ []byte, item *badger.Item) (bool, error) {
		g := new(storage.Group)
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, g) }); err != nil {
			return false, err
		}
		return fn(g)
	})
}

func (t *tx) CountGroups() (int, error) { return t.sumCounts(countGroups) }

func (t *tx) groupIndexKeys(g *storage.Group) map[string]struct{} {
	keys := map[string]struct{}{
		string(t.k.compID(kindGroupName, fold(g.DisplayName), g.ID)): {},
	}
	if g.ExternalID != "" {
		keys[string(t.k.compID(kindGroupExt, g.ExternalID, g.ID))] = struct{}{}
	}
	return keys
}

func (t *tx) PutGroup(g *storage.Group) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if !validID(g.ID) {
		return fmt.Errorf("badgerstore: group id must be 1 to %d bytes", maxIDLen)
	}
	old, err := t.GetGroup(g.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	t.observed = true
	if old == nil {
		// A group created again under a deleted id must not inherit
		// what of the old one's memberships the sweep has not removed.
		if err := t.clearTombstone(g.ID); err != nil {
			return err
		}
	}
	newKeys := t.groupIndexKeys(g)
	if old != nil {
		g.Version = old.Version + 1
		g.Created = old.Created
		for k := range t.groupIndexKeys(old) {
			if _, keep := newKeys[k]; !keep {
				if err := t.del([]byte(k)); err != nil {
					return err
				}
			}
		}
	} else {
		if err := t.addCount(countGroups, g.ID, 1); err != nil {
			return err
		}
		g.Version = 1
		if g.Created.IsZero() {
			g.Created = time.Now()
		}
	}
	if g.Modified.IsZero() {
		g.Modified = g.Created
	}
	for k := range newKeys {
		if err := t.set([]byte(k), nil); err != nil {
			return err
		}
	}
	return t.setJSON(t.k.id(kindGroup, g.ID), g)
}

// DeleteGroup removes the group record, its indexes and its count in this
// transaction, and writes a tombstone: a handful of writes whatever the
// group's size. Membership reads filter tombstoned groups out at once (see
// tombstoned), and the store's sweeper removes the membership keys in
// batches after the commit (see sweep.go).
func (t *tx) DeleteGroup(id string) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	old, err := t.GetGroup(id)
	if err != nil {
		return err
	}
	t.observed = true
	for k := range t.groupIndexKeys(old) {
		if err := t.del([]byte(k)); err != nil {
			return err
		}
	}
	// The anchors are read so that an AddMember in flight conflicts (see
	// kindAnchor); its membership would be hidden by the tombstone anyway,
	// but the retry makes it see the group is gone and say so.
	if err := t.readAnchor(anchorGroup, id); err != nil {
		return err
	}
	if err := t.readAnchor(anchorMember, id); err != nil {
		return err
	}
	if err := t.set(t.k.tombstone(id), nil); err != nil {
		return err
	}
	t.tombs, t.tombMembers = nil, nil // reload: this transaction sees its own tombstone
	t.tombstoned = true
	if err := t.addCount(countGroups, id, -1); err != nil {
		return err
	}
	return t.del(t.k.id(kindGroup, id))
}

// readAnchor reads (so tracks, see kindAnchor) and deletes an anchor.
func (t *tx) readAnchor(side, id string) error {
	key := t.k.anchor(side, id)
	if _, err := t.exists(key); err != nil {
		return err
	}
	delete(t.anchored, string(key))
	return t.del(key)
}

// setAnchor writes an anchor (see kindAnchor), once per transaction: a
// write is all a concurrent delete needs to conflict with, and Badger
// counts every write against the transaction's bound, so the anchor of
// a group gaining 5,000 members is written once, not 5,000 times.
func (t *tx) setAnchor(side, id string) error {
	key := t.k.anchor(side, id)
	if t.anchored[string(key)] {
		return nil
	}
	if err := t.set(key, nil); err != nil {
		return err
	}
	if t.anchored == nil {
		t.anchored = make(map[string]bool)
	}
	t.anchored[string(key)] = true
	return nil
}

// removeMembershipsOf removes every membership of memberID (of the given
// member type) in any group.
func (t *tx) removeMembershipsOf(memberID, memberType string) error {
	var groups []string
	err := t.iterate(t.k.comp(kindMemberOf, memberID), "", func(suffix []byte, item *badger.Item) (bool, error) {
		typ, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if string(typ) == memberType {
			groups = append(groups, string(suffix))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := t.del(t.k.compID(kindMember, g, memberID)); err != nil {
			return err
		}
		if err := t.del(t.k.compID(kindMemberOf, memberID, g)); err != nil {
			return err
		}
		if err := t.addMemberCount(g, memberID, -1); err != nil {
			return err
		}
	}
	return nil
}

// ---- memberships ----

func (t *tx) Members(groupID string, fn func(storage.Member) (bool, error)) error {
	if !validID(groupID) {
		return nil
	}
	tombs, err := t.tombstones()
	if err != nil || tombs[groupID] {
		return err
	}
	return t.iterate(t.k.comp(kindMember, groupID), "", func(suffix []byte, item *badger.Item) (bool, error) {
		typ, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		m := storage.Member{ID: string(suffix), Type: string(typ)}
		if m.Type == storage.MemberGroup && tombs[m.ID] {
			return true, nil
		}
		return fn(m)
	})
}

func (t *tx) IsMember(groupID, memberID string) (bool, error) {
	if !validID(groupID) || !validID(memberID) {
		return false, nil
	}
	tombs, err := t.tombstones()
	if err != nil || tombs[groupID] {
		return false, err
	}
	typ, err := t.getBytes(t.k.compID(kindMember, groupID, memberID))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !(string(typ) == storage.MemberGroup && tombs[memberID]), nil
}

func (t *tx) CountMembers(groupID string) (int, error) {
	if !validID(groupID) {
		return 0, nil
	}
	tombs, err := t.tombstones()
	if err != nil || tombs[groupID] {
		return 0, err
	}
	n, err := t.sumMemberCounts(groupID)
	if err != nil || len(tombs) == 0 {
		return n, err
	}
	hidden, err := t.tombstoneMembers()
	return n - hidden[groupID], err
}

func (t *tx) GroupsOf(memberID string) ([]string, error) {
	if !validID(memberID) {
		return nil, nil
	}
	tombs, err := t.tombstones()
	if err != nil {
		return nil, err
	}
	if len(tombs) == 0 {
		return t.suffixes(t.k.comp(kindMemberOf, memberID))
	}
	var out []string
	err = t.iterate(t.k.comp(kindMemberOf, memberID), "", func(suffix []byte, item *badger.Item) (bool, error) {
		gid := string(suffix)
		if tombs[gid] {
			return true, nil
		}
		typ, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if string(typ) == storage.MemberGroup && tombs[memberID] {
			return true, nil
		}
		out = append(out, gid)
		return true, nil
	})
	return out, err
}

// AddMember requires the group to exist (storage.ErrNotFound otherwise).
// The member need not exist, but its record key is read so that a
// concurrent DeleteUser/DeleteGroup of the member conflicts with this
// transaction instead of leaving a membership of a deleted member.
func (t *tx) AddMember(groupID string, m storage.Member) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	if !validID(groupID) {
		return false, storage.ErrNotFound
	}
	if !validID(m.ID) {
		return false, fmt.Errorf("badgerstore: member id must be 1 to %d bytes", maxIDLen)
	}
	switch m.Type {
	case "":
		m.Type = storage.MemberUser
	case storage.MemberUser, storage.MemberGroup:
	default:
		return false, fmt.Errorf("badgerstore: member type %q is neither %q nor %q", m.Type, storage.MemberUser, storage.MemberGroup)
	}
	ok, err := t.exists(t.k.id(kindGroup, groupID))
	if err != nil {
		return false, err
	}
	if !ok {
		return false, storage.ErrNotFound
	}
	memberKind := byte(kindUser)
	if m.Type == storage.MemberGroup {
		memberKind = kindGroup
	}
	if _, err := t.exists(t.k.id(memberKind, m.ID)); err != nil {
		return false, err
	}
	key := t.k.compID(kindMember, groupID, m.ID)
	there, err := t.exists(key)
	if err != nil || there {
		return false, err
	}
	t.observed = true
	if err := t.set(key, []byte(m.Type)); err != nil {
		return false, err
	}
	if err := t.set(t.k.compID(kindMemberOf, m.ID, groupID), []byte(m.Type)); err != nil {
		return false, err
	}
	if err := t.addMemberCount(groupID, m.ID, 1); err != nil {
		return false, err
	}
	if err := t.setAnchor(anchorGroup, groupID); err != nil {
		return false, err
	}
	if err := t.setAnchor(anchorMember, m.ID); err != nil {
		return false, err
	}
	return true, nil
}

func (t *tx) RemoveMember(groupID, memberID string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	if !validID(groupID) || !validID(memberID) {
		return false, nil
	}
	key := t.k.compID(kindMember, groupID, memberID)
	there, err := t.exists(key)
	if err != nil || !there {
		return false, err
	}
	t.observed = true
	if err := t.del(key); err != nil {
		return false, err
	}
	if err := t.del(t.k.compID(kindMemberOf, memberID, groupID)); err != nil {
		return false, err
	}
	if err := t.addMemberCount(groupID, memberID, -1); err != nil {
		return false, err
	}
	return true, nil
}

// ---- SCIM token ----

// GetSCIMToken is read on most SCIM requests under a stream of writes (the
// SCIM handler's token cache follows Generation, which every write moves),
// so it decodes the record through storedToken: encoding/json decodes the
// hash, 32 JSON numbers, by reflection one element at a time, which was
// most of the read's cost.
func (t *tx) GetSCIMToken() (*storage.SCIMToken, error) {
	var st storedToken
	if err := t.getJSON(t.k.kind(kindToken), &st); err != nil {
		return nil, err
	}
	return &storage.SCIMToken{ID: st.ID, Hash: st.Hash, Created: st.Created}, nil
}

// storedToken is storage.SCIMToken as PutSCIMToken stores it (the same
// JSON), with a hash that decodes itself.
type storedToken struct {
	ID      string     `json:"id"`
	Hash    storedHash `json:"hash"`
	Created time.Time  `json:"created"`
}

// storedHash is a [32]byte encoded by encoding/json: an array of 32
// numbers from 0 to 255.
type storedHash [32]byte

func (h *storedHash) UnmarshalJSON(b []byte) error {
	i, n := 0, 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	corrupt := errors.New("badgerstore: the SCIM token's hash is corrupt")
	skip()
	if i >= len(b) || b[i] != '[' {
		return corrupt
	}
	i++
	for {
		skip()
		if i < len(b) && b[i] == ']' && n == len(h) {
			i++
			skip()
			if i != len(b) {
				return corrupt
			}
			return nil
		}
		if n == len(h) {
			return corrupt
		}
		if n > 0 {
			if i >= len(b) || b[i] != ',' {
				return corrupt
			}
			i++
			skip()
		}
		v, digits := 0, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && digits < 4 {
			v = v*10 + int(b[i]-'0')
			i++
			digits++
		}
		if digits == 0 || digits > 3 || v > 255 || (digits > 1 && b[i-digits] == '0') {
			return corrupt
		}
		h[n] = byte(v)
		n++
	}
}

func (t *tx) PutSCIMToken(tok *storage.SCIMToken) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	t.observed = true
	return t.setJSON(t.k.kind(kindToken), tok)
}

// DeleteSCIMToken is a no-op when there is no token.
func (t *tx) DeleteSCIMToken() error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	t.observed = true
	return t.del(t.k.kind(kindToken))
}

// ---- sessions ----

func (t *tx) GetSession(idHash [32]byte) (*storage.Session, error) {
	s := new(storage.Session)
	if err := t.getJSON(t.k.session(idHash), s); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *tx) SessionsOf(userID string) ([]*storage.Session, error) {
	if !validID(userID) {
		return nil, nil
	}
	hashes, err := t.suffixes(t.k.comp(kindUserSess, userID))
	if err != nil {
		return nil, err
	}
	var out []*storage.Session
	for _, h := range hashes {
		var hash [32]byte
		if copy(hash[:], h) != len(hash) {
			continue
		}
		s, err := t.GetSession(hash)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.UserID == userID {
			out = append(out, s)
		}
	}
	return out, nil
}

// PutSession creates or replaces the session. Badger drops it (and its
// index entry) sessionGrace after ExpiresAt, so ended sessions do not pile
// up; a zero ExpiresAt keeps it until deleted.
func (t *tx) PutSession(s *storage.Session) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if !validID(s.UserID) {
		return fmt.Errorf("badgerstore: session user id must be 1 to %d bytes", maxIDLen)
	}
	old, err := t.GetSession(s.IDHash)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if old != nil && old.UserID != s.UserID {
		if err := t.del(t.k.userSession(old.UserID, s.IDHash)); err != nil {
			return err
		}
	}
	// Tracked read: a DeleteUser committed meanwhile makes this retry;
	// the anchor write makes a DeleteUser in flight retry and see this
	// session (see kindAnchor).
	if _, err := t.exists(t.k.id(kindUser, s.UserID)); err != nil {
		return err
	}
	if err := t.setAnchor(anchorMember, s.UserID); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("badgerstore: encode: %w", err)
	}
	sessEntry := badger.NewEntry(t.k.session(s.IDHash), b)
	idxEntry := badger.NewEntry(t.k.userSession(s.UserID, s.IDHash), nil)
	if !s.ExpiresAt.IsZero() {
		ttl := ttlSeconds(time.Until(s.ExpiresAt) + sessionGrace)
		sessEntry = sessEntry.WithTTL(ttl)
		idxEntry = idxEntry.WithTTL(ttl)
	}
	if err := t.written(t.txn.SetEntry(sessEntry)); err != nil {
		return err
	}
	return t.written(t.txn.SetEntry(idxEntry))
}

// DeleteSession is a no-op when there is no such session.
func (t *tx) DeleteSession(idHash [32]byte) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	s, err := t.GetSession(idHash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t.observed = true
	if err := t.del(t.k.userSession(s.UserID, idHash)); err != nil {
		return err
	}
	return t.del(t.k.session(idHash))
}

func (t *tx) DeleteSessionsOf(userID string) (int, error) {
	if err := t.mustWrite(); err != nil {
		return 0, err
	}
	if !validID(userID) {
		return 0, nil
	}
	hashes, err := t.suffixes(t.k.comp(kindUserSess, userID))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hashes {
		var hash [32]byte
		if copy(hash[:], h) != len(hash) {
			continue
		}
		if ok, err := t.exists(t.k.session(hash)); err != nil {
			return n, err
		} else if ok {
			n++
			t.observed = true
			if err := t.del(t.k.session(hash)); err != nil {
				return n, err
			}
		}
		if err := t.del(t.k.userSession(userID, hash)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ---- short-lived records ----

// Records carry their exact expiry (unix nanoseconds, 0 = none) in an
// 8-byte header: Badger's own TTL has one-second granularity and truncates,
// so it only serves to drop the record from disk eventually, a little after
// the exact expiry readers check.

func (t *tx) GetRecord(kind, key string) ([]byte, error) {
	b, err := t.getBytes(t.k.record(kind, key))
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("badgerstore: record %s/%s is corrupt", kind, key)
	}
	if exp := int64(binary.BigEndian.Uint64(b)); exp != 0 && time.Now().UnixNano() >= exp {
		return nil, storage.ErrNotFound
	}
	return b[8:], nil
}

func (t *tx) PutRecord(kind, key string, value []byte, ttl time.Duration) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	b := make([]byte, 8, 8+len(value))
	if ttl > 0 {
		binary.BigEndian.PutUint64(b, uint64(time.Now().Add(ttl).UnixNano()))
	}
	b = append(b, value...)
	e := badger.NewEntry(t.k.record(kind, key), b)
	if ttl > 0 {
		e = e.WithTTL(ttlSeconds(ttl))
	}
	return t.written(t.txn.SetEntry(e))
}

// DeleteRecord is a no-op when there is no such record.
func (t *tx) DeleteRecord(kind, key string) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	return t.del(t.k.record(kind, key))
}

// ttlSeconds rounds d up to whole seconds plus one, so Badger's truncating
// second-granularity expiry never fires before d has passed.
func ttlSeconds(d time.Duration) time.Duration {
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second) + 2*time.Second
}

// ---- audit events ----

// newEventID returns 16 hex digits of the big-endian Unix nanoseconds of at
// followed by 16 random hex digits: ids sort by time, so iterating keys
// backwards gives newest first, and ids made in the same nanosecond differ.
func newEventID(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], eventNanos(at))
	if _, err := rand.Read(b[8:]); err != nil {
		panic(fmt.Sprintf("badgerstore: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// eventIDFloor is the smallest id of an event at time at.
func eventIDFloor(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], eventNanos(at))
	return hex.EncodeToString(b[:])
}

func eventNanos(at time.Time) uint64 {
	n := at.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func (t *tx) AppendEvent(e storage.Event) error {
	_, err := t.AppendEventID(e)
	return err
}

func (t *tx) AppendEventID(e storage.Event) (string, error) {
	if err := t.mustWrite(); err != nil {
		return "", err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.ID = newEventID(e.Time)
	if err := t.setJSON(t.k.id(kindEvent, e.ID), e); err != nil {
		return "", err
	}
	t.appended++
	return e.ID, nil
}

func (t *tx) Events(q storage.EventQuery) ([]storage.Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultEventLimit
	}
	if limit > maxEventLimit {
		limit = maxEventLimit
	}
	// Ids derive from Time, so the time window and the cursor are both
	// bounds on the id: [floor(Since), min(Before, floor(Until))).
	upper := q.Before
	if !q.Until.IsZero() {
		if u := eventIDFloor(q.Until); upper == "" || u < upper {
			upper = u
		}
	}
	// Events past the tenant's MaxAge are gone for readers at once,
	// whether or not the pruner has deleted them yet.
	lower := eventIDFloor(time.Now().Add(-t.retention.WithDefaults().MaxAge))
	if !q.Since.IsZero() {
		if l := eventIDFloor(q.Since); l > lower {
			lower = l
		}
	}
	var types map[string]bool
	if len(q.Types) > 0 {
		types = make(map[string]bool, len(q.Types))
		for _, ty := range q.Types {
			types[ty] = true
		}
	}

	prefix := t.k.kind(kindEvent)
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	opts.Reverse = true
	it := t.txn.NewIterator(opts)
	defer it.Close()
	var seek []byte
	if upper != "" {
		seek = append(slices.Clip(prefix), upper...)
	} else {
		seek = append(slices.Clip(prefix), 0xff)
	}
	out := make([]storage.Event, 0, min(limit, 64))
	for it.Seek(seek); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		id := string(item.Key()[len(prefix):])
		if upper != "" && id >= upper {
			continue
		}
		if lower != "" && id < lower {
			break
		}
		var e storage.Event
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
			return nil, err
		}
		if types != nil && !types[e.Type] {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}
