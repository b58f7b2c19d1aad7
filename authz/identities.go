package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// SessionResolver finds the signed-in session a request carries. Package
// sso's Service implements it (the Caddy wiring may adapt it); tests
// implement it over a real store.
type SessionResolver interface {
	// SessionKey returns storage.HashSecret of the session id the request
	// carries (its cookie), without reading the store; ok is false when
	// the request carries none. It is the cache key of the hot path.
	SessionKey(r *http.Request) (idHash [32]byte, ok bool)
	// Lookup returns the request's live session (not expired by
	// storage.Session.Expired) and its user as stored, active or not, and
	// moves the session's LastSeen forward in the store when it is a
	// minute old or more. No cookie, an unknown or expired session, or a
	// session whose user is gone give a nil session and a nil error (an
	// error wrapping storage.ErrNotFound is read the same way). A session
	// and user returned with an error are used as if the error were nil
	// (so sso's ErrUserInactive works as is). Any other error means the
	// store failed.
	Lookup(r *http.Request) (*storage.Session, *storage.User, error)
	// IdleTimeout is the idle limit Lookup passes to Session.Expired
	// (0: none). The cache applies the same rule on every hit.
	IdleTimeout() time.Duration
}

// StrayCookieExpirer is implemented by a SessionResolver that can tell a
// browser to drop session cookies it must not keep: several cookies of the
// session's name on one request mean one was planted for a longer path or a
// parent domain, and the resolver treats such a request as signed out. The
// gate calls it whenever it sends a request to sign in, so the planted
// cookie does not undo the sign-in that follows.
type StrayCookieExpirer interface {
	ExpireStrayCookies(w http.ResponseWriter, r *http.Request)
}

// IdentitiesConfig configures one tenant's Identities.
type IdentitiesConfig struct {
	Tenant   string
	Store    storage.Store
	Sessions SessionResolver
	Roles    Roles
	Logger   *zap.Logger
	// CacheSize bounds the number of cached sessions (default 10000).
	CacheSize int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Observer, when set, is told of cache hits and loads and of sessions
	// and live requests that lost access (for metrics).
	Observer IdentitiesObserver
	// StaleIfError, with a store shared between replicas
	// (storage.ChangeFreshness), is how long cached identities keep being
	// served while the store is unreachable (see staleiferror.go); 0:
	// never.
	StaleIfError time.Duration
	// Freshness reports how far behind the store's change feed is (nil:
	// Store's own, if it implements storage.ChangeFreshness, else the
	// store is always current).
	Freshness storage.ChangeFreshness
}

// DefaultCacheSize is the number of sessions cached unless configured.
const DefaultCacheSize = 10000

// Identities turns requests into identities for one tenant: session, user,
// groups and role, through a cache every store write invalidates. Every
// Gate of the tenant shares one, so the cache and the audit rate limit are
// per tenant, not per route.
type Identities struct {
	tenant   string
	store    storage.Store
	sessions SessionResolver
	roles    Roles
	logger   *zap.Logger
	now      func() time.Time
	max      int
	observer IdentitiesObserver // nil: nothing reported

	freshness    storage.ChangeFreshness // nil: a store that is always current
	staleIfError time.Duration

	mu      sync.RWMutex
	entries map[[32]byte]*entry

	// refs are the group references the tenant's configuration names:
	// the mappings' first, then each gate's allow_groups. An entry records,
	// for each, whether the user is in a group it names.
	refsMu   sync.Mutex
	refs     []string
	refIndex map[string]int
	// nrefs is len(refs), read on the hot path: an entry built before a
	// gate registered its refs lacks them and is reloaded.
	nrefs atomic.Int64
	// table caches the resolution of refs to group ids for one store
	// generation: it changes only when the tenant's data does.
	table atomic.Pointer[refTable]
	// roleTable binds config and stored mappings to groups for one store
	// generation (stored mapping writes move it).
	roleTable atomic.Pointer[cachedRoleTable]

	audits auditLimiter
	// refusalBudget bounds the records of anonymous refusals per tenant.
	refusalBudget auditBudget

	// live are the requests in flight through the tenant's gates, ended
	// when their session loses access (see liveRequests).
	live liveRequests
}

type refTable struct {
	gen    uint64
	groups [][]string // by ref index: the ids of the groups the ref names
}

// NewIdentities checks the configuration and returns the tenant's resolver.
func NewIdentities(cfg IdentitiesConfig) (*Identities, error) {
	if cfg.Tenant == "" || cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("authz: tenant, store and session resolver are required")
	}
	if err := cfg.Roles.Validate(); err != nil {
		return nil, fmt.Errorf("authz: tenant %q roles: %w", cfg.Tenant, err)
	}
	ids := &Identities{
		tenant:   cfg.Tenant,
		store:    cfg.Store,
		sessions: cfg.Sessions,
		roles:    cfg.Roles,
		logger:   cfg.Logger,
		now:      cfg.Now,
		max:      cfg.CacheSize,
		observer: cfg.Observer,
		entries:  make(map[[32]byte]*entry),

		staleIfError: max(cfg.StaleIfError, 0),
		refIndex:     make(map[string]int),
	}
	if ids.logger == nil {
		ids.logger = zap.NewNop()
	}
	if ids.now == nil {
		ids.now = time.Now
	}
	ids.freshness = cfg.Freshness
	if ids.freshness == nil {
		ids.freshness, _ = cfg.Store.(storage.ChangeFreshness)
	}
	if ids.max <= 0 {
		ids.max = DefaultCacheSize
	}
	ids.roles.Levels = append([]string(nil), cfg.Roles.Levels...)
	ids.roles.Mappings = append([]GroupMapping(nil), cfg.Roles.Mappings...)
	// The mappings' references are registered so UnresolvedGroups warns
	// about them; the role itself is resolved by a RoleTable.
	for _, m := range ids.roles.Mappings {
		ids.refIndexOf(m.Group)
	}
	return ids, nil
}

// Tenant is the tenant the identities belong to.
func (ids *Identities) Tenant() string { return ids.tenant }

// Roles is a copy of the tenant's roles.
func (ids *Identities) Roles() Roles {
	r := ids.roles
	r.Levels = append([]string(nil), r.Levels...)
	r.Mappings = append([]GroupMapping(nil), r.Mappings...)
	return r
}

// refIndexOf registers a group reference and returns its index. Gates
// register theirs when built, before they serve.
func (ids *Identities) refIndexOf(ref string) int {
	ids.refsMu.Lock()
	defer ids.refsMu.Unlock()
	if i, ok := ids.refIndex[ref]; ok {
		return i
	}
	i := len(ids.refs)
	ids.refs = append(ids.refs, ref)
	ids.refIndex[ref] = i
	ids.nrefs.Store(int64(len(ids.refs)))
	return i
}

func (ids *Identities) refList() []string {
	ids.refsMu.Lock()
	defer ids.refsMu.Unlock()
	return ids.refs[:len(ids.refs):len(ids.refs)]
}

// Identity is who a request comes from, as the gateway passes it on. A
// cached Identity is shared by concurrent requests: treat it as read-only.
type Identity struct {
	Tenant   string
	UserID   string // the store's id of the user
	UserName string
	Email    string // primary email
	Name     string // display name
	// Groups are the display names of the groups the user is a direct
	// member of, sorted; GroupIDs their ids, sorted.
	Groups   []string
	GroupIDs []string
	// Role is the resolved level ("" when the tenant has no roles) and
	// RoleLevel its index in Roles.Levels (-1 when none).
	Role      string
	RoleLevel int
	// GroupsHeader is EncodeGroups(Groups), computed once.
	GroupsHeader string
	// SessionExpires is the absolute expiry of the session.
	SessionExpires time.Time

	placeholders []Placeholder
	// placeholderFunc is PlaceholderValue bound once (a method value made
	// per request would allocate).
	placeholderFunc func(key string) (any, bool)
}

// Placeholder is a name and value a Caddy handler can put in its replacer.
// The values are boxed once per cached identity, so setting them costs no
// allocation per request.
type Placeholder struct {
	Name  string
	Value any
}

// Placeholder names set for every identified request. http.auth.user.id is
// Caddy's convention (basic_auth sets it, access logs read it as user_id)
// and holds the same value as the user header.
const (
	PlaceholderAuthUserID  = "http.auth.user.id"
	PlaceholderTenant      = "portcullis.tenant"
	PlaceholderUserID      = "portcullis.user.id"
	PlaceholderUserName    = "portcullis.user.name"
	PlaceholderEmail       = "portcullis.user.email"
	PlaceholderDisplayName = "portcullis.user.display_name"
	PlaceholderGroups      = "portcullis.user.groups"
	PlaceholderRole        = "portcullis.user.role"
)

// Placeholders lists the identity as Caddy placeholders (see the
// Placeholder* names). The slice is shared: do not modify it.
func (id *Identity) Placeholders() []Placeholder { return id.placeholders }

// PlaceholderValue answers one placeholder name of the identity (the
// Placeholder* names) with the value Placeholders lists for it.
func (id *Identity) PlaceholderValue(key string) (any, bool) {
	for i := range id.placeholders {
		if id.placeholders[i].Name == key {
			return id.placeholders[i].Value, true
		}
	}
	return nil, false
}

// PlaceholderFunc is PlaceholderValue as a function made once per cached
// identity, so a Caddy handler can register one replacer provider per
// request (Replacer.Map) without allocating, instead of eight Set calls
// that grow the replacer's map. nil for an identity without placeholders.
func (id *Identity) PlaceholderFunc() func(key string) (any, bool) { return id.placeholderFunc }

// buildPlaceholders boxes the values once. Each is encoded as its identity
// header is (headerSafe, EncodeGroups): configs put placeholders in headers
// (`header_up X-Forwarded-User {http.auth.user.id}`), and a control
// character there would make the proxy refuse the request.
func (id *Identity) buildPlaceholders() {
	id.placeholders = []Placeholder{
		{PlaceholderAuthUserID, headerSafe(id.UserName)},
		{PlaceholderTenant, headerSafe(id.Tenant)},
		{PlaceholderUserID, headerSafe(id.UserID)},
		{PlaceholderUserName, headerSafe(id.UserName)},
		{PlaceholderEmail, headerSafe(id.Email)},
		{PlaceholderDisplayName, headerSafe(id.Name)},
		{PlaceholderGroups, id.GroupsHeader},
		{PlaceholderRole, headerSafe(id.Role)},
	}
	id.placeholderFunc = id.PlaceholderValue
}

type identityContextKey struct{}

// IdentityFromContext returns the identity Gate.Handler attached to a
// request's context, if any.
func IdentityFromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityContextKey{}).(*Identity)
	return id, ok && id != nil
}

// ContextWithIdentity returns ctx carrying id.
func ContextWithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityContextKey{}, id)
}

// entry is one cached session.
type entry struct {
	gen uint64
	// session is a copy taken when the entry was loaded. Expiry is checked
	// against it on every hit; a write to the session (LastSeen) changes
	// the generation and reloads it.
	session  storage.Session
	identity Identity
	// inRef[i]: the user is a direct member of a group refs[i] names.
	inRef []bool
	// values are the header values by slot (assertion slot left empty).
	values [slotCount]string

	assertionMu sync.Mutex
	assertions  []cachedAssertion

	// eventID, on the entry of a refused caller (inactive, unmapped), is
	// the audit event that recorded the end of their sessions ("" when
	// this request did not end any). Such an entry is never cached and
	// carries only the names a page shows.
	eventID string
}

// refusedEntry is what the gate shows of a caller it refuses although the
// session was theirs: who they are, and the event that recorded it.
func (ids *Identities) refusedEntry(user *storage.User, eventID string) *entry {
	return &entry{eventID: eventID, identity: Identity{
		Tenant: ids.tenant, UserID: user.ID, UserName: user.UserName, Email: user.PrimaryEmail(), Name: user.DisplayName,
		RoleLevel: -1,
	}}
}

type cachedAssertion struct {
	audience  string
	token     string
	issuedAt  time.Time
	refreshAt time.Time
}

// outcome is what resolving a request's session came to.
type outcome int

const (
	// identified: e holds the identity.
	identified outcome = iota
	// anonymous: the request carries no live session.
	anonymous
	// inactive: the user is deactivated in the IdP; sessions were ended.
	inactive
	// unmapped: the tenant requires a mapped group and the user is in
	// none; sessions were ended.
	unmapped
)

// resolve finds the identity of r, from the cache when it is current.
func (ids *Identities) resolve(r *http.Request) (*entry, outcome, error) {
	key, ok := ids.sessions.SessionKey(r)
	if !ok {
		return nil, anonymous, nil
	}
	gen := ids.store.Generation(ids.tenant)
	ids.mu.RLock()
	e := ids.entries[key]
	ids.mu.RUnlock()
	if e != nil && e.gen == gen && int64(len(e.inRef)) == ids.nrefs.Load() && ids.trustsCache() {
		now, idle := ids.now(), ids.sessions.IdleTimeout()
		if e.session.Expired(now, idle) {
			if ids.observer != nil {
				ids.observer.CacheHit()
			}
			ids.forget(key)
			return nil, anonymous, nil
		}
		if idle <= 0 || now.Sub(e.session.LastSeen) < lastSeenRefresh(idle) {
			if ids.observer != nil {
				ids.observer.CacheHit()
			}
			return e, identified, nil
		}
		// The session is in use but its LastSeen is getting old: go
		// through Lookup, which moves it forward in the store, or the
		// idle rule would end a session that is busy but served only
		// from the cache.
	}
	if ids.observer == nil {
		loaded, out, err := ids.load(r, key, gen)
		if err != nil && ids.servesStale(e, gen, err) {
			return e, identified, nil
		}
		return loaded, out, err
	}
	ids.observer.CacheLoad()
	loaded, out, err := ids.load(r, key, gen)
	if err != nil && ids.servesStale(e, gen, err) {
		return e, identified, nil
	}
	if e != nil && err == nil && out != identified {
		// The cache knew whose session this was; now it lets no one in.
		ids.observer.SessionRefused(e.identity.UserID)
	}
	return loaded, out, err
}

// lastSeenRefresh is how old a cached session's LastSeen may get before the
// next request goes through Lookup again: a tenth of the idle limit, at
// least a minute (sso's Lookup writes LastSeen at most once a minute, so
// less would only miss the cache) and at most ten minutes. The idle rule is
// thus exact to within that much.
func lastSeenRefresh(idle time.Duration) time.Duration {
	return min(max(idle/10, time.Minute), 10*time.Minute)
}

func (ids *Identities) forget(key [32]byte) {
	ids.mu.Lock()
	delete(ids.entries, key)
	ids.mu.Unlock()
}

// load reads session, user and groups from the store. gen was read before
// any of it, so if a write lands meanwhile the entry is already stale and
// the next request reloads it.
func (ids *Identities) load(r *http.Request, key [32]byte, gen uint64) (*entry, outcome, error) {
	ctx := r.Context()
	sess, user, err := ids.sessions.Lookup(r)
	switch {
	case err == nil:
	case sess != nil && user != nil:
		// A resolver may say why it returns a session it thinks the
		// caller should not use (sso's ErrUserInactive); the gate decides
		// from the user itself.
		err = nil
	case errors.Is(err, storage.ErrNotFound):
		sess, err = nil, nil
	}
	if err != nil {
		return nil, anonymous, fmt.Errorf("looking up the session: %w", err)
	}
	if sess == nil || user == nil {
		ids.forget(key)
		return nil, anonymous, nil
	}
	if !user.Active {
		ids.forget(key)
		eventID, err := ids.endSessions(ctx, user, "user is inactive")
		if err != nil {
			return nil, inactive, err
		}
		return ids.refusedEntry(user, eventID), inactive, nil
	}

	e := &entry{gen: gen, session: *sess}
	refs := ids.refList()
	err = ids.store.View(ctx, ids.tenant, func(tx storage.ReadTx) error {
		table, err := ids.refTableFor(tx, gen, refs)
		if err != nil {
			return err
		}
		roles, err := ids.roleTableFor(tx, gen)
		if err != nil {
			return err
		}
		return ids.fill(tx, e, user, table, roles)
	})
	if err != nil {
		return nil, anonymous, fmt.Errorf("reading the groups of user %s: %w", user.ID, err)
	}
	if e.identity.RoleLevel < 0 && ids.roles.RequireMappedGroup {
		ids.forget(key)
		eventID, err := ids.endSessions(ctx, user, "user is in no mapped group (require_mapped_group)")
		if err != nil {
			return nil, unmapped, err
		}
		return ids.refusedEntry(user, eventID), unmapped, nil
	}
	if sess.IDHash != key {
		// The resolver's Lookup and SessionKey disagree: serve the
		// request but do not cache under a key the session is not.
		ids.logger.Warn("session resolver returned a session for another key; not caching",
			zap.String("tenant", ids.tenant))
		return e, identified, nil
	}
	ids.cache(key, e)
	return e, identified, nil
}

// refTableFor returns the resolution of refs for gen, computing it in tx
// when the cached one is for another generation or fewer refs.
func (ids *Identities) refTableFor(tx storage.ReadTx, gen uint64, refs []string) (*refTable, error) {
	if t := ids.table.Load(); t != nil && t.gen == gen && len(t.groups) == len(refs) {
		return t, nil
	}
	t := &refTable{gen: gen, groups: make([][]string, len(refs))}
	for i, ref := range refs {
		groups, err := GroupRef(tx, ref)
		if err != nil {
			return nil, err
		}
		t.groups[i] = groups
	}
	ids.table.Store(t)
	return t, nil
}

// fill computes the identity of user into e.
func (ids *Identities) fill(tx storage.ReadTx, e *entry, user *storage.User, table *refTable, roles *RoleTable) error {
	// The groups, then their records in one read (two queries on a
	// shared store, not one per group).
	each, err := tx.GroupsOfEach([]string{user.ID})
	if err != nil {
		return err
	}
	groupIDs := each[user.ID]
	records, err := tx.GetGroups(groupIDs)
	if err != nil {
		return err
	}
	member := make(map[string]bool, len(groupIDs))
	names := make([]string, 0, len(groupIDs))
	ownIDs := make([]string, 0, len(groupIDs))
	for _, gid := range groupIDs {
		g := records[gid]
		if g == nil {
			continue // deleted under a concurrent write; the generation moved
		}
		member[g.ID] = true
		ownIDs = append(ownIDs, g.ID)
		names = append(names, g.DisplayName)
	}
	sort.Strings(names)
	sort.Strings(ownIDs)

	e.inRef = make([]bool, len(table.groups))
	for i, groups := range table.groups {
		for _, gid := range groups {
			if member[gid] {
				e.inRef[i] = true
				break
			}
		}
	}
	rr := roles.Resolve(user, ownIDs)
	level, role := rr.Level, rr.Role

	e.identity = Identity{
		Tenant:         ids.tenant,
		UserID:         user.ID,
		UserName:       user.UserName,
		Email:          user.PrimaryEmail(),
		Name:           displayName(user),
		Groups:         names,
		GroupIDs:       ownIDs,
		Role:           role,
		RoleLevel:      level,
		GroupsHeader:   EncodeGroups(names),
		SessionExpires: e.session.ExpiresAt,
	}
	e.identity.buildPlaceholders()
	e.values = [slotCount]string{
		slotUser:   headerSafe(e.identity.UserName),
		slotEmail:  headerSafe(e.identity.Email),
		slotName:   headerSafe(e.identity.Name),
		slotGroups: e.identity.GroupsHeader,
		slotRole:   e.identity.Role,
	}
	return nil
}

// displayName is the user's displayName, or the SCIM name the IdP sent
// (formatted, else given and family name) when it sent no displayName, as
// Okta does by default.
func displayName(u *storage.User) string {
	if u.DisplayName != "" || len(u.Attributes) == 0 {
		return u.DisplayName
	}
	var attrs struct {
		Name struct {
			Formatted  string `json:"formatted"`
			GivenName  string `json:"givenName"`
			FamilyName string `json:"familyName"`
		} `json:"name"`
	}
	if json.Unmarshal(u.Attributes, &attrs) != nil {
		return ""
	}
	if attrs.Name.Formatted != "" {
		return attrs.Name.Formatted
	}
	return strings.TrimSpace(attrs.Name.GivenName + " " + attrs.Name.FamilyName)
}

// headerSafe replaces the characters HTTP forbids in a field value (control
// characters other than tab) with U+FFFD and trims surrounding spaces, so a
// hostile userName or display name can neither break the request nor be
// dropped by the proxy. Names the IdP sends are normally clean, so this
// returns s itself.
func headerSafe(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7F {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.Map(func(r rune) rune {
			if (r < 0x20 && r != '\t') || r == 0x7F {
				return '\uFFFD'
			}
			return r
		}, s)
	}
	return strings.Trim(s, " \t")
}

// cache caches e under key, evicting an arbitrary entry when full (Go's map
// iteration order is randomised, so this is random eviction: cheap, and
// good enough since a miss costs one store read).
func (ids *Identities) cache(key [32]byte, e *entry) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if _, ok := ids.entries[key]; !ok && len(ids.entries) >= ids.max {
		for k := range ids.entries {
			delete(ids.entries, k)
			break
		}
	}
	ids.entries[key] = e
}

// CacheLen is the number of cached sessions.
func (ids *Identities) CacheLen() int {
	ids.mu.RLock()
	defer ids.mu.RUnlock()
	return len(ids.entries)
}

// endSessions ends every session of a user who has lost access and records
// why. Concurrent requests of the same user all get here; the store
// serialises them and only the one that ended sessions writes the event,
// whose id it returns.
func (ids *Identities) endSessions(ctx context.Context, user *storage.User, reason string) (eventID string, err error) {
	err = ids.store.Update(context.WithoutCancel(ctx), ids.tenant, func(tx storage.Tx) error {
		eventID = ""
		n, err := tx.DeleteSessionsOf(user.ID)
		if err != nil || n == 0 {
			return err
		}
		eventID, err = tx.AppendEventID(storage.Event{
			Type:         storage.EventAccessDenied,
			Actor:        "system",
			ResourceType: "User",
			ResourceID:   user.ID,
			ResourceName: user.UserName,
			Before:       user.UserName,
			Reason:       fmt.Sprintf("%s: %d session(s) ended", reason, n),
		})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ending the sessions of user %s: %w", user.ID, err)
	}
	ids.logger.Info("access refused; sessions ended",
		zap.String("tenant", ids.tenant), zap.String("user_id", user.ID), zap.String("reason", reason))
	return eventID, nil
}

// UnresolvedGroups lists the group references of the configuration
// (map_group lines and every gate's allow_groups) that name no group in the
// tenant now, so the Caddy wiring can warn about a typo at start-up. It is
// not an error: the IdP may not have pushed the group yet.
func (ids *Identities) UnresolvedGroups(ctx context.Context) ([]string, error) {
	var missing []string
	refs := ids.refList()
	err := ids.store.View(ctx, ids.tenant, func(tx storage.ReadTx) error {
		missing = missing[:0]
		for _, ref := range refs {
			groups, err := GroupRef(tx, ref)
			if err != nil {
				return err
			}
			if len(groups) == 0 {
				missing = append(missing, ref)
			}
		}
		return nil
	})
	return missing, err
}
