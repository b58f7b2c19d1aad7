package caddymodule

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// The operator's routes of the admin API, each a thin layer over the
// tenant's operator.Service (every write audited with actor "admin"):
//
//	GET    /portcullis/tenants/{t}/users?filter=&source=&cursor=&limit=   {"users":[...],"next":"..."}
//	POST   /portcullis/tenants/{t}/users                                  {userName,email,displayName,role} → 201 manual user
//	GET    /portcullis/tenants/{t}/users/{id}                             one user with roleReason
//	PATCH  /portcullis/tenants/{t}/users/{id}                             {role?,active?} → 200 (409 IdP-managed)
//	DELETE /portcullis/tenants/{t}/users/{id}                             204 (409 IdP-managed)
//	GET    /portcullis/tenants/{t}/users/{id}/sessions                    {"sessions":[...]}
//	DELETE /portcullis/tenants/{t}/users/{id}/sessions                    {"ended":N}
//	DELETE /portcullis/tenants/{t}/users/{id}/sessions/{session}          204
//	DELETE /portcullis/tenants/{t}/sessions                               {"ended":N}
//	GET    /portcullis/tenants/{t}/groups                                 {"groups":[...]}
//	POST   /portcullis/tenants/{t}/groups                                 {displayName} → 201 a claim group declared ahead
//	GET    /portcullis/tenants/{t}/mappings                               {roles,default,config,stored}
//	PUT    /portcullis/tenants/{t}/mappings/{group}                       {role} → 200 {group,role} (409 pinned by config)
//	DELETE /portcullis/tenants/{t}/mappings/{group}                       204 (409 pinned by config)
//	GET    /portcullis/tenants/{t}/scim-token                             token health (404 when none was ever made)
//	POST   /portcullis/tenants/{t}/disconnect                             {"converted":N}
//	GET    /portcullis/tenants/{t}/overview                               the tenant at a glance
//
// Path segments are URL-escaped ({group} may be a displayName with spaces
// or slashes: "IT%20Admins").

// Bounds of the operator routes' input.
const (
	// maxOperatorBody bounds a JSON request body.
	maxOperatorBody = 64 << 10
	// maxPathSegment bounds one path segment (a user id, a group name).
	maxPathSegment = 256
	// maxUserPage is the largest page of the users listing.
	maxUserPage = 500
)

// userSources are the values of the users listing's source filter.
var userSources = []string{storage.SourceSCIM, storage.SourceGoogle, storage.SourceJIT, storage.SourceManual, storage.SourceDirectory}

// serveOperator serves the operator's routes of a tenant. resource is the
// escaped path after /portcullis/tenants/{t}/. It reports false when the
// path is not one of its routes.
func serveOperator(w http.ResponseWriter, r *http.Request, app *App, tenant, resource string) (bool, error) {
	segs, err := pathSegments(resource)
	if err != nil {
		return true, err
	}
	switch segs[0] {
	case "users", "groups", "mappings", "sessions", "disconnect", "overview":
	default:
		return false, nil
	}
	svc, ok := app.Operator(tenant)
	if !ok {
		return true, apiError(http.StatusServiceUnavailable, "tenant %q has no operator service (the app is still starting)", tenant)
	}
	h := operatorRequest{w: w, r: r, svc: svc}
	switch {
	case len(segs) == 1 && segs[0] == "users":
		return true, h.route(map[string]func() error{
			http.MethodGet:  h.listUsers,
			http.MethodPost: h.createUser,
		})
	case len(segs) == 2 && segs[0] == "users":
		id := segs[1]
		return true, h.route(map[string]func() error{
			http.MethodGet:    func() error { return h.showUser(id) },
			http.MethodPatch:  func() error { return h.updateUser(id) },
			http.MethodDelete: func() error { return h.deleteUser(id) },
		})
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "sessions":
		id := segs[1]
		return true, h.route(map[string]func() error{
			http.MethodGet:    func() error { return h.listSessions(id) },
			http.MethodDelete: func() error { return h.endUserSessions(id) },
		})
	case len(segs) == 4 && segs[0] == "users" && segs[2] == "sessions":
		id, session := segs[1], segs[3]
		return true, h.route(map[string]func() error{
			http.MethodDelete: func() error { return h.endSession(id, session) },
		})
	case len(segs) == 1 && segs[0] == "sessions":
		return true, h.route(map[string]func() error{
			http.MethodDelete: h.endTenantSessions,
		})
	case len(segs) == 1 && segs[0] == "groups":
		return true, h.route(map[string]func() error{
			http.MethodGet:  h.listGroups,
			http.MethodPost: h.declareGroup,
		})
	case len(segs) == 1 && segs[0] == "mappings":
		return true, h.route(map[string]func() error{
			http.MethodGet: h.listMappings,
		})
	case len(segs) == 2 && segs[0] == "mappings":
		group := segs[1]
		return true, h.route(map[string]func() error{
			http.MethodPut:    func() error { return h.setMapping(group) },
			http.MethodDelete: func() error { return h.deleteMapping(group) },
		})
	case len(segs) == 1 && segs[0] == "disconnect":
		return true, h.route(map[string]func() error{
			http.MethodPost: h.disconnect,
		})
	case len(segs) == 1 && segs[0] == "overview":
		return true, h.route(map[string]func() error{
			http.MethodGet: h.overview,
		})
	}
	return true, apiError(http.StatusNotFound, "no such portcullis admin route: %s", r.URL.Path)
}

// operatorResource is the request's path after /portcullis/tenants/{t}/,
// still escaped: segments are unescaped one by one (pathSegments).
func operatorResource(r *http.Request) string {
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), tenantsPath)
	_, resource, _ := strings.Cut(rest, "/")
	return resource
}

// pathSegments splits the escaped resource path and unescapes each
// segment, so that a group named "R&D / Europe" travels as one segment
// (R%26D%20%2F%20Europe). Empty segments (a trailing or doubled slash)
// and overlong ones are refused.
func pathSegments(escaped string) ([]string, error) {
	raw := strings.Split(escaped, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		if len(s) > 3*maxPathSegment {
			return nil, apiError(http.StatusBadRequest, "a path segment is longer than %d bytes", maxPathSegment)
		}
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "path segment %q is not properly escaped", s)
		}
		if v == "" {
			return nil, apiError(http.StatusNotFound, "no such portcullis admin route: empty path segment in %q", escaped)
		}
		if len(v) > maxPathSegment {
			return nil, apiError(http.StatusBadRequest, "a path segment is longer than %d bytes", maxPathSegment)
		}
		segs[i] = v
	}
	return segs, nil
}

// operatorRequest is one request to an operator route.
type operatorRequest struct {
	w   http.ResponseWriter
	r   *http.Request
	svc *operator.Service
}

// route runs the handler of the request's method, or answers 405 naming
// the allowed ones.
func (h operatorRequest) route(byMethod map[string]func() error) error {
	if fn, ok := byMethod[h.r.Method]; ok {
		return fn()
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if byMethod[m] != nil {
			allowed = append(allowed, m)
		}
	}
	return methodNotAllowed(h.w, allowed...)
}

// usersPage is one page of the users listing.
type usersPage struct {
	Users []operator.User `json:"users"`
	Next  string          `json:"next"`
}

func (h operatorRequest) listUsers() error {
	q, err := parseUserQuery(h.r)
	if err != nil {
		return err
	}
	users, next, err := h.svc.ListUsers(h.r.Context(), q)
	if err != nil {
		return operatorError("listing users", err)
	}
	if users == nil {
		users = []operator.User{}
	}
	return writeJSON(h.w, http.StatusOK, usersPage{Users: users, Next: next})
}

// parseUserQuery reads and bounds the users listing's parameters. Unknown
// parameters are refused, so a misspelt filter never lists everyone.
func parseUserQuery(r *http.Request) (operator.UserQuery, error) {
	var q operator.UserQuery
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return q, apiError(http.StatusBadRequest, "malformed query string: %v", err)
	}
	for name, vs := range values {
		for _, v := range vs {
			if len(v) > maxQueryValueLen {
				return q, apiError(http.StatusBadRequest, "query parameter %s is longer than %d bytes", name, maxQueryValueLen)
			}
		}
		if len(vs) > 1 {
			return q, apiError(http.StatusBadRequest, "query parameter %s is given %d times", name, len(vs))
		}
		v := vs[0]
		switch name {
		case "filter":
			q.Filter = v
		case "source":
			if v != "" && !contains(userSources, v) {
				return q, apiError(http.StatusBadRequest, "query parameter source: %q is not one of %s", v, strings.Join(userSources, ", "))
			}
			q.Source = v
		case "cursor":
			q.Cursor = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxUserPage {
				return q, apiError(http.StatusBadRequest, "query parameter limit: must be a whole number from 1 to %d", maxUserPage)
			}
			q.Limit = n
		default:
			return q, apiError(http.StatusBadRequest, "unknown query parameter %q (expected filter, source, cursor, limit)", name)
		}
	}
	return q, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func (h operatorRequest) showUser(id string) error {
	if err := noQuery(h.r); err != nil {
		return err
	}
	u, err := h.svc.User(h.r.Context(), id)
	if err != nil {
		return operatorError("reading the user", err)
	}
	return writeJSON(h.w, http.StatusOK, u)
}

func (h operatorRequest) createUser() error {
	var nu operator.NewUser
	if err := readJSONBody(h.w, h.r, &nu); err != nil {
		return err
	}
	if strings.TrimSpace(nu.UserName) == "" {
		return apiError(http.StatusBadRequest, "userName is required")
	}
	u, err := h.svc.CreateManualUser(h.r.Context(), operator.ActorAdmin, nu)
	if err != nil {
		return operatorError("creating the user", err)
	}
	h.w.Header().Set("Location", h.r.URL.EscapedPath()+"/"+url.PathEscape(u.ID))
	return writeJSON(h.w, http.StatusCreated, u)
}

func (h operatorRequest) updateUser(id string) error {
	var ch operator.UserChange
	if err := readJSONBody(h.w, h.r, &ch); err != nil {
		return err
	}
	if ch.Role == nil && ch.Active == nil {
		return apiError(http.StatusBadRequest, "nothing to change: send role and/or active")
	}
	u, err := h.svc.UpdateUser(h.r.Context(), operator.ActorAdmin, id, ch)
	if err != nil {
		return operatorError("changing the user", err)
	}
	return writeJSON(h.w, http.StatusOK, u)
}

func (h operatorRequest) deleteUser(id string) error {
	if err := h.svc.DeleteUser(h.r.Context(), operator.ActorAdmin, id); err != nil {
		return operatorError("deleting the user", err)
	}
	h.w.WriteHeader(http.StatusNoContent)
	return nil
}

// sessionsList is a user's live sessions.
type sessionsList struct {
	Sessions []operator.Session `json:"sessions"`
}

// endedSessions says how many sessions a DELETE ended.
type endedSessions struct {
	Ended int `json:"ended"`
}

func (h operatorRequest) listSessions(id string) error {
	ss, err := h.svc.Sessions(h.r.Context(), id)
	if err != nil {
		return operatorError("listing sessions", err)
	}
	if ss == nil {
		ss = []operator.Session{}
	}
	return writeJSON(h.w, http.StatusOK, sessionsList{Sessions: ss})
}

func (h operatorRequest) endUserSessions(id string) error {
	n, err := h.svc.EndUserSessions(h.r.Context(), operator.ActorAdmin, id)
	if err != nil {
		return operatorError("ending the user's sessions", err)
	}
	return writeJSON(h.w, http.StatusOK, endedSessions{Ended: n})
}

func (h operatorRequest) endSession(userID, sessionID string) error {
	if err := h.svc.EndSession(h.r.Context(), operator.ActorAdmin, userID, sessionID); err != nil {
		return operatorError("ending the session", err)
	}
	h.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h operatorRequest) endTenantSessions() error {
	n, err := h.svc.EndTenantSessions(h.r.Context(), operator.ActorAdmin)
	if err != nil {
		return operatorError("ending the tenant's sessions", err)
	}
	return writeJSON(h.w, http.StatusOK, endedSessions{Ended: n})
}

// groupsList is every group of the tenant.
type groupsList struct {
	Groups []operator.Group `json:"groups"`
}

func (h operatorRequest) listGroups() error {
	if err := noQuery(h.r); err != nil {
		return err
	}
	gs, err := h.svc.ListGroups(h.r.Context())
	if err != nil {
		return operatorError("listing groups", err)
	}
	if gs == nil {
		gs = []operator.Group{}
	}
	return writeJSON(h.w, http.StatusOK, groupsList{Groups: gs})
}

// declaredGroup is the body of POST groups: the claim value a SAML or
// OIDC sign-in will carry.
type declaredGroup struct {
	DisplayName string `json:"displayName"`
}

func (h operatorRequest) declareGroup() error {
	var d declaredGroup
	if err := readJSONBody(h.w, h.r, &d); err != nil {
		return err
	}
	if strings.TrimSpace(d.DisplayName) == "" {
		return apiError(http.StatusBadRequest, "displayName (the group's claim value) is required")
	}
	g, err := h.svc.DeclareGroup(h.r.Context(), operator.ActorAdmin, d.DisplayName)
	if err != nil {
		return operatorError("declaring the group", err)
	}
	return writeJSON(h.w, http.StatusCreated, g)
}

func (h operatorRequest) listMappings() error {
	if err := noQuery(h.r); err != nil {
		return err
	}
	m, err := h.svc.Mappings(h.r.Context())
	if err != nil {
		return operatorError("reading mappings", err)
	}
	if m.Roles == nil {
		m.Roles = []string{}
	}
	if m.Config == nil {
		m.Config = []operator.Mapping{}
	}
	if m.Stored == nil {
		m.Stored = []operator.Mapping{}
	}
	return writeJSON(h.w, http.StatusOK, m)
}

// mappingRole is the body of PUT mappings/{group}.
type mappingRole struct {
	Role string `json:"role"`
}

func (h operatorRequest) setMapping(group string) error {
	var m mappingRole
	if err := readJSONBody(h.w, h.r, &m); err != nil {
		return err
	}
	if m.Role == "" {
		return apiError(http.StatusBadRequest, "role is required")
	}
	if err := h.svc.SetMapping(h.r.Context(), operator.ActorAdmin, group, m.Role); err != nil {
		return operatorError("setting the mapping", err)
	}
	return writeJSON(h.w, http.StatusOK, operator.Mapping{Group: group, Role: m.Role})
}

func (h operatorRequest) deleteMapping(group string) error {
	if err := h.svc.DeleteMapping(h.r.Context(), operator.ActorAdmin, group); err != nil {
		return operatorError("removing the mapping", err)
	}
	h.w.WriteHeader(http.StatusNoContent)
	return nil
}

// disconnected says how many IdP-managed users became manual.
type disconnected struct {
	Converted int `json:"converted"`
}

func (h operatorRequest) disconnect() error {
	n, err := h.svc.Disconnect(h.r.Context(), operator.ActorAdmin)
	if err != nil {
		return operatorError("disconnecting the IdP", err)
	}
	return writeJSON(h.w, http.StatusOK, disconnected{Converted: n})
}

func (h operatorRequest) overview() error {
	o, err := h.svc.Overview(h.r.Context())
	if err != nil {
		return operatorError("reading the overview", err)
	}
	return writeJSON(h.w, http.StatusOK, o)
}

// serveTokenStatus answers GET scim-token: the token's health, never the
// token; 404 when none was ever made.
func serveTokenStatus(w http.ResponseWriter, r *http.Request, app *App, tenant string) error {
	svc, ok := app.Operator(tenant)
	if !ok {
		return apiError(http.StatusServiceUnavailable, "tenant %q has no operator service (the app is still starting)", tenant)
	}
	st, err := svc.TokenStatus(r.Context())
	if err != nil {
		return operatorError("reading the token status", err)
	}
	return writeJSON(w, http.StatusOK, st)
}

// noQuery refuses a query string on routes that take none, so that a
// filter meant for another route is not silently ignored.
func noQuery(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return apiError(http.StatusBadRequest, "this route takes no query parameters")
	}
	return nil
}

// readJSONBody decodes a bounded JSON body into v, refusing unknown
// fields, trailing data and bodies larger than maxOperatorBody.
func readJSONBody(w http.ResponseWriter, r *http.Request, v any) error {
	if err := noQuery(r); err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONContentType(ct) {
		return apiError(http.StatusUnsupportedMediaType, "Content-Type %q: send application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOperatorBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return apiError(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", maxOperatorBody)
	case errors.Is(err, io.EOF):
		return apiError(http.StatusBadRequest, "request body is empty; send a JSON object")
	}
	return apiError(http.StatusBadRequest, "request body: %v", err)
}

// isJSONContentType accepts application/json and the +json types
// (application/scim+json), with any parameters.
func isJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// operatorError turns an operator error into an admin API error with the
// status the contract gives it.
func operatorError(doing string, err error) error {
	var managed *operator.ManagedError
	switch {
	case errors.As(err, &managed):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err, Message: managed.Message}
	case errors.Is(err, operator.ErrPinnedByConfig), errors.Is(err, operator.ErrConflict):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: err}
	case errors.Is(err, operator.ErrInvalid):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	case errors.Is(err, operator.ErrNotFound), errors.Is(err, operator.ErrNoToken):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	}
	return storeError(doing, err)
}
