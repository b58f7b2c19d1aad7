// Package console is the operator's web console: server-rendered pages
// over the same operations as the admin API (package operator), for the
// tenants it is given. It is a plain net/http handler that the gateway
// mounts behind the identity handler, so it is protected by the same
// sign-in and roles as any other route; the signed-in user (read from the
// request context, authz.IdentityFromContext) is the actor of every change
// it makes.
//
// Pages, under the prefix P (e.g. /portcullis):
//
//	GET  P/                                 every tenant at a glance
//	GET  P/{t}/                             one tenant: IdP connection, token health, counts
//	GET  P/{t}/users?q=&source=&cursor=     users: search, source, role, status, last sign-in
//	GET  P/{t}/users/{id}                   one user: role reason, groups, sessions
//	POST P/{t}/users/{id}/sessions/end      end one session (session=<id>) or all (all=1)
//	POST P/{t}/users/{id}/update            a manual user's role (role=) or status (active=true|false)
//	POST P/{t}/users/new                    create a manual user (userName, email, displayName, role)
//	GET  P/{t}/users/{id}/delete            confirmation; POST deletes the manual user
//	GET  P/{t}/sessions/end                 confirmation; POST ends every session of the tenant
//	POST P/{t}/sync                         start a directory pull now (tenants pulled from Google)
//	GET  P/{t}/groups                       every group with a level dropdown
//	POST P/{t}/groups/mapping               set (role=<level>) or clear (role="") a stored mapping
//	POST P/{t}/groups/declare               declare a claim group ahead of its first sign-in
//	GET  P/{t}/token                        SCIM token health
//	POST P/{t}/token/generate               the first token (shown once)
//	GET  P/{t}/token/rotate, /token/disable confirmations saying what will break
//	POST P/{t}/token/rotate, /token/disable
//	GET  P/{t}/disconnect                   confirmation naming the consequences
//	POST P/{t}/disconnect
//	GET  P/{t}/events?type=&since=&until=&resource=&before=   audit events, newest first
//	GET  P/{t}/events/export?format=csv|jsonl&...            the same filters, streamed
//
// Every POST carries a CSRF token bound to a console cookie and to the
// signed-in user, and must come from the console's own origin (csrf.go).
// Pages are sent with a strict Content-Security-Policy: the embedded
// stylesheet and the copy button's script by hash, nothing else.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// Operator is what the console does to one tenant; *operator.Service
// implements it. The console holds this interface rather than the struct
// so a tenant's service can be built lazily (the Caddy module opens the
// store at the first request, not at provision).
type Operator interface {
	Overview(ctx context.Context) (*operator.Overview, error)
	ListUsers(ctx context.Context, q operator.UserQuery) ([]operator.User, string, error)
	User(ctx context.Context, id string) (*operator.UserDetail, error)
	UpdateUser(ctx context.Context, actor, id string, c operator.UserChange) (*operator.UserDetail, error)
	ListGroups(ctx context.Context) ([]operator.Group, error)
	DeclareGroup(ctx context.Context, actor, claimValue string) (*operator.Group, error)
	Mappings(ctx context.Context) (*operator.Mappings, error)
	SetMapping(ctx context.Context, actor, group, role string) error
	DeleteMapping(ctx context.Context, actor, group string) error
	Sessions(ctx context.Context, userID string) ([]operator.Session, error)
	EndSession(ctx context.Context, actor, userID, sessionID string) error
	EndUserSessions(ctx context.Context, actor, userID string) (int, error)
	EndTenantSessions(ctx context.Context, actor string) (int, error)
	CreateManualUser(ctx context.Context, actor string, nu operator.NewUser) (*operator.UserDetail, error)
	DeleteUser(ctx context.Context, actor, id string) error
	TokenStatus(ctx context.Context) (*operator.TokenStatus, error)
	Disconnect(ctx context.Context, actor string) (int, error)
}

// Tenant is one tenant the console manages.
type Tenant struct {
	Name string
	// Operator returns the tenant's operations (an *operator.Service),
	// or an error when they cannot be had now (the store does not open).
	Operator func(ctx context.Context) (Operator, error)
	// Store is the gateway's store: the SCIM token is issued and
	// disabled through scimhandler over it, and the audit log is read
	// from it.
	Store storage.Store
	// Pull, when the tenant is pulled from a directory (Google
	// Workspace), reads the pull's status and starts a sync now; nil: the
	// tenant is not pulled and the console offers no "Sync now".
	Pull *Pull
}

// Pull is a tenant's directory pull, as the console shows and starts it.
type Pull struct {
	// Status is the last sync, in words (started, ended, result, counts,
	// next run) for the overview.
	Status func() PullStatus
	// SyncNow starts a full sync (or joins the running one) without
	// waiting for it.
	SyncNow func()
}

// PullStatus is what the overview shows of a pull.
type PullStatus struct {
	Running  bool
	LastEnd  time.Time
	Result   string // "ok", "failed" or "" before the first sync
	Summary  string // counts, e.g. "3 users created, 1 deactivated"
	LastErr  string
	NextRun  time.Time
	LeaseOff bool // another replica runs the schedule
}

// Config configures a Handler.
type Config struct {
	// Prefix is the path the console is mounted at, e.g. "/portcullis"
	// (no trailing slash). Requests reach the handler with the full path
	// (Caddy's handle, not handle_path).
	Prefix  string
	Tenants []Tenant
	// CSRFKey signs the forms' CSRF tokens; nil: a random key (forms
	// rendered before a restart or reload then need a reload).
	CSRFKey []byte
	// LogoutURL is the sign-out link of the signed-in operator (default
	// /sso/logout, the sso handler's logout at its default prefix).
	LogoutURL string
	Logger    *zap.Logger
}

// Handler serves the console.
type Handler struct {
	prefix  string
	tenants map[string]*Tenant
	order   []string
	csrf    *csrfGuard
	logout  string
	logger  *zap.Logger
	mux     *http.ServeMux
}

// New checks cfg and returns the console.
func New(cfg Config) (*Handler, error) {
	prefix := strings.TrimRight(cfg.Prefix, "/")
	if prefix != "" && (!strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "{}?#% ")) {
		return nil, fmt.Errorf("console: prefix %q must be a path such as /portcullis", cfg.Prefix)
	}
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("console: no tenants to manage")
	}
	h := &Handler{prefix: prefix, tenants: make(map[string]*Tenant), logger: cfg.Logger, logout: cfg.LogoutURL}
	if h.logout == "" {
		h.logout = "/sso/logout"
	}
	if !strings.HasPrefix(h.logout, "/") || strings.HasPrefix(h.logout, "//") || strings.ContainsAny(h.logout, "\\ \t\r\n") {
		return nil, fmt.Errorf("console: logout URL %q must be a path on this site such as /sso/logout", cfg.LogoutURL)
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		if t.Name == "" || strings.ContainsAny(t.Name, "/{}") {
			return nil, fmt.Errorf("console: bad tenant name %q", t.Name)
		}
		if t.Operator == nil || t.Store == nil {
			return nil, fmt.Errorf("console: tenant %s needs its Operator and Store", t.Name)
		}
		if h.tenants[t.Name] != nil {
			return nil, fmt.Errorf("console: tenant %s is listed twice", t.Name)
		}
		h.tenants[t.Name] = t
		h.order = append(h.order, t.Name)
	}
	key := cfg.CSRFKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	h.csrf = &csrfGuard{key: key, cookiePath: prefix + "/"}
	h.routes()
	return h, nil
}

// routes registers every page; each tenant page gets its tenant through
// the {tenant} wildcard.
func (h *Handler) routes() {
	p := h.prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+p+"/{$}", h.serveHome)
	t := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, c *call)) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" "+p+"/{tenant}"+path, h.tenantPage(fn))
	}
	t("GET /{$}", h.serveTenant)
	t("GET /users", h.serveUsers)
	t("GET /users/{id}", h.serveUser)
	t("POST /users/{id}/sessions/end", h.endSessions)
	t("POST /users/{id}/update", h.updateUser)
	t("POST /users/new", h.createUser)
	t("GET /users/{id}/delete", h.confirmDeleteUser)
	t("POST /users/{id}/delete", h.deleteUser)
	t("GET /sessions/end", h.confirmEndTenantSessions)
	t("POST /sessions/end", h.endTenantSessions)
	t("GET /groups", h.serveGroups)
	t("POST /groups/mapping", h.setMapping)
	t("POST /groups/declare", h.declareGroup)
	t("GET /token", h.serveToken)
	t("POST /token/generate", h.generateToken)
	t("GET /token/rotate", h.confirmRotate)
	t("POST /token/rotate", h.rotateToken)
	t("GET /token/disable", h.confirmDisable)
	t("POST /token/disable", h.disableToken)
	t("GET /disconnect", h.confirmDisconnect)
	t("POST /disconnect", h.disconnect)
	t("GET /events", h.serveEvents)
	t("GET /events/export", h.exportEvents)
	t("POST /sync", h.syncNow)
	m.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, nil, http.StatusNotFound, "There is no console page at this address.")
	})
	h.mux = m
}

// ServeHTTP serves a console page. The caller must be signed in: without
// an identity in the request context (the console mounted without the
// identity handler in front of it) every page is refused.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	id, ok := authz.IdentityFromContext(r.Context())
	if !ok || id.UserName == "" {
		h.logger.Error("console request without a signed-in user: mount the console behind the identity handler",
			zap.String("path", r.URL.Path))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("403 Forbidden: the console needs a signed-in operator (mount it behind identity with require admin)\n"))
		return
	}
	if r.URL.Path == h.prefix {
		http.Redirect(w, r, h.prefix+"/", http.StatusFound)
		return
	}
	if r.Method == http.MethodPost {
		if err := h.csrf.check(r, id.UserName); err != nil {
			h.logger.Warn("console: refused a form post", zap.String("path", r.URL.Path),
				zap.String("user", id.UserName), zap.Error(err))
			h.fail(w, r, nil, http.StatusForbidden, "This form could not be accepted ("+err.Error()+"). Reload the page and try again.")
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// call is one request to a tenant's page.
type call struct {
	tenant *Tenant
	op     Operator
	actor  string
}

// tenantPage finds the tenant and its operations, then serves fn.
func (h *Handler) tenantPage(fn func(w http.ResponseWriter, r *http.Request, c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := h.tenants[r.PathValue("tenant")]
		if t == nil {
			h.fail(w, r, nil, http.StatusNotFound, "This console manages no tenant of that name.")
			return
		}
		op, err := t.Operator(r.Context())
		if err != nil {
			h.logger.Error("console: tenant operations unavailable", zap.String("tenant", t.Name), zap.Error(err))
			h.unavailable(w, r, t)
			return
		}
		id, _ := authz.IdentityFromContext(r.Context())
		fn(w, r, &call{tenant: t, op: op, actor: id.UserName})
	}
}

// tenantURL is the console URL of a tenant's page (path starts with "/").
func (h *Handler) tenantURL(t *Tenant, path string) string {
	return h.prefix + "/" + t.Name + path
}
