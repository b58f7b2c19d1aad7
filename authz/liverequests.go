package authz

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// A request that passed a gate lives on while its handler runs: a
// WebSocket tunnel, a server-sent event stream or a long poll can last for
// hours. The gate checked the session once, when the request arrived; the
// live-request registry keeps checking for as long as the request lasts,
// and ends it when the session loses access: the user deactivated or
// deleted, the session signed out or past its absolute expiry, the role
// below the route's `require`, no longer in the route's `allow_groups`, or
// (with require_mapped_group) in no mapped group.
//
// Ending a request cancels its context, which stops the proxy's upstream
// request and the stream it relays, and closes a hijacked (upgraded)
// connection. On HTTP/2 the server cancels the context itself: ending
// sets the read and write deadlines of the request's stream (extended
// CONNECT WebSockets among them) in the past, so the stream is reset at
// once even when neither side is sending, and net/http cancels the
// request's context. That costs the request nothing up front; a
// cancellable context of our own (context.WithCancel) costs two
// allocations per request and is made where deadlines are not known to
// end the request alone: HTTP/3, a writer without deadlines, and HTTP/1
// (see track: its deadlines belong to the connection, not the request).
//
// The registry's watcher runs only while requests are live, and wakes
// every liveCheckInterval: it compares the store's generation with the one
// it last checked at (any write that may change access moves it) and
// re-checks every live session when it moved, and it checks absolute
// expiry on every tick. So a revocation ends the tenant's live requests
// within liveCheckInterval plus one store read per live session.

// liveCheckInterval is how often the watcher looks for a revocation.
const liveCheckInterval = 100 * time.Millisecond

// errRequestRevoked is what a hijack answers when the session lost access
// before the connection was handed over.
var errRequestRevoked = errors.New("authz: the session lost access to this route")

// liveRequest is one request in flight through a gate on behalf of a
// session. It is allocated once per request and holds what the request
// needs besides (the identity header values, the context the handler gets),
// so following a request costs one allocation of ours; it is never reused,
// since handlers and their goroutines may hold the context after they
// return.
type liveRequest struct {
	key    [32]byte
	gate   *Gate
	userID string // whose session, for the observer
	// gen is the store generation the request's access was last checked
	// at: first the one its identity was read at (which may be older than
	// the store's by the time the request is registered), then the one of
	// the watcher's last check. Only the watcher reads or moves it after
	// registration.
	gen     uint64
	expires time.Time // the session's absolute expiry (zero: none)
	// cancel cancels the handler's context when deadlines do not end the
	// request (nil when they do: HTTP/2).
	cancel context.CancelFunc
	// w is the writer the gate was given, for the deadlines.
	w http.ResponseWriter
	// deadlines says that the request ends by the deadlines of w: its
	// HTTP/2 stream.
	deadlines bool

	// values backs the identity headers of the request (one array per
	// request: handlers such as Caddy's header replace edit values in
	// place, so they cannot be shared between requests).
	values [slotCount]string
	// ctx is the handler's context: cancelled when the session loses
	// access, and carrying the identity (IdentityFromContext).
	ctx identityContext
	// writer is the handler's writer (see liveWriter).
	writer liveWriter
	// req is the handler's request: the gate's, with ctx.
	req http.Request

	mu       sync.Mutex
	conn     net.Conn // set when the handler hijacked the connection
	finished bool     // the handler returned: leave the connection alone
	revoked  bool
}

// identityContext is a context carrying the caller's identity, without the
// extra allocation of context.WithValue.
type identityContext struct {
	context.Context
	id *Identity
}

func (c *identityContext) Value(key any) any {
	if _, ok := key.(identityContextKey); ok {
		return c.id
	}
	return c.Context.Value(key)
}

// hijacked records the connection a handler took over. It returns false
// when the request was already revoked, so the caller closes it.
func (lr *liveRequest) hijacked(c net.Conn) bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.revoked {
		return false
	}
	lr.conn = c
	return true
}

// revoke ends the request. It does nothing once the handler has returned:
// the connection may then carry another request (keep-alive, or a front
// proxy's pooled connection) that is not this session's.
func (lr *liveRequest) revoke() {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.finished || lr.revoked {
		return
	}
	lr.revoked = true
	if lr.cancel != nil {
		lr.cancel()
	}
	if lr.conn != nil {
		_ = lr.conn.Close()
		return
	}
	if lr.deadlines {
		rc := http.NewResponseController(lr.w)
		past := time.Unix(1, 0)
		_ = rc.SetReadDeadline(past)
		_ = rc.SetWriteDeadline(past)
	}
}

// finish marks the handler as returned.
func (lr *liveRequest) finish() {
	lr.mu.Lock()
	lr.finished = true
	lr.mu.Unlock()
	if lr.cancel != nil {
		lr.cancel()
	}
}

// isRevoked says whether revoke ran.
func (lr *liveRequest) isRevoked() bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.revoked
}

// liveRequests is a tenant's registry of live requests.
type liveRequests struct {
	mu       sync.Mutex
	reqs     map[*liveRequest]struct{}
	watching bool
	// revocations counts requests ended by a revocation (tests, metrics).
	revocations uint64
}

// track registers lr, a request that passed g for the session of e, and
// returns the writer and request its handler must use. untrack must be
// called when the handler returns.
func (ids *Identities) track(g *Gate, w http.ResponseWriter, r *http.Request, lr *liveRequest, e *entry) (http.ResponseWriter, *http.Request) {
	lr.key, lr.gate, lr.userID, lr.gen, lr.expires = e.session.IDHash, g, e.identity.UserID, e.gen, e.session.ExpiresAt
	// Only HTTP/2 ends the request by deadlines (a past write deadline
	// resets the stream at once). HTTP/1 cancels the context only when a
	// read of the connection fails, and nothing reads it while the
	// request body is unread (even when it is already in the server's
	// buffer) or after the client sent a pipelined byte; and when the
	// background read does fail, net/http cancels the context of the
	// connection, so every later request on it (keep-alive, or another
	// user's through a front proxy) starts cancelled. So HTTP/1 gets a
	// context of its own and its connection is left alone.
	lr.w, lr.deadlines = w, r.ProtoMajor == 2 && hasDeadlines(w)
	ctx := r.Context()
	if !lr.deadlines {
		ctx, lr.cancel = context.WithCancel(ctx)
	}
	lr.ctx = identityContext{Context: ctx, id: &e.identity}
	l := &ids.live
	l.mu.Lock()
	if l.reqs == nil {
		l.reqs = make(map[*liveRequest]struct{})
	}
	l.reqs[lr] = struct{}{}
	start := !l.watching
	l.watching = true
	l.mu.Unlock()
	if start {
		go ids.watchLive()
	}
	lr.writer = liveWriter{ResponseWriter: w, lr: lr}
	// The request the handler gets lives in lr too: WithContext is
	// inlined and its copy does not escape, so this is a copy, not an
	// allocation.
	lr.req = *r.WithContext(&lr.ctx)
	return &lr.writer, &lr.req
}

// untrack ends the following of lr once its handler has returned.
func (ids *Identities) untrack(lr *liveRequest) {
	lr.finish()
	l := &ids.live
	l.mu.Lock()
	delete(l.reqs, lr)
	l.mu.Unlock()
}

// LiveRequests is the number of requests in flight through the tenant's
// gates, and how many a revocation has ended since start.
func (ids *Identities) LiveRequests() (live int, revoked uint64) {
	ids.live.mu.Lock()
	defer ids.live.mu.Unlock()
	return len(ids.live.reqs), ids.live.revocations
}

// watchLive re-checks live requests until there are none. Each request
// carries the generation its access was checked at, so one admitted on
// data a revocation had already changed (the write landed between the
// gate's read and the registration) is re-checked at the first tick.
func (ids *Identities) watchLive() {
	t := time.NewTicker(liveCheckInterval)
	defer t.Stop()
	for range t.C {
		l := &ids.live
		l.mu.Lock()
		if len(l.reqs) == 0 {
			l.watching = false
			l.mu.Unlock()
			return
		}
		reqs := make([]*liveRequest, 0, len(l.reqs))
		for lr := range l.reqs {
			reqs = append(reqs, lr)
		}
		l.mu.Unlock()

		now := ids.now()
		// Read after the snapshot: every request in it was registered
		// before this generation was read, so checking it against the
		// data of this generation (or a later one) cannot miss a write
		// its own gen predates.
		gen := ids.store.Generation(ids.tenant)
		var stale, ended []*liveRequest
		for _, lr := range reqs {
			switch {
			case lr.isRevoked():
				// Ended already; its handler is on its way out.
			case !lr.expires.IsZero() && !now.Before(lr.expires):
				ended = append(ended, lr)
			case lr.gen != gen:
				stale = append(stale, lr)
			}
		}
		if len(stale) > 0 {
			lost, ok := ids.recheckLive(stale, gen, now)
			ended = append(ended, lost...)
			if ok {
				for _, lr := range stale {
					lr.gen = gen
				}
			}
		}
		for _, lr := range ended {
			lr.revoke()
		}
		if len(ended) > 0 {
			l.mu.Lock()
			l.revocations += uint64(len(ended))
			l.mu.Unlock()
			ids.logger.Info("live requests ended: the session lost access",
				zap.String("tenant", ids.tenant), zap.Int("requests", len(ended)))
			if ids.observer != nil {
				for _, lr := range ended {
					ids.observer.LiveRequestEnded(lr.userID)
				}
			}
		}
	}
}

// recheckLive reads each live session once and returns the requests whose
// session lost access to their route. ok is false when the store failed:
// the caller tries again at the next tick rather than ending requests on
// a transient error.
func (ids *Identities) recheckLive(reqs []*liveRequest, gen uint64, now time.Time) (ended []*liveRequest, ok bool) {
	type verdict struct {
		e     *entry // nil: the session is gone
		alive bool
	}
	verdicts := make(map[[32]byte]verdict)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok = true
	for _, lr := range reqs {
		v, seen := verdicts[lr.key]
		if !seen {
			e, alive, err := ids.sessionState(ctx, lr.key, gen, now)
			if err != nil {
				ids.logger.Error("re-checking a live session", zap.String("tenant", ids.tenant), zap.Error(err))
				ok = false
				continue
			}
			v = verdict{e, alive}
			verdicts[lr.key] = v
		}
		if !v.alive || (!lr.gate.policy.Public && !lr.gate.allowed(v.e)) {
			ended = append(ended, lr)
		}
	}
	return ended, ok
}

// sessionState reads a session by key as of now: alive is false when the
// session is gone or past its absolute expiry (an open connection is the
// session in use, so the idle limit does not end it), or its user is gone,
// inactive, or (with require_mapped_group) in no mapped group. A current
// cache entry answers without reading the store.
func (ids *Identities) sessionState(ctx context.Context, key [32]byte, gen uint64, now time.Time) (*entry, bool, error) {
	ids.mu.RLock()
	e := ids.entries[key]
	ids.mu.RUnlock()
	if e != nil && e.gen == gen && int64(len(e.inRef)) == ids.nrefs.Load() {
		return e, !e.session.Expired(now, 0), nil
	}
	refs := ids.refList()
	alive := false
	err := ids.store.View(ctx, ids.tenant, func(tx storage.ReadTx) error {
		alive = false
		sess, err := tx.GetSession(key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if sess.Expired(now, 0) {
			return nil
		}
		user, err := tx.GetUser(sess.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !user.Active {
			return nil
		}
		table, err := ids.refTableFor(tx, gen, refs)
		if err != nil {
			return err
		}
		roles, err := ids.roleTableFor(tx, gen)
		if err != nil {
			return err
		}
		e = &entry{gen: gen, session: *sess}
		if err := ids.fill(tx, e, user, table, roles); err != nil {
			return err
		}
		alive = e.identity.RoleLevel >= 0 || !ids.roles.RequireMappedGroup
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return e, alive, nil
}
