// Package storage owns Portcullis's domain types (users, groups, memberships,
// sessions, SCIM token records, audit events, short-lived keyed records) and
// the Store interface every backend implements. The conformance suite in
// storage/storagetest pins down the behaviour the rest of the gateway relies
// on, so a shared backend can later replace the embedded Badger one.
//
// Every read and write is scoped to one tenant: tenants never see each
// other's data, and a backend keeps them apart by key prefix or schema.
package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors every backend returns, so callers can map them to protocol answers.
var (
	// ErrNotFound: the record does not exist in this tenant.
	ErrNotFound = errors.New("storage: not found")
	// ErrUniqueness: a unique attribute (a user's lower-cased userName, a
	// group's displayName is NOT unique) is already taken by another record.
	ErrUniqueness = errors.New("storage: uniqueness violation")
	// ErrConflict: the transaction kept conflicting with concurrent ones
	// and ran out of retries. Callers answer with a retryable error.
	ErrConflict = errors.New("storage: transaction conflict, retries exhausted")
	// ErrTooBig: the transaction holds more writes than the backend
	// accepts in one commit. The write that overflowed it returns
	// ErrTooBig, and so does Update, which then commits nothing even if
	// fn went on. The same change split into smaller transactions can
	// succeed; callers answer that the request is too large.
	ErrTooBig = errors.New("storage: transaction too big for the backend")
	// ErrUnavailable: the backend could not be reached (a shared
	// database down, a connection cut, a statement timed out). The
	// transaction did not commit, or, if the connection broke during the
	// commit, committed whole or not at all. Callers answer with a
	// retryable error (503 with Retry-After) rather than a 500.
	ErrUnavailable = errors.New("storage: backend unavailable")
)

// Source says where a user came from.
const (
	SourceSCIM   = "scim"   // pushed by the IdP over SCIM
	SourceJIT    = "jit"    // created at sign-in from the IdP's claims
	SourceGoogle = "google" // pulled from Google Workspace's Directory API (package directory)
	// SourceDirectory is unused: each pull source names itself (SourceGoogle).
	SourceDirectory = "directory"
	// SourceManual: created by an operator, or an IdP-managed user
	// converted when the IdP was disconnected. Its role is User.Role, set
	// by hand, not derived from groups; no IdP refreshes it.
	SourceManual = "manual"
)

// IdPManaged says whether a user (or group) of this source is managed by an
// IdP (SCIM, a directory pull, just-in-time sign-in), and so locked against
// manual changes.
func IdPManaged(source string) bool {
	switch source {
	case SourceSCIM, SourceJIT, SourceDirectory, SourceGoogle:
		return true
	}
	return false
}

// User is one person in a tenant. The typed fields are what the gateway
// indexes and reads on the hot path; Attributes holds the full SCIM
// representation the IdP sent (minus id, meta, groups and password), which
// only the SCIM layer interprets.
type User struct {
	ID          string `json:"id"`
	UserName    string `json:"userName"`
	ExternalID  string `json:"externalId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	// Emails are every email value of the user, primary first. They are
	// indexed lower-cased, so a sign-in can find the user by email.
	Emails []string `json:"emails,omitempty"`
	Active bool     `json:"active"`
	Source string   `json:"source"`
	// PasswordHash is a salted hash (never the plaintext) of a password a
	// SCIM client set. It is never returned over SCIM.
	PasswordHash string `json:"passwordHash,omitempty"`
	// Role is the role pinned by hand on a SourceManual user (one of the
	// tenant's roles); it wins over groups. Empty: the role follows the
	// user's groups like any other user's. Ignored for other sources.
	Role       string          `json:"role,omitempty"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
	Created    time.Time       `json:"created"`
	Modified   time.Time       `json:"modified"`
	// Version increases by one on every write of the record; the store sets
	// it. The SCIM layer derives ETags from it.
	Version int64 `json:"version"`
}

// PrimaryEmail is the first email, or "".
func (u *User) PrimaryEmail() string {
	if len(u.Emails) == 0 {
		return ""
	}
	return u.Emails[0]
}

// Group is one IdP group in a tenant. Members live in their own records (see
// Member), so a group of 10,000 members is not rewritten to add one.
type Group struct {
	ID          string          `json:"id"`
	DisplayName string          `json:"displayName"`
	ExternalID  string          `json:"externalId,omitempty"`
	Source      string          `json:"source"`
	Attributes  json.RawMessage `json:"attributes,omitempty"`
	Created     time.Time       `json:"created"`
	Modified    time.Time       `json:"modified"`
	Version     int64           `json:"version"`
}

// Member types.
const (
	MemberUser  = "User"
	MemberGroup = "Group"
)

// Member is one membership of a group.
type Member struct {
	ID   string `json:"value"`
	Type string `json:"type"` // MemberUser or MemberGroup
}

// SCIMToken is the record of a tenant's SCIM bearer token. Only the SHA-256
// of the 256-bit token is kept; ID is a public handle used as the audit actor.
type SCIMToken struct {
	ID      string    `json:"id"`
	Hash    [32]byte  `json:"hash"`
	Created time.Time `json:"created"`
}

// Session is a signed-in browser session. The cookie holds a random 256-bit
// id; the store keys the session by its SHA-256 (IDHash) only.
type Session struct {
	IDHash    [32]byte  `json:"idHash"`
	UserID    string    `json:"userId"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"lastSeen"`
	ExpiresAt time.Time `json:"expiresAt"` // absolute expiry
	// Protocol is "oidc" or "saml"; the fields below let sign-out reach
	// the IdP (RP-initiated logout, SAML Single Logout).
	Protocol     string `json:"protocol"`
	IDTokenHint  string `json:"idTokenHint,omitempty"`
	NameID       string `json:"nameId,omitempty"`
	NameIDFormat string `json:"nameIdFormat,omitempty"`
	SessionIndex string `json:"sessionIndex,omitempty"`
	// ClientAddr and UserAgent are the client's address and User-Agent at
	// sign-in, for an operator listing sessions; the signing-in code cuts
	// them to MaxClientAddrLen and MaxUserAgentLen bytes.
	ClientAddr string `json:"clientAddr,omitempty"`
	UserAgent  string `json:"userAgent,omitempty"`
}

// Bounds of Session.ClientAddr and Session.UserAgent.
const (
	MaxClientAddrLen = 64
	MaxUserAgentLen  = 256
)

// Mapping is a stored group mapping: the members of the group Group names
// (by id, externalId or displayName, as a map_group line) get Role. Stored
// mappings are changed at runtime by an operator; mappings in the
// configuration win over them for a group both name.
type Mapping struct {
	Group    string    `json:"group"`
	Role     string    `json:"role"`
	Modified time.Time `json:"modified"`
}

// MaxMappingGroupLen bounds Mapping.Group.
const MaxMappingGroupLen = 512

// Event is one audit event. It is written in the same transaction as the
// change it records.
//
// Ids stay the reference (names change, ids do not); ActorName and
// ResourceName are what a person reading the log needs next to them,
// as they were when the event was written. Events written before these
// fields existed have them empty.
type Event struct {
	ID    string    `json:"id"` // set by the store; sorts by time
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`  // e.g. EventUserCreated
	Actor string    `json:"actor"` // token id, "admin", user id, "system", "anonymous"
	// ActorName names the actor: the SCIM client's User-Agent for a
	// token id (which says which IdP is calling), the userName for a
	// user id, the client for an anonymous refusal.
	ActorName    string `json:"actorName,omitempty"`
	ResourceType string `json:"resourceType,omitempty"`
	ResourceID   string `json:"resourceId,omitempty"`
	// ResourceName names the resource: a user's userName, a group's
	// displayName.
	ResourceName string `json:"resourceName,omitempty"`
	Before       string `json:"before,omitempty"` // short summary
	After        string `json:"after,omitempty"`  // short summary
	Reason       string `json:"reason,omitempty"`
}

// Audit event types.
const (
	EventUserCreated     = "user.created"
	EventUserUpdated     = "user.updated"
	EventUserDeactivated = "user.deactivated"
	EventUserReactivated = "user.reactivated"
	EventUserDeleted     = "user.deleted"
	EventGroupCreated    = "group.created"
	EventGroupUpdated    = "group.updated"
	EventGroupDeleted    = "group.deleted"
	EventMemberAdded     = "group.member_added"
	EventMemberRemoved   = "group.member_removed"
	EventTokenCreated    = "token.created"
	EventTokenRotated    = "token.rotated"
	EventTokenDisabled   = "token.disabled"
	EventTokenRejected   = "token.rejected"
	EventSignIn          = "signin.succeeded"
	EventSignInRefused   = "signin.refused"
	EventSignOut         = "signout"
	EventJITUserCreated  = "user.jit_created"
	EventAccessDenied    = "access.denied"
	// EventSyncFailed: a pull from a directory (Google Workspace) failed;
	// Reason says why. Nothing else was changed by the failed part.
	EventSyncFailed = "sync.failed"

	// The operator's side (package operator).
	EventMappingChanged    = "mapping.changed"     // Before/After: "group=role" or ""
	EventIdPDisconnected   = "idp.disconnected"    // Reason: what was stopped, how many converted
	EventUserConverted     = "user.converted"      // an IdP-managed user made manual, role pinned
	EventUserAdopted       = "user.adopted"        // a manual user taken back by a SCIM push
	EventUserManualCreated = "user.manual_created" // an operator created a manual user
	EventUserRoleChanged   = "user.role_changed"   // an operator changed a manual user's role
	EventSessionEnded      = "session.ended"       // an operator ended sessions
	EventGroupDeclared     = "group.declared"      // an operator declared a claim group ahead of sign-in
)

// EventTypes lists every audit event type with what it means, in the
// order the README lists them. Listing refuses a type not in it, so a
// misspelt filter never silently matches nothing.
var EventTypes = []struct{ Type, Meaning string }{
	{EventUserCreated, "the IdP created a user over SCIM"},
	{EventJITUserCreated, "a user was created at their first sign-in (provisioning jit)"},
	{EventUserUpdated, "a user's attributes changed (SCIM PUT or PATCH, or new claims at sign-in)"},
	{EventUserDeactivated, "a user was set inactive: their sessions ended and they cannot sign in"},
	{EventUserReactivated, "an inactive user was set active again"},
	{EventUserDeleted, "a user was deleted, with their memberships and sessions"},
	{EventGroupCreated, "a group was created (over SCIM, or from a sign-in's groups claim)"},
	{EventGroupUpdated, "a group's displayName, externalId or members changed"},
	{EventGroupDeleted, "a group was deleted, with every membership of and in it"},
	{EventMemberAdded, "a user or group became a member of a group"},
	{EventMemberRemoved, "a user or group stopped being a member of a group"},
	{EventTokenCreated, "a SCIM token was issued to a tenant that had none (first, or after token.disabled)"},
	{EventTokenRotated, "a new SCIM token replaced the previous one, which stopped working"},
	{EventTokenDisabled, "the SCIM token was deleted: SCIM answers 401 until a new one is issued"},
	{EventTokenRejected, "SCIM requests with a missing or wrong token were refused (one event a minute, with counts)"},
	{EventSignIn, "a user signed in (OIDC or SAML) and a session began"},
	{EventSignInRefused, "a sign-in was refused (inactive, not provisioned, domain not allowed, replayed or invalid response)"},
	{EventSignOut, "a user signed out and their session ended"},
	{EventAccessDenied, "a signed-in user was refused a route (role or group missing), a user who lost access had their sessions ended, or requests were refused before sign-in (ambiguous paths, tunnels)"},
	{EventSyncFailed, "a pull from Google Workspace failed; nothing was deactivated or deleted by it"},
	{EventMappingChanged, "an operator set or removed a stored group mapping (before and after)"},
	{EventIdPDisconnected, "an operator disconnected the tenant's IdP: SCIM token gone, pull stopped, users converted"},
	{EventUserConverted, "an IdP-managed user became a manual user with their role pinned (disconnect)"},
	{EventUserAdopted, "a SCIM push took a manual user back (same id; the role follows groups again, before and after)"},
	{EventUserManualCreated, "an operator created a manual user"},
	{EventUserRoleChanged, "an operator changed a manual user's role"},
	{EventSessionEnded, "an operator ended sessions (one, a user's, or the tenant's)"},
	{EventGroupDeclared, "an operator declared a group by its claim value ahead of its first sign-in"},
}

// IsEventType says whether t is one of EventTypes.
func IsEventType(t string) bool {
	for _, e := range EventTypes {
		if e.Type == t {
			return true
		}
	}
	return false
}

// EventQuery selects audit events. Events come newest first.
type EventQuery struct {
	Types  []string  // empty: every type
	Since  time.Time // zero: no lower bound (inclusive)
	Until  time.Time // zero: no upper bound (exclusive)
	Before string    // cursor: only events with ID < Before ("" = from newest)
	Limit  int       // at most this many (backends cap it at 1000)
}

// Audit log retention defaults, for a tenant whose EventRetention is unset.
const (
	DefaultEventMaxAge    = 400 * 24 * time.Hour
	DefaultEventMaxEvents = 1_000_000
)

// EventRetention bounds a tenant's audit log. A store guarantees:
//   - an event older than MaxAge is never returned by Events, and is
//     deleted from disk by background pruning (at least hourly, and quiet
//     when idle);
//   - once an Update that appended events has returned, the tenant holds
//     at most MaxEvents events: the oldest are deleted first.
//
// MaxAge <= 0 means DefaultEventMaxAge; MaxEvents <= 0 means
// DefaultEventMaxEvents. There is no "keep forever": the log is bounded.
type EventRetention struct {
	MaxAge    time.Duration
	MaxEvents int
}

// WithDefaults fills zero (or negative) fields with the defaults.
func (r EventRetention) WithDefaults() EventRetention {
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultEventMaxAge
	}
	if r.MaxEvents <= 0 {
		r.MaxEvents = DefaultEventMaxEvents
	}
	return r
}

// Store is a backend. It is safe for concurrent use.
type Store interface {
	// View runs fn in a read-only, consistent snapshot of one tenant.
	View(ctx context.Context, tenant string, fn func(ReadTx) error) error
	// Update runs fn in a serialisable read-write transaction of one
	// tenant and commits durably: when Update returns nil the change is on
	// disk. On a conflict with a concurrent transaction, fn is run again
	// (so fn must not have effects outside tx), up to a bounded number of
	// times, after which Update returns ErrConflict. An error from fn
	// aborts the transaction and is returned as is.
	Update(ctx context.Context, tenant string, fn func(Tx) error) error
	// Generation is a counter that increases after every committed Update
	// of the tenant that changed something a cache of identity or SCIM
	// state relies on. The store decides this from what the transaction
	// wrote, never the caller:
	//
	//   - bumps: PutUser, DeleteUser, PutGroup, DeleteGroup, an AddMember
	//     or RemoveMember that changed a membership, PutSCIMToken,
	//     DeleteSCIMToken, a DeleteSession or DeleteSessionsOf that ended a
	//     session, PutMapping, a DeleteMapping that deleted one;
	//   - does not bump: PutSession (a new session or a LastSeen touch),
	//     PutRecord, DeleteRecord, AppendEvent, and the store's own
	//     background work (sweeping a deleted group's memberships, pruning
	//     events), which changes nothing a reader can see.
	//
	// Aborted, refused and read-only transactions never bump it. Caches of
	// the tenant's data compare it to know they are stale without
	// subscribing to anything; a later change feed across replicas keeps
	// the same rule (the store classifies what a transaction wrote).
	Generation(tenant string) uint64
	// SetEventRetention sets how long the tenant's audit events are kept
	// and how many at most (zero fields take DefaultEventMaxAge and
	// DefaultEventMaxEvents, which also apply to a tenant never set). See
	// EventRetention for what the store guarantees.
	SetEventRetention(tenant string, r EventRetention) error
	Close() error
}

// ReadTx is what a transaction can read.
type ReadTx interface {
	GetUser(id string) (*User, error)
	// UserByUserName matches case-insensitively, through an index.
	UserByUserName(userName string) (*User, error)
	// UsersByExternalID and UsersByEmail use indexes; email matches
	// case-insensitively. Results are in id order.
	UsersByExternalID(externalID string) ([]*User, error)
	UsersByEmail(email string) ([]*User, error)
	// ScanUsers calls fn for each user in id order, starting after the id
	// `after` ("" = from the first), until fn returns false or an error.
	ScanUsers(after string, fn func(*User) (bool, error)) error
	CountUsers() (int, error)
	// UserIDAt is the id of the user at position (0-based) in id order,
	// the order of ScanUsers; storage.ErrNotFound when there are not that
	// many (or position < 0). SCIM paging jumps to startIndex with it, so
	// a backend makes it cheaper than scanning position users.
	UserIDAt(position int) (string, error)
	// UserPage is ScanUsers for the first limit users after the id
	// `after` ("" = from the first) together with GroupsOfEach of them:
	// the users in id order, and for each user in a group the ids of its
	// groups, in id order (the map is never nil). A SCIM page of users
	// reads them so, which a shared store answers with one query.
	UserPage(after string, limit int) ([]*User, map[string][]string, error)

	GetGroup(id string) (*Group, error)
	// GetGroups reads several groups at once (one query on a shared
	// store); an unknown id is absent from the map.
	GetGroups(ids []string) (map[string]*Group, error)
	GroupsByDisplayName(displayName string) ([]*Group, error) // case-insensitive
	GroupsByExternalID(externalID string) ([]*Group, error)
	ScanGroups(after string, fn func(*Group) (bool, error)) error
	CountGroups() (int, error)
	// GroupIDAt is UserIDAt for groups.
	GroupIDAt(position int) (string, error)

	// Members calls fn for each member of the group in member-id order.
	Members(groupID string, fn func(Member) (bool, error)) error
	IsMember(groupID, memberID string) (bool, error)
	CountMembers(groupID string) (int, error)
	// GroupsOf lists the ids of the groups the user or group is a direct
	// member of, in id order.
	GroupsOf(memberID string) ([]string, error)
	// GroupsOfEach is GroupsOf for several members at once: for each
	// member id, the ids of the groups it is a direct member of, in id
	// order; a member in none (or unknown) is absent from the map. A page
	// of users reads its users' groups with one read, not one per user.
	GroupsOfEach(memberIDs []string) (map[string][]string, error)

	GetSCIMToken() (*SCIMToken, error)
	// GetSession finds a session by the SHA-256 of its id.
	GetSession(idHash [32]byte) (*Session, error)
	SessionsOf(userID string) ([]*Session, error)

	// StoredMappings lists the stored group mappings in Group order.
	StoredMappings() ([]Mapping, error)

	// GetRecord reads a short-lived keyed record (see Tx.PutRecord).
	GetRecord(kind, key string) ([]byte, error)

	// Events lists audit events newest first.
	Events(q EventQuery) ([]Event, error)
}

// Tx is what a read-write transaction can do in addition to reading.
type Tx interface {
	ReadTx
	// PutUser creates or replaces the user with u.ID, keeping every index
	// current. It sets Version (old+1, or 1) and, on create, Created if
	// zero. ErrUniqueness if another user holds the same userName
	// (case-insensitive).
	PutUser(u *User) error
	// DeleteUser removes the user, its memberships and its sessions.
	DeleteUser(id string) error
	// PutGroup creates or replaces the group (not its members).
	PutGroup(g *Group) error
	// DeleteGroup removes the group and every membership of and in it.
	// However many members the group has, the transaction stays small: a
	// backend may remove the memberships later, in batches, but every read
	// (this transaction's included) acts as if they were gone as soon as
	// DeleteGroup returns, and the removal completes even across a crash.
	// Ids are not meant to be reused (they are UUIDs); a group created
	// again under a deleted id starts with no members, but may fail with
	// ErrTooBig while many memberships of the old one await removal.
	DeleteGroup(id string) error
	// AddMember adds a membership; added is false if it was already there.
	// It does not touch the group record: callers bump Modified/Version
	// through PutGroup when the SCIM resource changed.
	AddMember(groupID string, m Member) (added bool, err error)
	// RemoveMember removes a membership; removed is false if it was not there.
	RemoveMember(groupID, memberID string) (removed bool, err error)

	PutSCIMToken(t *SCIMToken) error
	DeleteSCIMToken() error

	PutSession(s *Session) error
	DeleteSession(idHash [32]byte) error
	// DeleteSessionsOf ends every session of the user and says how many.
	DeleteSessionsOf(userID string) (int, error)

	// PutMapping creates or replaces the stored mapping of m.Group (the
	// exact string: callers pick the form they store). It moves Generation.
	PutMapping(m Mapping) error
	// DeleteMapping removes the stored mapping of group; deleted is false
	// when there was none. Deleting one moves Generation.
	DeleteMapping(group string) (deleted bool, err error)

	// PutRecord stores a short-lived keyed record that disappears after
	// ttl (ttl <= 0: kept until deleted). Uses: SAML request ids awaiting
	// a response, the assertion replay cache, generated SP keys.
	PutRecord(kind, key string, value []byte, ttl time.Duration) error
	DeleteRecord(kind, key string) error

	// AppendEvent records an audit event; the store sets ID (time-sortable)
	// and Time if zero.
	AppendEvent(e Event) error
	// AppendEventID is AppendEvent returning the id the store gave the
	// event, so a page can show it to a person as a reference for the
	// helpdesk. The id is final once the transaction commits.
	AppendEventID(e Event) (id string, err error)
}

// NewID returns a random RFC 4122 version 4 UUID.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("storage: crypto/rand failed: %v", err))
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// NewSecret returns a random 256-bit secret, URL-safe hex encoded, and its
// SHA-256, which is all a store may keep of it.
func NewSecret() (plaintext string, hash [32]byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("storage: crypto/rand failed: %v", err))
	}
	plaintext = hex.EncodeToString(b[:])
	return plaintext, HashSecret(plaintext)
}

// HashSecret is the at-rest form of a token or session id. Secrets of the
// usual size (session ids, tokens: 64 hex digits) are copied to a stack
// buffer first, so hashing the session id of every proxied request does
// not allocate ([]byte(plaintext) would, above 32 bytes).
func HashSecret(plaintext string) [32]byte {
	var buf [128]byte
	if len(plaintext) <= len(buf) {
		n := copy(buf[:], plaintext)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(plaintext))
}

// Expired says whether the session is over at now: past its absolute expiry,
// or idle (no request seen) for longer than idle (idle <= 0: no idle limit).
// Every reader of sessions uses this one rule.
func (s *Session) Expired(now time.Time, idle time.Duration) bool {
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
		return true
	}
	return idle > 0 && now.Sub(s.LastSeen) > idle
}

// RecordLastSignIn is the kind of the record (keyed by user id) of a
// user's last sign-in, written with the session (a record, so it moves no
// Generation); the value is the time in RFC 3339 with nanoseconds.
const RecordLastSignIn = "user.lastsignin"

// LastSignIn reads the user's last sign-in record (ok false: none).
func LastSignIn(tx ReadTx, userID string) (at time.Time, ok bool, err error) {
	b, err := tx.GetRecord(RecordLastSignIn, userID)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	at, perr := time.Parse(time.RFC3339Nano, string(b))
	return at, perr == nil, nil
}
