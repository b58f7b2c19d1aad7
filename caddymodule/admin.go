package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminActor is the audit actor of every change made through the admin API.
const adminActor = "admin"

// Bounds of the events listing.
const (
	defaultEventPage = 100
	maxEventPage     = 500
	maxEventTypes    = 32
	maxQueryValueLen = 256
)

// AdminAPI adds the Portcullis routes to Caddy's admin API:
//
//	POST   /portcullis/tenants/{tenant}/scim-token  create or rotate the SCIM token: 201 {"token":"..."}
//	DELETE /portcullis/tenants/{tenant}/scim-token  disable SCIM for the tenant: 204
//	GET    /portcullis/tenants/{tenant}/scim-token  the token's health (adminoperator.go)
//	GET    /portcullis/tenants/{tenant}/events      audit events, newest first:
//	       ?type=a,b&since=RFC3339&until=RFC3339&limit=N&before=CURSOR
//	       → {"events":[...],"next":"CURSOR or empty"}
//	       &format=jsonl|csv → one event a line (eventexport.go), the
//	       next page in a Link header
//
// and the operator's routes listed in adminoperator.go.
//
// Errors are Caddy's admin error bodies: {"error":"..."}.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.portcullis",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/portcullis/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return withRetryAfter(w, serveAdmin(w, r)) // adminunavailable.go
		}),
	}}
}

const tenantsPath = "/portcullis/tenants/"

// serveAdmin routes /portcullis/tenants/{tenant}/{resource}.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, tenantsPath)
	if !ok {
		return apiError(http.StatusNotFound, "no such portcullis admin route: %s", r.URL.Path)
	}
	tenant, resource, ok := strings.Cut(rest, "/")
	if !ok || tenant == "" {
		return apiError(http.StatusNotFound, "no such portcullis admin route: %s", r.URL.Path)
	}
	app := runningApp()
	if app == nil {
		return apiError(http.StatusServiceUnavailable, "the portcullis app is not running (no portcullis global option in the config)")
	}
	if _, ok := app.Tenant(tenant); !ok {
		return apiError(http.StatusNotFound, "unknown tenant %q", tenant)
	}
	// Users, groups, mappings, sessions, disconnect (adminoperator.go).
	if handled, err := serveOperator(w, r, app, tenant, operatorResource(r)); handled {
		return err
	}
	if strings.Contains(resource, "/") {
		return apiError(http.StatusNotFound, "no such portcullis admin route: %s", r.URL.Path)
	}

	switch resource {
	case "scim-token":
		switch r.Method {
		case http.MethodPost:
			return rotateToken(w, r, app, tenant)
		case http.MethodDelete:
			return disableToken(w, r, app, tenant)
		case http.MethodGet:
			return serveTokenStatus(w, r, app, tenant)
		}
		return methodNotAllowed(w, http.MethodGet, http.MethodPost, http.MethodDelete)
	case "events":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, http.MethodGet)
		}
		return listEvents(w, r, app, tenant)
	case "sync":
		return serveSync(w, r, app, tenant) // syncapi.go
	}
	return apiError(http.StatusNotFound, "no such portcullis admin route: %s", r.URL.Path)
}

// tokenResponse carries the plaintext token: the one time it is shown.
type tokenResponse struct {
	Token string `json:"token"`
}

func rotateToken(w http.ResponseWriter, r *http.Request, app *App, tenant string) error {
	token, err := scimhandler.IssueToken(r.Context(), app.Store(), tenant, adminActor)
	if err != nil {
		return storeError("issuing SCIM token", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, tokenResponse{Token: token})
}

func disableToken(w http.ResponseWriter, r *http.Request, app *App, tenant string) error {
	if err := scimhandler.DisableToken(r.Context(), app.Store(), tenant, adminActor); err != nil {
		return storeError("disabling SCIM", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// eventsResponse is one page of audit events; Next is the cursor (the
// before parameter) of the following page, empty on the last one.
type eventsResponse struct {
	Events []storage.Event `json:"events"`
	Next   string          `json:"next"`
}

func listEvents(w http.ResponseWriter, r *http.Request, app *App, tenant string) error {
	q, err := parseEventQuery(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = eventFormatJSON
	}
	if err := checkEventFormat(format); err != nil {
		return apiError(http.StatusBadRequest, "query parameter format: %v", err)
	}
	limit := q.Limit
	q.Limit = limit + 1 // one more than asked tells whether a next page exists
	var events []storage.Event
	err = app.Store().View(r.Context(), tenant, func(tx storage.ReadTx) error {
		var err error
		events, err = tx.Events(q)
		return err
	})
	if err != nil {
		return storeError("listing events", err)
	}
	resp := eventsResponse{Events: events}
	if len(events) > limit {
		resp.Events = events[:limit]
		resp.Next = resp.Events[limit-1].ID
	}
	if resp.Events == nil {
		resp.Events = []storage.Event{}
	}
	if format != eventFormatJSON {
		return writeEventExport(w, r, format, resp)
	}
	return writeJSON(w, http.StatusOK, resp)
}

// parseEventQuery reads and bounds the events query parameters. Unknown
// parameters are refused, so a misspelt filter never silently lists
// everything.
func parseEventQuery(r *http.Request) (storage.EventQuery, error) {
	q := storage.EventQuery{Limit: defaultEventPage}
	for name, values := range r.URL.Query() {
		for _, v := range values {
			if len(v) > maxQueryValueLen {
				return q, apiError(http.StatusBadRequest, "query parameter %s is longer than %d bytes", name, maxQueryValueLen)
			}
		}
		last := values[len(values)-1]
		var err error
		switch name {
		case "type":
			for _, v := range values {
				for t := range strings.SplitSeq(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						q.Types = append(q.Types, t)
					}
				}
			}
			if len(q.Types) > maxEventTypes {
				return q, apiError(http.StatusBadRequest, "at most %d event types per query", maxEventTypes)
			}
			err = checkEventTypes(q.Types)
		case "since":
			q.Since, err = parseTime(last)
		case "until":
			q.Until, err = parseTime(last)
		case "before":
			q.Before = last
		case "format":
			// read by listEvents
		case "limit":
			var n int
			n, err = strconv.Atoi(last)
			if err != nil || n < 1 || n > maxEventPage {
				err = fmt.Errorf("must be a whole number from 1 to %d", maxEventPage)
			}
			q.Limit = n
		default:
			return q, apiError(http.StatusBadRequest, "unknown query parameter %q (expected type, since, until, limit, before, format)", name)
		}
		if err != nil {
			return q, apiError(http.StatusBadRequest, "query parameter %s: %v", name, err)
		}
	}
	return q, nil
}

// parseTime reads an RFC 3339 time (fractional seconds allowed). An RFC
// 3339 time has no spaces, so a space is a "+" of an offset that was not
// percent-encoded in the query string (curl users type them as is).
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.Replace(v, " ", "+", 1))
	if err != nil {
		return t, fmt.Errorf("%q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", v)
	}
	return t, nil
}

// storeError turns a store failure into an admin API error: 503 with
// Retry-After when retrying later fixes it (adminunavailable.go).
func storeError(doing string, err error) error {
	return caddy.APIError{HTTPStatus: storeErrorStatus(err), Err: fmt.Errorf("%s: %w", doing, err)}
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func methodNotAllowed(w http.ResponseWriter, allowed ...string) error {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiError(http.StatusMethodNotAllowed, "method not allowed; use %s", strings.Join(allowed, " or "))
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// Interface guards
var (
	_ caddy.AdminRouter = AdminAPI{}
)
