package badgerstore

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"strings"
)

// Key layout. Every key of tenant data starts with nsTenant, then the
// tenant name length-prefixed (uvarint length + bytes), so the prefix of one
// tenant is never a prefix of another ("a" and "a:b" cannot collide), then
// one kind byte, then the kind's parts:
//
//	kindUser       user id                              -> User JSON
//	kindUserName   comp(lower(userName))                -> user id (unique)
//	kindUserExt    comp(externalId) user id             -> empty
//	kindUserEmail  comp(lower(email)) user id           -> empty
//	kindGroup      group id                             -> Group JSON
//	kindGroupName  comp(lower(displayName)) group id    -> empty
//	kindGroupExt   comp(externalId) group id            -> empty
//	kindMember     comp(group id) member id             -> member type
//	kindMemberOf   comp(member id) group id             -> member type
//	kindToken                                           -> SCIMToken JSON
//	kindSession    sha256(session id)                   -> Session JSON
//	kindUserSess   comp(user id) sha256(session id)     -> empty
//	kindRecord     comp(kind) comp(key)                 -> expiry (8 bytes) + value
//	kindEvent      event id                             -> Event JSON
//	kindAnchor     'g' group id | 'm' member id         -> empty
//	kindCount      'u' | 'g', shard byte                -> (schema < 4 only)
//	kindIDCount    'u' | 'g', idBucket(id)              -> int64 (8 bytes)
//	kindMemberCount comp(group id) shard byte           -> int64 (8 bytes)
//	kindMapping    group reference                      -> Mapping JSON
//
// Tombstones of deleted groups whose memberships the sweeper has not yet
// removed live outside the tenant namespace, so that Open finds every one
// of every tenant with one prefix scan:
//
//	nsTombstone, tenant name length-prefixed, group id  -> empty
//
// The store's own keys (schema.go) live in a third namespace:
//
//	nsMeta "schema"                                     -> schema version
//
// A trailing id is stored raw, so iteration gives id order. A component that
// is followed by more key bytes goes through comp, which makes it
// self-delimiting, so prefix scans of "every user with this email" never
// match a longer email.
const (
	nsTenant    = 'T'
	nsTombstone = 'Z'

	kindUser      = 'u'
	kindUserName  = 'n'
	kindUserExt   = 'x'
	kindUserEmail = 'e'
	kindGroup     = 'g'
	kindGroupName = 'd'
	kindGroupExt  = 'y'
	kindMember    = 'm'
	kindMemberOf  = 'o'
	kindToken     = 't'
	kindSession   = 's'
	kindUserSess  = 'p'
	kindRecord    = 'r'
	kindEvent     = 'v'
	kindAnchor    = 'a'
	// kindCount held the fnv-sharded counts of schema versions below 4;
	// the migration to 4 deletes them (see idcount_migration.go).
	kindCount = 'c'
	// kindIDCount is new in schema version 4: counts by id bucket.
	kindIDCount = 'b'
	kindMapping = 'M'
	// kindMemberCount is new in schema version 3 (see schema.go).
	kindMemberCount = 'k'
)

// Counts of users and groups are kept per id bucket: one counter key per
// distinct idBucket(id) (the first countBucketLen bytes of the id), updated
// in the transaction that creates or deletes the record. Two things read
// them:
//
//   - CountUsers/CountGroups sum them: reading ~256 small keys is O(1)
//     next to walking a million records (SCIM asks for the total on every
//     page);
//   - UserIDAt/GroupIDAt find the position of a SCIM startIndex: the
//     buckets are in id order (a prefix of an id sorts with it), so the
//     running sum of the counters finds the bucket holding the position,
//     and a key-only walk of that bucket the id. A page deep in a million
//     users then costs ~256 counter reads and at most one bucket's keys
//     (~4,000 at a million UUIDs), not half a million records.
//
// Generated ids are random UUIDs, so two hex digits give 256 buckets of
// even size, and concurrent creates conflict only when their ids share a
// bucket (one retries). Ids of another shape still count correctly, only
// in fewer, larger buckets. Changing countBucketLen needs a migration.
const (
	countBucketLen = 2
	countUsers     = 'u'
	countGroups    = 'g'
)

// idBucket is the counter bucket of id: its first countBucketLen bytes
// (the whole id when shorter). Truncation keeps order: if a <= b then
// idBucket(a) <= idBucket(b).
func idBucket(id string) string {
	if len(id) > countBucketLen {
		return id[:countBucketLen]
	}
	return id
}

// Each group's membership keys are counted in memberCountShards counter
// keys (a shard is absent while its count is 0), updated in the
// transaction that writes or deletes a membership key, so CountMembers
// reads a key instead of walking the group (the groups page counts every
// group). The counters count the raw membership keys, including a nested
// group that is deleted but not yet swept: CountMembers subtracts those
// (see tombstoneMembers).
//
// One shard, measured (BenchmarkConcurrentJoins, operator
// BenchmarkListUsers100k/Groups): 50 concurrent adds to one group take
// ~100 ms with 1 shard, ~110 ms with 8, ~80 ms with 4 and ~40 ms only
// with 64 (the burst conflicts on some shard almost surely), while every
// shard costs a point read per group on the groups page (~20 ms for 1,000
// groups with 1, ~55 ms with 4, ~70 ms with 8). A SCIM PATCH bumps the
// group record, so its adds to one group conflict anyway. Raising the
// count later needs no migration: reads sum every shard and a shard may go
// negative (a member counted in an old shard leaves from a new one); it
// must never shrink.
const memberCountShards = 1

// Anchors close a gap in Badger's conflict detection, which tracks the keys
// a transaction read, not the ranges it scanned. DeleteGroup scans the
// group's memberships; an AddMember committed meanwhile writes a key the
// scan never saw, so without help both commit and a membership of a deleted
// group survives. So AddMember (and PutSession) also write the anchor of
// the group and of the member, blindly (no read, so concurrent AddMembers
// do not conflict with each other), and DeleteGroup/DeleteUser read the
// anchors they cascade from: a concurrent add then conflicts with the
// delete, which retries and sees it.
const (
	anchorGroup  = "g"
	anchorMember = "m"
)

const (
	// maxIDLen bounds ids, which are stored raw inside keys (Badger keys
	// are limited to 64 KiB, and long keys cost memory in every index).
	maxIDLen = 512
	// maxInlineComp is the longest index value kept verbatim in a key;
	// longer values are replaced by their SHA-256, and readers re-check
	// the record, so a collision can never return a wrong match.
	maxInlineComp = 256
	// maxTenantLen bounds tenant names for the same reason as ids.
	maxTenantLen = 512
)

// tenantPrefix is the prefix of every key of the tenant.
func tenantPrefix(tenant string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(tenant))
	b = append(b, nsTenant)
	b = binary.AppendUvarint(b, uint64(len(tenant)))
	return append(b, tenant...)
}

// appendComp appends v in self-delimiting form: a marker ('v' verbatim or
// 'h' hashed), a uvarint length and the bytes.
func appendComp(b []byte, v string) []byte {
	if len(v) <= maxInlineComp {
		b = append(b, 'v')
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	sum := sha256.Sum256([]byte(v))
	b = append(b, 'h')
	b = binary.AppendUvarint(b, uint64(len(sum)))
	return append(b, sum[:]...)
}

// keyer builds keys under one tenant prefix.
type keyer struct{ prefix []byte }

func (k keyer) kind(kind byte) []byte {
	b := make([]byte, 0, len(k.prefix)+64)
	b = append(b, k.prefix...)
	return append(b, kind)
}

// id builds kind + raw id (a primary key, or a prefix when id is "").
func (k keyer) id(kind byte, id string) []byte {
	return append(k.kind(kind), id...)
}

// comp builds kind + comp(v); with a trailing raw id appended it is an
// index entry, without it the prefix of every entry for v.
func (k keyer) comp(kind byte, v string) []byte {
	return appendComp(k.kind(kind), v)
}

func (k keyer) compID(kind byte, v, id string) []byte {
	return append(k.comp(kind, v), id...)
}

func (k keyer) anchor(side, id string) []byte {
	return append(k.id(kindAnchor, side), id...)
}

// tombstones is the prefix of the tenant's tombstones: the tenant prefix
// with nsTombstone in place of nsTenant.
func (k keyer) tombstones() []byte {
	b := make([]byte, 0, len(k.prefix)+64)
	b = append(b, nsTombstone)
	return append(b, k.prefix[1:]...)
}

func (k keyer) tombstone(groupID string) []byte {
	return append(k.tombstones(), groupID...)
}

// parseTombstone splits a tombstone key into tenant and group id.
func parseTombstone(key []byte) (tenant, groupID string, ok bool) {
	if len(key) < 2 || key[0] != nsTombstone {
		return "", "", false
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || uint64(len(key)-1-w) < n {
		return "", "", false
	}
	rest := key[1+w:]
	return string(rest[:n]), string(rest[n:]), n > 0 && len(rest) > int(n)
}

// countShard is the counter of id's bucket (see idBucket).
func (k keyer) countShard(kind byte, id string) []byte {
	return append(k.counts(kind), idBucket(id)...)
}

// memberCounts is the prefix of the member counter shards of groupID.
func (k keyer) memberCounts(groupID string) []byte {
	return k.comp(kindMemberCount, groupID)
}

// memberCountShard is the counter shard of groupID that memberID counts in.
func (k keyer) memberCountShard(groupID, memberID string) []byte {
	return append(k.memberCounts(groupID), memberShard(memberID))
}

func memberShard(memberID string) byte {
	h := fnv.New32a()
	h.Write([]byte(memberID))
	return byte(h.Sum32() % memberCountShards)
}

// counts is the prefix of the counters of kind (countUsers, countGroups).
func (k keyer) counts(kind byte) []byte {
	return append(k.kind(kindIDCount), kind)
}

func (k keyer) session(hash [32]byte) []byte {
	return append(k.kind(kindSession), hash[:]...)
}

func (k keyer) userSession(userID string, hash [32]byte) []byte {
	return append(k.comp(kindUserSess, userID), hash[:]...)
}

func (k keyer) record(kind, key string) []byte {
	return appendComp(k.comp(kindRecord, kind), key)
}

// fold is the case-insensitive form used by the userName, email and group
// displayName indexes.
func fold(s string) string { return strings.ToLower(s) }

func validID(id string) bool { return id != "" && len(id) <= maxIDLen }
