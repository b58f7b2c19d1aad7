package scimhandler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Config configures a Handler for one tenant.
type Config struct {
	Tenant string
	Store  storage.Store
	Logger *zap.Logger
	// BaseURL, when set, is the absolute SCIM base URL (e.g.
	// "https://gw.example.com/scim/v2/acme"). When empty the handler
	// derives it per request: scheme (https if r.TLS != nil), r.Host, and
	// the path prefix that precedes the SCIM endpoint name (Users, Groups,
	// ServiceProviderConfig, Schemas, ResourceTypes, .search, Bulk, Me) in
	// r.URL.Path — the handler is mounted under e.g. /scim/v2/acme/* and
	// sees the full path.
	BaseURL      string
	MaxBodyBytes int64 // default 1 MiB; larger bodies get 413 with a SCIM error body
	MaxResults   int   // default 1000; advertised in ServiceProviderConfig filter.maxResults; count is capped at it
	// ClientIP, when set, gives the address of the client that sent r,
	// under which failed bearer-token attempts are counted and audited
	// (e.g. Caddy's client IP, which honours its trusted proxies). When
	// nil, or when it returns "", r.RemoteAddr is used.
	ClientIP func(r *http.Request) string
	// Observer, when set, is told about every answered request, refused
	// token and deprovisioning write (for metrics); see Observer.
	Observer Observer
	// Usage, when set, counts the tenant's requests for the token's health
	// (see UsageTracker), so the operator's side can read it; nil: the
	// handler keeps its own (Handler.Usage).
	Usage *UsageTracker
	// RoleOf, when set, gives the effective role of a user as of tx; the
	// adoption of a manual user by a SCIM push records it before and
	// after (see adoptManualUser). Nil: the event says the role now
	// follows the IdP's groups.
	RoleOf func(tx storage.ReadTx, u *storage.User) (string, error)
	// UserWritten, when set, is given every user record a request wrote
	// (created, replaced, patched, adopted), as stored, once its
	// transaction has committed; see userwritten.go. The Caddy wiring
	// hands it to the tenant's operator search index (operator
	// Service.NoteUser). It runs on the request's goroutine: keep it quick.
	UserWritten func(u *storage.User)
}

const (
	defaultMaxBodyBytes = 1 << 20
	defaultMaxResults   = 1000

	// maxIDLength bounds resource ids in URLs and member values: ids are
	// UUIDs, and longer strings must not reach the store's keys.
	maxIDLength = 256
	// updateAttempts bounds how often a request's transaction is run
	// again after the store reports ErrConflict (it retries internally
	// too); concurrent PATCHes of one group conflict on the group record.
	updateAttempts = 2
)

// Handler serves SCIM 2.0 for one tenant. It is safe for concurrent use.
type Handler struct {
	tenant     string
	store      storage.Store
	logger     *zap.Logger
	baseURL    string
	maxBody    int64
	maxResults int

	clientIP func(*http.Request) string // nil: r.RemoteAddr
	observer Observer                   // nil: nothing reported
	now      func() time.Time           // the clock of the failure limits; tests set it

	usage  *UsageTracker
	roleOf func(tx storage.ReadTx, u *storage.User) (string, error)
	// userWritten: Config.UserWritten (nil: nobody is told).
	userWritten func(u *storage.User)

	tokens   tokenCache
	failures *failureLimiter
	cursors  pageCursors
	groups   groupRecords // of the users on a page (list.go)
	writes   resourceLocks
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Tenant == "" {
		return nil, errors.New("scimhandler: Config.Tenant is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("scimhandler: Config.Store is required")
	}
	h := &Handler{
		tenant:      cfg.Tenant,
		store:       cfg.Store,
		logger:      cfg.Logger,
		maxBody:     cfg.MaxBodyBytes,
		maxResults:  cfg.MaxResults,
		clientIP:    cfg.ClientIP,
		observer:    cfg.Observer,
		now:         time.Now,
		failures:    newFailureLimiter(),
		usage:       cfg.Usage,
		roleOf:      cfg.RoleOf,
		userWritten: cfg.UserWritten,
	}
	if h.usage == nil {
		h.usage = NewUsageTracker()
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	h.logger = h.logger.With(zap.String("tenant", cfg.Tenant))
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxBodyBytes
	}
	if h.maxResults <= 0 {
		h.maxResults = defaultMaxResults
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("scimhandler: BaseURL %q must be an absolute http(s) URL without query or fragment", cfg.BaseURL)
		}
		h.baseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	return h, nil
}

// request is what a resource handler needs of one authenticated request.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	base  string // absolute SCIM base URL, no trailing slash
	actor string // the SCIM token's id, the audit actor
	// committed is when the request's write transaction committed.
	committed time.Time
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ServeHTTP checks the bearer token, then serves the SCIM request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.logger.Error("scim request panicked", zap.Any("panic", p), zap.Stack("stack"),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			if sw.status == 0 {
				writeSCIMError(sw, &scimError{status: http.StatusInternalServerError, detail: "internal error"})
			}
		}
		h.logger.Debug("scim request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", sw.status), zap.Duration("duration", time.Since(start)))
		h.observeRequest(r, sw.status)
	}()
	actor, err := h.authenticate(r)
	if err != nil {
		var se *scimError
		h.usage.count(h.now(), errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusTooManyRequests))
		h.fail(sw, r, err)
		return
	}
	h.recordUse(r.Context(), TokenUse{Time: h.now().UTC(), ClientAddr: clip(h.clientAddr(r), storage.MaxClientAddrLen),
		UserAgent: clip(r.UserAgent(), storage.MaxUserAgentLen), TokenID: actor})
	if err := h.route(sw, r, actor); err != nil {
		h.fail(sw, r, err)
	}
}

// fail answers err as a SCIM error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	se, serverFault := classify(err)
	if serverFault {
		h.logger.Error("scim request failed", zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeSCIMError(w, se)
}

// endpoints are the names that end the base URL in a request path.
var endpoints = []string{"Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes", ".search", "Bulk", "Me"}

// splitSCIMPath finds the SCIM endpoint in a request path. prefix is what
// precedes it (the base URL's path), rest the segments after it. The
// leftmost endpoint name followed by at most one segment wins, so a tenant
// named like an endpoint ("/scim/v2/Users/Users/42") still routes.
func splitSCIMPath(path string) (prefix, endpoint string, rest []string, ok bool) {
	segs := strings.Split(path, "/")
	for len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	for i := 1; i < len(segs); i++ {
		name := ""
		for _, e := range endpoints {
			if strings.EqualFold(segs[i], e) {
				name = e
				break
			}
		}
		tail := segs[i+1:]
		if name == "" || len(tail) > 1 || name == ".search" && len(tail) > 0 {
			continue
		}
		return strings.Join(segs[:i], "/"), name, tail, true
	}
	return "", "", nil, false
}

// baseFor is the absolute SCIM base URL for r.
func (h *Handler) baseFor(r *http.Request, prefix string) string {
	if h.baseURL != "" {
		return h.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + prefix
}

func methodNotAllowed(allow string) error {
	return &scimError{status: http.StatusMethodNotAllowed, allow: allow,
		detail: "method not allowed here; allowed: " + allow}
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, actor string) error {
	prefix, endpoint, rest, ok := splitSCIMPath(r.URL.Path)
	if !ok {
		return errNotFound("no SCIM endpoint at %s", r.URL.Path)
	}
	req := &request{w: w, r: r, ctx: withActor(r.Context(), actor, r), base: h.baseFor(r, prefix), actor: actor}
	switch endpoint {
	case "Users", "Groups":
		rt, create := userResource, h.createUser
		get, replace, patch, remove := h.getUser, h.replaceUser, h.patchUser, h.deleteUser
		if endpoint == "Groups" {
			rt, create = groupResource, h.createGroup
			get, replace, patch, remove = h.getGroup, h.replaceGroup, h.patchGroup, h.deleteGroup
		}
		switch {
		case len(rest) == 0:
			switch r.Method {
			case http.MethodGet:
				return h.list(req, []*resourceType{rt}, nil)
			case http.MethodPost:
				return create(req)
			}
			return methodNotAllowed("GET, POST")
		case rest[0] == ".search":
			if r.Method != http.MethodPost {
				return methodNotAllowed("POST")
			}
			return h.search(req, []*resourceType{rt})
		}
		id := rest[0]
		if id == "" || len(id) > maxIDLength {
			return errNotFound("%s %q not found", rt.Name, truncate(id, 64))
		}
		switch r.Method {
		case http.MethodGet:
			return get(req, id)
		case http.MethodPut:
			return replace(req, id)
		case http.MethodPatch:
			return patch(req, id)
		case http.MethodDelete:
			return remove(req, id)
		}
		return methodNotAllowed("GET, PUT, PATCH, DELETE")
	case ".search":
		if r.Method != http.MethodPost {
			return methodNotAllowed("POST")
		}
		return h.search(req, resourceTypes)
	case "ServiceProviderConfig":
		if r.Method != http.MethodGet {
			return methodNotAllowed("GET")
		}
		if len(rest) > 0 {
			return errNotFound("no SCIM endpoint at %s", r.URL.Path)
		}
		return h.serviceProviderConfig(req)
	case "Schemas":
		if r.Method != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return h.schemas(req, rest)
	case "ResourceTypes":
		if r.Method != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return h.resourceTypes(req, rest)
	default: // Bulk, Me
		return &scimError{status: http.StatusNotImplemented,
			detail: "/" + endpoint + " is not supported by this service provider"}
	}
}

// readBody reads the request's JSON object, bounded by MaxBodyBytes.
func (h *Handler) readBody(req *request) (map[string]any, error) {
	if ct := req.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// Okta's documentation shows text/json; any JSON type is read.
		if err != nil || !(mt == "application/json" || mt == "text/json" || mt == contentTypeSCIM || strings.HasSuffix(mt, "+json")) {
			return nil, &scimError{status: http.StatusUnsupportedMediaType,
				detail: "request bodies must be application/scim+json or application/json"}
		}
	}
	if req.r.ContentLength > h.maxBody {
		return nil, &http.MaxBytesError{Limit: h.maxBody}
	}
	return decodeJSONObject(http.MaxBytesReader(req.w, req.r.Body, h.maxBody))
}

// writeTimeout bounds a write transaction, its retries included, once the
// client's hang-up no longer can (see writeContext).
const writeTimeout = 10 * time.Second

// writeContext is the context a write transaction and its audit event run
// under. The client hanging up must not cancel them: the store checks the
// context before every attempt and between conflict retries, so a change
// the handler already decided on (or a token.rejected record) would be
// dropped at random. A stuck store must still not hold the request
// forever, hence the timeout. Values (trace ids) are kept.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

// update runs fn in a write transaction of the tenant, running it again
// when the store gives up on conflicts, with a short random backoff. It
// runs under writeContext(ctx): every write of the handler appends an
// audit event.
func (h *Handler) update(ctx context.Context, fn func(tx storage.Tx) error) error {
	ctx, cancel := writeContext(ctx)
	defer cancel()
	var err error
	for attempt := 0; attempt < updateAttempts; attempt++ {
		if attempt > 0 {
			backoff := time.Duration(1<<attempt) * time.Millisecond
			backoff += time.Duration(rand.Int64N(int64(backoff)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
		}
		var rec *recordingTx
		err = h.store.Update(ctx, h.tenant, func(tx storage.Tx) error {
			tx = namingTxFor(ctx, tx)
			if h.userWritten != nil {
				rec = &recordingTx{Tx: tx} // a fresh record for each run of fn
				tx = rec
			}
			return fn(tx)
		})
		if err == nil && rec != nil {
			rec.report(h.userWritten)
		}
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return err
}

// updateResource is update for a change of one existing resource. Writers
// of the same resource in this process take turns instead of racing: an IdP
// that sends many PATCHes to one group at once would otherwise make every
// transaction but one conflict and retry, and the retries pile up (p99 of
// hundreds of milliseconds under 16 concurrent PATCHes). The store's own
// conflict detection still guards writers in other processes.
func (h *Handler) updateResource(ctx context.Context, id string, fn func(tx storage.Tx) error) error {
	unlock := h.writes.lock(id)
	defer unlock()
	return h.update(ctx, fn)
}

// resourceLocks is a fixed set of mutexes, one picked per resource id.
type resourceLocks [64]sync.Mutex

func (l *resourceLocks) lock(id string) (unlock func()) {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	m := &l[f.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

func (h *Handler) view(ctx context.Context, fn func(tx storage.ReadTx) error) error {
	return h.store.View(ctx, h.tenant, fn)
}

// writeJSON writes v with the SCIM content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"schemas":["` + schemaError + `"],"status":"500","detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", contentTypeSCIM)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// etag is the weak entity tag of a resource version.
func etag(version int64) string { return fmt.Sprintf(`W/"%d"`, version) }

// etagListMatches says whether an If-Match/If-None-Match header value
// names version; weak comparison, as SCIM's ETags are weak (RFC 7644 §3.14).
func etagListMatches(header string, version int64) bool {
	want := fmt.Sprintf(`"%d"`, version)
	for _, part := range strings.Split(header, ",") {
		tag := strings.TrimSpace(part)
		if tag == "*" {
			return true
		}
		tag = strings.TrimPrefix(tag, "W/")
		if tag == want {
			return true
		}
	}
	return false
}

// checkIfMatch answers 412 when If-Match names another version.
func checkIfMatch(r *http.Request, version int64) error {
	h := r.Header.Get("If-Match")
	if h == "" || etagListMatches(h, version) {
		return nil
	}
	return &scimError{status: http.StatusPreconditionFailed,
		detail: fmt.Sprintf("If-Match does not match the resource's version %s", etag(version))}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
